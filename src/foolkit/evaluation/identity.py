"""A run's identity: the hash of everything that changes its results.

A run is identified by :func:`run_hash` of :func:`run_config`: the model card and weights hash
(or the class and :func:`state_dict_sha256` of a user model); the attack's class and
parameters; the data spec and :func:`tensor_sha256` of its content; seed; target; the fit size
of a universal perturbation; batch size; foolkit version. The batch size belongs there for every
attack: which images share a batch changes the floats (CPU kernels are picked by batch shape),
One Pixel's random streams, L-BFGS's joint solve and each batch's seed; so another batch size is
another run, never a resume mixing two. The bytes hashed here are pinned by stored run ids:
changing them orphans every existing store.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import torch

from ..runtime.hashing import tensor_sha256


def jsonable(v: Any) -> Any:
    """``v`` as JSON-serialisable values: tensors and arrays as (nested) lists, numpy scalars as
    Python numbers, non-finite floats as their repr (``"inf"``), anything else as its repr."""
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)  # inf -> "inf"
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, torch.Tensor):
        return jsonable(v.detach().cpu().tolist())
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, (np.integer, np.floating)):
        return jsonable(v.item())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return repr(v)


def run_hash(config: dict[str, Any]) -> str:
    """The run id: the first 16 hex digits of the sha256 of the config as sorted-key JSON."""
    return hashlib.sha256(json.dumps(jsonable(config), sort_keys=True).encode()).hexdigest()[:16]


def run_config(model_spec: dict[str, Any], attack: Any, attack_name: str, data_spec: dict[str, Any], *, seed: int,
               target: torch.Tensor | None, fit_size: int | None, batch_size: int,
               precision: str = "float32") -> dict[str, Any]:
    """The config :func:`run_hash` hashes for a run of ``attack`` (an
    :class:`~foolkit.attacks.base.Attack`, registered as ``attack_name``) on the model and data
    the specs name. ``target``: the validated ``[N]`` target classes or None; ``fit_size``: None
    unless the attack is universal."""
    from .._version import __version__

    attack_spec = {"name": attack_name, "class": f"{type(attack).__module__}.{type(attack).__qualname__}",
                   "params": jsonable(attack.identity_params())}
    config = {"model": model_spec, "attack": attack_spec, "data": data_spec, "seed": seed,
              "target": None if target is None else tensor_sha256(target), "fit_size": fit_size,
              "batch_size": batch_size, "version": __version__}
    if precision != "float32":  # float32 runs keep the ids they had before precision existed
        config["precision"] = precision
    return config
