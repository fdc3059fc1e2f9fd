"""How close to minimal? Best-known per-image norms, AttackBench optimality and security curves.

Every run in a store that attacked the same images of the same model (same model identity and
same data spec, hence the same sample indices) is one *group*. For each image and each norm
(L2, L∞, L0: the norms a store keeps per sample) a run yields a distance:

    d(i) = 0              the clean image is misclassified (pred != label): not robust at all
    d(i) = ||r_i||_p      the run's perturbation fooled the model, confirmed by a fresh forward
                          pass (``success`` and ``verified``)
    d(i) = inf            otherwise (the attack failed, or the image was not attacked)

The **best-known** distance of an image is the minimum of d(i) over every run of the group (any
attack, any norm it aimed at: a verified perturbation bounds the minimal one in every norm).
Runs are compared (optimality, ρ̂ gap, curves) in the norm they aim at; a store keeps no L1
norm, so an L1 run (FMN ``norm=1``) only adds to the best known in the other norms.

**Security curve** (robust accuracy against ε): ``acc(ε) = #{i : d(i) > ε} / N`` over the N
images of the run (misclassified clean images count as not robust, failed ones as d = inf). It
starts at the clean accuracy, never increases, and reaches 0 once every image is fooled.

**Optimality** (Cinà et al., "AttackBench: Evaluating Gradient-based Attacks for Adversarial
Examples", AAAI 2025; ``eval_optimality`` in the authors' ``analysis/utils.py``): with
ε_max = the largest finite best-known distance, A(d) = ∫_0^ε_max acc_d(ε) dε the area under a
curve, d* the best-known distances and a = clean accuracy,

    optimality = 1 - (A(d_attack) - A(d*)) / (a * ε_max - A(d*))

1 when the attack matches the best known on every image; 0 when it is no better than finding
nothing (its curve stays at the clean accuracy up to ε_max). The curve is a step function, so
the area is exact: ``A(d) = mean_i min(d(i), ε_max)`` (AttackBench integrates the steps with the
trapezoidal rule; the definition is the same). Distances beyond ε_max, failures included, are
clipped to ε_max as in AttackBench. Undefined (None) when a * ε_max = A(d*) (no image fooled,
or ε_max = 0).

**ρ̂ gap**: a run's ρ̂ (thesis sec. 11.3: mean over its attacked images of ||r||_p / ||x||_p,
failures included, as :mod:`foolkit.evaluation.metrics` computes it) against the same mean of the
best-known perturbations, over the images it attacked that some run fooled (the images no
run fooled have no best-known perturbation and are left out of both means).

Fixed-budget attacks (FGSM at one ε, a universal perturbation of norm ξ, One Pixel) find no
minimal perturbation: they count towards the best known, and their curve is only meaningful at
their budget, so the report draws them as one point (ε, acc(ε)).

Example:
    >>> groups = frontier("runs/x.db")
    >>> print(format_best(groups))
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .store import Store
from ..errors import InputError

#: norm key -> (record column, image-norm column for ρ̂ or None, label, ρ̂ label)
NORMS: dict[str, tuple[str, str | None, str, str | None]] = {
    "2": ("l2", "x_l2", "L2", "ρ̂2"),
    "inf": ("linf", "x_linf", "L∞", "ρ̂∞"),
    "0": ("l0", None, "L0", None),
}
# Attacks whose norm is not a parameter; and those that search a fixed budget (param holding it).
_THREAT = {"fgsm": "inf", "lbfgs": "2", "sparsefool": "0", "onepixel": "0"}
_BUDGET = {"fgsm": "eps", "universal": "xi", "onepixel": None}


# --- the arithmetic -------------------------------------------------------------------------
def run_distances(records: list[dict], norm: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-image distances of one run in one norm (see the module docstring).

    Args:
        records: per-sample records (``Store.samples``) with idx, label, pred, attacked,
            success, verified and the norm's column.
        norm: ``"2"``, ``"inf"`` or ``"0"``.

    Returns:
        ``(idx [M] int64, d [M] float64)``: d in [0, inf], 0 for misclassified clean images,
        inf where no verified perturbation was found.
    """
    column = NORMS[norm][0]
    if not records:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    idx = np.asarray([r["idx"] for r in records], dtype=np.int64)
    wrong = np.asarray([r["pred"] != r["label"] for r in records])
    fooled = np.asarray([bool(r["attacked"] and r["success"] and r["verified"]) for r in records])
    value = np.asarray([np.nan if r.get(column) is None else r[column] for r in records], dtype=np.float64)
    d = np.where(fooled & ~np.isnan(value), value, np.inf)
    return idx, np.where(wrong, 0.0, d)


def best_known(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-image minimum over runs: ``[(idx, d), ...]`` -> ``(idx union sorted, min d)``."""
    if not runs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    idx = np.unique(np.concatenate([i for i, _ in runs]))
    best = np.full(len(idx), np.inf)
    for i, d in runs:
        np.minimum.at(best, np.searchsorted(idx, i), d)
    return idx, best


def robust_accuracy(d: np.ndarray, eps: np.ndarray | float) -> np.ndarray:
    """Security curve: share of images with ``d > eps`` (``eps`` scalar or ``[K]`` >= 0) -> ``[K]``."""
    d = np.sort(np.asarray(d, dtype=np.float64))
    eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    if not len(d):
        return np.full(len(eps), np.nan)
    return (len(d) - np.searchsorted(d, eps, side="right")) / len(d)


def curve_steps(d: np.ndarray, eps_end: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact step curve for plotting (``where="post"``): ``(eps [K], acc [K])`` from 0 to ``eps_end``."""
    d = np.asarray(d, dtype=np.float64)
    jumps = np.unique(d[np.isfinite(d) & (d > 0) & (d < eps_end)])
    eps = np.concatenate([[0.0], jumps, [eps_end]])
    return eps, robust_accuracy(d, eps)


def curve_area(d: np.ndarray, eps_max: float) -> float:
    """``∫_0^eps_max acc(ε) dε`` of the step curve, exactly: ``mean(min(d, eps_max))``."""
    d = np.asarray(d, dtype=np.float64)
    return float(np.minimum(d, eps_max).mean()) if len(d) else math.nan


def optimality(d_attack: np.ndarray, d_best: np.ndarray) -> float | None:
    """AttackBench's optimality of an attack against the best-known distances (same images).

    Args:
        d_attack, d_best: ``[N]`` distances in [0, inf] of the same images (``d_best <= d_attack``
            when the best known includes the attack).

    Returns:
        ``1 - (A(d_attack) - A(d_best)) / (clean_acc * eps_max - A(d_best))`` (module docstring),
        in [0, 1] when ``d_best <= d_attack``; None when undefined (nothing fooled, eps_max = 0).
    """
    d_attack, d_best = np.asarray(d_attack, dtype=np.float64), np.asarray(d_best, dtype=np.float64)
    if d_attack.shape != d_best.shape:
        raise InputError(f"distances of different shapes: {d_attack.shape} and {d_best.shape}")
    finite = d_best[np.isfinite(d_best)]
    if not len(finite):
        return None
    eps_max = float(finite.max())
    best_area = curve_area(d_best, eps_max)
    worst_area = float((d_best > 0).mean()) * eps_max  # the curve of an attack that finds nothing
    if not worst_area - best_area > 0:
        return None
    return 1.0 - (curve_area(d_attack, eps_max) - best_area) / (worst_area - best_area)


# --- a store's groups -----------------------------------------------------------------------
@dataclass
class RunFrontier:
    """One run of a group: its label, threat norm, kind and per-norm distances."""

    run_id: str
    label: str                      # the run title without the model's name
    attack: str                     # registry name
    threat: str | None              # the norm the attack minimises or is bounded in ("2", "inf", "0")
    budget: float | None            # fixed-budget attacks: the budget in the threat norm (None: minimal)
    fixed: bool                     # a fixed-budget attack (one point on a curve, not a curve)
    idx: np.ndarray                 # [M] sample indices
    attacked: np.ndarray            # [M] bool
    d: dict[str, np.ndarray] = field(default_factory=dict)      # norm -> [M] distances
    stored: dict[str, np.ndarray] = field(default_factory=dict)  # norm -> [M] stored norms (failures too)


@dataclass
class Group:
    """Runs of one model on one data set, and the best-known distances of their images."""

    model: str
    runs: list[RunFrontier]
    idx: np.ndarray                                             # [N] union of the runs' indices
    best: dict[str, np.ndarray] = field(default_factory=dict)   # norm -> [N] best-known distances
    x_norm: dict[str, np.ndarray] = field(default_factory=dict)  # norm -> [N] ||x||_p (nan if unknown)

    def best_on(self, run: RunFrontier, norm: str) -> np.ndarray:
        """Best-known distances of the run's images, in the run's order."""
        return self.best[norm][np.searchsorted(self.idx, run.idx)]

    def best_rho(self, norm: str, idx: np.ndarray | None = None) -> float | None:
        """Mean of best-known ||r||/||x|| over the images (``idx``, default all) that some run fooled
        and that were classified correctly; None when there is none or the norm has no ρ̂."""
        if NORMS[norm][1] is None:
            return None
        pos = np.arange(len(self.idx)) if idx is None else np.searchsorted(self.idx, idx)
        d, x = self.best[norm][pos], self.x_norm[norm][pos]
        keep = np.isfinite(d) & (d > 0) & (x > 0)
        return float((d[keep] / x[keep]).mean()) if keep.any() else None


def _threat(name: str, params: dict) -> str | None:
    if name in _THREAT:
        return _THREAT[name]
    p = params.get("norm")
    if p is None:
        return None
    key = "inf" if str(p).lower() in ("inf", "linf", "infinity") else f"{float(p):g}"
    return key if key in NORMS else None


def _budget(name: str, params: dict) -> tuple[bool, float | None]:
    if name not in _BUDGET:
        return False, None
    key = _BUDGET[name]
    value = params.get(key) if key else None
    return True, float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_label(runs: list[dict]) -> str:
    """The model part of the runs' titles (``"<model> <attack> ..."``), else the model identity."""
    for r in runs:
        name = r["config"].get("attack", {}).get("name", "")
        title = r["title"] or ""
        cut = title.find(f" {name}") if name else -1
        if cut > 0:
            return title[:cut]
    spec = runs[0]["config"].get("model", {})
    ident = spec.get("identity") or spec.get("state_dict") or spec.get("name") or json.dumps(spec, sort_keys=True)
    return f"model {str(ident)[:12]}"


def frontier(store: str | os.PathLike | Store) -> list[Group]:
    """Every group of a store (runs of one model on one data set) with its best-known distances.

    Args:
        store: a run store path (opened read-only) or an open :class:`Store`.

    Returns:
        Groups in the order of their first run; runs with no record yet are left out.
    """
    own = not isinstance(store, Store)
    s = store if isinstance(store, Store) else Store(store, readonly=True)
    try:
        infos = s.runs()
        keyed: dict[str, list[dict]] = {}
        for info in infos:
            c = info["config"]
            key = json.dumps([c.get("model"), c.get("data")], sort_keys=True, default=str)
            keyed.setdefault(key, []).append(info)
        groups = []
        for infos_g in keyed.values():
            model = _model_label(infos_g)
            runs, xs = [], []
            for info in infos_g:
                recs = s.samples(info["run_id"])
                if not recs:
                    continue
                attack = info["config"].get("attack", {})
                name, params = attack.get("name", "?"), attack.get("params", {}) or {}
                fixed, budget = _budget(name, params)
                title = info["title"] or name
                label = title[len(model):].strip() if title.startswith(model + " ") else title
                run = RunFrontier(run_id=info["run_id"], label=label, attack=name, threat=_threat(name, params),
                                  budget=budget, fixed=fixed, idx=np.zeros(0, dtype=np.int64),
                                  attacked=np.asarray([bool(r["attacked"]) for r in recs]))
                for norm, (column, _, _, _) in NORMS.items():
                    run.idx, run.d[norm] = run_distances(recs, norm)
                    run.stored[norm] = np.asarray([np.nan if r.get(column) is None else r[column] for r in recs],
                                                  dtype=np.float64)
                runs.append(run)
                xs.append((run.idx, recs))
            if not runs:
                continue
            g = Group(model=model, runs=runs, idx=np.zeros(0, dtype=np.int64))
            for norm in NORMS:
                g.idx, g.best[norm] = best_known([(r.idx, r.d[norm]) for r in runs])
            for norm, (_, xcol, _, _) in NORMS.items():
                x = np.full(len(g.idx), np.nan)
                if xcol is not None:
                    for idx, recs in xs:  # the same image in every run: any run's ||x|| will do
                        x[np.searchsorted(g.idx, idx)] = [np.nan if r.get(xcol) is None else r[xcol] for r in recs]
                g.x_norm[norm] = x
            groups.append(g)
        return groups
    finally:
        if own:
            s.close()


# --- summaries ------------------------------------------------------------------------------
def compare(group: Group, run: RunFrontier, norm: str) -> dict:
    """One run against the best known, in one norm.

    Returns:
        dict: ``optimality`` (float or None), ``rho`` (the run's ρ̂ over its attacked images that
        some run fooled), ``best_rho`` (the best-known ρ̂ over the same images), ``gap`` ((best_rho
        - rho) / rho, a fraction <= 0 when the best is smaller), ``n`` (images compared),
        ``left_out`` (attacked images no run fooled).
    """
    best = group.best_on(run, norm)
    out: dict[str, Any] = {"optimality": optimality(run.d[norm], best), "rho": None, "best_rho": None, "gap": None,
           "n": int(run.attacked.sum()), "left_out": int((run.attacked & ~np.isfinite(best)).sum())}
    xcol = NORMS[norm][1]
    if xcol is None:
        return out
    x = group.x_norm[norm][np.searchsorted(group.idx, run.idx)]
    keep = run.attacked & np.isfinite(best) & (x > 0) & np.isfinite(run.stored[norm])
    if keep.any():
        out["rho"] = float((run.stored[norm][keep] / x[keep]).mean())
        out["best_rho"] = float((best[keep] / x[keep]).mean())
        out["n"] = int(keep.sum())
        if out["rho"] > 0:
            out["gap"] = (out["best_rho"] - out["rho"]) / out["rho"]
    return out


def summarize(groups: list[Group], norms: tuple[str, ...] = ("2", "inf", "0")) -> list[dict]:
    """Per group and norm: the best-known ρ̂ and, per run aimed at that norm, :func:`compare`.

    Returns:
        ``[{"model", "norm", "label", "best_rho", "n_best", "rows": [{"run_id", "label", "fixed",
        **compare}]}]``; a norm no run of the group aims at is left out.
    """
    out = []
    for g in groups:
        for norm in norms:
            runs = [r for r in g.runs if r.threat == norm]
            if not runs:
                continue
            d = g.best[norm]
            out.append({"model": g.model, "norm": norm, "label": NORMS[norm][2], "rho_label": NORMS[norm][3],
                        "best_rho": g.best_rho(norm), "n_best": int((np.isfinite(d) & (d > 0)).sum()),
                        "rows": [{"run_id": r.run_id, "label": r.label, "fixed": r.fixed, **compare(g, r, norm)}
                                 for r in runs]})
    return out


def _num(v, fmt="{:.4f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def format_best(groups: list[Group]) -> str:
    """The text of ``foolkit show --best``: per model and norm, the best-known ρ̂ and each run's
    optimality and ρ̂ gap, e.g. ``DeepFool's ρ̂2 = 0.0290; best known 0.0210 (-28 %)``."""
    blocks = []
    for s in summarize(groups):
        rho = s["rho_label"]
        head = f"{s['model']}, {s['label']}: "
        head += (f"best-known {rho} = {_num(s['best_rho'])} over {s['n_best']} images" if rho
                 else f"{s['n_best']} images with a best-known perturbation")
        lines = [head]
        width = max(len(r["label"]) for r in s["rows"])
        for r in s["rows"]:
            tag = " (fixed budget)" if r["fixed"] else ""
            line = f"  {r['label']:{width}s}  optimality {_num(r['optimality'], '{:.3f}')}{tag}"
            if rho:
                gap = "" if r["gap"] is None else f" ({100 * r['gap']:+.0f} %)"
                line += f"; {rho} = {_num(r['rho'])}, best known {_num(r['best_rho'])}{gap}"
            if r["left_out"]:
                line += f"; {r['left_out']} images fooled by no run left out"
            lines.append(line)
        blocks.append("\n".join(lines))
    if not blocks:
        return "no run aims at L2, L∞ or L0 (nothing to compare)"
    return "\n\n".join(blocks) + (
        "\n\noptimality: AttackBench's (1 = the best known on every image, 0 = no better than finding nothing); "
        "best known = per image the smallest verified perturbation of any run on the same model and images; "
        "ρ̂ over the attacked images some run fooled")


def curves(group: Group, norm: str) -> tuple[list[dict], list[str]]:
    """The security curves of a group in one norm, for :func:`foolkit.report.plots.security_curves`.

    Returns:
        ``(curves, notes)``: a step curve (``eps``, ``acc``) per minimal-norm run aimed at the
        norm, a ``point`` (budget, acc) per fixed-budget one, the best-known curve last
        (``best=True``); notes name the fixed-budget runs left out (unknown budget). Empty when
        no run aims at the norm.
    """
    runs = [r for r in group.runs if r.threat == norm]
    if not runs:
        return [], []
    finite = [d[np.isfinite(d)] for d in [group.best[norm]] + [r.d[norm] for r in runs if not r.fixed]]
    top = max([float(f.max()) for f in finite if len(f)] + [r.budget for r in runs if r.fixed and r.budget] + [0.0])
    end = top * 1.05 if top > 0 else 1.0
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for r in runs:
        if not r.fixed:
            eps, acc = curve_steps(r.d[norm], end)
            out.append({"label": r.label, "eps": eps, "acc": acc})
        elif r.budget is not None:
            # robust = not fooled within the budget; its fooled images are within it by construction (their
            # float32 norms may exceed it by a rounding error, which must not count them as robust)
            out.append({"label": f"{r.label} (fixed ε)", "point": (r.budget, float(np.isinf(r.d[norm]).mean()))})
        else:
            notes.append(f"{r.label}: a fixed-budget attack of unknown budget, not drawn")
    eps, acc = curve_steps(group.best[norm], end)
    out.append({"label": "best known", "eps": eps, "acc": acc, "best": True})
    return out, notes
