"""Figures of attack results: the drawing basics every foolkit figure shares, and one attacked
image as a figure: original | perturbation (scaled to be visible) | adversarial.

The basics: :func:`new_figure` (pyplot-free, on its own Agg canvas), :func:`png_bytes`,
:func:`to_hwc`, :func:`amplify` (the one scaling of a perturbation, with :func:`scale_label`
stating its factor) and :func:`format_percent`. The HTML report's plots
(:mod:`foolkit.report.plots`) and the experiments' figures are drawn with them.

``fk.show(result, index=0, classes="cifar10")`` returns a matplotlib ``Figure``. pyplot is never
touched (the figure has its own Agg canvas), so it works on headless machines, leaves the
caller's backend and open figures alone, and is not shown twice in Jupyter: the returned
figure renders inline as a PNG (``_repr_png_``) when it is the value of a cell.

Extras, when the result has them:
- One Pixel results (``extra["probability_trace"]``): a 4th panel with the best candidate's
  probability of the label (or of the target) per generation.
- Few changed pixels (SparseFool, One Pixel, or any result changing at most
  :data:`SPARSE_FRACTION` of the pixels or :data:`SPARSE_PIXELS` pixels): the changed pixels are circled (up to
  :data:`MAX_CIRCLES` of them; beyond that the changed regions are outlined) on the perturbation
  and adversarial panels.

Example:
    >>> result = fk.attacks.DeepFool(norm=2)(model, x, y)
    >>> fig = fk.show(result, index=3, classes="cifar10")
    >>> fig.savefig("deepfool.png")
"""
from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch
from ..errors import InputError

SPARSE_FRACTION = 0.02  # at most this fraction of pixels changed: mark them
SPARSE_PIXELS = 10  # ... or at most this many
MAX_CIRCLES = 30  # circle at most this many pixels; beyond, outline the changed regions
SPARSE_ATTACKS = ("SparseFool", "OnePixel")


def _figure_class():
    from matplotlib.figure import Figure

    class AttackFigure(Figure):
        """A ``Figure`` on its own Agg canvas that Jupyter renders inline without pyplot."""

        def _repr_png_(self) -> bytes:
            return png_bytes(self)

    return AttackFigure


_FIGURE_CLASS = None


def new_figure(width: float, height: float):
    """A pyplot-free figure with an Agg canvas (``savefig`` and Jupyter display both work)."""
    global _FIGURE_CLASS
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if _FIGURE_CLASS is None:
        _FIGURE_CLASS = _figure_class()
    fig = _FIGURE_CLASS(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, cropped to what is drawn (``bbox_inches="tight"``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def resolve_classes(classes) -> Sequence[str] | None:
    """``None``, a sequence of names, or a dataset name (``"cifar10"``, ``"imagenet"``)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        from ..data.classes import class_names
        return class_names(classes)
    return list(classes)


def class_label(k: int, classes: Sequence[str] | None) -> str:
    """``"cat"`` for names (``"class 3"`` without, or for an index beyond the names)."""
    k = int(k)
    if classes is not None and 0 <= k < len(classes):
        return str(classes[k])
    return f"class {k}"


def _short(name: str, width: int = 28) -> str:
    name = name.split(",")[0].strip() if len(name) > width else name  # "tabby, tabby cat" -> "tabby"
    return name if len(name) <= width else name[:width - 1] + "…"


def to_hwc(img) -> np.ndarray:
    """An image ``[C,H,W]`` (tensor or array) as float64 ``[H,W,C]`` (``[H,W]`` for one
    channel) clipped to [0,1], for ``imshow``."""
    if isinstance(img, torch.Tensor):
        img = img.detach().to("cpu", torch.float64).numpy()
    a = np.clip(np.asarray(img, dtype=np.float64), 0, 1)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def amplify(r) -> tuple[np.ndarray, float]:
    """A perturbation made visible: ``clip(0.5 + k r, 0, 1)`` with ``k = 0.5 / max|r|``.

    The one scaling used by :func:`show`, the HTML report and the experiment figures, so a
    caption's factor is the factor drawn.

    Args:
        r: the perturbation, a tensor or array ``[C,H,W]`` (any shape works), values in [-1,1].

    Returns:
        ``(image, k)``: a float64 array of ``r``'s shape in [0,1] (unchanged entries mid-grey)
        and the factor ``k``: > 1 when ``r`` was enlarged, < 1 when it was shrunk (``max|r|``
        above 0.5). An all-zero (or empty) ``r`` is drawn as it is: all mid-grey, ``k = 1``
        (not ``k = 0``: nothing was scaled, and a caption "shrunk ×0" would state a factor that
        was never applied; ``0.5 / 0`` is no factor at all).
    """
    if isinstance(r, torch.Tensor):
        r = r.detach().to("cpu", torch.float64).numpy()
    r = np.asarray(r, dtype=np.float64)
    peak = float(np.abs(r).max()) if r.size else 0.0
    k = 0.5 / peak if peak > 0 and math.isfinite(peak) else 1.0
    return np.clip(0.5 + k * r, 0, 1), k


def format_factor(k: float) -> str:
    """``12``, ``0.6``, ``3.47``, ``1500``: a scale factor to 3 significant digits (whole
    numbers from 100 on), in plain decimals, never scientific notation."""
    k = float(k)
    if not math.isfinite(k) or k <= 0:
        return f"{k:g}"
    if k >= 100:
        return f"{k:.0f}"
    text = f"{k:.{max(0, 2 - math.floor(math.log10(k)))}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def scale_label(k: float, what: str = "perturbation") -> str:
    """The caption of an :func:`amplify` panel, stating the factor actually used:
    ``"perturbation amplified ×12"``, ``"perturbation shrunk ×0.6"``, ``"perturbation ×1"``."""
    how = "amplified " if k > 1 else "shrunk " if k < 1 else ""
    return f"{what} {how}×{format_factor(k)}"


def format_percent(fraction: float, decimals: int = 1) -> str:
    """A share in [0,1] as a percentage with ``decimals`` decimals, more where needed so that
    a nonzero share never reads as 0 % and a share below 1 never reads as 100 %; never in
    scientific notation. ``0.9994 -> "99.9%"``, ``1/50176 -> "0.002%"``, ``0.99996 -> "99.996%"``.
    """
    p = 100.0 * float(fraction)
    if not math.isfinite(p):
        return f"{p}%"
    if p == 0 or p == 100:
        return f"{p:.0f}%"
    for d in range(decimals, 12):
        text = f"{p:.{d}f}"
        if (p <= 0 or float(text) > 0) and (p >= 100 or float(text) < 100):
            return text + "%"
    return f"<{10.0 ** -11:.11f}%" if p < 50 else f">{100 - 10.0 ** -11:.11f}%"


def _fmt_norm(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 or value == 0 else f"{value:.2e}"


def changed_pixels(r: torch.Tensor) -> torch.Tensor:
    """Boolean ``[H,W]``: pixels of the perturbation ``[C,H,W]`` with any channel changed."""
    return (r != 0).any(dim=0)


def _is_sparse(result, mask: torch.Tensor, mark_pixels) -> bool:
    if mark_pixels is not None:
        return bool(mark_pixels)
    n = int(mask.sum())
    if n == 0:
        return False
    return result.attack_name in SPARSE_ATTACKS or n <= max(SPARSE_PIXELS, SPARSE_FRACTION * mask.numel())


def show(result, index: int = 0, classes=None, *, title: str | None = None, mark_pixels: bool | None = None,
         subtitle: str | None = None, width: float = 3.2):
    """Figure of one sample of an :class:`~foolkit.attacks.AttackResult`.

    Args:
        result: the attack's result (any attack).
        index: which sample of the batch (negative counts from the end).
        classes: class names: a sequence, ``"cifar10"``, ``"imagenet"``, or None ("class k").
        title: the figure's title (default: the attack, its parameters, iterations, pixels changed).
        mark_pixels: circle/outline the changed pixels (default: for SparseFool, One Pixel, or when
            at most 2 % of the pixels, or 10 pixels, changed).
        subtitle: an extra line under the title (e.g. how the photo was cropped).
        width: inches per panel.

    Returns:
        ``matplotlib.figure.Figure`` with 3 axes (original, perturbation, adversarial), 4 when
        the result has ``extra["probability_trace"]`` (One Pixel). Axis titles name the classes.
    """
    n = len(result.x)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise InputError(f"index must be an int, got {index!r}")
    if not -n <= index < n:
        raise InputError(f"index {index} is out of range for a result of {n} sample(s)")
    i = int(index) % n
    names = resolve_classes(classes)
    x, xa = result.x[i], result.x_adv[i]
    r = (xa - x).detach()
    clean_k, adv_k = int(result.clean_label[i]), int(result.adv_label[i])
    clean_p, adv_p = float(result.clean_confidence[i]), float(result.adv_confidence[i])
    attacked, success = bool(result.attacked[i]), bool(result.success[i])
    trace = result.extra.get("probability_trace") if isinstance(result.extra, dict) else None
    has_trace = isinstance(trace, torch.Tensor) and trace.ndim == 2 and trace.shape[0] == n
    mask = changed_pixels(r)
    n_changed = int(mask.sum())
    sparse = _is_sparse(result, mask, mark_pixels)

    panels = 4 if has_trace else 3
    fig = new_figure(width * panels, width + 0.9 + (0.25 if subtitle else 0))
    axes = fig.subplots(1, panels)

    ax = axes[0]
    ax.imshow(to_hwc(x), interpolation="nearest")
    ax.set_title(f"original: {_short(class_label(clean_k, names))}\n{format_percent(clean_p)} (class {clean_k})",
                 fontsize=10)

    ax = axes[1]
    img, k = amplify(r)
    ax.imshow(to_hwc(img), interpolation="nearest")
    l2 = float(r.flatten().norm(2))
    linf = float(r.abs().max()) if r.numel() else 0.0
    if n_changed == 0:
        ax.set_title("perturbation: none", fontsize=10)
    else:
        ax.set_title(f"{scale_label(k)}\nL2 {_fmt_norm(l2)}, L∞ {_fmt_norm(linf)} = {255 * linf:.3g}/255",
                     fontsize=10)

    ax = axes[2]
    ax.imshow(to_hwc(xa), interpolation="nearest")
    if not attacked:
        verdict = "not attacked (misclassified)" if result.target is None or clean_k != int(result.target[i]) \
            else "not attacked (already the target)"
    elif success:
        verdict = "fooled"
    else:
        verdict = "not fooled"
    ax.set_title(f"adversarial: {_short(class_label(adv_k, names))}\n"
                 f"{format_percent(adv_p)} (class {adv_k}), {verdict}",
                 fontsize=10, color="black" if success or not attacked else "firebrick")
    if sparse and n_changed:
        rows, cols = np.nonzero(mask.cpu().numpy())
        h, w = mask.shape
        if n_changed <= MAX_CIRCLES:
            size = max(30.0, 2000.0 / max(h, w))
            for a in (axes[1], axes[2]):
                a.scatter(cols, rows, s=size, facecolors="none", edgecolors="red", linewidths=1.0)
                a.set_xlim(-0.5, w - 0.5)
                a.set_ylim(h - 0.5, -0.5)
        else:  # outline the changed regions, grown a little, so the pixels themselves stay visible
            grow = max(1, round(max(h, w) / 112))
            grown = torch.nn.functional.max_pool2d(mask[None, None].float().cpu(), 2 * grow + 1, stride=1,
                                                   padding=grow)[0, 0]
            m = np.pad(grown.numpy().astype(float), 1)
            grid = np.arange(-1, max(h, w) + 1)
            for a in (axes[1], axes[2]):
                a.contour(grid[:w + 2], grid[:h + 2], m, levels=[0.5], colors="red", linewidths=1.0)
                a.set_xlim(-0.5, w - 0.5)
                a.set_ylim(h - 0.5, -0.5)
    for a in axes[:3]:
        a.set_xticks([])
        a.set_yticks([])

    if has_trace:
        assert trace is not None  # has_trace: a tensor
        ax = axes[3]
        t = trace[i].detach().to("cpu", torch.float64).numpy()
        ok = ~np.isnan(t)
        gens = np.arange(len(t))
        ax.plot(gens[ok], t[ok], marker=".", color="tab:blue")
        targeted = result.target is not None
        wanted = int(result.target[i]) if targeted else int(result.label[i])
        who = _short(class_label(wanted, names), 20)
        ax.set_title(f"probability of {'target' if targeted else 'label'}\n{who}", fontsize=10)
        ax.set_xlabel("generation")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(1, len(t) - 1))
        ax.grid(alpha=0.3)

    if title is None:
        params = getattr(result, "params", {}) or {}
        shown = {key: v for key, v in params.items() if isinstance(v, (int, float, str, bool)) and key in
                 ("norm", "eps", "overshoot", "lambda_", "delta", "pixels", "xi", "max_iter")}
        ptxt = ", ".join(f"{key.rstrip('_')}={'inf' if isinstance(v, float) and math.isinf(v) else v}"
                         for key, v in shown.items())
        name = result.attack_name or "attack"
        title = f"{name}({ptxt})" if ptxt else name
        total = mask.numel()
        its = int(result.iterations[i])
        title += f" — {its} iteration(s)," if its else " —"
        title += f" {n_changed} of {total} pixels changed"
        if n_changed and n_changed < total:
            title += f" ({format_percent(n_changed / total)})"
    text = title if subtitle is None else f"{title}\n{subtitle}"
    fig.suptitle(text, fontsize=10)
    fig.tight_layout()
    return fig
