"""Issue #21 in the reproduction: DeepFool against SuperDeepFool, FMN and the best-known
perturbation on each model (beside Tables 12.3 / 12.5), each attack's AttackBench optimality,
security curves, and the verdict on whether the thesis's model ranking by ρ̂ survives.

``summarize`` (after the attacks) reads the runs' per-image records from the store and writes
``entry["frontier"]`` (JSON); ``check`` judges the ranking claims; ``blocks`` renders the table
and the security-curve figures.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.optimality import best_known, curve_steps, optimality, run_distances
from . import Claim, Experiment
from .stats import Z, combine, compare, fmt, margin_text, not_checkable, verdict

NORMS = {"2": ("l2", "xc_l2", "ρ̂2"), "inf": ("linf", "xc_linf", "ρ̂∞")}
NAMES = {"deepfool": "DeepFool", "superdeepfool": "SuperDeepFool", "fmn": "FMN"}


def _norm_key(params: dict) -> str:
    p = str(params.get("norm", 2)).lower()
    return "inf" if p in ("inf", "linf", "infinity") else f"{float(p):g}"


def _mean_se(v: np.ndarray) -> tuple[float | None, float]:
    if not len(v):
        return None, math.inf
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) >= 2 else math.inf)


def model_frontier(runs: list[tuple[str, str, list[dict]]]) -> dict:
    """One model's best known and per-attack ρ̂ / optimality, on the images every run attacked.

    Args:
        runs: ``(attack name, aimed norm "2"/"inf", per-sample records)`` per run; records carry
            idx, label, pred, attacked, success, verified, l2, linf, xc_l2, xc_linf.

    Returns:
        ``{"n": images compared, "norms": {norm: {"best": (ρ̂, se), "n_rho": images in the ρ̂,
        "runs": {attack: {"rho", "se", "optimality"}}, "d_best": [distances, None for inf]}}}``.
        ρ̂ = mean of ||r|| / ||x - mean|| over the correctly classified images some run fooled
        (a run's own stored norm, failures included, as the thesis's tables).
    """
    shared: set | None = None
    for _, _, recs in runs:
        ids = {r["idx"] for r in recs}
        shared = ids if shared is None else shared & ids
    common = np.array(sorted(shared or ()), dtype=np.int64)
    out: dict[str, Any] = {"n": int(len(common)), "norms": {}}
    if not len(common):
        return out
    keep = [[r for r in recs if r["idx"] in set(common.tolist())] for _, _, recs in runs]
    for norm, (col, xcol, _) in NORMS.items():
        dists = [run_distances(recs, norm) for recs in keep]
        _, best = best_known(dists)  # every run's idx is `common`, sorted by best_known
        ref = sorted(keep[0], key=lambda r: r["idx"])
        xc = np.array([np.nan if r.get(xcol) is None else r[xcol] for r in ref], dtype=np.float64)
        use = np.isfinite(best) & (best > 0) & (xc > 0)
        rho_b, se_b = _mean_se(best[use] / xc[use])
        entry: dict[str, Any] = {"best": [rho_b, se_b], "n_rho": int(use.sum()), "runs": {},
                 "d_best": [None if not math.isfinite(v) else float(v) for v in best]}
        for (attack, aimed, _), recs, (idx, d) in zip(runs, keep, dists):
            if aimed != norm:
                continue
            order = np.argsort(idx)
            stored = np.array([np.nan if r.get(col) is None else r[col] for r in recs], dtype=np.float64)[order]
            ok = use & np.isfinite(stored)
            rho, se = _mean_se(stored[ok] / xc[ok])
            entry["runs"][attack] = {"rho": rho, "se": se, "optimality": optimality(d[order], best),
                                     "fooled": int(np.isfinite(d[order]).sum())}
        out["norms"][norm] = entry
    return out


def summarize(points: list[dict], store: str) -> dict:
    """``entry["frontier"]``: model label -> :func:`model_frontier` of its runs in ``points``."""
    from ..evaluation.run import Run
    by_model: dict[str, list] = {}
    for p in points:
        recs = Run(store, p["run_id"]).records()
        by_model.setdefault(p["model"], []).append((p["attack"], _norm_key(p.get("attack_params") or {}), recs))
    return {m: model_frontier(runs) for m, runs in by_model.items()}


def _se(v: float | None) -> float:
    return math.inf if v is None or (isinstance(v, float) and math.isinf(v)) else float(v)


def ranking(frontier: dict, norm: str, models: list[str]) -> tuple[bool | None, str]:
    """Does DeepFool's ρ̂ rank the models as the best-known ρ̂ does? Per pair of models: if DeepFool
    separates them beyond the noise (``Z`` standard errors of the difference), the best known must
    separate them the same way beyond the noise (+1), a reversal beyond the noise fails (-1), a tie
    of either is inconclusive (0). Combined: any -1 fails, all +1 hold, else inconclusive."""
    vals = {}
    for m in models:
        e = (frontier.get(m) or {}).get("norms", {}).get(norm) or {}
        df = (e.get("runs") or {}).get("deepfool")
        if not df or df.get("rho") is None or (e.get("best") or [None])[0] is None:
            continue
        vals[m] = (df["rho"], _se(df["se"]), e["best"][0], _se(e["best"][1]))
    outcomes, parts = [], []
    names = list(vals)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = compare(vals[a][0], vals[a][1], vals[b][0], vals[b][1])
            s = compare(vals[a][2], vals[a][3], vals[b][2], vals[b][3])
            outcomes.append(r * s if r else 0)  # a tie of either side: inconclusive
    q = "rho"
    show = lambda j: ", ".join(f"{m.split('/')[-1]} {fmt(vals[m][j], q)}{margin_text(vals[m][j + 1], q)}"  # noqa: E731
                                  for m in sorted(vals, key=lambda m: -vals[m][j]))
    if len(vals) < 2:
        return None, ""
    parts.append(f"DeepFool {NORMS[norm][2]}: {show(0)}; best known: {show(2)}")
    ties = sum(1 for o in outcomes if o == 0)
    if ties:
        parts.append(f"{ties} of {len(outcomes)} pairs tied within the noise")
    return combine(outcomes), "; ".join(parts)


def check(exp: Experiment, claim: Claim, entry: dict, results: dict) -> dict:
    """Verdict on ``rank:2`` / ``rank:inf``."""
    norm = claim.quantity.split(":")[1]
    frontier = entry.get("frontier") or {}
    columns = results.get("columns", {})
    dedicated = set(results.get("dedicated", []))
    own = list(dict.fromkeys(columns[t] for t in columns if t in dedicated))
    if len(own) < 2:
        return not_checkable("not checkable with one model (pass two or more CIFAR-10 models with --models)")
    ok, measured = ranking(frontier, norm, own)
    if not measured:
        return not_checkable(f"DeepFool or the best known {NORMS[norm][2]} not measured on two models")
    return verdict(ok, measured, "" if ok is not None else "a ranking needs every pair separated beyond "
                                                             f"{Z:g} standard errors: more images would decide")


def _cell(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "—"
    return f"{v:.4f}" + (f" ± {Z * se:.4f}" if se is not None and math.isfinite(se) and se else "")


def blocks(exp: Experiment, entry: dict, results: dict, store: str, out: Path) -> list[tuple]:
    """The table (ρ̂ per attack and model, optimality) and the security-curve figures."""
    frontier = entry.get("frontier") or {}
    if not frontier:
        return [("p", f"Ours: {entry.get('status', 'not run in this mode')}.")]
    b: list[tuple] = [("h3", "ρ̂ by DeepFool, SuperDeepFool, FMN and the best known", f"{exp.id}-table")]
    for norm, attacks in (("2", ("deepfool", "superdeepfool", "fmn")), ("inf", ("deepfool", "fmn"))):
        label = NORMS[norm][2]
        header = ["model", "images"] + [f"{label} {NAMES[a]}" for a in attacks] + [f"{label} best known"] + [
            f"optimality {NAMES[a]}" for a in attacks]
        rows = []
        for model, f in frontier.items():
            e = f.get("norms", {}).get(norm)
            if not e:
                continue
            runs = e["runs"]
            gap = lambda a: (f" ({100 * (e['best'][0] - runs[a]['rho']) / runs[a]['rho']:+.0f} %)"  # noqa: E731
                             if a in runs and runs[a]["rho"] and e["best"][0] is not None else "")
            rows.append([model, f"{e['n_rho']} of {f['n']}"]
                        + [_cell(runs[a]["rho"], runs[a]["se"]) if a in runs else "—" for a in attacks]
                        + [_cell(*e["best"]) + gap("deepfool")]
                        + [("—" if a not in runs or runs[a]["optimality"] is None else f"{runs[a]['optimality']:.3f}")
                           for a in attacks])
        b.append(("table", header, rows))
    b.append(("p", f"± {Z:g} standard errors (sample). images: correctly classified images some run fooled, of the "
                   "images every run attacked; the best known's (%) is its gap to DeepFool's ρ̂. Optimality: "
                   "AttackBench's, 1 = the best known on every image."))
    for norm in NORMS:
        if not any(f.get("norms", {}).get(norm, {}).get("d_best") for f in frontier.values()):
            continue
        try:
            b.append(("img", _curves_png(frontier, norm, out), f"{exp.id}-curves-{norm}"))
        except Exception as exc:  # a figure must not lose the report
            b.append(("p", f"Figure failed: {type(exc).__name__}: {exc}"))
    b.append(("p", "Security curves: robust accuracy (share of the images whose best-known perturbation exceeds ε; "
                   "misclassified clean images count as not robust) against ε, per model."))
    return b


def _curves_png(frontier: dict, norm: str, out: Path) -> str:
    from ..runtime.files import atomic_path
    from ..report.plots import security_curves
    curves = []
    top = max([v for f in frontier.values() for v in (f.get("norms", {}).get(norm, {}).get("d_best") or [])
               if v is not None] + [0.0])
    for model, f in frontier.items():
        d = f.get("norms", {}).get(norm, {}).get("d_best")
        if d:
            eps, acc = curve_steps(np.array([np.inf if v is None else v for v in d]), top * 1.05 or 1.0)
            curves.append({"label": model, "eps": eps, "acc": acc})
    png = security_curves(curves, "L2" if norm == "2" else "L∞", "best-known perturbation, per model")
    path = out / "figures" / f"stronger-security-curves-{norm}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(png)
    return f"figures/{path.name}"
