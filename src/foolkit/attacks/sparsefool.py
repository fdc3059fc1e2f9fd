"""SparseFool (Modas, Moosavi-Dezfooli & Frossard, CVPR 2019, arXiv:1811.02248): few pixels.

Thesis: section 7.2 (Algorithms 4-5), experiments 12.3 (Table 12.6, Figs 12.10-12.14).

Each outer iteration i, on the images not yet fooled:
    r      = L2-DeepFool(x_i)                        (foolkit's batched DeepFool, no clipping)
    x_B    = x_i + lambda * r                        (boundary point pushed lambda times further)
    w      = grad(f_k - f_label)(x_i + r) / ||.||_2  (k: DeepFool's adversarial class)
    x_i+1  = LinearSolver(x_i, w, x_B, [lb, ub])     (greedy L1 projection onto w.(x - x_B) = 0)
    x_adv  = clip_[lb,ub](x_0 + (1 + overshoot) * (x_i+1 - x_0));  stop once it is misclassified.
Box: lb = max(0, x_0 - delta/255), ub = min(1, x_0 + delta/255).

The LinearSolver moves one coordinate at a time, largest |w_d| first, each as far as needed to
reach the plane (plus beta = 1e-3) or to its box bound. That greedy walk has a closed form:
sort |w| once, take the cumulative sum of what each coordinate can contribute, saturate every
coordinate before the first one whose cumulative contribution reaches the plane, move that one
partially. So the solver is a sort and a cumsum on the whole batch, not thousands of steps.

Example:
    >>> result = SparseFool(lambda_=3.0)(model, x, y)
    >>> result.fooling_rate, result.pixels_changed().median()

Deviations from the authors' code (LTS4/SparseFool):
- Batched over images with active masks; the LinearSolver is the exact closed form of the
  authors' coordinate loop (their minimum step of 1e-4 never binds, since |w_d| <= 1 and
  beta = 1e-3, so the result is the same up to float summation order).
- The inner DeepFool is foolkit's (candidates = the top ``candidates`` initial logits as the
  authors'; step size |f|(1 + 1e-5)/||w|| + 1e-12 where the authors clamp it to >= 1e-4). The
  label attacked is the original label (the authors re-read the prediction of x_i, which is
  the same label while x_i is still correctly classified).
- When the inner DeepFool fails to change the label within ``deepfool_max_iter`` steps the
  authors' normal is 0/0 (NaN); here the closest other class at the DeepFool point is used.
- One ``overshoot`` serves both the inner DeepFool's stop test and the final scaling (the
  authors use 0.02 for both, as two separate constants).
- ``beta`` (how far past the plane the solver goes) is 1e-3 in [0,1] pixel units; the authors
  apply 1e-3 in their mean/std-normalised input space.
- No-progress stop: an image stops (failed) when a step leaves its iterate where it was, or
  when ``_PATIENCE`` steps in a row exhaust the box without reaching the linearised boundary
  and without lowering the best margin f_label - max_k f_k seen so far. With a small ``delta``
  the iterate otherwise flips between box corners for ever (``max_iter=10**9`` never ended).
  A step that reaches the plane resets the count, so with the whole box (the default) the
  stop practically never fires.

``variant="thesis"`` runs the thesis code's SparseFool instead (module ``sparsefool_thesis``):
its DeepFool and box, in the normalised space of a ``fk.models.Normalized`` model.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .base import Attack, input_gradient, wide_logits
from .checks import check_nonnegative, check_positive_int, check_variant
from .deepfool import deepfool
from .precision import full_precision
from .queries import Counter
from .sparsefool_thesis import run_sparsefool_thesis

_BETA = 1e-3
#: Steps in a row that exhaust the box without reaching the plane or lowering the margin.
_PATIENCE = 5
#: A step that moves no pixel-channel by more than this (pixel units) made no progress.
_STILL = 1e-7


def check_iterations(name: str, value: Any) -> int:
    """A finite integer >= 1; an integral float (``1e9`` from a command line) is accepted."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return check_positive_int(name, value)


def linear_solver(x: torch.Tensor, w: torch.Tensor, x_b: torch.Tensor, lb: torch.Tensor,
                  ub: torch.Tensor, beta: float = _BETA) -> torch.Tensor:
    """SparseFool's LinearSolver (Algorithm 4), batched and in closed form.

    Args:
        x: current iterates ``[M, ...]``; w: plane normals ``[M, ...]`` (any scale);
        x_b: points on the planes ``[M, ...]``; lb, ub: box bounds ``[M, ...]`` with lb <= x <= ub.
        beta: go this far (in units of w.(x - x_b)) past the plane, as the authors do.

    Returns:
        ``[M, ...]`` the greedy sparse step of each x towards its plane ``w.(z - x_b) = 0``,
        inside the box. As in the authors' code, coordinates move in the direction sign(w_d);
        an x already on the far side of its plane therefore saturates every coordinate with
        w_d != 0 (the authors' loop never finds the sign change there either).
    """
    shape = x.shape
    x, w, x_b, lb, ub = (t.flatten(1) for t in (x, w, x_b, lb, ub))
    f = (w * (x - x_b)).sum(1)
    below = f <= 0  # the usual case: stepping along sign(w) approaches the plane
    gap = f.abs()
    direction = w.sign()
    room = torch.where(direction > 0, ub - x, x - lb).clamp_min(0)
    absw = w.abs()
    order = absw.argsort(dim=1, descending=True, stable=True)  # stable: argmax picks the first tie
    ws = absw.gather(1, order)
    contrib = ws * room.gather(1, order)
    cums = contrib.cumsum(1)
    valid = ws > 0
    reach = valid & (cums >= gap[:, None]) & below[:, None]
    has_reach = reach.any(1)
    k = torch.where(has_reach, reach.to(torch.int8).argmax(1), torch.full_like(gap, ws.shape[1], dtype=torch.long))
    pos = torch.arange(ws.shape[1], device=x.device)
    move = torch.where(valid & (pos[None] < k[:, None]), room.gather(1, order), torch.zeros_like(ws))
    kk = k.clamp_max(ws.shape[1] - 1)[:, None]
    prev = (cums - contrib).gather(1, kk).squeeze(1)
    last = ((gap + beta - prev) / ws.gather(1, kk).squeeze(1).clamp_min(1e-30)).clamp_min(0)
    last = torch.minimum(last, room.gather(1, order).gather(1, kk).squeeze(1))
    move.scatter_(1, kk, torch.where(has_reach, last, move.gather(1, kk).squeeze(1))[:, None])
    step = torch.zeros_like(x).scatter_(1, order, move) * direction
    return torch.minimum(torch.maximum(x + step, lb), ub).view(shape)


class SparseFool(Attack):
    """Sparse (few-pixel) adversarial perturbations inside a per-pixel box.

    Args:
        lambda_: >= 1, how far beyond the L2-DeepFool boundary point the linearised boundary is
            placed (x_B = x + lambda * r). Larger: faster, more reliable, less sparse. The
            authors' and the thesis's value is 3.
        max_iter: outer iterations per image (the authors' default, 20).
        overshoot: >= 0, final x_adv = x_0 + (1 + overshoot)(x_i - x_0), clipped to the box;
            also the inner DeepFool's overshoot (authors: 0.02 for both).
        delta: > 0, in pixel levels out of 255: the box is
            [max(0, x - delta/255), min(1, x + delta/255)] per pixel-channel. 255 (default) is
            the whole [0,1] range; the thesis's Fig. 12.12 varies it.
        deepfool_max_iter: steps of the inner DeepFool (the authors' default, 50).
        candidates: classes the inner DeepFool considers (top logits, the label included; 10).
        variant: "foolkit" (default, the algorithm above) or "thesis" (the thesis code's
            SparseFool in the model's normalised space: its inner DeepFool with overshoot 0.02
            and lambda_fac = lambda_, its box around the 8-bit image, ``overshoot`` as its
            epsilon; see ``sparsefool_thesis``).

    Call: ``SparseFool(...)(model, x [N,C,H,W] in [0,1], y=None) -> AttackResult``; untargeted
    only. ``result.pixels_changed()`` [N] is the sparsity (fraction of pixels changed);
    ``iterations`` counts outer iterations. Each outer iteration costs one inner DeepFool
    (one forward and K-1 gradients per step), one forward and one gradient for the normal,
    and one forward to check the label.
    """

    name = "sparsefool"
    supports_target = False
    added_params = {"variant": "foolkit"}

    def __init__(self, *, lambda_: float = 3.0, max_iter: int | float = 20, overshoot: float = 0.02,
                 delta: float = 255, deepfool_max_iter: int = 50, candidates: int = 10,
                 variant: str = "foolkit") -> None:
        self.lambda_ = check_nonnegative("lambda_", lambda_)
        if not math.isfinite(self.lambda_) or self.lambda_ < 1:
            raise InputError(f"lambda_ must be a finite number >= 1, got {lambda_!r}")
        self.max_iter = check_iterations("max_iter", max_iter)
        self.overshoot = check_nonnegative("overshoot", overshoot)
        self.delta = check_nonnegative("delta (pixel levels out of 255)", delta, strict=True)
        self.deepfool_max_iter = check_positive_int("deepfool_max_iter", deepfool_max_iter)
        self.candidates = check_positive_int("candidates", candidates, minimum=2)
        self.variant = check_variant(variant)

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        if self.variant == "thesis":
            x_adv, loops = run_sparsefool_thesis(
                model, x0, label, lambda_=self.lambda_, max_iter=self.max_iter, epsilon=self.overshoot,
                delta=self.delta, deepfool_max_iter=self.deepfool_max_iter, candidates=self.candidates)
            return x_adv, loops, {}
        n = len(x0)
        device = x0.device
        radius = min(self.delta, 255.0) / 255.0
        lb = (x0 - radius).clamp_min(0)
        ub = (x0 + radius).clamp_max(1)
        scale = 1.0 + self.overshoot
        x_i = x0.clone()
        x_adv = x0.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=device)
        active = torch.arange(n, device=device)
        best_margin = torch.full((n,), math.inf, dtype=torch.float64, device=device)
        stalled = torch.zeros(n, dtype=torch.long, device=device)
        for _ in range(self.max_iter):
            if len(active) == 0:
                break
            xa, lab = x_i[active], label[active]
            # boundary point and normal from L2 DeepFool, started at the current iterate
            x_df, _ = deepfool(model, xa, lab, norm=2, overshoot=self.overshoot, max_iter=self.deepfool_max_iter,
                               candidates=self.candidates, clip=False)
            r = (x_df - xa) / scale
            with torch.no_grad():
                logits = wide_logits(model(x_df))
            k = logits.argmax(1)
            failed = k == lab  # DeepFool did not cross: use the closest other class
            k = torch.where(failed, logits.scatter(1, lab[:, None], -math.inf).argmax(1), k)
            _, w = input_gradient(
                model, xa + r,
                lambda z: wide_logits(z).gather(1, k[:, None]).squeeze(1) - wide_logits(z).gather(1, lab[:, None]).squeeze(1))
            w = w / w.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (w.ndim - 1))
            x_b = xa + self.lambda_ * r
            x_new = linear_solver(xa, w, x_b, lb[active], ub[active])
            x_i[active] = x_new
            cand = torch.minimum(torch.maximum(x0[active] + scale * (x_new - x0[active]), lb[active]), ub[active])
            x_adv[active] = cand
            iterations[active] += 1
            with torch.no_grad(), full_precision(device):  # the stop test in float32 under precision="bf16"
                logits = wide_logits(model(cand))
            still = logits.argmax(1) == lab
            # No progress: the iterate stayed put, or the box is exhausted short of the plane
            # and the margin has not improved for _PATIENCE steps (see the module docstring).
            f_lab = logits.gather(1, lab[:, None]).squeeze(1)
            margin = (f_lab - logits.scatter(1, lab[:, None], -math.inf).amax(1)).double()
            reached = (w * (x_new - x_b)).flatten(1).sum(1) >= 0
            improved = margin < best_margin[active]
            best_margin[active] = torch.minimum(margin, best_margin[active])
            stalled[active] = torch.where(reached | improved, 0, stalled[active] + 1)
            moved = (x_new - xa).flatten(1).abs().amax(1) > _STILL
            active = active[still & moved & (stalled[active] < _PATIENCE)]
        return x_adv, iterations, {}
