"""The thesis code's DeepFool (``variant="thesis"``), batched, in the model's normalised space.

The thesis (chapter 12) ran DeepFool on one normalised image z = (x - mean) / std at a time.
Per image, its algorithm is:

    rank the classes once by the clean logits: label = the top one, candidates = the next K - 1
    repeat while the label is unchanged and fewer than max_iter steps were taken:
        linearise at z + R (R = the sum of the steps so far, no overshoot, no clipping)
        l_hat = argmin_k |f_k - f_label| / ||w_k - w_label||_q        (q = 1 for p = inf, 2 for p = 2)
        r = max(that distance, 1e-4) * (w / ||w||_2  for p = 2,  sign(w)  for p = inf)
        R = R + r
        stop test: the label of z + (1 + overshoot) * R, unclipped
    return z + lambda_fac * R, clipped once to the image of [0,1] when ``clip``

``lambda_fac`` is 1.01 in the thesis's DeepFool experiments (its default, independent of
``overshoot``); SparseFool passes its ``lambda`` and the universal perturbation 1 + overshoot.
foolkit's own DeepFool (``variant="foolkit"``) instead clips every iterate, tests the clipped
point, linearises at x + (1 + overshoot) R and keeps 3 candidates after the first step.

Geometry: for a :class:`foolkit.models.Normalized` model the algorithm runs on z with the
wrapper's ``net`` and its ``mean`` / ``std``, so its L2 steps and sign steps are taken in z, as
the thesis's were; the result is mapped back to pixels, x_adv = x + (z_adv - z) * std. Any
other model is attacked in pixel space (mean 0, std 1).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import wide_logits

#: The thesis's DeepFool experiments return z + 1.01 * R (its ``lambda_fac`` default).
THESIS_LAMBDA_FAC = 1.01


def normalised_space(model: nn.Module) -> tuple[nn.Module, torch.Tensor | float, torch.Tensor | float]:
    """``(net, mean, std)`` with ``model(x) == net((x - mean) / std)``: the wrapper's parts for a
    :class:`foolkit.models.Normalized` model, else ``(model, 0.0, 1.0)`` (pixel space)."""
    from ..models.wrappers import Normalized  # the models package imports attacks lazily too

    if isinstance(model, Normalized):
        return model.net, model.mean, model.std
    return model, 0.0, 1.0


def to_z(x: torch.Tensor, mean: torch.Tensor | float, std: torch.Tensor | float) -> torch.Tensor:
    """Pixels ``[N,C,H,W]`` in [0,1] -> normalised z, exactly as the wrapper computes it."""
    return (x - mean) / std if isinstance(std, torch.Tensor) else x


def to_pixels(x: torch.Tensor, z: torch.Tensor, z_adv: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    """x + (z_adv - z) * std: entries the attack left alone stay bit-equal to ``x``."""
    return x + (z_adv - z) * std


def deepfool_z(net: nn.Module, z: torch.Tensor, *, norm: float, overshoot: float, lambda_fac: float,
               max_iter: int, candidates: int, lo: torch.Tensor | None = None, hi: torch.Tensor | None = None,
               want_normal: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The thesis's ``deepfool`` on a batch of normalised images, with active masks.

    Args:
        net: the network on z, logits ``[N,K]``. z: ``[N,C,H,W]`` (any range).
        norm: 2 or ``math.inf``. overshoot: the stop test's eta. lambda_fac: the returned scale.
        max_iter: steps per image. candidates: classes ranked (label included, the thesis's
            ``num_classes``). lo, hi: clip bounds broadcastable to z (the image of [0,1]), or None.
        want_normal: also return SparseFool's normal, the L2-normalised gradient of
            f_adv - f_label at z + R (NaN for an image whose label never changed, as in the
            thesis, where it is 0 / 0).

    Returns:
        ``(z_adv [N,...], loops [N] int64, label [N], normal [N,...] or None)``.
    """
    n = len(z)
    with torch.no_grad():
        logits0 = wide_logits(net(z))
    k = min(candidates, logits0.shape[1])
    order = logits0.argsort(dim=1, descending=True, stable=True)[:, :k]
    label, cand = order[:, 0], order[:, 1:]
    r_tot = torch.zeros_like(z)
    adv = label.clone()
    loops = torch.zeros(n, dtype=torch.long, device=z.device)
    active = torch.arange(n, device=z.device)
    view = (-1,) + (1,) * (z.ndim - 1)
    for _ in range(max_iter):
        if len(active) == 0:
            break
        za = (z[active] + r_tot[active]).detach().requires_grad_(True)
        with torch.enable_grad():
            logits = wide_logits(net(za))
        f_label = logits.gather(1, label[active][:, None]).squeeze(1)
        cand_a = cand[active]
        best = torch.full((len(active),), math.inf, dtype=logits.dtype, device=z.device)
        best_w = torch.zeros_like(za)
        for j in range(cand_a.shape[1]):
            f_k = logits.gather(1, cand_a[:, j:j + 1]).squeeze(1) - f_label
            (w_k,) = torch.autograd.grad(f_k.sum(), za, retain_graph=j + 1 < cand_a.shape[1])
            dual = w_k.flatten(1).norm(p=1 if norm == math.inf else 2, dim=1)
            dist = f_k.detach().abs() / dual  # no clamp: a zero gradient gives inf, never chosen
            better = dist < best  # strict: the first of equal distances wins, as in the thesis
            best = torch.where(better, dist, best)
            best_w[better] = w_k[better]
        del logits, za
        size = best.clamp_min(1e-4).to(z.dtype).view(view)
        if norm == math.inf:
            r_i = size * best_w.sign()
        else:
            r_i = size * best_w / best_w.flatten(1).norm(dim=1).clamp_min(1e-30).view(view)
        r_tot[active] += r_i
        loops[active] += 1
        with torch.no_grad():
            pred = net(z[active] + (1 + overshoot) * r_tot[active]).argmax(1)
        adv[active] = pred
        active = active[pred == label[active]]

    normal = None
    if want_normal:
        zg = (z + r_tot).detach().requires_grad_(True)
        with torch.enable_grad():
            logits = wide_logits(net(zg))
            obj = logits.gather(1, adv[:, None]) - logits.gather(1, label[:, None])
            (g,) = torch.autograd.grad(obj.sum(), zg)
        normal = g / g.flatten(1).norm(dim=1).view(view)  # 0 / 0 = NaN where adv == label
    z_adv = z + lambda_fac * r_tot
    if lo is not None and hi is not None:
        z_adv = torch.minimum(torch.maximum(z_adv, lo), hi)
    return z_adv, loops, label, normal


def run_deepfool_thesis(model: nn.Module, x0: torch.Tensor, *, norm: float, overshoot: float, max_iter: int,
                        candidates: int, clip: bool,
                        lambda_fac: float = THESIS_LAMBDA_FAC) -> tuple[torch.Tensor, torch.Tensor]:
    """``DeepFool(variant="thesis")`` on pixels ``x0`` ``[N,C,H,W]`` in [0,1]: returns
    ``(x_adv [N,C,H,W], loops [N])``; x_adv is in [0,1] when ``clip``."""
    net, mean, std = normalised_space(model)
    z = to_z(x0, mean, std)
    lo = hi = None
    if clip:
        lo, hi = to_z(torch.zeros_like(x0[:1]), mean, std), to_z(torch.ones_like(x0[:1]), mean, std)
    z_adv, loops, _, _ = deepfool_z(net, z, norm=norm, overshoot=overshoot, lambda_fac=lambda_fac,
                                    max_iter=max_iter, candidates=candidates, lo=lo, hi=hi)
    x_adv = to_pixels(x0, z, z_adv, std)
    return (x_adv.clamp(0, 1) if clip else x_adv), loops  # the clamp only removes rounding of z -> x
