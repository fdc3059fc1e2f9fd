"""The thesis's tables in the reproduction report: each table in the thesis's layout with our
numbers beside the printed ones (``table_blocks``), and the sample behind them
(``sample_of``, ``sample_size``, ``variants_text``). Blocks are ``(kind, ...)`` tuples that
``reproduction_report`` renders as Markdown and HTML."""
from __future__ import annotations

from . import Experiment, load_thesis_numbers
from .thesis_tables import experiment_of, our_value, to_thesis_units

NUMBERS = load_thesis_numbers()
TABLE_IDS = ["table-11.4"] + [f"table-12.{i}" for i in range(1, 11)]


def _span(vals: list) -> str:
    """ "5" or "3-5": the range of some counts."""
    return f"{min(vals)}" if min(vals) == max(vals) else f"{min(vals)}-{max(vals)}"


def _decimals(printed: str | None) -> int:
    return len(printed.split(".")[1]) if printed and "." in printed else (0 if printed else 2)


def table_blocks(table_id: str, results: dict) -> list[tuple]:
    """Thesis table ``table_id`` with our values beside the printed ones (a matrix: the two side by
    side), with a second row per model for foolkit's algorithm where it was run, and the units."""
    t = NUMBERS["tables"][table_id]
    columns = results.get("columns", {})
    if t.get("layout", "").startswith("matrix"):
        names = [c["name"] for c in t["columns"]]
        rows = [[r.get("label", r["model"])] + [r["printed"][n] for n in names] for r in t["rows"]]
        out = [("p", "Thesis (row: perturbation fitted on; column: model attacked; %):"),
               ("table", ["fitted on"] + names, rows)]
        tr = (results["experiments"].get("universal-transfer") or {}).get("transfer")
        if tr:
            ours_rows = [[s] + [f"{100 * tr['matrix'][s][x]:.2f}" for x in tr["models"]] for s in tr["models"]]
            out += [("p", "Ours (%):"), ("table", ["fitted on"] + tr["models"], ours_rows)]
        return out
    keys = [c for c in t["columns"] if c.get("key")]
    values = [c for c in t["columns"] if not c.get("key")]
    header = ["model (thesis → ours)"] + [c["header"] for c in keys]
    for c in values:
        header += [f"{c['header']} thesis", "ours"]
    entry = results.get("experiments", {}).get(experiment_of(table_id).id) or {}
    # a second row per model with foolkit's own algorithm, where it was run (AttackConfig.compare)
    compared = bool(entry.get("foolkit_points"))
    main = f" ({algorithm_name(entry.get('points', []))})" if compared else ""
    rows = []
    for r in t["rows"]:
        ours_model = columns.get(r["model"])
        kv = {c["name"]: r[c["name"]] for c in keys}
        for foolkit in (False, True) if compared else (False,):
            row = [f"{r.get('label', r['model'])} → {ours_model or '—'}"
                   + (" (foolkit's algorithm)" if foolkit else main)]
            row += [r["printed"].get(c["name"], "") for c in keys]
            for c in values:
                printed = r["printed"].get(c["name"])
                ours = None if ours_model is None else our_value(results, table_id, c["name"], ours_model, kv,
                                                                 foolkit=foolkit)
                ours = to_thesis_units(ours, c)
                if c.get("per") and not printed:  # a merged cell: printed once per model
                    row += ["", ""]
                    continue
                row += ["" if foolkit else printed or "", "—" if ours is None else f"{ours:.{_decimals(printed)}f}"]
            rows.append(row)
    units = "; ".join(f"{c['header']}: {c['unit'] or '-'}" for c in values if c.get("unit"))
    timed = any(c.get("unit") in ("s", "ms") for c in values)
    out = [("table", header, rows), ("p", f"Units: {units}." + (" Times are wall-clock on different hardware "
                                                                "(compare ranks only)." if timed else ""))]
    if compared:
        out.append(("p", f"Rows marked (foolkit's algorithm): the same settings with foolkit's own algorithm "
                         f"(variant=\"foolkit\", see Where foolkit differs), {sample_of(entry['foolkit_points'])}; "
                         f"the claims are judged on the{main or ' other'} rows only."))
    return out


def algorithm_name(points: list[dict]) -> str:
    """ "thesis's algorithm" / "foolkit's algorithm" (both, joined, if mixed) from the runs' variant."""
    names = sorted({str((p.get("attack_params") or {}).get("variant") or "foolkit") for p in points}) or ["foolkit"]
    return " and ".join(f"{v}'s" for v in names) + " algorithm"


def sample_of(points: list[dict]) -> str:
    """ "n = 50 images, 45 attacked" over a list of points (ranges where they differ)."""
    pts = [p for p in points if p.get("metrics")]
    if not pts:
        return "not measured"
    text = (f"n = {_span([p['metrics'].get('n') or 0 for p in pts])} images, "
            f"{_span([p['metrics'].get('n_attacked') or 0 for p in pts])} attacked")
    fit = [p["metrics"].get("n_fit") for p in pts if p["metrics"].get("n_fit") is not None]
    return text + (f", |X| = {_span(fit)}" if fit else "")


def variants_text(exp: Experiment, entry: dict) -> str:
    """Which algorithm each run of an experiment used (foolkit's default or the thesis's variant),
    and whether foolkit's algorithm was also run as second rows of its table."""
    seen: dict[str, set[str]] = {}
    for p in entry.get("points", []):
        ap = p.get("attack_params") or {}
        seen.setdefault(p.get("attack", exp.attack), set()).add(str(ap.get("variant") or "foolkit"))
    text = "; ".join(f"{a}: {', '.join(sorted(v))}" for a, v in seen.items())
    if entry.get("foolkit_points"):
        text += f"; foolkit's algorithm as second rows, {sample_of(entry['foolkit_points'])}"
    return text


def sample_size(exp: Experiment, entry: dict) -> str:
    """The real sample behind an experiment's numbers, ours against the thesis's."""
    pts = [p for p in entry.get("points", []) if p.get("metrics")]
    thesis_n = exp.images.eval_n or exp.images.n
    thesis = f"thesis: {thesis_n:,} images" if thesis_n else "thesis: the photos"
    if not pts:
        return thesis
    n = [p["metrics"].get("n") or 0 for p in pts]
    att = [p["metrics"].get("n_attacked") or 0 for p in pts]
    text = f"ours: n = {_span(n)} images, {_span(att)} attacked (correctly classified)"
    fit = [p["metrics"].get("n_fit") for p in pts if p["metrics"].get("n_fit") is not None]
    if fit:
        text += f", |X| = {_span(fit)} attacked images of the fit set"
    return f"{text}; {thesis}" + (f" (|X| = {exp.images.n:,})" if exp.images.eval_n and exp.images.n else "")
