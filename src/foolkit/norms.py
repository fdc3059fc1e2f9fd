"""Lp norms, dual exponents, steepest-ascent directions and projections: the one home for them.

Every function works per sample on a batch: tensors are ``[N, ...]`` and norms are taken over
all dimensions but the first.
"""
from __future__ import annotations

import math

import torch
from .errors import InputError


def check_p(p: float, *, allow_zero: bool = False) -> float:
    """Validate an Lp exponent: p >= 1 or inf (0 too when ``allow_zero``). Returns it as float."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise InputError(f"norm p must be a number >= 1 or inf, got {p!r}") from None
    if allow_zero and p == 0:
        return 0.0
    if math.isnan(p) or p < 1:
        raise InputError(f"norm p must be >= 1 or inf{' (or 0)' if allow_zero else ''}, got {p}")
    return p


def parse_norm(value: float | str, *, allowed: tuple[float, ...] | None = None, name: str = "norm") -> float:
    """A norm from user input: a number >= 1 or "inf"/"linf" (any case). ``allowed`` restricts it."""
    try:
        if isinstance(value, str) and value.strip().lower() in ("inf", "linf", "infinity"):
            p = math.inf
        else:
            p = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number >= 1 or inf, got {value!r}") from None
    if allowed is not None:
        if p not in allowed:
            choices = " or ".join("inf" if math.isinf(a) else f"{a:g}" for a in allowed)
            raise InputError(f"{name} must be {choices}, got {value!r}")
        return p
    if math.isnan(p) or p < 1:
        raise InputError(f"{name} p must be >= 1 or inf, got {value!r}")
    return p


def dual_exponent(p: float) -> float:
    """q with 1/p + 1/q = 1 (p=1 -> inf, p=inf -> 1)."""
    p = check_p(p)
    if p == 1:
        return math.inf
    if math.isinf(p):
        return 1.0
    return p / (p - 1)


def lp_norm(x: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample Lp norm of ``x`` [N, ...] -> [N]. p=0 counts the non-zero entries."""
    p = check_p(p, allow_zero=True)
    flat = x.flatten(1)
    if p == 0:
        return (flat != 0).sum(1).to(flat.dtype if flat.is_floating_point() else torch.float32)
    norms: torch.Tensor = torch.linalg.vector_norm(flat, ord=p, dim=1)  # torch types it Any
    return norms


def pixels_changed(r: torch.Tensor) -> torch.Tensor:
    """Per-sample fraction of pixels (spatial positions) with any channel changed. r: [N,C,H,W] -> [N]."""
    changed = (r != 0).any(dim=1)
    return changed.flatten(1).float().mean(1)


def dual_norm(w: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample ``||w||_q`` with q the dual exponent of p. w: [N, ...] -> [N]."""
    q = dual_exponent(p)
    norms: torch.Tensor = torch.linalg.vector_norm(_at_least_float32(w.flatten(1)), ord=q, dim=1)
    return norms


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    # Gradients of half-precision models: sums of |w|^q overflow float16 and the 1e-30 floors
    # below round to 0 there, so norms and directions are computed in float32 (float64 kept).
    return t.to(torch.promote_types(t.dtype, torch.float32))


def steepest_direction(w: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For the hyperplane gradient ``w`` [N, ...], the Lp-minimal unit step and ``||w||_q``.

    Returns ``(d, w_dual)`` where ``d`` satisfies ``<d, w> = ||w||_q`` and ``||d||_p = 1``, so the
    minimal Lp perturbation crossing ``f + <w, r> = 0`` is ``r = |f| / ||w||_q * d``.
    """
    p = check_p(p)
    q = dual_exponent(p)
    flat = _at_least_float32(w.flatten(1))
    if math.isinf(p):  # q = 1: sign vector
        w_dual = flat.abs().sum(1)
        d = flat.sign()
    elif p == 2:
        w_dual = flat.norm(dim=1)
        d = flat / w_dual.clamp_min(1e-30)[:, None]
    elif p == 1:  # q = inf: all mass on the largest coordinate
        w_dual, idx = flat.abs().max(1)
        d = torch.zeros_like(flat)
        d.scatter_(1, idx[:, None], flat.gather(1, idx[:, None]).sign())
    else:
        # d = |w|^(q-1) sign(w) / ||w||_q^(q-1); scale by max|w| first so large q cannot overflow.
        scale = flat.abs().amax(1, keepdim=True).clamp_min(1e-30)
        u = flat / scale
        u_q = torch.linalg.vector_norm(u, ord=q, dim=1, keepdim=True).clamp_min(1e-30)
        d = (u.abs() / u_q).pow(q - 1) * u.sign()
        w_dual = u_q.squeeze(1) * scale.squeeze(1)
    return d.to(w.dtype).view_as(w), w_dual


def project_lp_ball(v: torch.Tensor, p: float, radius: float | torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each sample of ``v`` [N, ...] onto ``{||v||_p <= radius}``.

    Exact for p = 2 and inf (the cases the thesis uses) and for p = 1 (sort-based simplex
    projection, Duchi et al. 2008). Other p raise ``ValueError``.
    """
    p = check_p(p)
    radius_t = torch.as_tensor(radius, dtype=v.dtype, device=v.device)
    if (radius_t <= 0).any():
        raise InputError(f"projection radius must be > 0, got {radius}")
    flat = v.flatten(1)
    r = radius_t.reshape(-1, 1) if radius_t.ndim else radius_t
    if math.isinf(p):
        return torch.maximum(torch.minimum(flat, r), -r).view_as(v)
    if p == 2:
        norms = flat.norm(dim=1, keepdim=True)
        factor = torch.clamp(r / norms.clamp_min(1e-30), max=1.0)
        return (flat * factor).view_as(v)
    if p == 1:
        a = flat.abs()
        inside = a.sum(1, keepdim=True) <= r
        s, _ = a.sort(1, descending=True)
        cums = s.cumsum(1) - r
        k = torch.arange(1, a.shape[1] + 1, device=v.device, dtype=v.dtype)
        cond = s - cums / k > 0
        rho = cond.to(v.dtype).mul(k).argmax(1, keepdim=True)  # last index where cond holds
        theta = cums.gather(1, rho) / (rho + 1).to(v.dtype)
        proj = flat.sign() * (a - theta).clamp_min(0)
        return torch.where(inside, flat, proj).view_as(v)
    raise InputError(f"projection onto the L{p} ball is implemented for p = 1, 2 and inf, not {p}")
