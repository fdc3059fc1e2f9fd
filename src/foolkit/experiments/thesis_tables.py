"""The thesis's tables (``thesis_numbers.toml``) against our results: which of our points
gives a thesis column's value (``our_point``, ``our_value``), the units the thesis prints them
in (``to_thesis_units``), and the thesis's own tables as if they were our results
(``thesis_results``), so that every claim can also be checked on the thesis's numbers."""
from __future__ import annotations

import math
from typing import Any

from . import EXPERIMENTS, MODELS, Experiment, load_thesis_numbers, thesis_name
from .derived import derive_per_eps
from .spec_types import Claim
from .stats import se_of

_TABLES = load_thesis_numbers()["tables"]


def _same(a: Any, b: Any) -> bool:
    """Two grid values are the same (numbers up to float rounding, else as text)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return str(a) == str(b)


def matches(params: dict, at: dict) -> bool:
    """Whether a point's grid ``params`` take one of the values ``at`` names (keys it lacks pass)."""
    for k, v in at.items():
        if k not in params:
            continue
        options = v if isinstance(v, (tuple, list)) else (v,)
        if not any(_same(params[k], o) for o in options):
            return False
    return True


def experiment_of(table_id: str) -> Experiment:
    """The experiment that reproduces thesis table ``table_id``."""
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


def _thesis_keys(table_id: str, column_name: str, model: str) -> dict:
    """The key values (e.g. {"eps": 0.01}) of the thesis's row where ``column_name`` is printed
    for ``model`` (thesis name): Table 12.1 prints each model's time once, in its eps = 0.01 row."""
    t = _TABLES[table_id]
    keys = [c["name"] for c in t["columns"] if c.get("key")]
    for row in t["rows"]:
        if row["model"] == thesis_name(model) or row["model"] == model:
            if column_name in row:
                return {k: row[k] for k in keys if k in row}
    return {}


def our_point(results: dict, table_id: str, column_name: str, model: str, keys: dict | None = None,
              foolkit: bool = False) -> tuple[str | None, dict | None]:
    """(quantity, point) of a thesis table column for our ``model``; ``keys``: the row's other
    keys (e.g. ``{"eps": 0.05}``); keys the caller leaves out default to the thesis's row where
    the column is printed. ``foolkit``: read the comparison rows run with foolkit's own
    algorithm (``foolkit_points``) instead of the table's rows. (None, None) when not measured."""
    exp = experiment_of(table_id)
    entry = results["experiments"].get(exp.id) or {}
    points = entry.get("foolkit_points" if foolkit else "points", [])
    col = next((c for c in _TABLES[table_id]["columns"] if c["name"] == column_name), None)
    if col is None:
        return None, None
    quantity, sel = column_selector(table_id, col)
    model_thesis = next((t for t, m in results.get("columns", {}).items() if m == model), model)
    sel = {**_thesis_keys(table_id, column_name, model_thesis), **sel, **(keys or {})}
    for strict in (True, False):  # a column without that key in our grid (e.g. clip fixed)
        for p in points:
            if p["model"] == model and matches(p["params"], sel) and (not strict or all(k in p["params"] for k in sel)):
                if p["metrics"].get(quantity) is not None:
                    return quantity, p
    return quantity, None


def our_value(results: dict, table_id: str, column_name: str, model: str, keys: dict | None = None,
              foolkit: bool = False) -> Any:
    """Our value (metric units) of a thesis table column for our ``model``; ``keys``: the
    row's other keys (e.g. ``{"eps": 0.05}``); ``foolkit``: from the rows of foolkit's own
    algorithm (see ``our_point``). None when not measured."""
    quantity, p = our_point(results, table_id, column_name, model, keys, foolkit)
    return None if p is None else p["metrics"].get(quantity)


def claim_reference(claim: Claim, p: dict, results: dict) -> tuple[Any, float]:
    """The reference value of a claim at point ``p`` and its standard error."""
    if not claim.ref:
        return None, 0.0
    table_id, column = claim.ref.split(":")
    if not table_id:
        v = p["metrics"].get(column)
        return v, (se_of(column, p) if v is not None else 0.0)
    keys = {k: v for k, v in p["params"].items() if k in _TABLES[table_id]["keys"]}
    quantity, q = our_point(results, table_id, column, p["model"], keys)
    if q is None:
        return None, 0.0
    assert quantity is not None  # our_point finds a point only for a known column
    return q["metrics"][quantity], se_of(quantity, q)


def to_thesis_units(value: Any, column: dict) -> Any:
    """Our value of a thesis ``column`` (foolkit's metric units) in the units the thesis prints."""
    if value is None:
        return None
    quantity = column.get("metric") or ""
    if column.get("unit") == "%" and not quantity.endswith("_pct"):
        return 100 * value
    if column.get("unit") == "s" and quantity == "ms_per_image":
        return value / 1000
    return value


def thesis_results() -> dict:
    """The thesis's tables as if they were our results (each thesis model its own model), so
    that every claim can also be checked on the thesis's own numbers (taken as exact: no sample
    sizes, so no sampling slack; the size of X, 1,000 images, is kept for the regime checks)."""
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
                if quantity == "fooling_rate_fit":
                    point["metrics"]["n_fit"] = 1000  # X: the first 1,000 test images (notebook)
    for entry in exps.values():
        for p in entry["points"]:
            derive_per_eps(p["params"], p["metrics"])
    return {"mode": "full", "exact": True, "columns": {t: m for t, m in MODELS.items()}, "dedicated": list(MODELS),
            "experiments": exps}
