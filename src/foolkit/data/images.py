"""Single photos (JPEG, PNG, ...) as model inputs: float32 ``[1,3,H,W]`` in [0,1].

``load_image(path, size=224)`` follows the ImageNet evaluation convention: resize the
shorter side to ``round(size * 256 / 224)`` (bicubic, antialiased by Pillow), then crop the
central ``size x size`` square. ``load_image_with_info`` also says what was done.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .cifar10 import DataError

RESIZE_RATIO = 256 / 224  # shorter side before the centre crop, relative to the crop size
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparency is composited onto white."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale PNGs: Pillow's convert("L") would clip instead of scaling.
        arr = np.asarray(im, dtype=np.float64) / 65535.0
        im = Image.fromarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.rint(np.asarray(im) * 255.0), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode in ("RGB", "L") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGB


def load_image_with_info(path: str | os.PathLike, size: int | None = None,
                         resample: str = "bicubic") -> tuple[torch.Tensor, dict]:
    """Read one image file; optionally resize the shorter side and centre-crop to ``size``.

    Args:
        path: a JPEG, PNG or any other file Pillow reads. Any colour mode (RGBA, LA, P, L,
            16-bit greyscale, CMYK, ...) becomes RGB; transparent pixels are composited onto
            white; the EXIF orientation tag is applied.
        size: ``None`` keeps the image as it is; an int resizes the shorter side to
            ``round(size * 256 / 224)`` and crops the central ``size x size`` square.
        resample: ``"bicubic"`` (default) or ``"bilinear"``; Pillow antialiases when shrinking.

    Returns:
        ``(x, info)``: ``x`` float32 ``[1,3,H,W]`` in [0,1]; ``info`` a dict with ``path``,
        ``mode`` (Pillow mode of the file), ``original_size``, ``resized_size`` (both
        ``(width, height)``, after the EXIF rotation) and ``crop_box``
        (``(left, top, right, bottom)`` in resized pixels; the whole image when ``size`` is None).

    Raises:
        DataError: missing path, a directory, or a file that is not a readable image.
    """
    path = Path(path)
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    if not path.exists():
        raise DataError(f"image not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Palette images with Transparency ..."
            with Image.open(path) as im:
                mode = im.mode
                im.load()  # decode now, so truncated files fail here
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {_one_line(exc)}") from exc
    original = im.size
    if size is not None:
        w, h = im.size
        short = max(1, round(size * RESIZE_RATIO))
        new = (short, max(short, round(h * short / w))) if w <= h else (max(short, round(w * short / h)), short)
        if new != im.size:
            im = im.resize(new, _RESAMPLE[resample], reducing_gap=None)
        left = int(round((new[0] - size) / 2.0))
        top = int(round((new[1] - size) / 2.0))
        box = (left, top, left + size, top + size)
        im = im.crop(box)
    else:
        new, box = original, (0, 0, original[0], original[1])
    arr = np.asarray(im, dtype=np.uint8)
    x = torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255.0).unsqueeze(0)
    info = {"path": str(path), "mode": mode, "original_size": original, "resized_size": new, "crop_box": box}
    return x, info


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Read one image as float32 ``[1,3,H,W]`` in [0,1] (see :func:`load_image_with_info`).

    ``size=224`` (or the model card's ``input_size``) gives the ImageNet evaluation crop.
    """
    return load_image_with_info(path, size)[0]
