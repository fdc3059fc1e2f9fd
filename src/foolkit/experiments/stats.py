"""The statistics every verdict uses: the standard errors of the measured quantities
(``binomial_se``, ``se_of``, ``sample_errors``), the one rule for "differ beyond the noise"
(``compare``, ``TOLERANCES``), how the parts of a claim combine (``combine``), how values and
their margins are printed (``fmt``, ``margin_text``) and the verdict records (``verdict``,
``not_checkable``).

Every comparison has the same statistical rule (``TOLERANCES``): two measured values differ when
their difference exceeds ``Z`` = 2 standard errors of the difference (sqrt(se_a^2 + se_b^2)),
with the standard errors taken from the sample: binomial (Agresti-Coull) for rates, the sample
standard deviation over sqrt(n) for means (``sample_errors``, from the stored per-image
records), an order-statistic interval for medians. Times are compared with a relative tolerance
``TIME_REL`` instead (timing noise on a shared machine, not sampling). No cap, no flat allowance.
On the thesis's own numbers the values are taken as exact (``exact_values``: they describe the
thesis's whole test set), so its column checks the logic of each check.

Quantities are compared in foolkit's metric units (rates as fractions, ``ms_per_image`` in ms,
``seconds_per_pass`` in s); tables are shown in the thesis's units (percent, seconds).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

Z = 2.0  # standard errors: two measurements differ when they are further apart than Z of them
# Timing comparisons: relative tolerance. The same run timed at several eps on the 2-core machine
# varies by 5-12 % (FGSM, quick report 2026-11-27: DenseNet-BC 12.6-13.9 ms, ResNet-20 1.28-1.43 ms);
# 15 % is above that noise and still below the smallest gap the thesis's timing claims rest on
# (Table 12.1: ResNet-50 11.6 ms against MobileNetV2 10 ms, 16 %).
TIME_REL = 0.15
TIMES = ("ms_per_image", "seconds_per_pass")
# |X| below which the thesis's own Fig. 12.25 says the fooling rates on X and on unseen images differ
MIN_FIT_FOR_GENERALISATION = 1000
TOLERANCES = (
    f"two measurements differ when they are more than {Z:g} standard errors of their difference apart; "
    "the standard errors come from the sample (binomial, Agresti-Coull, for rates; sample standard deviation "
    "/ sqrt(n) for means such as Δ̂, ρ̂, iterations and confidence; an order-statistic interval for medians), "
    f"with no cap. Times differ when they are more than {100 * TIME_REL:.0f} % apart (timing noise of a shared "
    "machine, see verdicts.TIME_REL). A threshold claim (greater than, less than, between) holds when the value "
    "is beyond the threshold by that margin, does not hold when it is on the wrong side by that margin, and is "
    "inconclusive in between; 'close to' holds when |value - reference| <= the claim's tolerance + the margin. "
    "Trends: does not hold if any pair of grid points moves significantly against the claim, holds if some pair "
    "moves significantly with it (ties and saturation, e.g. 100 % -> 100 %, are allowed), inconclusive "
    "otherwise. Rankings: a tie within the margin is inconclusive, never broken by order. A claim over several "
    "models or grid points: does not hold if any part does not, holds if every part holds, else inconclusive. "
    "Claims about how well a perturbation fitted on X generalises are not checkable with |X| < "
    f"{MIN_FIT_FOR_GENERALISATION} (the thesis's Fig. 12.25: below that the two rates differ). "
    "On the thesis's own numbers the printed values are taken as exact.")
VERDICTS = ("holds", "does not hold", "inconclusive", "not checkable", "error")
RATES = ("fooling_rate", "fooling_rate_fit", "fooling_rate_8bit", "fooling_rate_unseen", "accuracy",
         "accuracy_under_attack", "accuracy_under_attack_8bit", "avg_confidence")


def is_rate(quantity: str) -> bool:
    return quantity.startswith(("fooling_rate", "accuracy", "avg_confidence")) and not quantity.endswith("_pct")


# ------------------------------------------------------------------------------ standard errors
def binomial_se(rate: float, n: int) -> float:
    """Standard error of a rate measured on ``n`` samples (Agresti-Coull: (k + 2) / (n + 4), so
    0 % and 100 % get a non-zero error). ``rate`` in [0,1]."""
    if not n:
        return 0.0
    p = (rate * n + 2) / (n + 4)
    return math.sqrt(p * (1 - p) / (n + 4))


def _rate_n(q: str, m: dict) -> int | None:
    if q == "fooling_rate_fit":
        return m.get("n_fit")
    if q == "fooling_rate_unseen":
        return m.get("n_unseen")
    if q.startswith("accuracy"):
        return m.get("n")
    if q == "avg_confidence":
        return m.get("n_fooled")
    return m.get("n_attacked")


def se_of(q: str, p: dict) -> float:
    """Standard error of quantity ``q`` at point ``p`` (0 when the sample is unknown, e.g. the
    thesis's own numbers; inf when it is too small to estimate)."""
    m, se = p.get("metrics", {}), p.get("se") or {}
    if se.get(q) is not None:
        return float(se[q])
    if q in RATES and m.get(q) is not None:
        n = _rate_n(q, m)
        if q == "avg_confidence":  # a mean of values in [0,1]: variance <= c (1 - c) (Bhatia-Davis)
            return math.sqrt(m[q] * (1 - m[q]) / n) if n else 0.0
        return binomial_se(m[q], n) if n else 0.0
    if q == "fooling_rate_gap":
        return math.hypot(se_of("fooling_rate_fit", p), se_of("fooling_rate", p))
    return 0.0


def sample_errors(records: list[dict], shape: tuple | list | None = None) -> dict:
    """Standard errors of the mean and median metrics of one run, from its per-sample records
    (``Run.records()``): sample standard deviation / sqrt(n) for the means, and for a median
    (``median_values_pct``) half the width of its distribution-free 95 % interval (ranks
    n/2 +- sqrt(n)) divided by ``Z``. inf where fewer than two samples enter."""
    import numpy as np
    if not records:
        return {}
    col = lambda k: np.array([np.nan if r.get(k) is None else float(r[k]) for r in records])  # noqa: E731
    attacked = col("attacked") == 1
    fooled = attacked & (col("success") == 1) & (col("verified") == 1)

    def mean_se(values: np.ndarray, mask: np.ndarray) -> float:
        v = values[mask]
        v = v[np.isfinite(v)]
        return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) >= 2 else math.inf

    out = {}
    l2, linf = col("l2"), col("linf")
    out["delta_2"], out["delta_inf"] = mean_se(l2, attacked), mean_se(linf, attacked)
    out["avg_iterations"] = mean_se(col("iterations"), attacked)
    out["avg_confidence"] = mean_se(col("adv_conf"), fooled)
    with np.errstate(divide="ignore", invalid="ignore"):
        if "xc_l2" in records[0]:
            out["rho_2_centered"] = mean_se(l2 / col("xc_l2"), attacked)
        if "xc_linf" in records[0]:
            out["rho_inf_centered"] = mean_se(linf / col("xc_linf"), attacked)
    if "l0" in records[0]:
        v = np.sort(col("l0")[fooled])
        v = v[np.isfinite(v)]
        if len(v) >= 2:
            lo = max(0, int(math.floor(len(v) / 2 - math.sqrt(len(v)))))
            hi = min(len(v) - 1, int(math.ceil(len(v) / 2 + math.sqrt(len(v)))))
            size = math.prod((shape or [0, 3, 32, 32])[1:])
            out["median_values_pct"] = 100 * float(v[hi] - v[lo]) / (2 * Z) / size
        else:
            out["median_values_pct"] = math.inf
    return out


_EXACT = False  # True while check_claim judges results marked "exact" (the thesis's own numbers)


@contextlib.contextmanager
def exact_values(exact: bool) -> Iterator[None]:
    """Inside, ``compare`` and ``margin_text`` take the values as exact (no slack) when ``exact``:
    the thesis's own printed numbers. Not exact again on leaving."""
    global _EXACT
    _EXACT = exact
    try:
        yield
    finally:
        _EXACT = False


def values_are_exact() -> bool:
    """Whether the values now judged are exact (see ``exact_values``)."""
    return _EXACT


def compare(a: float, sa: float, b: float, sb: float, q: str = "") -> int:
    """+1 if a > b beyond the noise, -1 if a < b beyond it, 0 for a tie within it. The noise:
    ``Z`` standard errors of the difference, or ``TIME_REL`` relative for times."""
    if _EXACT:
        tol = 0.0
    elif q in TIMES:
        tol = TIME_REL * max(abs(a), abs(b))
    else:
        tol = Z * math.hypot(sa, sb)
    if math.isinf(tol):
        return 0
    if a - b > tol:
        return 1
    if b - a > tol:
        return -1
    return 0


def combine(outcomes: list[int]) -> bool | None:
    """Outcomes of the parts of a claim (+1 holds, 0 inconclusive, -1 fails) -> True / None / False."""
    if any(o < 0 for o in outcomes):
        return False
    if outcomes and all(o > 0 for o in outcomes):
        return True
    return None


def fmt(value: Any, quantity: str = "") -> str:
    """A value as the report prints it: rates in percent (by ``quantity``'s name), else 4 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, quantity) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if is_rate(quantity):
        return f"{100 * value:.1f} %"
    return f"{value:.4g}"


def margin_text(s: float, q: str) -> str:
    """The margin shown beside a value: '± 2 SE' in the quantity's units."""
    if _EXACT or q in TIMES or not s:
        return ""
    if math.isinf(s):
        return " ± ? (too few samples)"
    return f" ± {100 * Z * s:.1f} pts" if is_rate(q) else f" ± {Z * s:.3g}"


def verdict(ok: bool | None, measured: str, reason: str = "", checkable: bool = True) -> dict:
    """The verdict record {"verdict", "measured", "reason"} of a claim that holds (``ok`` True),
    does not hold (False), is inconclusive (None) or is not checkable."""
    if not checkable:
        v = "not checkable"
    else:
        v = "inconclusive" if ok is None else ("holds" if ok else "does not hold")
    return {"verdict": v, "measured": measured, "reason": reason}


def not_checkable(reason: str, measured: str = "") -> dict:
    """The verdict record of a claim that cannot be checked, and why."""
    return verdict(None, measured, reason, checkable=False)


def outcome_word(o: int) -> str:
    """What the report appends to a part of a claim: nothing (+1), within noise (0), against (-1)."""
    return {1: "", 0: " [within noise]", -1: " [against]"}[o]
