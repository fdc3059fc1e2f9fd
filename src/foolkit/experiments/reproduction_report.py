"""The reproduction report: ``report.md`` and ``report.html`` (same content) plus PNG figures in
``figures/``. One section per experiment, one subsection per table and figure id of Part III,
whether or not it was run (then it says why), our numbers beside the thesis's, the verdicts.
The document (``build``) and its two renderings (``to_markdown``, ``to_html``) live here; the
tables: ``report_tables``; the figures: ``report_figures``; the fixed text: ``report_prose``."""
from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path

from ..runtime.files import write_text
from . import EXPERIMENTS, Experiment
from .report_figures import FIGURE_IDS, figure_images
from .report_prose import DIFFERENCES, INPUT_SPACE, VARIANT_LIMITS
from .report_tables import NUMBERS, TABLE_IDS, sample_size, table_blocks, variants_text
from .stats import TOLERANCES, VERDICTS
from .verdicts import GROUPS, all_verdicts


def attack_seconds(results: dict) -> float:
    """Seconds of attack computation behind ``results``: per distinct run, its stored time per
    attacked image x attacked images, plus the fitting time of universal perturbations."""
    total, seen = 0.0, set()
    for entry in results.get("experiments", {}).values():
        for point in entry.get("points", []):
            if point.get("run_id") in seen:
                continue
            seen.add(point.get("run_id"))
            m = point.get("metrics", {})
            per_image, attacked = m.get("ms_per_image"), m.get("n_attacked") or 0
            if isinstance(per_image, (int, float)) and math.isfinite(per_image):
                total += per_image * attacked / 1000
            fit_seconds = (point.get("fit") or {}).get("seconds")
            if isinstance(fit_seconds, (int, float)) and math.isfinite(fit_seconds):
                total += fit_seconds
    return total


def failures(results: dict) -> list[tuple[str, str]]:
    """(experiment id, status) of every experiment in ``results`` that failed."""
    return [(k, e.get("status", "")) for k, e in results.get("experiments", {}).items()
            if str(e.get("status", "")).startswith("failed")]


def build(results: dict, store: str, out: Path) -> list[tuple]:
    """The report as blocks ``(kind, ...)``: "h1"/"h2"/"h3" (text, anchor), "p", "list", "table"
    (header, rows), "img" (path, anchor)."""
    from .._version import __version__
    verdicts = all_verdicts(results)
    counts = {g: {v: sum(1 for x in verdicts if x["group"] == g and x["verdict"] == v) for v in VERDICTS}
              for g in GROUPS}
    summary = lambda g: ", ".join(f"{c} {v}" for v, c in counts[g].items() if c) or "none"  # noqa: E731
    failed = failures(results)
    b: list[tuple] = [("h1", f"Thesis Part III reproduced with foolkit ({results.get('mode', 'full')} mode)"),
                      ("p", f"foolkit {__version__}, {_dt.datetime.now():%Y-%m-%d %H:%M}, wall time of the "
                            f"last invocation {results.get('seconds', 0):.0f} s (runs it found in the store, from "
                            f"earlier invocations, are not counted); the attacks behind these results took "
                            f"{attack_seconds(results) / 60:.0f} min in all (their stored times, summed over "
                            f"every run whichever invocation ran it; clean passes and transfer matrices not "
                            f"counted). Machine: {results.get('machine', 'not recorded')}. "
                            f"CIFAR-10 data: {results.get('data', 'not recorded')}."),
                      ("list", [f"**(i) {GROUPS['trend']}**: {summary('trend')}.",
                                f"**(ii) {GROUPS['networks']}**: {summary('networks')} (on our stand-ins).",
                                f"**(iii) {GROUPS['figure']}**: {sum(counts['figure'].values())} claims, rendered, "
                                f"not machine-checked" + (f" ({counts['figure']['error']} failed)"
                                                          if counts['figure']['error'] else "") + "."]
                       + ([f"**{len(failed)} experiment(s) failed**: " + "; ".join(f"{k} ({s})" for k, s in failed)]
                          if failed else []))]
    if failed:
        b += [("h2", "Failed experiments"),
              ("p", "These experiments crashed; their claims are reported as 'error' and the command exits "
                    "with status 1. The first line of each error:"),
              ("table", ["experiment", "error"], [[k, st] for k, st in failed])]
    b += [("h2", "Models"),
          ("p", "Each thesis column is played by one of our models: by default the compact member "
                "of the same family that foolkit trains and ships (smaller and less accurate than "
                "the thesis's networks, so absolute numbers differ; the claims compare trends and "
                "rankings). A stand-in from another family may play several columns, and claims "
                "comparing models are then not checkable. Pass the original checkpoints with "
                "--models cifar10/resnet50=PATH,... to run the thesis's own networks."),
          ("table", ["thesis", "ours", "kind"], results.get("models", [])),
          ("h2", "Input space and units")]
    b += [("p", text) for text in INPUT_SPACE]
    b += [("h2", "Where foolkit differs from the thesis's code"),
          ("list", [f"**{k}**: {v}" for k, v in DIFFERENCES]),
          ("p", "Where an attack offers variant=\"thesis\", it reproduces the thesis code's algorithm above "
                "(in the normalised space of a fk.models.Normalized model); the default is foolkit's own. "
                "Algorithm each experiment used: " + "; ".join(
              f"{e.id} ({variants_text(e, results['experiments'][e.id])})" for e in EXPERIMENTS
              if e.tables and (results["experiments"].get(e.id) or {}).get("points")) + "."),
          ("p", VARIANT_LIMITS),
          ("h2", "How claims are judged"),
          ("p", TOLERANCES),
          ("h2", "Verdicts"),
          ("p", "Verdict: on our numbers. 'On the thesis's numbers': the same check run on the "
                "thesis's printed tables, taken as exact (a check of the check: it must hold wherever "
                "a table exists; 'no table' for figures). Group: (i) trend and ranking, (ii) a level of "
                "the thesis's own networks, (iii) illustrative figure."),
          ("table", ["experiment", "claim", "group", "verdict", "measured / reason", "on the thesis's numbers"],
           [[v["experiment"], v["claim"], {"trend": "i", "networks": "ii", "figure": "iii"}[v["group"]],
             v["verdict"], "; ".join(x for x in (v["measured"], v["reason"]) if x), v["thesis"]]
            for v in verdicts]),
          ("h2", "Tables and figures"),
          ("table", ["id", "experiment", "status"],
           [[r, e.id, (results["experiments"].get(e.id) or {}).get("status", "not run in this mode")]
            for r in TABLE_IDS + FIGURE_IDS for e in EXPERIMENTS if r in e.thesis_refs])]
    by_exp: dict[str, list[dict]] = {}
    for v in verdicts:
        by_exp.setdefault(v["experiment"], []).append(v)
    for exp in EXPERIMENTS:
        entry = results["experiments"].get(exp.id) or {"status": "not run in this mode", "points": []}
        status = entry.get("status", "not run in this mode")
        b.append(("h2", f"{exp.title} ({exp.id})", exp.id))
        b.append(("p", f"Status: {status}" + (f" in {entry['seconds']:.0f} s" if entry.get("seconds") else "") +
                  (f". Images: {entry['images']}" if entry.get("images") else "") + "."))
        runs = "; ".join(f"{r.attack} {dict(r.params)}" + (f" grid {dict(r.grid)}" if r.grid else "") +
                         (f" (thesis: {dict(r.thesis)})" if r.thesis else "") + (f" [{r.units}]" if r.units else "")
                         for r in exp.runs)
        b.append(("p", f"Runs (our units): {runs}"))
        for note in ([exp.notes] if exp.notes else []) + entry.get("notes", []):
            b.append(("p", f"Note: {note}"))
        for ref in exp.tables:
            b.append(("h3", f"{ref.replace('-', ' ').capitalize()}: {NUMBERS['tables'][ref]['caption']} "
                            f"[{sample_size(exp, entry)}]", ref))
            if status != "done":
                b.append(("p", f"Ours: {status}. Thesis's numbers:"))
            b += table_blocks(ref, results)
        for ref in exp.figures:
            b.append(("h3", f"{ref.replace('-', ' ').capitalize()}: {NUMBERS['figures'][ref]['caption']}", ref))
            b.append(("p", f"Thesis: {NUMBERS['figures'][ref]['shows']}. Sample: {sample_size(exp, entry)}."))
            files = []
            if status == "done":
                try:
                    files = figure_images(ref, exp, entry, store, out)
                except Exception as exc:  # a figure must not lose the report
                    b.append(("p", f"Figure failed: {type(exc).__name__}: {exc}"))
            why = status if status != "done" else "no image"
            if status == "done" and not any(p["metrics"].get("n_attacked") for p in entry["points"]):
                why = "no image: the model misclassifies the image(s), so none was attacked"
            b += [("img", f, ref) for f in files] or [("p", f"Ours: {why}.")]
        if exp.id in CUSTOM_BLOCKS:  # issues #21 / #22: tables and figures of their own
            try:
                b += CUSTOM_BLOCKS[exp.id](exp, entry, results, store, out)
            except Exception as exc:  # a table must not lose the report
                b.append(("p", f"Section failed: {type(exc).__name__}: {exc}"))
        if exp.claims:
            b.append(("h3", f"Claims ({exp.id})", f"{exp.id}-claims"))
            b.append(("list", [f"**{v['verdict']}**: {v['claim']} ({v['check']}). Thesis: “{v['claim_text']}” "
                               + (f"Measured: {v['measured']}. " if v["measured"] else "")
                               + (f"({v['reason']}) " if v["reason"] else "")
                               + f"On the thesis's numbers: {v['thesis']}." for v in by_exp.get(exp.id, [])]))
    return b


def _stronger_blocks(exp: Experiment, entry: dict, results: dict, store: str, out: Path) -> list[tuple]:
    from .stronger import blocks
    return blocks(exp, entry, results, store, out)


def _part4_blocks(exp: Experiment, entry: dict, results: dict, store: str, out: Path) -> list[tuple]:
    from .part4 import blocks
    return blocks(exp, entry, results, store, out)


CUSTOM_BLOCKS = {"table-12.3-stronger": _stronger_blocks, "part-iv": _part4_blocks}


def to_markdown(blocks: list[tuple]) -> str:
    """The blocks of ``build`` as Markdown."""
    lines = []
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + blk[1], ""]
        elif kind == "p":
            lines += [blk[1], ""]
        elif kind == "table":
            cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines.append("| " + " | ".join(cell(h) for h in blk[1]) + " |")
            lines.append("|" + "---|" * len(blk[1]))
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in blk[2]]
            lines.append("")
        elif kind == "img":
            lines += [f"![{blk[2]}]({blk[1]})", ""]
        elif kind == "list":
            lines += [f"- {item}" for item in blk[1]] + [""]
    return "\n".join(lines)


def to_html(blocks: list[tuple]) -> str:
    """The blocks of ``build`` as one HTML page (verdict cells coloured)."""
    import re
    e = html.escape
    bold = lambda s: re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", e(s))  # noqa: E731
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>foolkit reproduce</title><style>"
             "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}th{background:#eee}"
             "img{max-width:100%}.holds{color:#1a7f37}.does-not-hold{color:#c0392b}.inconclusive{color:#a06000}.error{color:#c0392b;font-weight:bold}</style></head><body>"]
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2", "h3"):
            anchor = f" id='{e(blk[2])}'" if len(blk) > 2 else ""
            parts.append(f"<{kind}{anchor}>{e(blk[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{bold(blk[1])}</p>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in blk[1]) + "</tr>")
            for row in blk[2]:
                cells = "".join(f"<td class='{str(c).replace(' ', '-')}'>{e(str(c))}</td>" for c in row)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
        elif kind == "img":
            parts.append(f"<p><img src='{e(blk[1])}' alt='{e(blk[2])}'></p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{bold(i)}</li>" for i in blk[1]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reproduction(out: str | Path, results: dict, store: str) -> Path:
    """Write ``<out>/report.md`` and ``<out>/report.html`` for ``results`` (figures from ``store``
    into ``<out>/figures/``) -> the Markdown path."""
    out = Path(out)
    blocks = build(results, store, out)
    md = out / "report.md"
    write_text(md, to_markdown(blocks))
    write_text(out / "report.html", to_html(blocks))
    return md
