"""``foolkit reproduce``: run the experiments of Part III (``foolkit.experiments``) on the models
we have, and write a report (``reproduction_report``) with our tables beside the thesis's, our
figures and the verdicts on the thesis's claims (``verdicts``). This module holds the
orchestration (``reproduce``); what runs: ``plan``; running one run: ``tasks``; the Ray engine:
``ray_runs``.

Everything attacked goes through :func:`foolkit.evaluation.evaluate` into ONE SQLite store,
``<out>/runs.db``, so an interrupted reproduction resumes where it stopped (the finished
batches are skipped). ``<out>/results.json`` holds the points (one per model x grid value),
the report reads them back with the store.

Models: each thesis column (ResNet-50, DenseNet-169, MobileNetV2, InceptionV3) is mapped to one
of the given CIFAR-10 models: a thesis architecture given by its registry name maps to itself
(``cifar10/resnet50=PATH``), ``THESIS:name[=PATH]`` maps explicitly, and every column left over
is played by the first other model (a *stand-in*). By default each column is played by the
compact member of its family that foolkit ships (``thesis_setup.COMPACT_MODELS``: ResNet-20,
DenseNet-BC-40, MobileNetV2 x0.5, small Inception x0.5). The hi-res figures use
``imagenet/efficientnet-lite0``.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..runtime.files import write_text
from . import EXPERIMENTS, Experiment
from .derived import derive_pairs
from .model_map import imagenet_problem, parse_models
from .plan import Task, estimate_seconds, plan, select, task_cost
from .ray_runs import run_attacks_on_ray
from .sizes import QUICK_ONLY_IF_SELECTED, SIZES
from .tasks import Context, run_task, transfer

ENGINES = ("local", "ray")


class Progress:
    """A bar per experiment (images) under an overall bar (estimated work, with the ETA)."""

    def __init__(self, total_cost: float, enabled: bool) -> None:
        self.enabled = enabled
        self.overall: Any = None  # the overall tqdm bar when enabled (as ``experiment``'s bars)
        if enabled:
            from tqdm.auto import tqdm
            self.tqdm = tqdm
            self.overall = tqdm(total=round(total_cost), desc="overall", unit="", position=0, dynamic_ncols=True,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")

    def experiment(self, name: str, n_images: int) -> Any:
        if not self.enabled:
            return None
        return self.tqdm(total=n_images, desc=name, unit="img", position=1, leave=False, dynamic_ncols=True)

    def close(self) -> None:
        if self.overall is not None:
            self.overall.close()


def reproduce(out: str | Path, *, quick: bool = False, sizes: str | None = None, only: list[str] | None = None,
              models: list[str] | None = None, checkpoints: list[str] | None = None, data_root: str | None = None,
              device: str = "cpu", progress: bool = True, n_override: int | None = None, debug: bool = False,
              log: Callable[..., None] = print, engine: str = "local", address: str | None = None,
              num_cpus: int | None = None, max_retries: int = 3) -> Path:
    """Run the selected experiments (all by default; ``only``: experiment, table or figure ids)
    and write ``<out>/report.md`` and ``report.html``. Returns the Markdown path.

    ``sizes``: "quick" (same as ``quick=True``), "cpu" (the thesis's experiments with the
    samples cut to about two hours on 2 CPU cores, see ``CPU``) or "thesis" (the default).

    ``engine``: "local" (every run in this process, one after the other) or "ray": the attack
    runs not yet in ``<out>/runs.db`` first run as Ray tasks, one per run, merged into it
    (:func:`run_attacks_on_ray`; ``address``: a Ray cluster, None: a local instance on 127.0.0.1
    with ``num_cpus`` CPUs; ``max_retries``: re-runs of a task whose worker died); everything
    after the attacks (derived results, transfer matrices, figures, report) then runs here as
    with the local engine, reading the same store."""
    from ..data import load
    from .reproduction_report import write_reproduction

    sizes = sizes or ("quick" if quick else "thesis")
    if sizes not in SIZES:
        raise InputError(f"unknown sizes {sizes!r}; choose one of {', '.join(SIZES)}")
    from ..runtime.machine import parse_device
    parse_device(device)  # "cuda" without CUDA: refused before <out> is created
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise InputError("address= (--address) joins a Ray cluster: use it with engine='ray'")
    if engine == "ray":
        from ..evaluation.ray_engine import import_ray
        import_ray()  # Ray missing: one line, before <out> is created
    quick, cpu = sizes == "quick", sizes == "cpu"
    out = Path(out)
    mm = parse_models(models, checkpoints)
    ctx = Context(out, data_root, device, progress)
    for c in mm.cifar:  # a refused checkpoint is bad input: one line, exit 2, nothing written
        ctx.model(c)
    out.mkdir(parents=True, exist_ok=True)
    selected = select(only)
    n_available = len(load("cifar10", "test", root=data_root)[1])
    need_imagenet = any(e.images.source == "natural-images" for e in selected)
    problem = imagenet_problem(mm.imagenet) if need_imagenet else ""
    plans = {e.id: plan(e, mm, quick, n_available, problem, cpu) for e in selected}
    for key in QUICK_ONLY_IF_SELECTED:
        if quick and key in plans and not (only and key in {o.strip() for o in only}):
            plans[key].tasks, plans[key].extra_ms = [], 0.0
            plans[key].skip = (f"not run in the default quick plan (it would take it past its time budget): "
                               f"run foolkit reproduce --quick --only {key}")
    if n_override:
        for capped in plans.values():
            capped.images += f" (capped at {n_override} by --max-images)" if capped.images else ""
            for t in capped.tasks:
                t.n = min(t.n, n_override) if t.mode != "fit" else min(t.n, 4 * n_override)
                t.fit_n = min(t.fit_n, n_override) if t.fit_n else None
                if "n" in t.point:
                    t.point["n"] = t.fit_n
    results_path = out / "results.json"
    results: dict[str, Any] = {"mode": {"quick": "quick", "cpu": "cpu", "thesis": "full"}[sizes], "experiments": {},
                               "models": [list(r) for r in mm.describe()], "dedicated": sorted(mm.dedicated),
                               "columns": {t: c.label for t, c in mm.columns.items()}}
    try:
        previous = json.loads(results_path.read_text()) if results_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{results_path} is corrupt ({exc}); delete it: it is rebuilt from {out / 'runs.db'}") from exc
    if any(previous.get(k) != results[k] for k in ("mode", "columns")):
        previous = {}  # another mode or other models: do not mix their results in
    total = sum(task_cost(t) for p in plans.values() for t in p.tasks)
    expected = estimate_seconds(plans)
    log(f"{len(plans)} experiments, {sum(len(p.tasks) for p in plans.values())} runs: expected about "
        f"{expected / 60:.0f} min of wall time on 2 CPU cores from an empty store ({sizes} sizes; an estimate "
        f"from per-image costs measured on this project's machine); runs already in {ctx.store} are skipped",
        file=sys.stderr)
    results["expected_seconds"] = expected
    if engine == "ray":
        results["ray"] = run_attacks_on_ray(plans, ctx, address=address, num_cpus=num_cpus, max_retries=max_retries,
                                            progress=progress, log=log)
    bars = Progress(total, progress)
    start = time.perf_counter()
    try:
        for exp in EXPERIMENTS:
            pl = plans.get(exp.id)
            idle = "not run in this mode" + (" (not selected)" if only else "")
            entry: dict[str, Any] = {"status": idle if pl is None else pl.skip or "done", "points": [],
                                     "notes": [] if pl is None else pl.notes,
                                     "images": "" if pl is None else pl.images}
            if pl is None and exp.id in previous.get("experiments", {}):
                entry = previous["experiments"][exp.id]  # kept from an earlier run with the same settings
            results["experiments"][exp.id] = entry
            if pl is None or pl.skip:
                continue
            t0 = time.perf_counter()
            bar = bars.experiment(exp.id, sum(t.n for t in pl.tasks))
            try:
                for t in pl.tasks:
                    state = {"done": 0}
                    cost = task_cost(t)

                    def on_batch(info: dict, t: Task = t, state: dict = state, cost: float = cost) -> None:
                        step = info["done"] - state["done"]
                        state["done"] = info["done"]
                        if bar is not None:
                            bar.update(step)
                            bars.overall.update(round(cost * step / max(1, info["total"])))
                    point = run_task(t, exp, ctx, on_batch)
                    # foolkit's algorithm's rows live apart: only the tables read them, never the claims
                    if t.role == "foolkit":
                        entry.setdefault("foolkit_points", []).append(point)
                    else:
                        entry["points"].append(point)
                    if bar is not None and state["done"] < t.n:  # resumed or no callback: count it all
                        bar.update(t.n - state["done"])
                        bars.overall.update(round(cost * (t.n - state["done"]) / max(1, t.n)))
                derive_pairs(entry["points"])
                derive_pairs(entry.get("foolkit_points", []))
                if exp.id in AFTER_ATTACKS:  # issue #21 / #22: best known, Part IV's analysis
                    AFTER_ATTACKS[exp.id](exp, entry, ctx, pl.tasks, results)
                if exp.evaluate_on:
                    # the matrix is recomputed only when its perturbations (run ids) or images changed:
                    # it costs (models + models^2) passes over the evaluation set
                    before = previous.get("experiments", {}).get(exp.id, {})
                    run_key = [[p["run_id"], p["n"]] for p in entry["points"]]
                    if before.get("transfer") and before.get("transfer_key") == run_key:
                        entry["transfer"] = before["transfer"]
                    else:
                        entry["transfer"] = transfer(exp, entry["points"], ctx, pl.tasks)
                    entry["transfer_key"] = run_key
            except Exception as exc:  # one broken experiment must not lose the others
                if isinstance(exc, KeyboardInterrupt) or debug:
                    raise
                entry["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                entry["traceback"] = traceback.format_exc()
            finally:
                if bar is not None:
                    bar.close()
            entry["seconds"] = time.perf_counter() - t0
            _write_json(results_path, results)
            if not progress:
                continue
            bars.tqdm.write(f"{exp.id}: {entry['status']} in {entry['seconds']:.0f} s")
    finally:
        bars.close()
    results["seconds"] = time.perf_counter() - start + results.get("ray", {}).get("seconds", 0.0)
    from ..runtime.machine import describe
    results["machine"] = describe(device)
    results["data"] = str(data_root) if data_root else "the 1,000 CIFAR-10 test images bundled with foolkit"
    _write_json(results_path, results)
    return write_reproduction(out, results, ctx.store)


def _stronger(exp: Experiment, entry: dict, ctx: Context, tasks: list[Task], results: dict) -> None:
    from .stronger import summarize
    entry["frontier"] = summarize(entry["points"], ctx.store)


def _part4(exp: Experiment, entry: dict, ctx: Context, tasks: list[Task], results: dict) -> None:
    from .part4 import analyse
    analyse(exp, entry, ctx, tasks, results)


AFTER_ATTACKS = {"table-12.3-stronger": _stronger, "part-iv": _part4}


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1, default=str))
