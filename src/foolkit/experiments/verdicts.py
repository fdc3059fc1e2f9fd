"""Our numbers in the layout of the thesis's tables, and the verdict on each claim of the specs:
"holds", "does not hold" or "not checkable" (with the measured numbers and the reason).

Quantities are compared in foolkit's metric units (rates as fractions, ``ms_per_image`` in ms,
``seconds_per_pass`` in s); tables are shown in the thesis's units (percent, seconds).
Quick mode uses wider tolerances (``QUICK_TOLERANCES``): its samples are small.
"""
from __future__ import annotations

import math
from typing import Any

from . import EXPERIMENTS, Experiment, load_thesis_numbers, thesis_name

QUICK_ABS = 0.05  # rates (fractions): +-5 percentage points
QUICK_REL = 0.05  # other quantities: +-5 % of the reference
QUICK_TOLERANCES = (
    "an allowance s is added to every tolerance and threshold: for rates, two binomial standard errors of the "
    "measured rate on its sample (at most 5 percentage points), for other quantities 5 % of the reference. "
    "close_to: |value - reference| <= tol + s; greater_than / less_than / between against a fixed number: "
    "the threshold moves by s; against another of our measurements (a ref column): strict, since both sides "
    "share the sampling; increasing / decreasing: a step may go back by up to 5 points for rates (5 % "
    "otherwise); flat_after: tolerance doubled")
FULL_TOLERANCES = "the specs' tolerances; trends strictly monotonic; thresholds exact"
COMPARES_MODELS = ("argmax", "argmin", "top", "order", "same_order", "diagonal_dominates")

_TABLES = load_thesis_numbers()["tables"]


def _is_rate(quantity: str) -> bool:
    return quantity.startswith(("fooling_rate", "accuracy", "avg_confidence")) and not quantity.endswith("_pct")


def _slack(quantity: str, ref: float, quick: bool, p: dict | None = None) -> float:
    """Quick mode's allowance: for a rate, two binomial standard errors of the measured rate
    (``p``: the point, for its sample size) capped at 5 points; otherwise 5 % of ``ref``."""
    if not quick:
        return 0.0
    if not _is_rate(quantity):
        return QUICK_REL * abs(ref)
    m = (p or {}).get("metrics", {})
    n = m.get("n_fit") if quantity.endswith("_fit") else (m.get("n") if quantity.startswith("accuracy")
                                                          else m.get("n_attacked"))
    if not n or quantity == "avg_confidence":
        return QUICK_ABS
    rate = min(0.95, max(0.05, float(m.get(quantity) or 0.5)))
    return min(QUICK_ABS, 2 * math.sqrt(rate * (1 - rate) / n))


def fmt(value: Any, quantity: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, quantity) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if _is_rate(quantity):
        return f"{100 * value:.1f} %"
    return f"{value:.4g}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return str(a) == str(b)


def _match(params: dict, at: dict) -> bool:
    for k, v in at.items():
        if k not in params:
            continue
        options = v if isinstance(v, (tuple, list)) else (v,)
        if not any(_same(params[k], o) for o in options):
            return False
    return True


# ------------------------------------------------------------------------------ derived quantities
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
    return m


def derive_pairs(points: list[dict]) -> None:
    """Clip / no-clip reductions (Tables 12.2, 12.4), attached to the clip=True point."""
    for p in points:
        if p["params"].get("clip") is not True:
            continue
        other = [q for q in points if q["model"] == p["model"] and q["params"].get("clip") is False and
                 {k: v for k, v in q["params"].items() if k != "clip"} ==
                 {k: v for k, v in p["params"].items() if k != "clip"}]
        if not other:
            continue
        a, b = other[0]["metrics"], p["metrics"]
        for key, name in (("fooling_rate", "fooling_rate_reduction_pct"), ("delta_2", "delta_reduction_pct")):
            if a.get(key) and b.get(key) is not None:
                b[name] = 100 * (a[key] - b[key]) / a[key]


def transfer(exp: Experiment, points: list[dict], ctx, tasks: list) -> dict:
    """Table 12.10: each model's universal perturbation (its universal-l2 point) on every model;
    fooling rate over the images each target model classifies correctly (as ``fooling_rate``)."""
    import torch

    from ..attacks.base import predict
    from ..evaluation.store import Store, decode
    from ..data import load
    x, y = load("cifar10", "test", tasks[0].n, root=ctx.data_root)
    choices = {t.choice.label: t.choice for t in tasks}
    names, vs = [], {}
    with Store(ctx.store, readonly=True) as s:
        for p in points:
            vs[p["model"]] = torch.as_tensor(decode(s.artifact(p["run_id"], "universal_perturbation"))).float()
            names.append(p["model"])
    models = {name: ctx.model(choices[name]) for name in names}
    matrix = {}
    for target in names:
        clean, _ = predict(models[target], x)
        ok = clean == y
        for source in names:
            pred, _ = predict(models[target], (x + vs[source].reshape(1, *x.shape[1:])).clamp(0, 1))
            matrix.setdefault(source, {})[target] = float(((pred != y) & ok).sum()) / max(1, int(ok.sum()))
    return {"models": names, "matrix": matrix}


# ------------------------------------------------------------------------------ our tables
def experiment_of(table_id: str) -> Experiment:
    return next(e for e in EXPERIMENTS if table_id in e.tables)


def column_selector(table_id: str, column: dict) -> tuple[str, dict]:
    """(quantity, grid selector) of a thesis column."""
    name, quantity = column["name"], column.get("metric") or column["name"]
    sel: dict = {}
    if name.endswith("_noclip"):
        sel["clip"] = False
    elif name.endswith("_clip") or quantity.endswith("reduction_pct"):
        sel["clip"] = True
    return quantity, sel


def our_value(results: dict, table_id: str, column_name: str, model: str, keys: dict | None = None) -> Any:
    """Our value (metric units) of a thesis table column for our ``model``; ``keys``: the
    row's other keys (e.g. ``{"eps": 0.05}``). None when not measured."""
    exp = experiment_of(table_id)
    entry = results["experiments"].get(exp.id) or {}
    col = next((c for c in _TABLES[table_id]["columns"] if c["name"] == column_name), None)
    if col is None:
        return None
    quantity, sel = column_selector(table_id, col)
    sel.update(keys or {})
    for p in entry.get("points", []):
        if p["model"] == model and _match(p["params"], sel) and all(k in p["params"] for k in sel):
            return p["metrics"].get(quantity)
    for p in entry.get("points", []):  # a column without that key in our grid (e.g. clip fixed)
        if p["model"] == model and _match(p["params"], sel):
            return p["metrics"].get(quantity)
    return None


def to_thesis_units(value: Any, column: dict) -> Any:
    if value is None:
        return None
    quantity = column.get("metric") or ""
    if column.get("unit") == "%" and not quantity.endswith("_pct"):
        return 100 * value
    if column.get("unit") == "s" and quantity == "ms_per_image":
        return value / 1000
    return value


# ------------------------------------------------------------------------------ claims
def _verdict(ok: bool | None, measured: str, reason: str = "") -> dict:
    v = "not checkable" if ok is None else ("holds" if ok else "does not hold")
    return {"verdict": v, "measured": measured, "reason": reason}


def check_claim(exp: Experiment, claim, results: dict, quick: bool) -> dict:
    entry = results["experiments"].get(exp.id) or {}
    status = entry.get("status", "not run in this mode")
    if status != "done":
        return _verdict(None, "", status)
    if claim.check == "visual":
        return _verdict(None, "", "illustrative figure: see " + ", ".join(exp.figures))
    columns = results.get("columns", {})
    dedicated = set(results.get("dedicated", []))
    points = entry["points"]
    if "transfer" in entry:
        return _check_matrix(exp, claim, entry, results, quick)
    at = {k: v for k, v in claim.at.items() if v != "max"}
    pts = [p for p in points if _match(p["params"], at) and p["metrics"].get(claim.quantity) is not None]
    for k in [k for k, v in claim.at.items() if v == "max"]:  # the largest value of each series
        def rest(p, k=k):
            return (p["model"], sorted((a, str(b)) for a, b in p["params"].items() if a != k))
        pts = [p for p in pts if k in p["params"] and
               p["params"][k] == max(q["params"][k] for q in pts if k in q["params"] and rest(q) == rest(p))]
    if not pts:
        return _verdict(None, "", f"no measured {claim.quantity} at {at or 'any point'} in this mode")
    if claim.check in COMPARES_MODELS:
        return _compare_models(exp, claim, pts, results, dedicated, columns)
    if claim.models:
        ours = {columns.get(t) for t in claim.models}
        pts = [p for p in pts if p["model"] in ours]
        standin = [t for t in claim.models if t not in dedicated and columns.get(t)]
        note = f"on {', '.join(sorted(ours - {None}))} standing in for {', '.join(standin)}" if standin else ""
        if not pts:
            return _verdict(None, "", "no model for " + ", ".join(claim.models))
    else:
        note = ""
    q = claim.quantity
    if claim.check in ("increasing", "decreasing"):
        return _trend(claim, pts, quick, note)
    if claim.check == "flat_after":
        tol = claim.tol * (2 if quick else 1)
        out, ok = [], True
        for model, seq in _series(pts, claim.over or next(iter(pts[0]["params"]), ""), q).items():
            tail = [(x, v) for x, v in seq if x >= claim.value]
            last = tail[-1][1] if tail else None
            ok &= bool(tail) and all(abs(v - last) <= tol * abs(last) for _, v in tail)
            out.append(f"{model}: " + ", ".join(f"{fmt(v, q)} ({x:g})" for x, v in tail))
        return _verdict(ok, "; ".join(out), note)
    parts, ok = [], True
    for p in pts:
        value = p["metrics"][q]
        ref = _ref(claim, p, results)
        if ref is None and claim.value is None:
            return _verdict(None, "", f"reference {claim.ref} not measured in this run")
        label = _label(p)
        if claim.check == "between":
            lo, hi = claim.value
            s = _slack(q, hi, quick, p)
            good = lo - s <= value <= hi + s
            parts.append(f"{label}{fmt(value, q)} (wanted {fmt(lo, q)}..{fmt(hi, q)}{_allow(s, q)})")
        else:
            target = claim.value if ref is None else ref
            s = _slack(q, target, quick, p)
            if claim.check in ("less_than", "greater_than") and ref is not None:
                s = 0.0  # two of our own measurements: the direction is the claim
            if claim.check == "less_than":
                good = value < target + s
            elif claim.check == "greater_than":
                good = value > target - s
            else:  # close_to
                s += claim.tol or 0
                good = abs(value - target) <= s + 1e-12
            sign = {"less_than": "<", "greater_than": ">", "close_to": "≈"}[claim.check]
            parts.append(f"{label}{fmt(value, q)} (wanted {sign} {fmt(target, q)}"
                         f"{' = our ' + claim.ref if ref is not None else ''}{_allow(s, q)})")
        ok &= good
    return _verdict(ok, "; ".join(parts), note)


def _allow(s: float, q: str) -> str:
    return f" ± {100 * s:.1f} points" if s and _is_rate(q) else (f" ± {s:.3g}" if s else "")


def _label(p: dict) -> str:
    params = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
    return f"{p['model']}{' [' + params + ']' if params else ''}: "


def _ref(claim, p: dict, results: dict) -> Any:
    if not claim.ref:
        return None
    table_id, column = claim.ref.split(":")
    if not table_id:
        return p["metrics"].get(column)
    keys = {k: v for k, v in p["params"].items() if k in _TABLES[table_id]["keys"]}
    return our_value(results, table_id, column, p["model"], keys)


def _series(pts: list[dict], over: str, q: str) -> dict[str, list]:
    """(model, other grid values) -> [(over value, quantity)] sorted by the over value."""
    out: dict[str, list] = {}
    for p in pts:
        if over not in p["params"]:
            continue
        rest = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items() if k != over)
        key = p["model"] + (f" [{rest}]" if rest else "")
        out.setdefault(key, []).append((float(p["params"][over]), p["metrics"][q]))
    return {k: sorted(v) for k, v in out.items()}


def _trend(claim, pts: list[dict], quick: bool, note: str) -> dict:
    q, sign = claim.quantity, 1 if claim.check == "increasing" else -1
    series = _series(pts, claim.over, q)
    if not series or all(len(s) < 2 for s in series.values()):
        return _verdict(None, "", f"fewer than two values of {claim.over} measured")
    ok, parts = True, []
    for key, seq in series.items():
        for (_, a), (_, b) in zip(seq, seq[1:]):
            step = sign * (b - a)
            if (quick and step < -_slack(q, max(abs(a), abs(b)), quick)) or (not quick and step <= 0):
                ok = False
        parts.append(f"{key}: " + ", ".join(f"{fmt(v, q)} ({claim.over} {x:g})" for x, v in seq))
    return _verdict(ok, "; ".join(parts), note)


def _compare_models(exp, claim, pts, results, dedicated, columns) -> dict:
    named = set(claim.value) if claim.check in ("top", "order") else (
        {claim.value} if claim.check in ("argmax", "argmin") else set())
    own = [thesis_name(m) for m in exp.models if thesis_name(m) in dedicated]
    if len({columns[t] for t in own}) < 2:
        return _verdict(None, "", "not checkable with one model (pass two or more CIFAR-10 models with --models)")
    if named - set(own):
        return _verdict(None, "", f"{', '.join(sorted(named - set(own)))} has no model of its own")
    q = claim.quantity
    groups: dict[str, dict[str, float]] = {}
    for p in pts:
        rest = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
        for t in own:
            if columns[t] == p["model"]:
                groups.setdefault(rest, {})[t] = p["metrics"][q]
    ok, parts = True, []
    for rest, vals in groups.items():
        rank = sorted(vals, key=vals.get, reverse=True)
        if claim.check == "argmax":
            good = rank[0] == claim.value
        elif claim.check == "argmin":
            good = rank[-1] == claim.value
        elif claim.check == "top":
            good = set(rank[:len(claim.value)]) == set(claim.value)
        elif claim.check == "order":
            good = tuple(rank) == tuple(m for m in claim.value if m in vals)
        else:  # same_order with a ref column
            table_id, column = claim.ref.split(":")
            ref = {t: our_value(results, table_id, column, columns[t]) for t in vals}
            if any(v is None for v in ref.values()):
                return _verdict(None, "", f"{claim.ref} not measured in this run")
            good = rank == sorted(ref, key=ref.get, reverse=True)
            rest = (rest + "; " if rest else "") + f"{claim.ref}: " + ", ".join(
                f"{t} {fmt(ref[t])}" for t in sorted(ref, key=ref.get, reverse=True))
        ok &= good
        parts.append((f"[{rest}] " if rest else "") + ", ".join(f"{t} {fmt(vals[t], q)}" for t in rank))
    return _verdict(ok, "; ".join(parts))


def _check_matrix(exp, claim, entry, results, quick) -> dict:
    tr = entry["transfer"]
    names, m = tr["models"], tr["matrix"]
    columns = results.get("columns", {})
    off = [m[s][t] for s in names for t in names if s != t]
    if claim.at.get("diagonal") and claim.ref:
        table_id, column = claim.ref.split(":")
        parts, ok = [], True
        for name in names:
            ref = our_value(results, table_id, column, name)
            if ref is None:
                return _verdict(None, "", f"{claim.ref} not measured in this run")
            ok &= abs(m[name][name] - ref) <= claim.tol + _slack("fooling_rate", ref, quick)
            parts.append(f"{name}: {fmt(m[name][name], 'fooling_rate')} ≈ {fmt(ref, 'fooling_rate')}")
        return _verdict(ok, "; ".join(parts))
    if len(names) < 2:
        return _verdict(None, f"{names[0]} on itself: {fmt(m[names[0]][names[0]], 'fooling_rate')}" if names else "",
                        "not checkable with one model (pass two or more CIFAR-10 models with --models)")
    if claim.check == "diagonal_dominates":
        ok = all(max(names, key=lambda s: m[s][t]) == t for t in names)
        return _verdict(ok, "; ".join(f"{t}: " + ", ".join(f"{s} {fmt(m[s][t], 'fooling_rate')}" for s in names)
                                      for t in names))
    if claim.quantity == "min_offdiagonal":
        return _verdict(min(off) < claim.value + _slack("fooling_rate", 0, quick),
                        f"smallest off-diagonal {fmt(min(off), 'fooling_rate')}")
    if claim.quantity == "transfer_mean":
        mean = {s: sum(m[s][t] for t in names if t != s) / (len(names) - 1) for s in names}
        rank = sorted(mean, key=mean.get, reverse=True)
        want = [columns.get(t) for t in claim.value if columns.get(t) in names]
        measured = ", ".join(f"{s} {fmt(mean[s], 'fooling_rate')}" for s in rank)
        return _verdict(rank == list(dict.fromkeys(want)), measured)
    if claim.check == "greater_than":
        cols = [columns.get(t) for t in claim.models if columns.get(t) in names]
        vals = [m[s][t] for s in names for t in cols]
        return _verdict(all(v > claim.value - _slack("fooling_rate", 0, quick) for v in vals),
                        ", ".join(fmt(v, "fooling_rate") for v in vals))
    return _verdict(None, "", "check not implemented for the transfer matrix")


def thesis_results() -> dict:
    """The thesis's tables as if they were our results (each thesis model its own model), so
    that every claim can also be checked on the thesis's own numbers."""
    from . import MODELS
    exps: dict[str, dict] = {}
    for table_id, t in _TABLES.items():
        entry = exps.setdefault(experiment_of(table_id).id, {"status": "done", "points": []})
        if t.get("layout", "").startswith("matrix"):
            names = [MODELS[r["model"]] for r in t["rows"]]
            entry["transfer"] = {"models": names, "matrix": {
                MODELS[r["model"]]: {MODELS[c]: r[c] / 100 for c in MODELS} for r in t["rows"]}}
            continue
        keys = [c["name"] for c in t["columns"] if c.get("key")]
        for row in t["rows"]:
            for col in t["columns"]:
                if col.get("key") or col["name"] not in row:
                    continue
                quantity, sel = column_selector(table_id, col)
                params = {**{k: row[k] for k in keys}, **sel}
                point = next((p for p in entry["points"] if p["model"] == MODELS[row["model"]] and
                              p["params"] == params), None)
                if point is None:
                    point = {"model": MODELS[row["model"]], "params": params, "metrics": {}}
                    entry["points"].append(point)
                value = row[col["name"]]
                if col["unit"] == "%" and not quantity.endswith("_pct"):
                    value /= 100
                elif col["unit"] == "s" and quantity == "ms_per_image":
                    value *= 1000
                point["metrics"][quantity] = value
    return {"mode": "full", "columns": {t: m for t, m in MODELS.items()}, "dedicated": list(MODELS),
            "experiments": exps}


def all_verdicts(results: dict, quick: bool) -> list[dict]:
    out = []
    thesis = thesis_results()
    for exp in EXPERIMENTS:
        for claim in exp.claims:
            v = check_claim(exp, claim, results, quick)
            on_thesis = check_claim(exp, claim, thesis, False) if exp.id in thesis["experiments"] else None
            out.append({"experiment": exp.id, "refs": list(exp.thesis_refs), "claim": claim.claim,
                        "claim_text": claim.claim_text, "check": claim.check, **v,
                        "thesis": on_thesis["verdict"] if on_thesis else "no table"})
    return out
