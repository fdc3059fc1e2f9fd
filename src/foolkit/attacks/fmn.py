"""Fast Minimum-Norm attack, FMN (Pintor, Roli, Brendel & Biggio, NeurIPS 2021,
arXiv:2102.12827): L1, L2 and L∞.

FMN walks a perturbation delta along the normalised gradient of the logit margin while an
adaptive radius eps pulls it inwards: eps shrinks while delta is adversarial and grows while it
is not, so delta ends up circling the boundary point nearest to x0. Per image, step i of K
(Algorithm 1 of the paper):

    alpha_i, gamma_i   cosine-annealed from (alpha_init, gamma_init) to (alpha_final, gamma_final)
    loss   = max_{j != y} z_j - z_y      (targeted: z_t - max_{j != t} z_j); adversarial iff > 0
    g      = grad_delta loss(x0 + delta)
    if x0 + delta is adversarial:  eps <- min(eps (1 - gamma_i), ||best delta||_p)
    elif an adversarial point was found before:  eps <- eps (1 + gamma_i)
    else:  eps <- ||delta||_p + |loss| / ||g||_q   (the linearised distance to the boundary,
                                                    q the dual exponent; at step 0: DeepFool's)
    delta  <- Proj_{||.||_p <= eps}(delta + alpha_i g / ||g||_2),   then x0 + delta clipped to [0,1]
The smallest adversarial delta seen is returned. eps never exceeds the norm of the farthest
point of the box, ``||max(x0, 1 - x0)||_p``. Projections are :func:`foolkit.norms.project_lp_ball`.

One deviation from the paper: before the first adversarial point the linearised distance is
lengthened by (1 + gamma_i), i.e. eps = ||delta|| + (1 + gamma_i) |loss| / ||g||_q. With the
paper's rule an exactly linear boundary is reached but never crossed (delta lands on it, where
the margin is 0 up to rounding, and stays there: seen on an affine classifier in float64); on
networks the curvature hides this, and the change is within what gamma moves eps anyway.

Batched: all images take the same K steps at once (FMN refines until its budget is spent, so
there is nothing to drop early); each step is one forward and one backward pass.

Example:
    >>> result = FMN(norm=2, steps=100)(model, x, y)
    >>> result.fooling_rate, result.norms(2).median()
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .. import norms as _norms
from ..errors import InputError
from .base import Attack, input_gradient, wide_logits
from .checks import check_nonnegative, check_positive_int
from .queries import Counter


def margin(logits: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """FMN's loss ``[N]``: > 0 exactly where ``logits`` ``[N,K]`` are adversarial (ties aside).

    Untargeted: the strongest other class minus the label's logit; targeted: the target's logit
    minus the strongest other class.
    """
    wanted = label if target is None else target
    own = logits.gather(1, wanted[:, None]).squeeze(1)
    other = logits.scatter(1, wanted[:, None], -math.inf).amax(1)
    return other - own if target is None else own - other


class FMN(Attack):
    """Fast Minimum-Norm attack: gradient steps inside an adaptive Lp ball around x0 (L1, L2, L∞).

    Args:
        norm: 1, 2 or inf (``"inf"`` accepted).
        steps: gradient steps per image (the paper's K; 100 is the authors' quick setting,
            1000 their long one).
        alpha_init: initial step size (L2 length of the step on delta).
        alpha_final: final step size after cosine annealing; None means alpha_init / 100.
        gamma_init: initial factor by which eps grows or shrinks (eps * (1 -/+ gamma)), in (0, 1).
        gamma_final: final gamma after cosine annealing, in [0, gamma_init].

    Call: ``FMN(...)(model, x [N,C,H,W] in [0,1], y=None, target=None) -> AttackResult``.
    ``iterations`` is ``steps`` for every attacked image. Images never fooled return their last
    iterate.
    """

    name = "fmn"

    def __init__(self, *, norm: float | str = 2, steps: int = 100, alpha_init: float = 1.0,
                 alpha_final: float | None = None, gamma_init: float = 0.05, gamma_final: float = 0.001) -> None:
        self.norm = _norms.parse_norm(norm, allowed=(1.0, 2.0, math.inf))
        self.steps = check_positive_int("steps", steps)
        self.alpha_init = check_nonnegative("alpha_init", alpha_init, strict=True)
        self.alpha_final = None if alpha_final is None else check_nonnegative("alpha_final", alpha_final)
        self.gamma_init = check_nonnegative("gamma_init", gamma_init, strict=True)
        if self.gamma_init >= 1:
            raise InputError(f"gamma_init must lie in (0, 1), got {gamma_init!r}")
        self.gamma_final = check_nonnegative("gamma_final", gamma_final)
        if self.gamma_final > self.gamma_init:
            raise InputError(f"gamma_final must lie in [0, gamma_init = {self.gamma_init:g}], got {gamma_final!r}")

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        p = self.norm
        n = len(x0)
        alpha_final = self.alpha_init / 100 if self.alpha_final is None else self.alpha_final
        # no eps beyond the farthest point of the box: every delta in it is shorter
        worst = _norms.lp_norm(torch.maximum(x0, 1 - x0), p)
        eps = torch.full_like(worst, math.inf)
        best_norm = torch.full_like(worst, math.inf)
        best = x0.clone()
        found = torch.zeros(n, dtype=torch.bool, device=x0.device)
        delta = torch.zeros_like(x0)

        def objective(logits: torch.Tensor) -> torch.Tensor:
            return margin(wide_logits(logits), label, target)

        for i in range(self.steps):
            cosine = (1 + math.cos(math.pi * i / self.steps)) / 2
            alpha = alpha_final + (self.alpha_init - alpha_final) * cosine
            gamma = self.gamma_final + (self.gamma_init - self.gamma_final) * cosine

            x_adv = x0 + delta
            logits, grad = input_gradient(model, x_adv, objective)
            loss = objective(logits)
            pred = logits.argmax(1)
            adv = pred != label if target is None else pred == target
            d_norm = _norms.lp_norm(delta, p)
            better = adv & (d_norm < best_norm)
            best_norm = torch.where(better, d_norm, best_norm)
            best[better] = x_adv[better]
            found |= adv

            to_boundary = loss.abs().to(d_norm.dtype) / _norms.dual_norm(grad, p).to(d_norm.dtype).clamp_min(1e-12)
            eps = torch.where(adv, torch.minimum(eps * (1 - gamma), best_norm),
                              torch.where(found, eps * (1 + gamma), d_norm + (1 + gamma) * to_boundary))
            # a zero radius (a zero loss at step 0) would make the projection undefined
            eps = torch.minimum(eps, worst).clamp_min(1e-12)

            g_norm = _norms.lp_norm(grad, 2).clamp_min(1e-12).view(-1, 1, 1, 1)
            delta = _norms.project_lp_ball(delta + alpha * grad / g_norm, p, eps)
            delta = (x0 + delta).clamp(0, 1) - x0

        iterations = torch.full((n,), self.steps, dtype=torch.long, device=x0.device)
        return torch.where(found.view(-1, 1, 1, 1), best, x0 + delta), iterations, {}
