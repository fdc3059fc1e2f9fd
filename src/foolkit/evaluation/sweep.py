"""Sweeps: every task of a spec (:mod:`foolkit.evaluation.sweep_spec`), one store per task, merged.

    fk.sweep("sweep.toml", out="sweeps/a")                     # one machine, task after task
    fk.sweep("sweep.toml", out="sweeps/a", engine="ray")       # a local Ray instance (127.0.0.1 only)
    fk.sweep(spec, out="sweeps/a", engine="ray", address="head:6379")   # a Ray cluster

Each task runs :func:`foolkit.evaluation.evaluate` into ``OUT/tasks/<task id>.db``; a restarted
sweep skips the finished tasks, and an interrupted task resumes batch by batch. At the end every
task store is merged into ``OUT/results.db`` (:func:`~foolkit.evaluation.merge.merge_stores`) and
``OUT/report.html`` is written.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .shards import shard_indices
from .sweep_spec import SweepSpec, Task, load_spec

ENGINES = ("local", "ray")


def load_data(data: dict):
    """The data argument of ``evaluate`` for a spec's ``data``: ``(name, split, n, root)`` or,
    for a ``.npz`` (arrays ``x`` and optional ``y``; read without pickles), tensors ``(x, y)``."""
    if not data.get("npz"):
        return (data["dataset"], data["split"], data["n"], data["root"])
    import numpy as np
    import torch

    from ..errors import DataError

    try:
        with np.load(data["npz"], allow_pickle=False) as z:
            if "x" not in z.files:
                raise DataError(f"{data['npz']}: no array 'x' (images) in the .npz; it holds {', '.join(z.files)}")
            x, y = z["x"], (z["y"] if "y" in z.files else None)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{data['npz']}: not a readable .npz without pickles ({str(exc).splitlines()[0]})") from None
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    xt = torch.from_numpy(np.ascontiguousarray(x))
    xt = xt.float() / 255 if xt.dtype == torch.uint8 else xt.float()
    yt = None if y is None else torch.from_numpy(np.asarray(y).astype(np.int64))
    n = data.get("n")
    if n is not None:
        if n > len(xt):
            raise DataError(f"asked for {n} images but {data['npz']} holds {len(xt)}")
        xt, yt = xt[:n], None if yt is None else yt[:n]
    return xt if yt is None else (xt, yt)


def count_images(data: dict) -> int:
    """How many images the spec's data holds (loads them once)."""
    loaded = load_data(data)
    if isinstance(loaded, tuple) and isinstance(loaded[0], str):
        from ..data import load
        return len(load(loaded[0], loaded[1], n=loaded[2], root=loaded[3])[0])
    return len(loaded[0] if isinstance(loaded, tuple) else loaded)


def task_path(out: str | os.PathLike, task: Task) -> Path:
    return Path(out) / "tasks" / f"{task.task_id}.db"


def task_progress(out: str | os.PathLike, task: Task, n: int, batch_size: int) -> int:
    """Images of ``task`` already stored in its store (0 when there is none)."""
    from .store import Store

    path = task_path(out, task)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    want = set(shard_indices(n, batch_size, task.shard))
    with Store(path, readonly=True) as st:
        return max((len(want & st.done_indices(r["run_id"])) for r in st.runs()), default=0)


def run_task(task: Task, spec: SweepSpec, out: str, *, device: str = "cpu", threads: int | None = None,
             progress: Callable[[int], None] | None = None) -> dict:
    """Run one task into its own store (resuming what it holds); ``progress(k)`` is called with
    the images of each stored batch. ``threads``: torch threads for the task (restored after),
    so every engine computes with the same thread count. -> ``{"task_id", "run_id", "n", "seconds"}``."""
    import torch

    from .runner import evaluate

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start, seen = time.perf_counter(), [0]

    def report(info: dict) -> None:
        if progress is not None:
            progress(info["done"] - seen[0])
        seen[0] = info["done"]

    try:
        path = task_path(out, task)
        path.parent.mkdir(parents=True, exist_ok=True)
        run = evaluate(task.model, task.attack, load_data(spec.data), str(path), attack_params=dict(task.params),
                       batch_size=spec.batch_size, seed=spec.seed, fit_size=spec.fit_size, device=device,
                       shard=task.shard, progress=report)
    finally:
        torch.set_num_threads(previous)
    return {"task_id": task.task_id, "run_id": run.run_id, "n": seen[0], "seconds": time.perf_counter() - start}


# --- the sweep ----------------------------------------------------------------------------
def sweep(spec: str | os.PathLike | dict, out: str | os.PathLike, *, engine: str = "local", address: str | None = None,
          shards: int | None = None, device: str = "cpu", num_cpus: int | None = None, cpus_per_task: int = 1,
          gpus_per_task: float = 0, max_retries: int = 3, progress: bool = True, report: bool = True) -> dict:
    """Run every task of a sweep spec, skip the finished ones, merge, write the report.

    Args:
        spec: a TOML file or a dict (see the module docstring).
        out: output folder (created): ``tasks/<id>.db``, ``results.db``, ``report.html``.
        engine: ``"local"`` (task after task in this process) or ``"ray"`` (Ray Core tasks;
            ``pip install foolkit[ray]``).
        address: a Ray cluster to join (``"head:6379"``, ``"auto"``); None starts a local
            instance bound to 127.0.0.1 with ``num_cpus`` CPUs.
        shards: split every (model, attack, parameters) run into this many tasks (overrides the spec).
        device: where each task computes (``"cuda"`` with ``gpus_per_task``).
        cpus_per_task, gpus_per_task: resources each task asks for; also the torch threads of a task.
        max_retries: Ray re-runs a task whose worker died this many times (it resumes its store).
        progress: a tqdm bar on stderr over all images, with tasks done and the ETA.
        report: write ``report.html``.

    Returns:
        ``{"tasks", "skipped", "ran", "images", "results", "report", "seconds", "task_seconds"}``.
    """
    from ..runtime.files import check_output, check_output_folder
    from ..runtime.machine import parse_device
    from .merge import merge_stores

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise InputError("address= (--address) joins a Ray cluster: use it with engine='ray'")
    if isinstance(cpus_per_task, bool) or not isinstance(cpus_per_task, int) or cpus_per_task < 1:
        raise InputError(f"cpus_per_task must be an integer >= 1, got {cpus_per_task!r}")
    parse_device(device) if engine == "local" else None  # a Ray worker may have a GPU this driver lacks
    parsed = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    if shards is not None:
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise InputError(f"shards must be an integer >= 1, got {shards!r}")
        parsed.shards = shards
    out = check_output_folder(out)
    n = count_images(parsed.data)  # bad data fails before any folder or task is made
    tasks = parsed.tasks()
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    results, html = out / "results.db", out / "report.html"
    check_output(results, kind="store")
    check_output(html, kind="report")
    per_task = {t.task_id: len(shard_indices(n, parsed.batch_size, t.shard)) for t in tasks}
    stored = {t.task_id: task_progress(out, t, n, parsed.batch_size) for t in tasks}
    todo = [t for t in tasks if stored[t.task_id] < per_task[t.task_id]]
    bar = _bar(sum(per_task.values()), sum(stored.values()), len(tasks), len(tasks) - len(todo)) if progress else None
    start = time.perf_counter()
    summaries = []
    try:
        if engine == "local":
            for task in todo:
                summaries.append(run_task(task, parsed, str(out), device=device, threads=cpus_per_task,
                                          progress=bar.update if bar is not None else None))
                if bar is not None:
                    bar.tasks_done += 1
                    bar.set_postfix_str(f"tasks {bar.tasks_done}/{len(tasks)}")
        else:
            from .ray_engine import run_on_ray

            def done(summary: dict) -> None:
                summaries.append(summary)
                if bar is not None:
                    bar.update(per_task[summary["task_id"]] - stored[summary["task_id"]])
                    bar.tasks_done += 1
                    bar.set_postfix_str(f"tasks {bar.tasks_done}/{len(tasks)}")

            run_on_ray(todo, parsed, str(out), address=address, num_cpus=num_cpus, cpus_per_task=cpus_per_task,
                       gpus_per_task=gpus_per_task, max_retries=max_retries, device=device, on_done=done)
    finally:
        if bar is not None:
            bar.close()
    # rebuilt from the task stores on every call: a new file renamed over the old one at the end
    partial = out / "results.db.partial"
    partial.unlink(missing_ok=True)
    merge_stores(partial, [task_path(out, t) for t in tasks])
    os.replace(partial, results)
    if report:
        from ..report import write_report
        write_report(results, html)
    return {"tasks": len(tasks), "skipped": len(tasks) - len(todo), "ran": len(summaries),
            "images": sum(per_task.values()), "results": str(results), "report": str(html) if report else None,
            "seconds": time.perf_counter() - start, "task_seconds": sum(s["seconds"] for s in summaries)}


def _bar(total: int, initial: int, n_tasks: int, tasks_done: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc="sweep", unit="img", dynamic_ncols=True)
    bar.tasks_done = tasks_done
    bar.set_postfix_str(f"tasks {tasks_done}/{n_tasks}")
    return bar


__all__ = ["run_task", "sweep"]
