"""One attacked batch as what the store keeps: per-sample rows, image blobs, run-level arrays.

:func:`batch_records` turns an :class:`~foolkit.attacks.base.AttackResult` and its verification
(:mod:`foolkit.evaluation.verify`) into the rows of the ``samples`` and ``blobs`` tables
(:mod:`foolkit.evaluation.store_format`); :func:`batch_artifacts` encodes the result's run-level
extras. The runner commits both in one transaction.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..attacks.base import AttackResult
from .store_format import encode_array, encode_extra, encode_image, encode_png


def channel_mean(model: nn.Module, data_spec: dict[str, Any], channels: int) -> torch.Tensor | None:
    """The per-channel mean ``[1,C,1,1]`` the centred norms (``xc_l2``, ``xc_linf``) subtract:
    the model's own ``mean``, else CIFAR-10's for CIFAR-10 data, else None."""
    mean = getattr(model, "mean", None)
    if isinstance(mean, torch.Tensor) and mean.numel() == channels:
        return mean.detach().float().cpu().view(1, channels, 1, 1)
    if data_spec.get("dataset") == "cifar10" and channels == 3:
        from ..models.wrappers import CIFAR10_MEAN
        return torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    return None


def batch_records(result: AttackResult, checks: dict[str, torch.Tensor], idx: list[int], mean: torch.Tensor | None,
                  batch_start: int, in_fit: torch.Tensor,
                  store_images: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """-> ``(rows, blobs, run_level)`` for the images ``idx`` of the batch starting at ``batch_start``.

    rows: one dict per image with every ``samples`` column; blobs: one dict per image (empty when
    not ``store_images``): the clean image, the 8-bit adversarial and the exact perturbation
    (None when not attacked or zero) and the per-sample extras; run_level: the result's extras
    that are not ``[N, ...]`` tensors. A batch's seconds are shared by its attacked images.
    """
    n = len(idx)
    att = result.attacked
    n_att = int(att.sum())
    seconds = torch.where(att, result.seconds / max(n_att, 1), 0.0)
    x = result.x.detach().float().cpu()
    r = (result.x_adv.detach().float().cpu() - x)
    cols = {
        "label": result.label, "pred": result.clean_label, "clean_conf": result.clean_confidence,
        "attacked": att, "target": result.target, "success": result.success,
        "adv_label": checks["adv_label"], "adv_conf": checks["adv_conf"], "verified": checks["verified"],
        "q_label": checks["q_label"], "q_conf": checks["q_conf"], "verified_q": checks["verified_q"],
        "quant_lost": checks["quant_lost"],
        "l0": result.norms(0), "pixels": result.pixels_changed(), "l2": result.norms(2), "linf": result.norms(math.inf),
        "x_l2": x.flatten(1).norm(dim=1), "x_linf": x.flatten(1).abs().amax(1),
        "xc_l2": None if mean is None else (x - mean).flatten(1).norm(dim=1),
        "xc_linf": None if mean is None else (x - mean).flatten(1).abs().amax(1),
        "iterations": result.iterations, "seconds": seconds, "in_fit": in_fit,
    }
    lists = {k: (None if v is None else v.detach().cpu().tolist()) for k, v in cols.items()}
    rows = []
    for j, i in enumerate(idx):
        row: dict[str, Any] = {"idx": i, "batch": batch_start}
        for k, v in lists.items():
            row[k] = None if v is None else v[j]
        rows.append(row)
    per_sample = {k: v for k, v in result.extra.items() if isinstance(v, torch.Tensor) and v.shape[:1] == (n,)}
    run_level = {k: v for k, v in result.extra.items() if k not in per_sample}
    blobs = []
    if store_images:
        for j, i in enumerate(idx):
            attacked_j = bool(att[j])
            blobs.append({
                "idx": i, "image": encode_image(x[j].numpy()),
                "adv": encode_png(result.x_adv[j].detach().float().cpu().numpy()) if attacked_j else None,
                "perturbation": encode_array(r[j].numpy()) if attacked_j and bool(r[j].any()) else None,
                "extra": encode_extra({k: v[j].detach().cpu().numpy() for k, v in per_sample.items()}),
            })
    return rows, blobs, run_level


def batch_artifacts(run_level: dict[str, Any], batch_start: int, worked: int, n_images: int) -> dict[str, bytes]:
    """The run-level arrays of a batch as artifacts (``extra/<key>/batch<start>``), plus
    ``oom/batch<start>`` = the part size that worked when out of memory split the batch
    (``worked < n_images``)."""
    artifacts = {f"extra/{key}/batch{batch_start}": encode_array(
        value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
        for key, value in run_level.items() if isinstance(value, (torch.Tensor, np.ndarray))}
    if worked < n_images:  # attacked in parts after an out-of-memory error
        artifacts[f"oom/batch{batch_start}"] = encode_array(np.asarray(worked))
    return artifacts
