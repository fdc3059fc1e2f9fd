"""Quantities derived from the measured metrics, which the specs' claims and the thesis's tables
name: per point (``derive``: the median share of changed values, the mean minimal eps, a
universal fit's passes and gap, eq. 12.1's Δ̂ / eps), between the clip / no-clip points of a
table (``derive_pairs``). Table 12.10's transfer matrix, which runs the models: ``tasks.transfer``."""
from __future__ import annotations

import math

from .stats import se_of


def derive(point: dict, m: dict) -> dict:
    """Add the derived quantities the specs name (see their notes)."""
    m = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}
    shape = point.get("shape") or [0, 3, 32, 32]
    if m.get("median_l0") is not None:
        m["median_values_pct"] = 100 * m["median_l0"] / math.prod(shape[1:])
    if point.get("min_eps") is not None:
        vals = [v for v in point["min_eps"] if v is not None]
        m["min_eps"] = sum(vals) / len(vals) if vals else None
    fit = point.get("fit") or {}
    if fit:
        m["passes"] = fit.get("passes")
        m["seconds_per_pass"] = fit["seconds"] / max(1, fit.get("passes") or 1) if "seconds" in fit else None
        if m.get("fooling_rate_fit") is not None and m.get("fooling_rate") is not None:
            m["fooling_rate_gap"] = m["fooling_rate_fit"] - m["fooling_rate"]
    derive_per_eps(point.get("params") or {}, m)
    return m


def derive_per_eps(params: dict, m: dict) -> None:
    """Eq. 12.1: without clipping every FGSM value moves by exactly eps, so Δ̂ / eps = sqrt(3072)."""
    eps = params.get("eps")
    if params.get("clip") is False and isinstance(eps, (int, float)) and eps > 0 and m.get("delta_2") is not None:
        m["delta_2_per_eps"] = m["delta_2"] / eps


def derive_pairs(points: list[dict]) -> None:
    """Clip / no-clip reductions (Tables 12.2, 12.4), attached to the clip=True point, with
    their standard errors where the samples are known: the fooling-rate reduction's from the
    number of images whose outcome changed (Poisson, at least one image: the sample's
    resolution), Δ̂'s from the two means' errors."""
    for p in points:
        if p["params"].get("clip") is not True:
            continue
        other = [q for q in points if q["model"] == p["model"] and q["params"].get("clip") is False and
                 {k: v for k, v in q["params"].items() if k != "clip"} ==
                 {k: v for k, v in p["params"].items() if k != "clip"}]
        if not other:
            continue
        a, b = other[0]["metrics"], p["metrics"]
        se = p.setdefault("se", {})
        if a.get("fooling_rate") and b.get("fooling_rate") is not None:
            b["fooling_rate_reduction_pct"] = 100 * (a["fooling_rate"] - b["fooling_rate"]) / a["fooling_rate"]
            if a.get("n_attacked") and b.get("n_attacked"):
                ka, kb = a["fooling_rate"] * a["n_attacked"], b["fooling_rate"] * b["n_attacked"]
                se["fooling_rate_reduction_pct"] = 100 * math.sqrt(max(1.0, abs(ka - kb))) / ka
        if a.get("delta_2") and b.get("delta_2") is not None:
            b["delta_reduction_pct"] = 100 * (a["delta_2"] - b["delta_2"]) / a["delta_2"]
            sa, sb = se_of("delta_2", other[0]), se_of("delta_2", p)
            if sa or sb:
                se["delta_reduction_pct"] = 100 * math.hypot(sb, b["delta_2"] / a["delta_2"] * sa) / a["delta_2"]
