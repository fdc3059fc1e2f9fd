"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, ICLR 2015, arXiv:1412.6572).

    x_adv = clip(x + eps * sign(grad_x CE(f(x), y)))          untargeted
    x_adv = clip(x - eps * sign(grad_x CE(f(x), target)))     targeted

Thesis: section 6.2, experiments 12.1 (Tables 12.1-12.2, Figs 12.1-12.4).

``variant="thesis"`` is the thesis code's ``fgsm``: the loss is ``nll_loss`` applied to the
logits, i.e. -f_y(x), instead of the cross-entropy. The thesis steps by eps / std_c in the
normalised space z = (x - mean) / std and clamps z to the image of [0,1]; since z is an affine,
per-channel increasing map of x, that is exactly x + eps * sign(grad_x(-f_y)) clipped to [0,1]
(the sign of a gradient is the same in z and in x), which is what foolkit computes.

Example:
    >>> result = FGSM(eps=0.01)(model, x, y)
    >>> eps_min = minimal_epsilon(model, x, y, grid=torch.arange(1, 31) / 100)
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..runtime.model_state import eval_mode
from .base import Attack, input_gradient, predict, wide_logits
from .checks import check_nonnegative, check_variant, validate_images, validate_labels
from .queries import Counter


def _eps_tensor(eps: Any) -> float | torch.Tensor:
    if isinstance(eps, torch.Tensor):
        if eps.ndim > 1 or eps.is_complex() or not torch.isfinite(eps).all() or (eps < 0).any():
            raise InputError("eps must be a finite scalar or a 1-D tensor of per-sample values >= 0")
        return eps.float()
    return check_nonnegative("eps", eps)


def fgsm_loss(logits: torch.Tensor, wanted: torch.Tensor, variant: str = "foolkit") -> torch.Tensor:
    """Per-sample loss whose input gradient FGSM follows: cross-entropy (foolkit) or the thesis
    code's ``nll_loss`` on logits, -f_wanted. ``logits [N,K]``, ``wanted [N]`` -> ``[N]``."""
    logits = wide_logits(logits)
    if variant == "thesis":
        return -logits.gather(1, wanted[:, None]).squeeze(1)
    return F.cross_entropy(logits, wanted, reduction="none")


class FGSM(Attack):
    """One signed-gradient step of size ``eps`` in the L-inf norm.

    Args:
        eps: step size in [0,1] pixel units; a float or a per-sample tensor ``[N]`` (>= 0).
        clip: clip ``x_adv`` to [0,1] (default True; Table 12.2 compares clip / no clip).
            Without clipping ``x_adv`` may leave [0,1]; the norms then equal eps exactly.
        variant: "foolkit" (default): the gradient of the cross-entropy, as in the paper;
            "thesis": the gradient of -f_y (the thesis code's ``nll_loss`` on logits). The two
            signs differ where other classes' logits pull the softmax gradient another way.
            Targeted, the step descends the same loss of the target class.

    Call: ``FGSM(eps=...)(model, x [N,C,H,W] in [0,1], y=None, target=None) -> AttackResult``.
    One forward and one gradient per image; ``iterations`` is 1.
    """

    name = "fgsm"
    added_params = {"variant": "foolkit"}

    def __init__(self, *, eps: float | torch.Tensor = 0.01, clip: bool = True, variant: str = "foolkit") -> None:
        self.eps = _eps_tensor(eps)
        self.clip = bool(clip)
        self.variant = check_variant(variant)

    def _check_call(self, x: torch.Tensor) -> None:
        if isinstance(self.eps, torch.Tensor) and self.eps.ndim == 1 and len(self.eps) != len(x):
            raise InputError(f"per-sample eps has {len(self.eps)} values for {len(x)} images")

    def _clean_pass(self, model: nn.Module, x: torch.Tensor, y: Any, target: Any, counter: Counter) -> torch.Tensor:
        # One forward pass gives the clean predictions and, backpropagated, the FGSM gradient.
        def objective(logits: torch.Tensor) -> torch.Tensor:
            k = logits.shape[1]
            wanted = target if target is not None else y if y is not None else logits.argmax(1)
            wanted = validate_labels(wanted, len(x), k, "target" if target is not None else "labels y", x.device)
            return fgsm_loss(logits, wanted, self.variant)

        logits, grad = input_gradient(model, x, objective)
        counter.cache["grad"] = grad
        return logits

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        eps = self.eps
        if isinstance(eps, torch.Tensor):
            eps = eps.to(x0.device)
            eps = eps[index].view(-1, 1, 1, 1) if eps.ndim == 1 else eps
        grad = counter.cache["grad"][index]
        step = grad.sign() if target is None else -grad.sign()
        x_adv = x0 + eps * step
        if self.clip:
            x_adv = x_adv.clamp(0, 1)
        return x_adv, torch.ones(len(x0), dtype=torch.long, device=x0.device), {}

    def params(self) -> dict[str, Any]:
        eps = self.eps.tolist() if isinstance(self.eps, torch.Tensor) else self.eps
        return {"eps": eps, "clip": self.clip, "variant": self.variant}


def minimal_epsilon(model: nn.Module, x: torch.Tensor, y: Any = None, *, grid: Any = None, clip: bool = True,
                    batch_size: int = 500, variant: str = "foolkit") -> torch.Tensor:
    """Smallest eps on ``grid`` for which FGSM fools each image (Fig. 12.3), batched.

    The sign of the gradient does not depend on eps, so one gradient per image is enough; each
    grid value costs one forward pass of the images not yet fooled.

    Args:
        model: the classifier (model contract).
        x: images ``[N,C,H,W]`` in [0,1].
        y: labels ``[N]``; default the clean predictions.
        grid: increasing eps values, default 0.01, 0.02, ..., 0.30 (the thesis starts at 0.01).
        clip: clip to [0,1] as :class:`FGSM` does.
        variant: the loss of :class:`FGSM` ("foolkit": cross-entropy; "thesis": -f_y).

    Returns:
        float ``[N]``: the minimal eps, ``nan`` where no grid value fools the image or the image
        is already misclassified (0 is never returned for those).
    """
    x = validate_images(x)
    check_variant(variant)
    grid_t = torch.arange(1, 31, dtype=torch.float32) / 100 if grid is None else torch.as_tensor(grid, dtype=torch.float32)
    if grid_t.ndim != 1 or len(grid_t) == 0 or (grid_t < 0).any() or (grid_t.diff() <= 0).any():
        raise InputError("grid must be a non-empty, strictly increasing 1-D sequence of eps >= 0")
    with eval_mode(model):
        return _minimal_epsilon(model, x, y, grid_t, clip, batch_size, variant)


def _minimal_epsilon(model: nn.Module, x: torch.Tensor, y: Any, grid_t: torch.Tensor, clip: bool, batch_size: int,
                     variant: str) -> torch.Tensor:
    clean, probs = predict(model, x)
    label = clean if y is None else validate_labels(y, len(x), probs.shape[1], "labels y", x.device)
    result = torch.full((len(x),), float("nan"), device=x.device)
    for start in range(0, len(x), batch_size):
        xb, lb = x[start:start + batch_size], label[start:start + batch_size]
        _, grad = input_gradient(model, xb, lambda z: fgsm_loss(z, lb, variant))
        sign = grad.sign()
        active = (clean[start:start + batch_size] == lb).nonzero().squeeze(1)
        for eps in grid_t.tolist():
            if len(active) == 0:
                break
            xa = xb[active] + eps * sign[active]
            if clip:
                xa = xa.clamp(0, 1)
            with torch.no_grad():
                fooled = model(xa).argmax(1) != lb[active]
            result[start + active[fooled]] = eps
            active = active[~fooled]
    return result
