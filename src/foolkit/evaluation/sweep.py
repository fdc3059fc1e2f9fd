"""Sweeps: a grid of (model x attack x parameters [x shard]) runs, one store per task, merged.

    fk.sweep("sweep.toml", out="sweeps/a")                     # one machine, task after task
    fk.sweep("sweep.toml", out="sweeps/a", engine="ray")       # a local Ray instance (127.0.0.1 only)
    fk.sweep(spec, out="sweeps/a", engine="ray", address="head:6379")   # a Ray cluster

The spec (a TOML file, or the same as a dict)::

    data = { dataset = "cifar10", split = "test", n = 1000 }   # or root = "...", or npz = "x.npz"
    models = ["cifar10/resnet20", "nets/net.pt2", "nets/mine.py:build"]
    batch_size = 100      # optional; also seed, shards, fit_size
    [[attacks]]
    name = "deepfool"
    norm = [2, "inf"]     # a list is a grid axis
    [[attacks]]
    name = "fgsm"
    eps = [0.01, 0.03]

Relative paths (``root``, ``npz``, model files) are read relative to the spec file's folder.
Each task runs :func:`foolkit.evaluation.evaluate` into ``OUT/tasks/<task id>.db``; the task id
is a hash of what the task computes (model, model file content, attack, parameters, shard,
data, batch size, seed), so a restarted sweep finds its finished tasks and skips them, and an
interrupted task resumes batch by batch. At the end every task store is merged into
``OUT/results.db`` (:func:`~foolkit.evaluation.merge.merge_stores`) and ``OUT/report.html``
is written. Nothing here runs code from the spec: models given as ``file.py:function`` are
code the user names, run by the task as ``foolkit attack`` would.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from ..errors import InputError

SPEC_KEYS = ("data", "models", "attacks", "batch_size", "seed", "shards", "fit_size")
DATA_KEYS = ("dataset", "split", "n", "root", "npz")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One run of a sweep: a model, an attack with one point of its parameter grid, a shard."""
    model: str
    attack: str
    params: dict
    shard: tuple[int, int] | None
    task_id: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        params = " ".join(f"{k}={_show(v)}" for k, v in self.params.items())
        shard = f" shard {self.shard[0]}/{self.shard[1]}" if self.shard else ""
        return f"{self.model} {self.attack}{' ' + params if params else ''}{shard}"


@dataclass
class SweepSpec:
    """A parsed, validated spec: ``data`` (dict with absolute paths), ``models``, ``attacks``
    (``[(name, {param: [values]})]``) and the run options."""
    data: dict
    models: list[str]
    attacks: list[tuple[str, dict]]
    batch_size: int = 100
    seed: int = 0
    shards: int = 1
    fit_size: int | None = None

    def tasks(self) -> list[Task]:
        """The task grid, in spec order: models, then attacks, then parameter points, then shards."""
        out = []
        for model in self.models:
            for name, grid in self.attacks:
                keys = list(grid)
                for point in itertools.product(*(grid[k] for k in keys)):
                    params = dict(zip(keys, point))
                    for k in range(1, self.shards + 1):
                        shard = (k, self.shards) if self.shards > 1 else None
                        task = Task(model, name, params, shard)
                        out.append(Task(model, name, params, shard, self._task_id(task)))
        return out

    def _task_id(self, task: Task) -> str:
        from .._version import __version__
        from .runner import _jsonable

        content = {"model": task.model, "model_file": _model_file_hash(task.model), "attack": task.attack,
                   "params": task.params, "shard": task.shard, "data": self.data, "data_file": _data_file_hash(self.data),
                   "batch_size": self.batch_size, "seed": self.seed, "fit_size": self.fit_size, "version": __version__}
        text = json.dumps(_jsonable(content), sort_keys=True)
        return f"{task.attack}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _show(v: Any) -> str:
    return "inf" if isinstance(v, float) and math.isinf(v) else f"{v:g}" if isinstance(v, float) else str(v)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_file_hash(model: str) -> str | None:
    """Content hash of a model given as a file (a changed file is another task); None for names."""
    file = model.rpartition(":")[0] if not model.lower().endswith(".pt2") else model
    return _sha256_file(file) if file and os.path.isfile(file) else None


def _data_file_hash(data: dict) -> str | None:
    return _sha256_file(data["npz"]) if data.get("npz") else None


# --- parsing the spec ---------------------------------------------------------------------
def load_spec(spec: str | os.PathLike | dict, base: str | os.PathLike | None = None) -> SweepSpec:
    """Read and validate a sweep spec: a TOML file or a dict. Raises a one-line ``ValueError``
    naming the bad key (unknown attack or parameter, a value of the wrong type, a missing key).

    Args:
        spec: path to a ``.toml`` file, or the parsed dict.
        base: folder that relative paths are read from (default: the spec file's folder, or the
            current folder for a dict).
    """
    if isinstance(spec, dict):
        raw, where, base = spec, "sweep spec", Path(base or ".")
    else:
        path = Path(spec)
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such sweep spec: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
        except UnicodeDecodeError:  # a binary file (a pickle, an image) given as the spec
            raise InputError(f"{path}: not a TOML sweep spec (not UTF-8 text)") from None
        where, base = str(path), Path(base) if base else path.resolve().parent
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(SPEC_KEYS)})")
    for key in ("data", "models", "attacks"):
        if key not in raw:
            raise InputError(f"{where}: missing key {key!r}")
    options = {}
    for key, low in (("batch_size", 1), ("seed", 0), ("shards", 1), ("fit_size", 1)):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InputError(f"{where}: {key} must be an integer >= {low}, got {v!r}")
            options[key] = v
    return SweepSpec(data=_parse_data(raw["data"], where, base), models=_parse_models(raw["models"], where, base),
                     attacks=_parse_attacks(raw["attacks"], where), **options)


def _abs(path: str, base: Path) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (base / p).resolve())


def _parse_data(data: Any, where: str, base: Path) -> dict:
    if isinstance(data, str):
        data = {"npz": data}
    if not isinstance(data, dict):
        raise InputError(f"{where}: data must be a table {{ dataset = ..., split = ..., n = ... }} or a .npz path")
    unknown = sorted(set(data) - set(DATA_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key data.{unknown[0]} (known: {', '.join(DATA_KEYS)})")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"{where}: data.n must be an integer >= 1, got {n!r}")
    if "npz" in data:
        extra = sorted(set(data) - {"npz", "n"})
        if extra:
            raise InputError(f"{where}: data.{extra[0]} does not go with data.npz")
        npz = _abs(str(data["npz"]), base)
        if not os.path.isfile(npz):
            raise FileNotFoundError(f"{where}: data.npz: no such file: {npz}")
        return {"npz": npz, "n": n}
    out = {"dataset": data.get("dataset", "cifar10"), "split": data.get("split", "test"), "n": n,
           "root": _abs(str(data["root"]), base) if data.get("root") else None}
    for key in ("dataset", "split"):
        if not isinstance(out[key], str):
            raise InputError(f"{where}: data.{key} must be a string, got {out[key]!r}")
    return out


def _parse_models(models: Any, where: str, base: Path) -> list[str]:
    from ..models.sources import model_kind

    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise InputError(f"{where}: models must be a non-empty list of model names or files")
    out = []
    for m in models:
        try:
            kind = model_kind(m)  # a registered name, a .pt2 or file.py:function; the registry's message otherwise
        except ValueError as exc:
            raise InputError(f"{where}: models: {str(exc).splitlines()[0]}") from None
        if kind != "registered":
            file, sep, func = m.rpartition(":") if kind == "factory" else (m, "", "")
            file = _abs(file, base)
            if not os.path.isfile(file):
                raise FileNotFoundError(f"{where}: models: no such file: {file}")
            m = file + sep + func
        out.append(m)
    return out


def _parse_attacks(attacks: Any, where: str) -> list[tuple[str, dict]]:
    from ..attacks import registry

    if isinstance(attacks, dict):
        attacks = [attacks]
    if not isinstance(attacks, list) or not attacks or not all(isinstance(a, dict) for a in attacks):
        raise InputError(f"{where}: attacks must be one or more [[attacks]] tables")
    out = []
    for i, table in enumerate(attacks):
        at = f"{where}: attacks[{i}]"
        if "name" not in table:
            raise InputError(f"{at}: missing key 'name'")
        name = str(table["name"]).lower()
        try:
            cls = registry.get(name)
        except ValueError as exc:
            raise InputError(f"{at}: {exc}") from None
        params = {p.name: p for p in registry.parameters(cls)}
        grid = {}
        for key, value in table.items():
            if key == "name":
                continue
            if key not in params:
                raise InputError(f"{at}: {key!r} is not a parameter of {name} (its parameters: "
                                 f"{', '.join(params) or 'none'})")
            values = value if isinstance(value, list) else [value]
            if not values:
                raise InputError(f"{at}: {key} is an empty list (a list is a grid axis: give at least one value)")
            try:  # the command line's conversion: "inf", "none", booleans, int/float by annotation
                grid[key] = [registry.convert(params[key], str(v).lower() if isinstance(v, bool) else str(v))
                             for v in values]
            except ValueError as exc:
                raise InputError(f"{at}: {key}: {str(exc).split(': ', 1)[-1]}") from None
        for point in itertools.product(*grid.values()):  # each grid point is a valid attack
            kwargs = dict(zip(grid, point))
            try:
                cls(**kwargs)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{at}: {name} with {kwargs}: {str(exc).splitlines()[0]}") from None
        out.append((name, grid))
    return out


# --- running one task ---------------------------------------------------------------------
def load_data(data: dict):
    """The data argument of ``evaluate`` for a spec's ``data``: ``(name, split, n, root)`` or,
    for a ``.npz`` (arrays ``x`` and optional ``y``; read without pickles), tensors ``(x, y)``."""
    if not data.get("npz"):
        return (data["dataset"], data["split"], data["n"], data["root"])
    import numpy as np
    import torch

    from ..data.cifar10 import DataError

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
    from .shards import shard_indices
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
    per_task = {t.task_id: len(_indices(n, parsed.batch_size, t.shard)) for t in tasks}
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


def _indices(n: int, batch_size: int, shard) -> list[int]:
    from .shards import shard_indices
    return shard_indices(n, batch_size, shard)


def _bar(total: int, initial: int, n_tasks: int, tasks_done: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc="sweep", unit="img", dynamic_ncols=True)
    bar.tasks_done = tasks_done
    bar.set_postfix_str(f"tasks {tasks_done}/{n_tasks}")
    return bar


__all__ = ["SweepSpec", "Task", "load_spec", "run_task", "sweep"]
