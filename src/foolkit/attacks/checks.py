"""Checks of an attack's inputs and parameters: images, models, logits, labels, numbers.

Each raises :class:`foolkit.errors.InputError` with one line naming the problem. Used by
``Attack.__call__``, by each attack's constructor, and by the evaluation engine before long jobs.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, cast

import torch
from torch import nn

from ..errors import InputError
from ..runtime.model_state import eval_mode


def validate_images(x: Any) -> torch.Tensor:
    """Check an image batch: a float tensor ``[N,C,H,W]``, finite, in [0,1].

    Returns ``x.detach()`` (a view of the same storage, not a copy), so that nothing an attack
    computes from it joins the caller's autograd graph when ``x.requires_grad``.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"images must be a torch.Tensor, got {type(x).__name__}")
    x = x.detach()
    if x.ndim != 4:
        raise InputError(f"images must have rank 4 [N,C,H,W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"images must be a float tensor in [0,1], got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise InputError("images are empty (N = 0)")
    if not torch.isfinite(x).all():
        raise InputError("images contain NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise InputError(f"image values must lie in [0,1], found range [{lo:.4g}, {hi:.4g}]")
    return cast(torch.Tensor, x)


def check_model(model: Any, x: torch.Tensor) -> None:
    """Check what can be checked of a model before it runs on ``x`` ``[N,C,H,W]``: an
    ``nn.Module``, and for foolkit's ``Normalized`` wrapper a normalisation of C channels."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module (float [N,C,H,W] in [0,1] -> logits), "
                         f"got {type(model).__name__}")
    from ..models.wrappers import Normalized  # foolkit's own wrapper: a user's `mean` may mean anything

    mean = model.mean if isinstance(model, Normalized) else None
    if isinstance(mean, torch.Tensor) and mean.numel() not in (1, x.shape[1]):
        raise InputError(f"the model normalises {mean.numel()} channels but the images have {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


@contextmanager
def forward_errors_explained(model: nn.Module, x: torch.Tensor) -> Iterator[None]:
    """Around a forward pass: re-raise its failure as a clearer ``ValueError`` when the usual
    reason holds (images on another device, or of another float type, than the model's weights)."""
    try:
        yield
    except RuntimeError as exc:
        weight = next((t for t in model.parameters() if t.is_floating_point()), None)
        if weight is not None and weight.device != x.device:
            raise InputError(f"the images are on {x.device} but the model is on {weight.device}; "
                             f"move one to the other ({exc})") from exc
        if weight is not None and weight.dtype != x.dtype:
            raise InputError(f"the images are {x.dtype} but the model's weights are {weight.dtype}; "
                             f"convert one to the other, e.g. x.to({weight.dtype}) ({exc})") from exc
        raise


def check_logits(logits: Any, n: int) -> torch.Tensor:
    """Check a model's output for ``n`` images: finite float logits ``[n,K]`` with K >= 2."""
    if not isinstance(logits, torch.Tensor):
        raise InputError(f"the model must return a logits tensor [N,K], got {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[0] != n:
        raise InputError(f"the model must return logits of shape [N,K] = [{n},K], got {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise InputError(f"the model must return at least 2 class scores per image, got {logits.shape[1]}")
    if not logits.is_floating_point():
        raise InputError(f"the model must return float logits, got dtype {logits.dtype}")
    if not torch.isfinite(logits).all():
        raise InputError("the model returned NaN or Inf logits (are its weights finite?)")
    return logits


def check_model_output(model: Any, x: torch.Tensor) -> int:
    """Run ``model`` once on ``x`` (a few images) in eval mode and check its output; returns the
    number of classes K. Cheap enough to call before any long job."""
    x = validate_images(x)
    check_model(model, x)
    with eval_mode(model), torch.no_grad(), forward_errors_explained(model, x):
        logits = model(x)
    return check_logits(logits, len(x)).shape[1]


def validate_labels(labels: Any, n: int, num_classes: int, what: str, device: torch.device | str) -> torch.Tensor:
    """Check labels: integer ``[n]`` (an int is broadcast) with values in [0, num_classes)."""
    if isinstance(labels, bool):
        raise InputError(f"{what} must be integer class indices, got {labels!r}")
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception:
            raise InputError(f"{what} must be integer class indices, got {type(labels).__name__}") from None
    if labels.ndim == 0:  # one class for every image (an int, a numpy int, a 0-dim tensor)
        labels = labels.expand(n)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise InputError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"{what} must have shape [{n}] (one per image), got {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(f"{what} must lie in [0, {num_classes - 1}] for a {num_classes}-class model, "
                         f"found range [{int(labels.min())}, {int(labels.max())}]")
    out: torch.Tensor = labels.to(device=device, dtype=torch.long)
    return out


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_nonnegative(name: str, value: Any, strict: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (strict and v == 0):
        raise InputError(f"{name} must be a finite number {'> 0' if strict else '>= 0'}, got {value!r}")
    return v


VARIANTS = ("foolkit", "thesis")


def check_variant(variant: Any) -> str:
    """An attack's ``variant``: "foolkit" (foolkit's algorithm, the default) or "thesis" (the
    algorithm of the thesis's published code, in the normalised space of a ``Normalized`` model)."""
    if variant not in VARIANTS:
        raise InputError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return str(variant)
