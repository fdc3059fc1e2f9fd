"""The thesis code's SparseFool (``variant="thesis"``), batched, in the model's normalised space.

Per image, on z = (x - mean) / std (pixel space for a model that is not ``Normalized``):

    box [lb, ub]: the image rounded to 8 bits, +- delta levels, cut to [0, 255], floored to
                  whole levels, mapped to z (the thesis's ``valid_bounds``)
    repeat while the label of z_adv is the original one and fewer than max_iter loops ran:
        the thesis's DeepFool at z_i (L2, overshoot 0.02, 50 steps, lambda_fac = lambda):
            x_B = z_i + lambda * R,  normal = grad(f_adv - f_label)(z_i + R) / ||.||_2
        z_i   = LinearSolver(z_i, normal, x_B, lb, ub)  (greedy, towards the plane from either side)
        z_adv = clip_[lb,ub](z_0 + (1 + epsilon)(z_i - z_0))
The inner DeepFool's label is the prediction of z_i (its own top class), as in the thesis.

The LinearSolver is foolkit's closed form (``sparsefool.linear_solver``) with the normal turned
to face the iterate, which is what the thesis's ``-sign_true`` does. Where the inner DeepFool
never changed the label the thesis's normal is 0/0 and its solver leaves z_i as it is; the
thesis then repeats that same step until ``max_iter``. foolkit stops such an image at once and
reports ``max_iter`` iterations, the count the thesis's loop would have reached.

With a huge ``max_iter`` (and a small delta) an image can wander between the corners of its box
for ever without an exact repeat. So an image whose margin f_label - max_other at z_adv has not
improved for ``PATIENCE`` loops in a row stops as failed. ``PATIENCE`` exceeds the thesis's
``max_iter`` (20), so the thesis's own settings are reproduced exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from .deepfool_thesis import deepfool_z, normalised_space, to_pixels, to_z

#: The thesis's SparseFool calls its DeepFool with the default overshoot.
INNER_OVERSHOOT = 0.02
#: Loops without a better margin after which an image stops (see the module docstring).
PATIENCE = 50


def thesis_box(x0: torch.Tensor, delta: float, mean: torch.Tensor | float, std: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lb, ub)`` in z for pixels ``x0`` ``[N,C,H,W]`` in [0,1]: the thesis's ``valid_bounds``
    (8-bit levels: round(255 x) -+ delta, cut to [0, 255], floored as its uint8 cast does)."""
    im = torch.round(x0 * 255)
    lb8 = (im - delta).clamp_min(0).floor()
    ub8 = (im + delta).clamp_max(255).floor()
    return to_z(lb8 / 255, mean, std), to_z(ub8 / 255, mean, std)


def thesis_linear_solver(x: torch.Tensor, normal: torch.Tensor, x_b: torch.Tensor, lb: torch.Tensor,
                         ub: torch.Tensor) -> torch.Tensor:
    """The thesis's ``linear_solver`` on ``[M, ...]`` batches: the greedy sparse step towards the
    plane ``normal.(z - x_b) = 0`` from whichever side x is on, inside [lb, ub]. A non-finite
    normal (or x exactly on the plane) leaves x unchanged."""
    from .sparsefool import linear_solver

    f = (normal * (x - x_b)).flatten(1).sum(1)
    facing = torch.where(f > 0, -1.0, 1.0).to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    ok = (torch.isfinite(f) & (f != 0)).view(-1, *[1] * (x.ndim - 1))
    out = linear_solver(x, torch.nan_to_num(normal) * facing, x_b, lb, ub)
    return torch.where(ok, out, x)


def run_sparsefool_thesis(model: nn.Module, x0: torch.Tensor, label: torch.Tensor, *, lambda_: float,
                          max_iter: int, epsilon: float, delta: float, deepfool_max_iter: int,
                          candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``SparseFool(variant="thesis")`` on pixels ``x0`` ``[N,C,H,W]`` in [0,1], labels ``[N]``:
    returns ``(x_adv [N,C,H,W] in [0,1], loops [N])``."""
    net, mean, std = normalised_space(model)
    z0 = to_z(x0, mean, std)
    lb, ub = thesis_box(x0, delta, mean, std)
    z_i, z_adv = z0.clone(), z0.clone()
    loops = torch.zeros(len(x0), dtype=torch.long, device=x0.device)
    active = torch.arange(len(x0), device=x0.device)
    best_margin = torch.full((len(x0),), float("inf"), device=x0.device)
    stalled = torch.zeros(len(x0), dtype=torch.long, device=x0.device)
    for _ in range(max_iter):
        if len(active) == 0:
            break
        za = z_i[active]
        x_b, _, _, normal = deepfool_z(net, za, norm=2, overshoot=INNER_OVERSHOOT, lambda_fac=lambda_,
                                       max_iter=deepfool_max_iter, candidates=candidates, want_normal=True)
        assert normal is not None  # want_normal=True
        la, ua = lb[active], ub[active]
        z_new = thesis_linear_solver(za, normal, x_b, la, ua)
        z_i[active] = z_new
        cand = torch.minimum(torch.maximum(z0[active] + (1 + epsilon) * (z_new - z0[active]), la), ua)
        z_adv[active] = cand
        loops[active] += 1
        with torch.no_grad():
            logits = net(cand).float()
        pred = logits.argmax(1)
        still = pred == label[active]
        # z_i did not move: the thesis's loop would redo this very step until max_iter
        stuck = still & (z_new == za).flatten(1).all(1)
        loops[active[stuck]] = max_iter
        own = logits.gather(1, label[active, None]).squeeze(1)
        margin = own - logits.scatter(1, label[active, None], float("-inf")).amax(1)
        improved = margin < best_margin[active]
        best_margin[active] = torch.minimum(best_margin[active], margin)
        stalled[active] = torch.where(improved, 0, stalled[active] + 1)
        active = active[still & ~stuck & (stalled[active] < PATIENCE)]
    return to_pixels(x0, z0, z_adv, std).clamp(0, 1), loops
