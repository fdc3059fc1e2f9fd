"""Attack one image and see the result: ``fk.attack_image`` (Python) and ``foolkit attack --image``.

The photo is resized and centre-cropped to the model's input (the card's ``input_size``: 224
for EfficientNet-Lite0, 32 for the CIFAR-10 models) the ImageNet way (shorter side to
``size * 256/224``, centre crop); an image already of exactly that size is used as it is.
What was done is stated (``result.extra["image"]`` and the figure's subtitle).

Example:
    >>> result, fig = fk.attack_image("cat.jpg", model="imagenet/efficientnet-lite0", attack="deepfool")
    >>> fig.savefig("cat-deepfool.png"); result.adv_label, result.norms(2)

Command line (:func:`foolkit.commands.image_attack.run_image_command`)::

    foolkit attack --image cat.jpg [--model imagenet/efficientnet-lite0] --attack deepfool [--norm inf]
                   [--target CLASS] [--out result.png]
    foolkit attack --cifar-index 7 --model cifar10/resnet20 --attack sparsefool
    foolkit attack --image cat.jpg --perturbation v.pt        # a saved universal perturbation

It prints the crop, the original and adversarial classes with their confidence, the
iterations and the perturbation's norms, writes the figure to ``--out`` and the adversarial
image as a lossless 8-bit PNG next to it (``result-adv.png``), then reads that PNG back and
says whether it still fools the model (8-bit quantisation can undo a very small attack).
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .attacks.base import Attack, AttackResult, predict, validate_images

DEFAULT_IMAGE_MODEL = "imagenet/efficientnet-lite0"
DEFAULT_CIFAR_MODEL = "cifar10/resnet20"
DEFAULT_ATTACK = "deepfool"
PARAM_PREFIX = "param__"  # attack parameters on args, as foolkit.commands.attack stores them

# --------------------------------------------------------------------------- image input
def _fmt_size(wh) -> str:
    return f"{wh[0]}x{wh[1]}"


def describe_crop(info: dict, size: int) -> str:
    """One line: what was done to the photo to make it the model's ``size x size`` input."""
    name = Path(info["path"]).name
    mode = info.get("mode", "?")
    orig, new, box = tuple(info["original_size"]), tuple(info["resized_size"]), tuple(info["crop_box"])
    text = f"{name} ({_fmt_size(orig)} {mode})"
    if orig == (size, size) and new == orig:
        text += f": used as is (the model's {size}x{size} input)"
    else:
        text += (f" -> resized to {_fmt_size(new)} (bicubic), centre crop {size}x{size} at "
                 f"x {box[0]}..{box[2]}, y {box[1]}..{box[3]}")
        factor = min(new) / min(orig)
        if factor > 1:
            text += f"; upscaled x{factor:.1f}, so the model sees a blurry image"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La", "P"):
        text += "; transparency (if any) composited onto white"
    elif mode in ("L", "1", "I", "I;16", "F"):
        text += "; greyscale copied to R, G, B"
    elif mode == "CMYK":
        text += "; CMYK converted to RGB"
    if info.get("frames", 1) > 1:
        text += f"; animated ({info['frames']} frames): the first frame is used"
    return text


def load_for_model(path: str | os.PathLike, size: int) -> tuple[torch.Tensor, dict]:
    """Read ``path`` as the model's ``[1,3,size,size]`` input; ``info`` as in
    :func:`foolkit.data.load_image_with_info` plus ``"description"`` (see :func:`describe_crop`).

    An image of exactly ``size x size`` pixels is used as it is; any other is resized (shorter
    side to ``size * 256/224``) and centre-cropped.
    """
    from PIL import Image

    from .data.images import load_image_with_info

    dims = None
    try:
        with warnings.catch_warnings():  # e.g. DecompressionBombWarning: reported below as one line
            warnings.simplefilter("ignore")
            with Image.open(path) as im:  # reads the header only
                dims = im.size
    except Exception:  # noqa: BLE001 -- load_image_with_info reports the problem properly
        pass
    if dims == (size, size):
        x, info = load_image_with_info(path, None)
        if tuple(info["original_size"]) != (size, size):
            x, info = load_image_with_info(path, size)
    else:
        x, info = load_image_with_info(path, size)
    info["description"] = describe_crop(info, size)
    return x, info


# --------------------------------------------------------------------------- model, attack, target
def _model_and_card(model, checkpoint=None, device="cpu", size=None):
    """``(nn.Module, name, input size, dataset or None)`` for a registered name or a module."""
    from .models import registry

    if isinstance(model, nn.Module):
        if size is None:
            raise ValueError("pass size=INPUT_SIZE (e.g. 224) when the model is an nn.Module, not a registered name")
        return model.eval(), type(model).__name__, int(size), None
    if not isinstance(model, str):
        raise ValueError(f"model must be a registered name or an nn.Module, got {type(model).__name__}")
    c = registry.card(model)
    net = registry.load(model, checkpoint=checkpoint, device=device)
    return net, model, int(size or c.input_size), c.dataset


def make_attack(attack, params: dict | None = None) -> Attack:
    """An attack instance from an instance (params must be empty), a class or a registry name.

    ``params`` values may be strings (command-line text, converted by the parameter's type)."""
    params = dict(params or {})
    if isinstance(attack, Attack):
        if params:
            raise ValueError(f"attack parameters {sorted(params)} given with an attack instance; "
                             f"pass them to its constructor instead")
        return attack
    if isinstance(attack, type) and issubclass(attack, Attack):
        return attack(**params)
    if not isinstance(attack, str):
        raise ValueError(f"attack must be a name, an Attack class or instance, got {type(attack).__name__}")
    from .attacks import registry

    cls = registry.get(attack)
    known = {p.name: p for p in registry.parameters(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{attack} has no parameter {', '.join(unknown)} (its parameters: "
                         f"{', '.join(known) or 'none'})")
    params = {k: registry.convert(known[k], v) if isinstance(v, str) else v for k, v in params.items()}
    return cls(**params)


def resolve_target(target, classes=None, num_classes: int | None = None) -> int | None:
    """A class index from an int, a numeric string or a class name (case-insensitive)."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise ValueError(f"target must be a class index or name, got {target!r}")
    if isinstance(target, (int, np.integer)):
        k = int(target)
    else:
        text = str(target).strip()
        try:
            k = int(text)
        except ValueError:
            k = None
        if k is None:
            if not classes:
                raise ValueError(f"target {text!r} is not a class index, and this model has no class names")
            low = text.lower()
            hits = [i for i, n in enumerate(classes) if str(n).lower() == low]
            if len(hits) > 1:
                raise ValueError(f"target {text!r} names several classes ({', '.join(map(str, hits))}); "
                                 f"give the index instead")
            if not hits:
                near = [f"{n} ({i})" for i, n in enumerate(classes) if low in str(n).lower()][:8]
                hint = f"; did you mean: {', '.join(near)}" if near else "; give a class index or an exact name"
                raise ValueError(f"unknown target class {text!r}{hint}")
            k = hits[0]
    limit = num_classes if num_classes is not None else (len(classes) if classes else None)
    if k < 0 or (limit is not None and k >= limit):
        raise ValueError(f"target class {k} is out of range: the model has {limit} classes (0..{limit - 1})")
    return k


# --------------------------------------------------------------------------- universal perturbation
def apply_perturbation(model: nn.Module, x: torch.Tensor, v: torch.Tensor, *, name: str = "UniversalPerturbation",
                       params: dict | None = None) -> AttackResult:
    """``x_adv = clip(x + v)`` as an :class:`AttackResult` (label = the clean prediction)."""
    start = time.perf_counter()
    x = validate_images(x)
    v = v.to(device=x.device, dtype=x.dtype)
    if tuple(v.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"the perturbation has shape {tuple(v.shape[1:])} but the model's input is "
                         f"{tuple(x.shape[1:])}: it was fitted for another input size")
    was_training = model.training
    model.eval()
    try:
        x_adv = (x + v).clamp(0, 1)
        clean, p_clean = predict(model, x)
        adv, p_adv = predict(model, x_adv)
    finally:
        model.train(was_training)
    n = len(x)
    attacked = torch.ones(n, dtype=torch.bool, device=x.device)
    return AttackResult(
        x=x, x_adv=x_adv, label=clean.clone(), clean_label=clean, attacked=attacked, success=adv != clean,
        adv_label=adv, adv_confidence=p_adv.gather(1, adv[:, None]).squeeze(1),
        clean_confidence=p_clean.gather(1, clean[:, None]).squeeze(1),
        iterations=torch.zeros(n, dtype=torch.long, device=x.device), forward_count=2 * n,
        seconds=time.perf_counter() - start, attack_name=name, params=dict(params or {}))


# --------------------------------------------------------------------------- the Python entry point
def _class_names(classes, dataset):
    from .visualize import resolve_classes

    if classes is not None:
        return resolve_classes(classes)
    if dataset in ("cifar10", "imagenet"):
        return resolve_classes(dataset)
    return None


def attack_image(path: str | os.PathLike, model: str | nn.Module = DEFAULT_IMAGE_MODEL,
                 attack: str | Attack = DEFAULT_ATTACK, *, target: int | str | None = None,
                 checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 classes=None, size: int | None = None, **params: Any) -> tuple[AttackResult, Any]:
    """Attack one photo and draw the result.

    Args:
        path: an image file (any format and colour mode Pillow reads).
        model: a registered model name (its card gives the input size and the class names) or
            an ``nn.Module`` (then pass ``size`` and, for names, ``classes``).
        attack: a registry name (``"deepfool"``, ``"fgsm"``, ``"sparsefool"``, ...) or an instance.
        target: a class index or name for a targeted attack.
        checkpoint: a state_dict for a model that ships no weights.
        classes: class names (a sequence or ``"cifar10"`` / ``"imagenet"``); default from the card.
        size: the input size (default the card's ``input_size``).
        **params: the attack's parameters (``norm="inf"``, ``eps=0.01``, ...).

    Returns:
        ``(result, figure)``: the :class:`AttackResult` of the one image (``result.extra["image"]``
        says how it was cropped, ``["description"]`` in one line; the figure's subtitle shows it)
        and the figure of :func:`foolkit.show`. Nothing is printed.
    """
    from .machine import parse_device
    from .visualize import show

    device = parse_device(device)  # "cuda" without CUDA: a clear ValueError, not torch's assert
    net, model_name, size, dataset = _model_and_card(model, checkpoint, device, size)
    atk = make_attack(attack, params)
    x, info = load_for_model(path, size)
    names = _class_names(classes, dataset)
    x = x.to(device)
    with torch.no_grad():
        num_classes = net(x).shape[1]
    tgt = resolve_target(target, names, num_classes)
    result = atk(net, x, target=tgt)
    result.extra["image"] = info
    result.extra["model"] = model_name
    fig = show(result, 0, names, subtitle=f"{model_name}: {info['description']}")
    return result, fig


__all__ = ["apply_perturbation", "attack_image", "describe_crop", "load_for_model", "make_attack",
           "resolve_target"]
