"""Single photos (JPEG, PNG, ...) as model inputs: float32 ``[1,3,H,W]`` in [0,1].

``load_image(path, size=224)`` follows the ImageNet evaluation convention: resize the
shorter side to ``round(size * 256 / 224)`` (bicubic, antialiased by Pillow), then crop the
central ``size x size`` square. ``load_image_with_info`` also says what was done.

Hostile files stay cheap: the crop box is computed at the source resolution and only it is
resampled (``Image.resize(box=...)``, the same pixels as resize-then-crop), so a 40000x1 PNG
costs a ``size x size`` output, not a 10-million-pixel-wide intermediate; an image of more
than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a possible decompression bomb) is refused before
it is decoded.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .cifar10 import DataError, missing_path_error
from ..errors import InputError

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

        An animated (or multi-page) file gives its first frame, with a warning; ``info["frames"]``
        holds the number of frames.

    Raises:
        DataError: missing path (or a broken symlink, a symlink loop), a directory, a file that
        is not a readable image, or one of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels.
    """
    path = Path(path)
    if resample not in _RESAMPLE:
        raise InputError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise InputError(f"size must be a positive int or None, got {size!r}")
    if not path.exists():
        raise missing_path_error(path, "image")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not an image file")
    frames = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Palette images with Transparency ..."
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; refuse at the
            # warning, before decoding (a 199-byte PNG can declare gigapixels).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                mode = im.mode
                frames = int(getattr(im, "n_frames", 1) or 1) if getattr(im, "is_animated", False) else 1
                im.load()  # decode now, so truncated files fail here
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"cannot read image {path}: {_one_line(exc).rstrip('.')}; not decoded "
                        f"(raise PIL.Image.MAX_IMAGE_PIXELS to allow larger images)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {_one_line(exc)}") from exc
    if frames > 1:
        warnings.warn(f"{path} is animated ({frames} frames); using the first frame", UserWarning, stacklevel=2)
    original = im.size
    if size is not None:
        w, h = im.size
        short = max(1, round(size * RESIZE_RATIO))
        new = (short, max(short, round(h * short / w))) if w <= h else (max(short, round(w * short / h)), short)
        left = int(round((new[0] - size) / 2.0))
        top = int(round((new[1] - size) / 2.0))
        box = (left, top, left + size, top + size)
        if new == im.size:
            im = im.crop(box)
        else:
            # Resample only the crop: its box in source pixels gives Pillow the same sampling
            # grid and filter support as resize-to-`new`-then-crop, with memory ~ size**2.
            sx, sy = w / new[0], h / new[1]
            source_box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
            im = im.resize((size, size), _RESAMPLE[resample], box=source_box, reducing_gap=None)
    else:
        new, box = original, (0, 0, original[0], original[1])
    arr = np.asarray(im, dtype=np.uint8)
    x = torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div_(255.0).unsqueeze(0)
    info = {"path": str(path), "mode": mode, "original_size": original, "resized_size": new, "crop_box": box,
            "frames": frames}
    return x, info


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Read one image as float32 ``[1,3,H,W]`` in [0,1] (see :func:`load_image_with_info`).

    ``size=224`` (or the model card's ``input_size``) gives the ImageNet evaluation crop.
    """
    return load_image_with_info(path, size)[0]
