"""The HTML report's plots, as PNG bytes: norm histograms, image grids, probability traces,
universal perturbations and security curves. Drawn on :func:`foolkit.report.figures.new_figure`
(matplotlib's Agg canvas; pyplot is never touched, so the caller's backend and figures are left
alone)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .figures import amplify, format_percent, new_figure, png_bytes, scale_label, to_hwc


def norm_histograms(l2: Sequence[float], linf: Sequence[float], title: str = "") -> bytes:
    """Histograms of ||r||_2 and ||r||_inf (fooled samples)."""
    fig = new_figure(8, 2.8)
    for i, (values, name) in enumerate(((l2, "‖r‖₂"), (linf, "‖r‖∞"))):
        ax = fig.add_subplot(1, 2, i + 1)
        v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
        if len(v):
            ax.hist(v, bins=min(40, max(5, len(v) // 4)), color="#3b6ea8", edgecolor="white")
            ax.axvline(float(np.mean(v)), color="#c0392b", linestyle="--", linewidth=1, label=f"mean {np.mean(v):.4g}")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no fooled sample", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(name)
        ax.set_ylabel("images")
    if title:
        fig.suptitle(title, fontsize=9)
    return png_bytes(fig)


def image_grid(items: Sequence[dict], classes: Sequence[str] | None = None) -> bytes:
    """Thesis Fig. 12.5 style: per row the original, the perturbation scaled to be visible (its
    caption states the factor, see :func:`foolkit.report.figures.scale_label`), the adversarial.

    items: dicts with ``x``, ``r``, ``x_adv`` (``[C,H,W]``), ``label``, ``clean_conf``,
    ``adv_label``, ``adv_conf``.
    """
    def name(k):
        return classes[k] if classes is not None and 0 <= k < len(classes) else str(k)

    rows = max(1, len(items))
    fig = new_figure(6.3, 2.2 * rows)
    for i, it in enumerate(items):
        shown, k = amplify(it["r"])
        none = not np.any(np.asarray(it["r"]))
        panels = ((it["x"], f"{name(it['label'])} {format_percent(it['clean_conf'])}"),
                  (shown, "perturbation: none" if none else scale_label(k)),
                  (it["x_adv"], f"{name(it['adv_label'])} {format_percent(it['adv_conf'])}"))
        for j, (img, caption) in enumerate(panels):
            ax = fig.add_subplot(rows, 3, 3 * i + j + 1)
            hwc = to_hwc(img)
            ax.imshow(hwc, cmap="gray" if hwc.ndim == 2 else None, interpolation="nearest", vmin=0, vmax=1)
            ax.set_title(caption, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    return png_bytes(fig)


def probability_traces(traces: Sequence[np.ndarray], names: Sequence[str], threshold: float | None = 0.1,
                       ylabel: str = "probability of the true class") -> bytes:
    """One Pixel attack: the best candidate's probability after each generation (Fig. 12.16)."""
    fig = new_figure(6, 3)
    ax = fig.add_subplot(1, 1, 1)
    for trace, name in zip(traces, names):
        t = np.asarray(trace, dtype=np.float64).ravel()
        ax.plot(np.arange(len(t)), t, label=name, linewidth=1.2)
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle=":", linewidth=1, label=f"{threshold:g} threshold")
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper right")
    return png_bytes(fig)


def perturbation_image(v: np.ndarray, title: str = "") -> bytes:
    """A universal perturbation, scaled to be visible; the title states the factor (Fig. 12.20)."""
    shown, k = amplify(np.asarray(v, dtype=np.float64).reshape(-1, *np.asarray(v).shape[-2:]))
    fig = new_figure(2.5, 2.7)
    ax = fig.add_subplot(1, 1, 1)
    hwc = to_hwc(shown)
    ax.imshow(hwc, cmap="gray" if hwc.ndim == 2 else None, interpolation="nearest")
    ax.set_title(title or scale_label(k, "universal perturbation"), fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return png_bytes(fig)


def security_curves(curves: Sequence[dict], norm_label: str = "L2", title: str = "") -> bytes:
    """Robust accuracy against ε (a security curve per attack, plus the best known).

    curves: dicts with ``label`` and either ``eps``/``acc`` (``[K]`` arrays, a step curve drawn
    ``where="post"``) or ``point`` = ``(eps, acc)`` (a fixed-budget attack, drawn as a marker);
    ``best=True`` marks the best-known curve (drawn black, dashed). acc in [0, 1].
    """
    fig = new_figure(6, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    for c in curves:
        if "point" in c:
            ax.plot([c["point"][0]], [c["point"][1]], marker="o", linestyle="none", label=c["label"])
        elif c.get("best"):
            ax.step(c["eps"], c["acc"], where="post", color="black", linestyle="--", linewidth=1.6, label=c["label"])
        else:
            ax.step(c["eps"], c["acc"], where="post", linewidth=1.2, label=c["label"])
    ax.set_xlabel(f"ε ({norm_label} norm of the perturbation)")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return png_bytes(fig)
