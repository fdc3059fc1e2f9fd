"""One self-contained HTML report of every run in a store (images inlined as base64 PNG).

Example:
    >>> from foolkit.report import write_report
    >>> write_report("runs/x.db", "report.html")
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import os
from pathlib import Path

import numpy as np

from ..evaluation import metrics as _metrics
from ..evaluation.store import Store
from ..evaluation.store_format import decode
from ..runtime.files import write_text
from . import plots


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI: the report inlines its images, so it is one file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value, fmt="{:.4f}", scale=1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if fmt == "{:d}":
        return str(int(value))
    return fmt.format(value * scale)


def _pick(samples: list[dict], k: int) -> list[dict]:
    """Up to k fooled samples, spread over the run (first, then evenly)."""
    fooled = [s for s in samples if s["attacked"] and s["success"] and s["verified"]]
    if k <= 0:
        return []
    if len(fooled) <= k:
        return fooled
    step = len(fooled) / k
    return [fooled[int(i * step)] for i in range(k)]


def _run_section(store: Store, info: dict, max_images: int, max_traces: int) -> dict:
    run_id = info["run_id"]
    samples = store.samples(run_id)
    m = _metrics.compute(samples)
    classes = info["config"].get("classes")
    fooled = [s for s in samples if s["attacked"] and s["success"] and s["verified"]]
    section = {"run_id": run_id, "title": info["title"], "metrics": m, "n_done": info["n_done"],
               "n_total": info["n_total"], "config": info["config"], "figures": [], "notes": []}
    if not samples:
        return section
    section["figures"].append({
        "caption": f"Perturbation norms of the {len(fooled)} fooled images",
        "uri": data_uri(plots.norm_histograms([s["l2"] for s in fooled], [s["linf"] for s in fooled]))})
    chosen = _pick(samples, max_images)
    blobs = store.blobs(run_id, [s["idx"] for s in chosen])
    items = []
    for s in chosen:
        b = blobs.get(s["idx"])
        if not b or b["image"] is None:
            continue
        x = b["image"]
        r = b["perturbation"] if b["perturbation"] is not None else np.zeros_like(x)
        items.append({"x": x, "r": r, "x_adv": x + r, "label": s["label"], "clean_conf": s["clean_conf"] or 0.0,
                      "adv_label": s["adv_label"], "adv_conf": s["adv_conf"] or 0.0})
    if items:
        section["figures"].append({
            "caption": "Original (true class, confidence), perturbation scaled to be visible (0.5 + k·r, factor k "
                       "above each panel: amplified when k > 1, shrunk when k < 1), adversarial image "
                       "(predicted class, confidence), as in thesis Fig. 12.5",
            "uri": data_uri(plots.image_grid(items, classes))})
    # probability traces (One Pixel attack) from the stored per-sample extras
    if store.has_extra(run_id, "probability_trace"):
        attacked = [s for s in samples if s["attacked"]]
        picked = (fooled[:max_traces // 2] + [s for s in attacked if not s["verified"]][:max_traces // 2]) or attacked
        picked = picked[:max_traces]
        trace_blobs = store.blobs(run_id, [s["idx"] for s in picked])
        traces, names = [], []
        for s in picked:
            extra = (trace_blobs.get(s["idx"]) or {}).get("extra") or {}
            if "probability_trace" in extra:
                t = np.asarray(extra["probability_trace"], dtype=np.float64)
                traces.append(t[~np.isnan(t)] if np.isnan(t).any() else t)
                names.append(f"#{s['idx']} {'fooled' if s['verified'] else 'not fooled'}")
        if traces:
            targeted = any(s.get("target") is not None for s in picked)
            section["figures"].append({
                "caption": "Best candidate's probability per generation (thesis Fig. 12.16)",
                "uri": data_uri(plots.probability_traces(
                    traces, names, threshold=0.5 if targeted else 0.1,
                    ylabel="probability of the target" if targeted else "probability of the true class"))})
    fit = store.artifact(run_id, "universal_fit")
    if fit is not None:
        try:
            info = json.loads(fit.decode())
            section["notes"].append(
                f"Universal perturbation fitted on X = the first {info.get('fit_size', '?')} images in "
                f"{_fmt(info.get('seconds'), '{:.1f}')} s, {info.get('passes', '?')} pass(es) over X, fooling rate on X "
                f"during the fit {_fmt(info.get('fooling_rate'), '{:.1f}', 100)}% (against the clean predictions); "
                f"ms/img counts adding it, not fitting it.")
        except ValueError:
            pass
    blob = store.artifact(run_id, "universal_perturbation")
    if blob is not None:
        v = np.asarray(decode(blob))
        v = v.reshape(v.shape[-3:]) if v.ndim >= 3 else v
        section["figures"].append({"caption": "Universal perturbation (thesis Fig. 12.20)",
                                   "uri": data_uri(plots.perturbation_image(v))})
    return section


def _frontier_section(store: Store) -> list[dict]:
    """How close to minimal: per model and norm, the security curves (a figure) and each run's
    optimality and ρ̂ gap against the best known (:mod:`foolkit.evaluation.optimality`)."""
    from ..evaluation import optimality as _opt

    groups = _opt.frontier(store)
    out = []
    for g in groups:
        for s in _opt.summarize([g]):
            lines, notes = _opt.curves(g, s["norm"])
            s["notes"] = notes
            if lines:
                s["uri"] = data_uri(plots.security_curves(lines, s["label"], f"{g.model}, {s['label']}"))
            out.append(s)
    return out


def render(path: str | os.PathLike, max_images: int = 6, max_traces: int = 6) -> str:
    """The report of every run in ``path`` as an HTML string."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    with Store(path, readonly=True) as store:
        sections = [_run_section(store, info, max_images, max_traces) for info in store.runs()]
        frontier = _frontier_section(store)
    columns = [{"key": k, "header": h, "fmt": f, "scale": s} for k, h, f, s in _metrics.TABLE_COLUMNS]
    env = Environment(loader=PackageLoader("foolkit.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["fmt"] = _fmt
    template = env.get_template("report.html.j2")
    from .._version import __version__
    return template.render(store=str(path), sections=sections, columns=columns, frontier=frontier,
                           describe=_metrics.describe, version=__version__,
                           generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))


def write_report(path: str | os.PathLike, out: str | os.PathLike, max_images: int = 6) -> Path:
    """Write the report of ``path`` to ``out`` (folders created); returns the output path."""
    text = render(path, max_images=max_images)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, text)
    return out
