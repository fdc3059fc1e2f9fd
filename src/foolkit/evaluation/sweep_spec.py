"""Sweep specs: a grid of (model x attack x parameters [x shard]) tasks, read and validated.

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
A task's id is a hash of what the task computes (model, model file content, attack,
parameters, shard, data, batch size, seed), so a restarted sweep
(:func:`foolkit.evaluation.sweep.sweep`) finds its finished tasks and skips them. Nothing here
runs code from the spec: models given as ``file.py:function`` are code the user names, run by
the task as ``foolkit attack`` would.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

SPEC_KEYS = ("data", "models", "attacks", "batch_size", "seed", "shards", "fit_size")
DATA_KEYS = ("dataset", "split", "n", "root", "npz")


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
        from .identity import jsonable

        content = {"model": task.model, "model_file": _model_file_hash(task.model), "attack": task.attack,
                   "params": task.params, "shard": task.shard, "data": self.data, "data_file": _data_file_hash(self.data),
                   "batch_size": self.batch_size, "seed": self.seed, "fit_size": self.fit_size, "version": __version__}
        text = json.dumps(jsonable(content), sort_keys=True)
        return f"{task.attack}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _show(v: Any) -> str:
    return "inf" if isinstance(v, float) and math.isinf(v) else f"{v:g}" if isinstance(v, float) else str(v)


def _model_file_hash(model: str) -> str | None:
    """Content hash of a model given as a file (a changed file is another task); None for names."""
    from ..runtime.hashing import sha256_file

    file = model.rpartition(":")[0] if not model.lower().endswith(".pt2") else model
    return sha256_file(file) if file and os.path.isfile(file) else None


def _data_file_hash(data: dict) -> str | None:
    from ..runtime.hashing import sha256_file

    return sha256_file(data["npz"]) if data.get("npz") else None


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


__all__ = ["SweepSpec", "Task", "load_spec"]
