"""The claim checkers, one per kind of check (``spec_types.CHECKS``): trends along a grid
(``trend_verdict``), a flat tail (``flat_verdict``), thresholds and references
(``threshold_verdict``), model rankings (``ranking_verdict``) and the transfer matrix
(``matrix_verdict``). Each takes the points a claim is judged on and returns the verdict record
(``stats.verdict``); ``verdicts.check_claim`` picks the points and the checker."""
from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from . import Claim, Experiment, thesis_name
from .stats import (TIME_REL, TIMES, Z, not_checkable, outcome_word, margin_text, verdict, binomial_se, combine,
                    compare, fmt, is_rate, se_of, values_are_exact)
from .thesis_tables import claim_reference, our_point

def series_over(pts: list[dict], over: str | None, q: str) -> dict[str, list]:
    """(model, other grid values) -> [(over value, quantity, its standard error)] sorted by the over value
    (empty when ``over`` is None: a claim that names no grid key has no series)."""
    out: dict[str, list] = {}
    for p in pts:
        if over not in p["params"]:
            continue
        rest = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items() if k != over)
        key = p["model"] + (f" [{rest}]" if rest else "")
        out.setdefault(key, []).append((float(p["params"][over]), p["metrics"][q], se_of(q, p)))
    return {k: sorted(v) for k, v in out.items()}


def trend_verdict(claim: Claim, pts: list[dict], note: str) -> dict:
    """Monotone trend: every pair of grid points (not only neighbours) is compared, so a slow
    steady move against the claim (5.0 -> 8.3 -> 11.3 % for "decreases") is caught."""
    q, sign = claim.quantity, 1 if claim.check == "increasing" else -1
    series = series_over(pts, claim.over, q)
    if not series or all(len(s) < 2 for s in series.values()):
        return not_checkable(f"fewer than two values of {claim.over} measured")
    outcomes, parts = [], []
    for key, seq in series.items():
        pairs = [sign * compare(b, sb, a, sa, q) for i, (_, a, sa) in enumerate(seq) for (_, b, sb) in seq[i + 1:]]
        o = -1 if any(c < 0 for c in pairs) else (1 if any(c > 0 for c in pairs) else 0)
        against = [(seq[i][0], seq[j][0]) for i in range(len(seq)) for j in range(i + 1, len(seq))
                   if sign * compare(seq[j][1], seq[j][2], seq[i][1], seq[i][2], q) < 0]
        outcomes.append(o)
        parts.append(f"{key}: " + ", ".join(f"{fmt(v, q)}{margin_text(s, q) if s and q not in TIMES else ''} "
                                             f"({claim.over} {x:g})" for x, v, s in seq)
                     + (f" [against the claim: {claim.over} {against[0][0]:g} -> {against[0][1]:g}]" if against
                        else ("" if o > 0 else " [no step beyond the noise]")))
    return verdict(combine(outcomes), "; ".join(parts), note)


def flat_verdict(claim: Claim, pts: list[dict], note: str) -> dict:
    """"flat_after": for grid values >= ``claim.value`` the quantity stays within ``claim.tol``
    (relative) of its last value, up to the noise."""
    q = claim.quantity
    out, outcomes = [], []
    over = claim.over or next(iter(pts[0]["params"]), "")
    for model, seq in series_over(pts, over, q).items():
        tail = [(x, v, s) for x, v, s in seq if x >= claim.value]
        if not tail:
            continue
        _, last, s_last = tail[-1]
        for x, v, s in tail:
            outcomes.append(1 if abs(v - last) <= claim.tol * abs(last) + Z * math.hypot(s, s_last) else -1)
        out.append(f"{model}: " + ", ".join(f"{fmt(v, q)}{margin_text(s, q)} ({over} {x:g})" for x, v, s in tail))
    if not outcomes:
        return not_checkable(f"no {over} >= {claim.value} measured")
    return verdict(combine(outcomes), "; ".join(out), note)


def threshold_verdict(claim: Claim, pts: list[dict], results: dict, note: str) -> dict:
    """"between", "ratio_close", "less_than", "greater_than", "close_to": each point against the
    claim's ``value`` or its ``ref`` column, beyond the noise."""
    q = claim.quantity
    parts, outcomes = [], []
    for p in pts:
        value, s = p["metrics"][q], se_of(q, p)
        ref, ref_s = claim_reference(claim, p, results)
        if ref is None and claim.value is None:
            return not_checkable(f"reference {claim.ref} not measured in this run")
        label = _label(p)
        if claim.check == "between":
            lo, hi = claim.value
            below, above = compare(value, s, lo, 0, q), compare(value, s, hi, 0, q)
            o = 1 if below > 0 and above < 0 else (-1 if below < 0 or above > 0 else 0)
            parts.append(f"{label}{fmt(value, q)}{margin_text(s, q)} (wanted {fmt(lo, q)}..{fmt(hi, q)}){outcome_word(o)}")
        elif claim.check == "ratio_close":
            assert claim.tol is not None  # every ratio_close claim names its tolerance (1 + tol below needs it)
            o, ratio, rs = _ratio_outcome(value, s, ref, ref_s, claim.tol)
            parts.append(f"{label}{fmt(value, q)} / {fmt(ref, q)} = {ratio:.3g}{' ± ' + format(Z * rs, '.2g') if rs else ''}"
                         f" (wanted within a factor {1 + claim.tol:g} of 1){outcome_word(o)}")
        else:
            target, ts = (claim.value, 0.0) if ref is None else (ref, ref_s)
            if claim.check == "close_to":
                margin = (claim.tol or 0) + Z * math.hypot(s, ts)
                o = 0 if math.isinf(margin) else (1 if abs(value - target) <= margin + 1e-12 else -1)
            else:
                o = compare(value, s, target, ts, q) * (1 if claim.check == "greater_than" else -1)
            sign = {"less_than": "<", "greater_than": ">", "close_to": "≈"}[claim.check]
            tol = f" ± {100 * claim.tol:.1f} pts" if claim.tol and is_rate(q) else (
                f" ± {claim.tol:.3g}" if claim.tol else "")
            parts.append(f"{label}{fmt(value, q)}{margin_text(s, q)} (wanted {sign} {fmt(target, q)}{tol}"
                         f"{f' = our {claim.ref}' if ref is not None else ''}{margin_text(ts, q) if ref is not None else ''})"
                         f"{outcome_word(o)}")
        outcomes.append(o)
    if q in TIMES and not values_are_exact():
        parts.append(f"times differ when more than {100 * TIME_REL:.0f} % apart")
    return verdict(combine(outcomes), "; ".join(parts), note)


def _ratio_outcome(a: float, sa: float, b: float, sb: float, tol: float) -> tuple[int, float, float]:
    """a / b within a factor (1 + tol) of 1, with the ratio's relative error as slack."""
    if not a or not b:
        return -1, math.nan, 0.0
    ratio = a / b
    rel = math.hypot(sa / abs(a), sb / abs(b))
    ok = abs(math.log(ratio)) <= math.log(1 + tol) + Z * rel
    return (1 if ok else -1), ratio, ratio * rel


def _label(p: dict) -> str:
    """"model [grid values]: " before a point's measured value."""
    params = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
    return f"{p['model']}{' [' + params + ']' if params else ''}: "


def _rank_outcomes(check: str, named: Any, vals: dict, ses: dict, q: str) -> list[int]:
    """+1/0/-1 per pairwise comparison a ranking claim rests on."""
    c = lambda a, b: compare(vals[a], ses[a], vals[b], ses[b], q)  # noqa: E731
    others = lambda x: [m for m in vals if m != x]  # noqa: E731
    if check == "argmax":
        return [c(named, m) for m in others(named)]
    if check == "argmin":
        return [-c(named, m) for m in others(named)]
    if check == "top":
        inside = [m for m in named if m in vals]
        return [c(a, b) for a in inside for b in vals if b not in inside]
    if check == "order":
        seq = [m for m in named if m in vals]
        return [c(a, b) for i, a in enumerate(seq) for b in seq[i + 1:]]
    raise InputError(check)


def ranking_verdict(exp: Experiment, claim: Claim, pts: list[dict], results: dict, dedicated: set[str],
                    columns: dict[str, str]) -> dict:
    """argmax, argmin, top, order, same_order: the models (each with a model of its own) ranked by
    the quantity, per group of the other grid values; a tie within the noise is inconclusive."""
    named = set(claim.value) if claim.check in ("top", "order") else (
        {claim.value} if claim.check in ("argmax", "argmin") else set())
    own = [thesis_name(m) for m in exp.models if thesis_name(m) in dedicated]
    if len({columns[t] for t in own}) < 2:
        return not_checkable("not checkable with one model (pass two or more CIFAR-10 models with --models)")
    if named - set(own):
        return not_checkable(f"{', '.join(sorted(named - set(own)))} has no model of its own")
    q = claim.quantity
    groups: dict[str, dict[str, dict]] = {}
    for p in pts:
        rest = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
        for t in own:
            if columns[t] == p["model"]:
                groups.setdefault(rest, {})[t] = p
    outcomes, parts = [], []
    for rest, group in groups.items():
        vals = {t: p["metrics"][q] for t, p in group.items()}
        ses = {t: se_of(q, p) for t, p in group.items()}
        if claim.check == "same_order":
            assert claim.ref is not None  # every same_order claim names the column it ranks against
            table_id, column = claim.ref.split(":")
            refs = {t: our_point(results, table_id, column, columns[t]) for t in vals}
            # our_point finds a point only for a known column, so p set means qq set
            found = {t: (qq, p) for t, (qq, p) in refs.items() if qq is not None and p is not None}
            if len(found) < len(refs):
                return not_checkable(f"{claim.ref} not measured in this run")
            rv = {t: p["metrics"][qq] for t, (qq, p) in found.items()}
            rs = {t: se_of(qq, p) for t, (qq, p) in found.items()}
            qq = next(iter(found.values()))[0]
            pair = []
            for i, a in enumerate(vals):
                for b in list(vals)[i + 1:]:
                    r = compare(rv[a], rs[a], rv[b], rs[b], qq)
                    pair.append(r * compare(vals[a], ses[a], vals[b], ses[b], q) if r else 0)
            o = combine(pair)
            rest = (rest + "; " if rest else "") + f"{claim.ref}: " + ", ".join(
                f"{t} {fmt(rv[t], qq)}{margin_text(rs[t], qq)}" for t in sorted(rv, key=lambda t: rv[t], reverse=True))
        else:
            value = claim.value
            o = combine(_rank_outcomes(claim.check, value, vals, ses, q))
        outcomes.append({True: 1, None: 0, False: -1}[o])
        rank = sorted(vals, key=lambda t: vals[t], reverse=True)
        parts.append((f"[{rest}] " if rest else "") + ", ".join(f"{t} {fmt(vals[t], q)}{margin_text(ses[t], q) if q not in TIMES else ''}"
                                                               for t in rank)
                     + {1: "", 0: " [tie within the noise: inconclusive]", -1: ""}[outcomes[-1]])
    if q in TIMES and not values_are_exact():
        parts.append(f"times differ when more than {100 * TIME_REL:.0f} % apart")
    return verdict(combine(outcomes), "; ".join(parts))


def matrix_verdict(exp: Experiment, claim: Claim, entry: dict, results: dict) -> dict:
    """A claim on the transfer matrix ``entry["transfer"]`` (Table 12.10)."""
    tr = entry["transfer"]
    names, m = tr["models"], tr["matrix"]
    counts = tr.get("n") or {}
    se = lambda s, t: binomial_se(m[s][t], counts[t]) if counts.get(t) else 0.0  # noqa: E731
    columns = results.get("columns", {})
    if len(names) < 2:
        return not_checkable("not checkable with one model (pass two or more CIFAR-10 models with --models)",
                             f"{names[0]} on itself: {fmt(m[names[0]][names[0]], 'fooling_rate')}" if names else "")
    cell = lambda s, t: f"{fmt(m[s][t], 'fooling_rate')}{margin_text(se(s, t), 'fooling_rate')}"  # noqa: E731
    if claim.check == "diagonal_dominates":
        outcomes = [compare(m[t][t], se(t, t), m[s][t], se(s, t)) for t in names for s in names if s != t]
        return verdict(combine(outcomes), "; ".join(
            f"attacked {t}: " + ", ".join(f"v of {s} {cell(s, t)}" for s in names) for t in names))
    if claim.quantity == "min_offdiagonal":  # some pair below the value
        outcomes = [-compare(m[s][t], se(s, t), claim.value, 0) for s in names for t in names if s != t]
        ok = True if any(o > 0 for o in outcomes) else (False if all(o < 0 for o in outcomes) else None)
        off = min((m[s][t], s, t) for s in names for t in names if s != t)
        return verdict(ok, f"smallest off-diagonal {cell(off[1], off[2])} (v of {off[1]} on {off[2]})")
    if claim.quantity == "transfer_mean":
        mean = {s: sum(m[s][t] for t in names if t != s) / (len(names) - 1) for s in names}
        ses = {s: math.sqrt(sum(se(s, t) ** 2 for t in names if t != s)) / (len(names) - 1) for s in names}
        want = [columns.get(t) for t in claim.value if columns.get(t) in names]
        if len(set(want)) < 2:
            return not_checkable("the claim's models have no models of their own here")
        ok = combine(_rank_outcomes("order", list(dict.fromkeys(want)), mean, ses, "fooling_rate"))
        measured = ", ".join(f"{s} {fmt(mean[s], 'fooling_rate')}{margin_text(ses[s], 'fooling_rate')}"
                             for s in sorted(mean, key=lambda s: mean[s], reverse=True))
        return verdict(ok, measured + (" [tie within the noise: inconclusive]" if ok is None else ""))
    if claim.check == "greater_than":
        cols = [columns.get(t) for t in claim.models if columns.get(t) in names]
        outcomes = [compare(m[s][t], se(s, t), claim.value, 0) for s in names for t in cols]
        return verdict(combine(outcomes), ", ".join(f"v of {s} on {t}: {cell(s, t)}" for s in names for t in cols))
    return {"verdict": "error", "measured": "", "reason": f"check {claim.check} not implemented for the transfer matrix"}
