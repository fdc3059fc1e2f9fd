"""Transferability of universal perturbations across models (thesis Table 12.10).

Example:
    >>> names, m = transfer_matrix({"a": uap_a.perturbation_, "b": uap_b.perturbation_},
    ...                            {"a": model_a, "b": model_b}, x_test)
"""
from __future__ import annotations

import torch
from torch import nn

from ..attacks.base import predict
from ..attacks.checks import validate_images
from ..errors import InputError
from ..runtime.model_state import eval_mode


def transfer_matrix(perturbations: dict[str, torch.Tensor], models: dict[str, nn.Module],
                    x: torch.Tensor, *, batch_size: int = 500) -> tuple[list[str], torch.Tensor]:
    """Fooling rate of each model's universal perturbation on every model.

    Args:
        perturbations: name -> v ``[1,C,H,W]`` (or ``[C,H,W]``), e.g. ``uap.perturbation_``.
        models: name -> model (the model contract); the same names as ``perturbations``.
        x: images ``[N,C,H,W]`` in [0,1] on the models' device.
        batch_size: images per forward pass.

    Returns:
        ``(names, matrix)``: ``matrix[i, j]`` (float64 ``[M, M]``, in [0,1]) is the fraction of
        ``x`` whose prediction by model ``names[j]`` changes when ``v[names[i]]`` is added
        (clip(x + v) against that model's clean predictions). Rows: perturbation; columns:
        model; the diagonal is each perturbation on its own model.
    """
    x = validate_images(x)
    if set(perturbations) != set(models) or not models:
        raise InputError(f"perturbations and models must name the same, non-empty set of models; got "
                         f"{sorted(perturbations)} and {sorted(models)}")
    names = list(models)
    vs = {}
    for name, v in perturbations.items():
        v = torch.as_tensor(v)
        if v.shape[-3:] != x.shape[1:] or v.numel() != x[0].numel():
            raise InputError(f"perturbation {name!r} has shape {tuple(v.shape)}, images {tuple(x.shape[1:])}")
        vs[name] = v.reshape(1, *x.shape[1:]).to(device=x.device, dtype=x.dtype)
    matrix = torch.zeros(len(names), len(names), dtype=torch.float64)
    for j, mname in enumerate(names):
        model = models[mname]
        with eval_mode(model):
            clean, _ = predict(model, x, batch_size)
            for i, pname in enumerate(names):
                pred, _ = predict(model, (x + vs[pname]).clamp(0, 1), batch_size)
                matrix[i, j] = (pred != clean).double().mean()
    return names, matrix
