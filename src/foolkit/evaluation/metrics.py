"""The thesis's metrics (section 11.3, definitions 5.3-5.4), computed from per-sample records.

Every number here is a function of the stored per-sample records (one dict per image, the
columns of ``foolkit.evaluation.store``), never of counters kept while attacking, so a resumed
run and an uninterrupted one give the same table.

Notation: N images with labels y; D'test = the *attacked* images (clean prediction == label,
the thesis's "images for which an adversarial image has been computed"); r = x_adv - x; a
sample is *fooled* when the attack claimed success AND a fresh forward pass of x_adv confirms it
(``verified``).

==========================  ================================================================
accuracy                    #(pred == y) / N                                   (sec. 11.3)
accuracy_under_attack       #(pred(x_adv) == y) / N  (x_adv = x where not attacked)
fooling_rate                #fooled / |D'test|                                 (sec. 11.3)
fooling_rate_8bit           #(fooled and still fooling after x_adv -> round(255 x_adv)/255)
                            / |D'test|: the quantisation-robust fooling rate
n_quant_lost                #fooled samples that stop fooling once quantised to 8 bits
avg_confidence              mean over fooled samples of the top softmax probability on x_adv
                            (sec. 11.3 "assigned by the model to the adversarial images"; the
                            thesis code divides by the number of fooled images)
delta_2, delta_inf          Δ̂ = (1/|D'test|) Σ_{x in D'test} ||r_x||_p       (sec. 11.3)
rho_2, rho_inf              ρ̂_adv = (1/|D'test|) Σ_{x in D'test} ||r_x||_p / ||x||_p
                            (sec. 11.3, def. 5.4; same p in numerator and denominator)
median_pixels_pct           median over fooled samples of 100 * (pixels with any channel
                            changed) / (H*W)  ("Pert. (%)", Table 12.6: "per fooling sample")
ms_per_image                1000 * (attack wall time) / |D'test|   (thesis code: total time of
                            the attacks / number of attacked images)
avg_iterations              mean iterations over D'test (thesis code: same denominator)
(undefined)                 a quantity over an empty set (no attacked image, no fooled image)
                            is None, never nan: shown as "n/a" in tables and reports
fooling_rate_fit/_unseen    universal perturbations: fooling rate on the set X the perturbation
                            was computed on, and on the other (unseen) images (Table 12.8)
==========================  ================================================================

Choices where the thesis is ambiguous, and why:

- Δ̂ and ρ̂ average over all of D'test, failed attacks included, as the formula of section
  11.3 says (sum over x in D'test, divided by |D'test|) and as the thesis's ``attack_model``
  code does (it adds ||r|| for every attacked image and divides by correct + incorrect). The
  means over fooled samples only (the usual "Δ among successful examples") are reported too, as
  ``delta_2_fooled`` etc.; for DeepFool without clipping (100% fooling) they coincide.
- ||x|| in ρ̂ is the norm of the image in [0,1] pixel space, as definition 5.4 writes it. The
  thesis's tables were computed on ``de_scale(normalised x)`` = x - mean (per-channel dataset
  mean), which is why Table 12.3 has Δ̂/ρ̂ ≈ 13.4 (||x - μ||_2 on CIFAR-10; ||x||_2 is ≈ 29)
  and Table 12.5 has Δ̂∞/ρ̂∞ ≈ 0.5. ``rho_2_centered`` / ``rho_inf_centered`` reproduce that
  convention (None when the mean is unknown) for comparison with the thesis's tables.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from ..errors import InputError

# Columns a metrics computation needs (the store keeps more).
REQUIRED = ("label", "pred", "attacked", "success", "verified", "verified_q", "adv_label", "q_label",
            "adv_conf", "l2", "linf", "x_l2", "x_linf", "pixels", "iterations", "seconds")

# The thesis-column table: (key, header, format, scale).
TABLE_COLUMNS: list[tuple[str, str, str, float]] = [
    ("n_attacked", "|D'|", "{:d}", 1),
    ("fooling_rate", "fool%", "{:.1f}", 100),
    ("fooling_rate_8bit", "fool8%", "{:.1f}", 100),
    ("avg_confidence", "conf%", "{:.1f}", 100),
    ("delta_2", "Δ̂2", "{:.4f}", 1),
    ("rho_2", "ρ̂2", "{:.4f}", 1),
    ("delta_inf", "Δ̂∞", "{:.4f}", 1),
    ("rho_inf", "ρ̂∞", "{:.4f}", 1),
    ("median_pixels_pct", "pix%", "{:.2f}", 1),
    ("ms_per_image", "ms/img", "{:.1f}", 1),
    ("avg_iterations", "iters", "{:.2f}", 1),
]


def _columns(records: Any) -> dict[str, np.ndarray]:
    """Records as columns: accepts a list of dicts, a dict of sequences, or a pandas DataFrame."""
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas DataFrame
        return {c: np.asarray(records[c].to_numpy()) for c in records.columns}
    if isinstance(records, Mapping):
        return {k: np.asarray(v) for k, v in records.items()}
    rows = list(records)
    if not rows:
        return {}
    keys = rows[0].keys()
    return {k: np.asarray([r.get(k) for r in rows]) for k in keys}


def _float(col: np.ndarray) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in col.tolist()], dtype=np.float64) if col.dtype == object \
        else col.astype(np.float64)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _ratio(a: float, b: int) -> float | None:
    return a / b if b else None


def compute(records: Any) -> dict[str, Any]:
    """All metrics of one run from its per-sample records (see the module docstring).

    Args:
        records: a list of dicts (``Run.samples()``), a dict of columns or a DataFrame, with at
            least the columns in ``REQUIRED``; ``xc_l2``/``xc_linf`` (norms of x - mean) and
            ``in_fit`` (universal perturbations) are optional.

    Returns:
        dict of floats/ints; rates are fractions in [0,1]. A quantity whose denominator is
        empty is undefined and is ``None``, never nan: ``fooling_rate`` when no image was
        attacked (every image misclassified, or ``target == label`` for all), ``avg_confidence``
        when none was fooled. Tables show ``None`` as "n/a".
    """
    c = _columns(records)
    n = len(next(iter(c.values()))) if c else 0
    if n == 0:
        return {"n": 0, "n_attacked": 0, "n_fooled": 0}
    missing = [k for k in REQUIRED if k not in c]
    if missing:
        raise InputError(f"records lack the columns {missing}")
    label = c["label"].astype(np.int64)
    pred = c["pred"].astype(np.int64)
    attacked = c["attacked"].astype(bool)
    claimed = attacked & c["success"].astype(bool)
    fooled = claimed & c["verified"].astype(bool)
    fooled_q = fooled & c["verified_q"].astype(bool)
    n_att = int(attacked.sum())
    l2, linf = _float(c["l2"]), _float(c["linf"])
    x_l2, x_linf = _float(c["x_l2"]), _float(c["x_linf"])
    with np.errstate(divide="ignore", invalid="ignore"):
        rho2 = l2 / x_l2
        rhoinf = linf / x_linf
    m: dict[str, Any] = {
        "n": n,
        "n_attacked": n_att,
        "n_fooled": int(fooled.sum()),
        "n_claimed": int(claimed.sum()),
        "n_fooled_8bit": int(fooled_q.sum()),
        "n_quant_lost": int((fooled & ~fooled_q).sum()),
        "accuracy": float((pred == label).mean()),
        "accuracy_under_attack": float((c["adv_label"].astype(np.int64) == label).mean()),
        "accuracy_under_attack_8bit": float((c["q_label"].astype(np.int64) == label).mean()),
        "fooling_rate": _ratio(int(fooled.sum()), n_att),
        "fooling_rate_claimed": _ratio(int(claimed.sum()), n_att),
        "fooling_rate_8bit": _ratio(int(fooled_q.sum()), n_att),
        "avg_confidence": _mean(_float(c["adv_conf"])[fooled]),
        "delta_2": _mean(l2[attacked]),
        "rho_2": _mean(rho2[attacked]),
        "delta_inf": _mean(linf[attacked]),
        "rho_inf": _mean(rhoinf[attacked]),
        "delta_2_fooled": _mean(l2[fooled]),
        "rho_2_fooled": _mean(rho2[fooled]),
        "delta_inf_fooled": _mean(linf[fooled]),
        "rho_inf_fooled": _mean(rhoinf[fooled]),
        "median_pixels_pct": float(np.median(100 * _float(c["pixels"])[fooled])) if fooled.any() else None,
        "ms_per_image": 1000 * float(_float(c["seconds"]).sum()) / n_att if n_att else None,
        "avg_iterations": _mean(_float(c["iterations"])[attacked]),
    }
    if "l0" in c:
        m["median_l0"] = float(np.median(_float(c["l0"])[fooled])) if fooled.any() else None
    for key, norm in (("rho_2_centered", "xc_l2"), ("rho_inf_centered", "xc_linf")):
        if norm in c:
            den = _float(c[norm])
            num = l2 if key == "rho_2_centered" else linf
            with np.errstate(divide="ignore", invalid="ignore"):
                m[key] = _mean((num / den)[attacked])
        else:
            m[key] = None
    if "in_fit" in c:
        in_fit = c["in_fit"].astype(bool)
        if in_fit.any():
            fit_att, unseen_att = attacked & in_fit, attacked & ~in_fit
            m["n_fit"] = int(fit_att.sum())
            m["n_unseen"] = int(unseen_att.sum())
            m["fooling_rate_fit"] = _ratio(int((fooled & in_fit).sum()), int(fit_att.sum()))
            m["fooling_rate_unseen"] = _ratio(int((fooled & ~in_fit).sum()), int(unseen_att.sum()))
            m["fooling_rate_unseen_8bit"] = _ratio(int((fooled_q & ~in_fit).sum()), int(unseen_att.sum()))
    # NULL norms (stored NaN) make a mean nan: that is undefined too, so None like the rest
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in m.items()}


def _cell(value: Any, fmt: str, scale: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if fmt == "{:d}":
        return fmt.format(int(value))
    return fmt.format(value * scale)


def format_table(rows: Sequence[tuple[str, Mapping[str, Any]]], columns=None, title_width: int | None = None) -> str:
    """A plain-text table: one row per ``(title, metrics)``, the thesis's columns.

    Universal runs get their fooling rates on X and on unseen data appended to the title.
    """
    columns = TABLE_COLUMNS if columns is None else columns
    titles = []
    for title, m in rows:
        if "fooling_rate_fit" in m:
            title = (f"{title} [X {_cell(m['fooling_rate_fit'], '{:.1f}', 100)}% / "
                     f"unseen {_cell(m.get('fooling_rate_unseen'), '{:.1f}', 100)}%]")
        titles.append(title)
    width = title_width or max([len("run")] + [len(t) for t in titles])
    cells = [[_cell(m.get(key), fmt, scale) for key, _, fmt, scale in columns] for _, m in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (_, h, _, _) in enumerate(columns)]
    header = f"{'run':{width}s} " + " ".join(f"{h:>{w}s}" for (_, h, _, _), w in zip(columns, widths))
    lines = [header, "-" * len(header)]
    for title, row in zip(titles, cells):
        lines.append(f"{title:{width}s} " + " ".join(f"{v:>{w}s}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def describe(m: Mapping[str, Any]) -> str:
    """Two lines of the less common numbers: accuracies, claimed vs verified, 8-bit losses."""
    def pct(key):  # "n/a", not "n/a%", for a run with no image done yet
        cell = _cell(m.get(key), "{:.2f}", 100)
        return cell if cell == "n/a" else cell + "%"

    acc, aua, aua8 = pct("accuracy"), pct("accuracy_under_attack"), pct("accuracy_under_attack_8bit")
    return (f"accuracy {acc} -> {aua} under attack ({aua8} after 8-bit quantisation); "
            f"fooled {m.get('n_fooled', 0)}/{m.get('n_attacked', 0)} verified "
            f"({m.get('n_claimed', 0)} claimed), {m.get('n_quant_lost', 0)} lost to 8-bit quantisation")
