"""Fit a universal perturbation for a model and save it with its card (``foolkit fit-universal``).

Images: CIFAR-10 models read ``data`` (official or ImageFolder root; default $FOOLKIT_DATA,
else the bundled 1,000 test images); other models read every image file under ``data`` (a
folder of photos, resized and centre-cropped to the model's input). The first ``n`` images
are the set X the perturbation is fitted on; the next ``n_test`` (default: up to ``n`` of the
images left) measure its fooling rate on unseen images.

Example:
    >>> x_fit, x_test, source = load_fit_images("cifar10/resnet20", None, None, n=500, n_test=None)
    >>> uap = UniversalPerturbation(norm="inf", xi=10 / 255)
    >>> saved = fit_and_save(uap, model, x_fit, x_test, "v.pt", model_name="cifar10/resnet20", data=source)
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import norms
from ..errors import DataError
from ..runtime.files import IMAGE_SUFFIXES
from .universal_io import UniversalFile, load_universal, norm_text, save_universal



def _photos(root: Path, size: int, count: int) -> tuple[torch.Tensor, int]:
    from ..data.images import load_image

    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"--data {root}: ImageNet models need a folder of photos")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    files = files[:count]
    return torch.cat([load_image(f, size) for f in files]), len(files)


def load_fit_images(model: Any, data: str | os.PathLike | None, split: str | None, n: int,
                    n_test: int | None) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``(x_fit [n,3,S,S], x_test or None, description of the source)``, in [0,1], for the model's
    data set. ``model``: a registered name, or a :class:`~foolkit.models.sources.ResolvedModel`
    (CIFAR-10 when it takes 3x32x32 images or does not say)."""
    from ..data.cifar10 import _to_tensors, load_cifar10_uint8
    from ..models.registry import card

    if isinstance(model, str):
        c = card(model)
        dataset, size = c.dataset, int(c.input_size)
    else:  # a model from a file: CIFAR-10 when it takes 3x32x32 (or any) images, else photos
        shape = model.input_size
        dataset = "cifar10" if shape in (None, (3, 32, 32)) else f"{'x'.join(map(str, shape))} images"
        size, model = (shape[1] if shape else 32), model.name
    want = n + (n if n_test is None else n_test)
    if dataset == "cifar10":
        has_root = data is not None or bool(os.environ.get("FOOLKIT_DATA"))
        split = split or ("train" if has_root else "test")
        images, labels = load_cifar10_uint8(split, data)
        if len(images) < n:
            raise DataError(f"--n {n}: the CIFAR-10 {split} split here has only {len(images)} images")
        images, labels = images[:want], labels[:want]
        x, _ = _to_tensors(images, labels)
        source = f"CIFAR-10 {split} ({'bundled subset' if not has_root else data or os.environ['FOOLKIT_DATA']})"
    else:
        if data is None:
            raise DataError(f"{model} ({dataset}): pass --data FOLDER of photos to fit the perturbation on")
        x, found = _photos(Path(data), size, want)
        if found < n:
            raise DataError(f"--n {n}: only {found} images under {data}")
        source = f"photos under {data}"
    x_fit = x[:n]
    rest = x[n:]
    if n_test is not None:
        if n_test > len(rest):
            raise DataError(f"--n-test {n_test}: only {len(rest)} images left after the {n} of X")
        rest = rest[:n_test]
    return x_fit, (rest if len(rest) else None), source


def fit_and_save(uap: Any, model: nn.Module, x_fit: torch.Tensor, x_test: torch.Tensor | None,
                 out: str | os.PathLike, *, model_name: str, data: str,
                 checkpoint: str | os.PathLike | None = None) -> UniversalFile:
    """Fit ``uap`` (an unfitted :class:`~foolkit.attacks.universal.UniversalPerturbation`) on
    ``x_fit``, measure its fooling rate (vs the clean predictions) on ``x_fit`` and ``x_test``, save
    it to ``out`` with its card and read the file back (the :class:`UniversalFile` returned;
    ``uap.history_`` has the passes). Raises ``RuntimeError`` if the file does not read back equal."""
    uap.fit(model, x_fit)
    rates = {"fit": float(uap.fooling_rate_)}
    if x_test is not None:
        res = uap(model, x_test.to(x_fit.device))  # labels = clean predictions: the paper's fooling rate
        rates["test"] = float((res.adv_label != res.clean_label).double().mean())
    v = uap.perturbation_
    params = dict(uap.params())
    params["norm"] = norm_text(uap.norm)
    params["deepfool_norm"] = norm_text(uap.deepfool_norm)
    history = [{k: float(val) if isinstance(val, float) else val for k, val in h.items()} for h in uap.history_]
    save_universal(out, v, model=model_name, norm=uap.norm, xi=uap.xi, fooling_rates=rates, n_fit=len(x_fit),
                   n_test=0 if x_test is None else len(x_test), data=data, checkpoint=checkpoint,
                   params=params, history=history,
                   norms={"l2": float(norms.lp_norm(v.reshape(1, -1), 2)[0]),
                          "linf": float(norms.lp_norm(v.reshape(1, -1), math.inf)[0])})
    loaded = load_universal(out)  # what --perturbation will read: check it round-trips
    if not torch.equal(loaded.perturbation, v.detach().to("cpu", torch.float32)):
        raise RuntimeError(f"{out} does not read back equal to the fitted perturbation")
    return loaded


__all__ = ["fit_and_save", "load_fit_images"]
