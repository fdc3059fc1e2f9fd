"""What a one-image attack writes (:func:`foolkit.evaluation.single_image.attack_one_image` with
``out=``): the figure, the adversarial image as a lossless 8-bit PNG, and the check that the PNG,
read back as a file, still does what the float image did (8-bit quantisation can undo a very
small attack).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attacks.base import AttackResult, predict
from ..errors import InputError

FIGURE_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")


def save_png(x: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``[1,3,H,W]`` or ``[3,H,W]`` in [0,1] as a lossless 8-bit RGB PNG (rounded to levels)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from ..runtime.files import PNG_SOFTWARE, atomic_path

    img = x[0] if x.ndim == 4 else x
    arr = torch.round(img.detach().to("cpu", torch.float64).clamp(0, 1) * 255).to(torch.uint8)
    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)  # marks it as foolkit's: a rerun may replace it
    with atomic_path(path) as tmp:
        Image.fromarray(arr.permute(1, 2, 0).numpy(), "RGB").save(tmp, format="PNG", optimize=False, pnginfo=info)


def check_outputs(out: str | os.PathLike, inputs: tuple[Any, ...], force: bool) -> tuple[Path, Path]:
    """``(figure path, adversarial PNG path)`` for ``out``, refused before any work when unfit."""
    from ..runtime.files import check_output

    out = Path(out)
    if out.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise InputError(f"--out {out}: the figure needs an image file name ending in .png, .pdf or .svg "
                         f"(got {out.suffix or 'no extension'})")
    if out.exists() and out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as {out / 'result.png'}")
    adv = out.with_name(out.stem + "-adv.png")
    # never an input; an existing image only with force, unless foolkit wrote it (a rerun)
    check_output(out, inputs=inputs, kind="figure", force=force)
    check_output(adv, inputs=inputs, kind="image", force=force)
    return out, adv


def save_figure(fig: Any, out: str | os.PathLike) -> None:
    """Write a matplotlib figure to ``out`` in the format its suffix names (100 dpi, tight)."""
    from ..runtime.files import PNG_SOFTWARE, atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        fmt = out.suffix.lower().lstrip(".")
        fig.savefig(tmp, format=fmt, dpi=100, bbox_inches="tight",
                    metadata={"Software": PNG_SOFTWARE} if fmt == "png" else None)


def save_and_read_back(result: AttackResult, model: nn.Module, adv: Path, target: int | None) -> None:
    """Save the adversarial image as a PNG and read it back as a file (what anyone using the image
    would feed the model) into ``result.extra["png"]``: path, label, confidence, fools."""
    from ..data.images import load_image_with_info

    save_png(result.x_adv, adv)
    x_back, _ = load_image_with_info(adv, None)
    q_label, q_probs = predict(model, x_back.to(result.x.device))
    q_k, q_p = int(q_label[0]), float(q_probs[0, q_label[0]])
    fools = (q_k != int(result.label[0])) if target is None else (q_k == target)
    result.extra["png"] = {"path": str(adv), "label": q_k, "confidence": q_p, "fools": bool(fools)}
