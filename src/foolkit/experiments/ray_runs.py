"""The Ray engine of ``foolkit reproduce`` (``engine="ray"``): a first pass that runs every planned
attack not yet in ``<out>/runs.db`` as one Ray task into its own store, then merges the stores
(``run_attacks_on_ray``). The run ids are predicted without attacking (``planned_run_id``)."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from . import EXPERIMENTS, Experiment
from .model_map import Choice
from .plan import Plan, Task
from .tasks import Context, evaluate_task, task_params

def task_key(t: Task, exp: Experiment, data_root: str | None) -> str:
    """A name for the run ``t`` computes, for its store ``<out>/tasks/<key>.db``: tasks of several
    experiments with the same key are one run (deepfool-l2 and deepfool-clip share theirs)."""
    import hashlib

    from ..evaluation.identity import jsonable
    content = {"attack": t.attack, "mode": t.mode, "model": t.choice.name, "checkpoint": t.choice.checkpoint,
               "normalization": t.choice.normalization, "params": t.params, "n": t.n, "fit_n": t.fit_n,
               "target": t.target, "images": exp.images.source, "data": data_root}
    text = json.dumps(jsonable(content), sort_keys=True, default=str)
    return f"{t.attack}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def task_store(out: str | Path, key: str) -> Path:
    """The store of one Ray task's run: ``<out>/tasks/<key>.db``."""
    return Path(out) / "tasks" / f"{key}.db"


def planned_run_id(t: Task, exp: Experiment, ctx: Context, _cache: dict | None = None) -> str | None:
    """The run id ``evaluate`` gives ``t``'s run (the config ``runner._evaluate`` hashes), computed
    without attacking; None for a minimal-epsilon run (its per-image eps are found by attacking).
    ``_cache``: model identities by (model, image shape), shared between calls."""
    from ..attacks.checks import check_model_output, validate_labels
    from ..evaluation import runner
    from ..evaluation.identity import run_config, run_hash
    from ..models.sources import prepare_model

    if t.mode == "minimal":
        return None
    params = task_params(t, ctx)
    name, params, target = ("fgsm", {"eps": 0.0}, None) if t.attack == "clean" else (t.attack, params, t.target)
    attack = runner._resolve_attack(name, params)
    x, _, data_spec, _ = runner._resolve_data(ctx.data(t, exp))
    cache = {} if _cache is None else _cache
    where = (t.choice, tuple(x.shape[1:]))
    if where not in cache:
        model, checkpoint = prepare_model(t.choice.name, t.choice.checkpoint, ctx.device, x.shape,
                                          data_spec.get("dataset"))
        net, model_spec, _ = runner._resolve_model(model, checkpoint, ctx.device, t.choice.normalization)
        cache[where] = (model_spec, check_model_output(net, x[:1].to(ctx.device)))
    model_spec, num_classes = cache[where]
    universal = runner.is_universal(attack)
    fit_size = (t.fit_n if t.fit_n is not None else max(1, len(x) // 2)) if universal else None
    tgt = None if target is None else validate_labels(target, len(x), num_classes, "target", "cpu")
    return run_hash(run_config(model_spec, attack, name, data_spec, seed=0, target=tgt, fit_size=fit_size,
                               batch_size=runner.DEFAULT_BATCH_SIZE))


def _ray_task(job: tuple, spec: dict, out: str, device: str, threads: int) -> dict:
    """One Ray task: attack ``job = (key, Task)`` into its own store ``<out>/tasks/<key>.db``.
    An exception is returned, not raised: the other runs go on, and the local pass reruns this
    one within its experiment, which then reports the failure as the local engine does."""
    key, t = job
    if spec.get("foolkit_data") and not os.environ.get("FOOLKIT_DATA"):
        os.environ["FOOLKIT_DATA"] = spec["foolkit_data"]  # the driver's default data, on any node
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        exp = next(e for e in EXPERIMENTS if e.id == t.experiment)
        ctx = Context(Path(out), spec["data_root"], device, progress=False)
        ctx.store = str(task_store(out, key))
        Path(ctx.store).parent.mkdir(parents=True, exist_ok=True)
        run, _ = evaluate_task(t, exp, ctx, None, task_params(t, ctx))
        return {"key": key, "run_id": run.run_id, "seconds": time.perf_counter() - start, "error": None}
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        return {"key": key, "run_id": None, "seconds": time.perf_counter() - start,
                "error": f"{type(exc).__name__}: {text}"}
    finally:
        torch.set_num_threads(previous)


def _absolute(t: Task) -> Task:
    """``t`` with its checkpoint as an absolute path (a Ray worker may start in another folder;
    the run's identity is the file's content, so the run id is the same)."""
    if t.choice.checkpoint is None:
        return t
    return replace(t, choice=Choice(t.choice.name, str(Path(t.choice.checkpoint).resolve())))


def run_attacks_on_ray(plans: dict[str, Plan], ctx: Context, *, address: str | None = None,
                       num_cpus: int | None = None, max_retries: int = 3, progress: bool = True,
                       log: Callable[..., None] = print) -> dict:
    """The Ray engine's first pass: every attack run of ``plans`` not yet in ``ctx.store`` runs as
    one Ray task (1 CPU, 1 torch thread) into ``<out>/tasks/<key>.db``; the finished stores are
    merged into ``ctx.store`` (:func:`~foolkit.evaluation.merge.merge_stores`) and deleted.

    Left to the local pass that follows (which resumes, or skips, every run in ``ctx.store``):
    runs already there, whole or in part (a Ray rerun of a stored batch would give floats that
    need not be bit-equal, and the merge refuses differing records), minimal-epsilon runs (the
    local pass finds their per-image eps by attacking anyway), and runs whose Ray task failed.

    Args:
        address: a Ray cluster (``"head:6379"``; ``<out>`` must then be on a shared file system);
            None starts a local instance bound to 127.0.0.1 (``num_cpus`` CPUs), shut down at the end.
        max_retries: re-runs of a task whose worker died (it resumes its store).
    -> ``{"runs", "stored", "local", "failed", "seconds"}``: runs sent to Ray, runs already stored,
    runs left to the local pass, Ray tasks that failed; wall seconds.
    """
    from ..evaluation.merge import merge_stores
    from ..evaluation.ray_engine import run_on_ray
    from ..evaluation.store import Store

    start = time.perf_counter()
    jobs: dict[str, tuple[Task, Experiment]] = {}
    for pl in plans.values():
        if pl.skip:
            continue
        for t in pl.tasks:
            jobs.setdefault(task_key(t, pl.experiment, ctx.data_root), (t, pl.experiment))
    stored_ids: set[str] = set()
    if Path(ctx.store).is_file() and Path(ctx.store).stat().st_size > 0:
        with Store(ctx.store, readonly=True) as st:
            stored_ids = {r["run_id"] for r in st.runs()}
    cache: dict = {}
    todo, stored, local = [], 0, 0
    for key, (t, exp) in jobs.items():
        try:
            rid = planned_run_id(t, exp, ctx, cache)
        except Exception:  # bad input: the local pass reports it with its experiment
            rid = None
        if rid is None:
            local += 1
        elif rid in stored_ids:
            stored += 1
        else:
            todo.append((key, _absolute(t)))
    log(f"ray: {len(todo)} runs as Ray tasks, {stored} already in {ctx.store}, {local} left to the local pass",
        file=sys.stderr)
    failed, redundant = [], []
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo), desc="ray", unit="run", dynamic_ncols=True)

    def done(summary: dict) -> None:
        if summary["run_id"] in stored_ids:  # a mispredicted id: the local pass finishes the stored run
            redundant.append(summary["key"])
        if summary["error"]:
            failed.append(summary["key"])
            log(f"ray: run {summary['key']} failed ({summary['error']}); the local pass reruns it", file=sys.stderr)
        if bar is not None:
            bar.update(1)

    spec = {"data_root": str(Path(ctx.data_root).resolve()) if ctx.data_root else None,
            "foolkit_data": os.environ.get("FOOLKIT_DATA")}
    try:
        if todo:
            run_on_ray(todo, spec, str(ctx.out), address=address, num_cpus=num_cpus, cpus_per_task=1,
                       max_retries=max_retries, device=ctx.device, on_done=done, fn=_ray_task)
    finally:
        if bar is not None:
            bar.close()
    paths = {key: task_store(ctx.out, key) for key, _ in todo}
    merged = [p for key, p in paths.items() if key not in redundant and p.is_file() and p.stat().st_size > 0]
    if merged:
        merge_stores(ctx.store, merged)
    if paths:
        for p in paths.values():  # merged, or already in ctx.store: delete
            for f in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
                f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            task_store(ctx.out, "x").parent.rmdir()  # the tasks/ folder, when nothing else is in it
    return {"runs": len(todo), "stored": stored, "local": local, "failed": len(failed),
            "seconds": time.perf_counter() - start}
