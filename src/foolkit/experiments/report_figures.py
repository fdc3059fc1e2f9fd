"""The figures of the reproduction report (PNG files in ``<out>/figures/``): line plots of a
quantity along a grid, adversarial images with their perturbations, One Pixel's probability
traces, universal perturbations and bars (``figure_images`` picks one by the spec's ``Show``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import atomic_path
from . import Experiment, Show
from .stats import fmt

FIGURE_IDS = [f"figure-12.{i}" for i in range(1, 27)]
PICTURES = ("x_adv", "perturbation", "probability_trace")


def _fig(width: float, height: float) -> Any:
    from ..report.figures import new_figure
    return new_figure(width, height)


def save_figure(fig: Any, path: Path) -> str:
    """Write ``fig`` as a PNG at ``path`` (atomically) -> its path relative to the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return f"figures/{path.name}"


def _pct(y: str) -> bool:
    return "rate" in y or "acc" in y or "confidence" in y


def _line_plot(show: Show, points: list[dict], path: Path) -> str:
    assert show.x is not None  # figure_images calls this only for a figure with an x
    ys = [y for y in show.y if y not in PICTURES]
    by_series = show.series not in (None, "model") and len(ys) > 1  # Fig. 12.23: a panel per norm
    panels = sorted({str(fmt(p["params"].get(show.series))) for p in points}) if by_series else ys
    fig = _fig(4.2 * len(panels), 3.2)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        series: dict[str, list] = {}
        for p in points:
            if show.x not in p["params"]:
                continue
            if by_series and str(fmt(p["params"].get(show.series))) != panel:
                continue
            for y in (ys if by_series else [panel]):
                if p["metrics"].get(y) is None:
                    continue
                key = y if by_series else (f"{show.series} {fmt(p['params'].get(show.series))}"
                                           if show.series and show.series != "model" else p["model"])
                v = p["metrics"][y]
                series.setdefault(key, []).append((float(p["params"][show.x]), 100 * v if _pct(y) else v))
        for key, seq in series.items():
            seq.sort()
            ax.plot([a for a, _ in seq], [b for _, b in seq], marker="o", label=key)
        ax.set_xlabel(show.x + (" ([0,1] pixels; thesis units = xi / 0.2009)" if show.x == "xi" else ""))
        ylabel = "%" if by_series else panel + (" (%)" if _pct(panel) else "")
        ax.set_ylabel(ylabel)
        if by_series:
            ax.set_title(f"{show.series} {panel}", fontsize=9)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    return save_figure(fig, path)


def _classes(run: Any) -> list | None:
    classes = run.config.get("classes")
    if classes:
        return classes
    name = (run.config.get("model") or {}).get("name", "")
    if name.startswith("imagenet/"):
        from ..data import class_names
        return list(class_names("imagenet"))
    return None


def _image_rows(points: list[dict], store: str, per_point: int, max_rows: int = 8) -> list[dict]:
    from ..evaluation.run import Run
    rows = []
    for p in points:
        run = Run(store, p["run_id"])
        records = run.records()
        samples = [s for s in records if s["attacked"]]
        fooled = [s for s in samples if s["verified"]] or samples or records
        chosen = fooled[:per_point]
        imgs = run.images([s["idx"] for s in chosen])
        classes = _classes(run)
        name = lambda k: classes[k] if classes and k is not None and 0 <= k < len(classes) else str(k)  # noqa: E731
        for s in chosen:
            if s["idx"] not in imgs:
                continue
            im = imgs[s["idx"]]
            params = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
            extra = f", eps {p['min_eps'][s['idx']]:.2f}" if p.get("min_eps") and p["min_eps"][s["idx"]] else ""
            rows.append({"label": "\n".join(x for x in (p["model"].split("/")[-1], params, extra.lstrip(", ")) if x),
                         "x": im["x"], "r": im["perturbation"], "x_adv": im["x_adv"],
                         "clean": f"{name(s['label'])} {100 * (s['clean_conf'] or 0):.0f}%",
                         "adv": f"{name(s['adv_label'])} {100 * (s['adv_conf'] or 0):.0f}%"})
            if len(rows) >= max_rows:
                return rows
    return rows


def _image_grid(rows: list[dict], path: Path) -> str:
    from ..report.figures import amplify, to_hwc
    fig = _fig(6.6, 2.1 * max(1, len(rows)))
    for i, row in enumerate(rows):
        shown, k = amplify(row["r"])
        panels = ((row["x"], row["clean"]), (shown, f"r ×{k:.3g}"), (row["x_adv"], row["adv"]))
        for j, (img, title) in enumerate(panels):
            ax = fig.add_subplot(len(rows), 3, 3 * i + j + 1)
            ax.imshow(to_hwc(img), interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(row["label"], fontsize=6)
    return save_figure(fig, path)


def _traces(show: Show, points: list[dict], store: str, path: Path) -> str | None:
    from ..evaluation.run import Run
    fig = _fig(6, 3)
    ax = fig.add_subplot(1, 1, 1)
    for p in points:
        run = Run(store, p["run_id"])
        for idx, im in sorted(run.images().items())[:3]:
            t = (im["extra"] or {}).get("probability_trace")
            if t is None:
                continue
            t = np.asarray(t, dtype=float).ravel()
            t = t[~np.isnan(t)]
            params = ", ".join(f"{k} {fmt(v)}" for k, v in p["params"].items())
            ax.plot(np.arange(len(t)), t, label=f"image {idx}" + (f" [{params}]" if params else ""))
    if not ax.lines:
        return None
    targeted = any("target" in p["params"] for p in points)
    ax.axhline(0.5 if targeted else 0.1, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("generation")
    ax.set_ylabel("probability of the " + ("target" if targeted else "true class"))
    ax.set_ylim(0, 1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _perturbations(points: list[dict], store: str, path: Path) -> str:
    from ..evaluation.store import Store
    from ..evaluation.store_format import decode
    from ..report.figures import amplify, to_hwc
    fig = _fig(2.3 * max(1, len(points)), 2.6)
    with Store(store, readonly=True) as s:
        for i, p in enumerate(points):
            v = np.asarray(decode(s.artifact(p["run_id"], "universal_perturbation")))
            shown, k = amplify(v.reshape(v.shape[-3:]))
            ax = fig.add_subplot(1, len(points), i + 1)
            ax.imshow(to_hwc(shown), interpolation="nearest")
            params = ", ".join(f"{k2} {fmt(x)}" for k2, x in p["params"].items() if k2 != "deepfool_norm")
            ax.set_title(f"{p['model'].split('/')[-1]} {params}\n×{k:.3g}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    return save_figure(fig, path)


def _bar(points: list[dict], y: str, path: Path) -> str:
    fig = _fig(4, 3)
    ax = fig.add_subplot(1, 1, 1)
    names = [p["model"] for p in points]
    ax.bar(range(len(points)), [p["metrics"].get(y) or 0 for p in points])
    ax.set_xticks(range(len(points)), names, fontsize=7)
    ax.set_ylabel(y)
    return save_figure(fig, path)


def figure_images(fig_id: str, exp: Experiment, entry: dict, store: str, out: Path) -> list[str]:
    """The PNG files of thesis figure ``fig_id`` from ``entry``'s points (paths relative to ``out``)."""
    show = next(s for s in exp.show if s.ref == fig_id)
    points = [p for p in entry["points"] if p.get("run_id")]
    if not points:
        return []
    path = out / "figures" / f"{fig_id}.png"
    if "probability_trace" in show.y:
        return [f for f in [_traces(show, points, store, path)] if f]
    if show.x and show.x != "model" and any(y not in PICTURES for y in show.y):
        return [_line_plot(show, points, path)]
    if "perturbation" in show.y and any(p.get("fit") for p in points):
        return [_perturbations(points[:8], store, path)]
    files = []
    if "min_eps" in show.y:
        files.append(_bar(points, "min_eps", out / "figures" / f"{fig_id}-min-eps.png"))
    k = exp.figures.index(fig_id)
    per = 1 if len(points) >= 4 else max(1, 6 // len(points))
    chosen = points if len(points) > 1 else points
    rows = _image_rows(chosen, store, per + k)
    rows = rows[k:] or rows  # a different image per figure of the same experiment where possible
    if rows:
        files.append(_image_grid(rows, path))
    return files
