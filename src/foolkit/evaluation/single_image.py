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

from ..attacks.base import Attack, AttackResult, predict, validate_images
from ..errors import InputError
from ..runtime.model_state import eval_mode

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

    from ..data.images import load_image_with_info

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
def resolve_image_model(model, *, checkpoint=None, mean=None, std=None, input_size=None, classes=None,
                        device="cpu", size: int | None = None):
    """The model of a one-image attack, from any source :func:`foolkit.models.sources.resolve_model`
    takes (registered name, ``.pt2``, ``file.py:function``, ``hf:DIR``, ``nn.Module``) or a
    :class:`~foolkit.models.sources.ResolvedModel`. -> ``(resolved, square input size)``.

    ``classes`` may also be ``"cifar10"`` / ``"imagenet"`` (those data sets' names); ``size``
    (an int) is ``input_size=(3, size, size)``. The photo is cropped to a square RGB image, so
    the model must take 3 x S x S input; its size must be known (card, export, or given).
    """
    from ..models.sources import ResolvedModel, resolve_model

    named = None
    if isinstance(classes, str) and classes in ("cifar10", "imagenet"):
        named, classes = tuple(_class_names(classes, None)), None
    if size is not None:
        if input_size is not None:
            raise InputError("give size= or input_size=, not both")
        input_size = (3, int(size), int(size))
    if isinstance(model, ResolvedModel):
        given = [k for k, v in (("checkpoint", checkpoint), ("mean", mean), ("std", std),
                                ("input_size", input_size), ("classes", classes)) if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} apply when the model is given by name; pass them to resolve_model")
        resolved = model
        resolved.module.to(device)
    elif isinstance(model, (str, nn.Module)):
        resolved = resolve_model(model, checkpoint=checkpoint, mean=mean, std=std, input_size=input_size,
                                 classes=classes, device=device)
    else:
        raise InputError(f"model must be a registered name, a model file, file.py:function or an nn.Module, "
                         f"got {type(model).__name__}")
    if named is not None:
        if len(named) != resolved.num_classes:
            raise InputError(f"{resolved.name} outputs {resolved.num_classes} classes, not the {len(named)} "
                             f"of the names given")
        resolved.classes = named
    elif resolved.classes is None and resolved.dataset in ("cifar10", "imagenet"):
        resolved.classes = tuple(_class_names(None, resolved.dataset))
    shape = resolved.input_size
    if shape is None:
        raise InputError(f"{resolved.name}: its input size is unknown; give it (--input-size 3,H,W, or size=)")
    if shape[0] != 3 or shape[1] != shape[2]:
        raise InputError(f"{resolved.name} takes {'x'.join(map(str, shape))} input; a photo is cropped to a square "
                         f"RGB image, 3xSxS")
    return resolved, int(shape[1])


def make_attack(attack, params: dict | None = None) -> Attack:
    """An attack instance from an instance (params must be empty), a class or a registry name.

    ``params`` values may be strings (command-line text, converted by the parameter's type)."""
    params = dict(params or {})
    if isinstance(attack, Attack):
        if params:
            raise InputError(f"attack parameters {sorted(params)} given with an attack instance; "
                             f"pass them to its constructor instead")
        return attack
    if isinstance(attack, type) and issubclass(attack, Attack):
        return attack(**params)
    if not isinstance(attack, str):
        raise InputError(f"attack must be a name, an Attack class or instance, got {type(attack).__name__}")
    from ..attacks import registry

    cls = registry.get(attack)
    known = {p.name: p for p in registry.parameters(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"{attack} has no parameter {', '.join(unknown)} (its parameters: "
                         f"{', '.join(known) or 'none'})")
    params = {k: registry.convert(known[k], v) if isinstance(v, str) else v for k, v in params.items()}
    return cls(**params)


def resolve_target(target, classes=None, num_classes: int | None = None) -> int | None:
    """A class index from an int, a numeric string or a class name (case-insensitive)."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise InputError(f"target must be a class index or name, got {target!r}")
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
                raise InputError(f"target {text!r} is not a class index, and this model has no class names")
            low = text.lower()
            hits = [i for i, n in enumerate(classes) if str(n).lower() == low]
            if len(hits) > 1:
                raise InputError(f"target {text!r} names several classes ({', '.join(map(str, hits))}); "
                                 f"give the index instead")
            if not hits:
                near = [f"{n} ({i})" for i, n in enumerate(classes) if low in str(n).lower()][:8]
                hint = f"; did you mean: {', '.join(near)}" if near else "; give a class index or an exact name"
                raise InputError(f"unknown target class {text!r}{hint}")
            k = hits[0]
    limit = num_classes if num_classes is not None else (len(classes) if classes else None)
    if k < 0 or (limit is not None and k >= limit):
        raise InputError(f"target class {k} is out of range: the model has {limit} classes (0..{limit - 1})")
    return k


# --------------------------------------------------------------------------- universal perturbation
def apply_perturbation(model: nn.Module, x: torch.Tensor, v: torch.Tensor, *, name: str = "UniversalPerturbation",
                       params: dict | None = None) -> AttackResult:
    """``x_adv = clip(x + v)`` as an :class:`AttackResult` (label = the clean prediction)."""
    start = time.perf_counter()
    x = validate_images(x)
    v = v.to(device=x.device, dtype=x.dtype)
    if tuple(v.shape[1:]) != tuple(x.shape[1:]):
        raise InputError(f"the perturbation has shape {tuple(v.shape[1:])} but the model's input is "
                         f"{tuple(x.shape[1:])}: it was fitted for another input size")
    with eval_mode(model):
        x_adv = (x + v).clamp(0, 1)
        clean, p_clean = predict(model, x)
        adv, p_adv = predict(model, x_adv)
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
    from ..report.figures import resolve_classes

    if classes is not None:
        return resolve_classes(classes)
    if dataset in ("cifar10", "imagenet"):
        return resolve_classes(dataset)
    return None


def attack_image(path: str | os.PathLike, model: str | nn.Module = DEFAULT_IMAGE_MODEL,
                 attack: str | Attack = DEFAULT_ATTACK, *, target: int | str | None = None,
                 checkpoint: str | os.PathLike | None = None, device: str | torch.device | None = None,
                 classes=None, size: int | None = None, mean=None, std=None, precision: str | None = None,
                 **params: Any) -> tuple[AttackResult, Any]:
    """Attack one photo and draw the result.

    Args:
        path: an image file (any format and colour mode Pillow reads).
        model: any model source :func:`foolkit.models.sources.resolve_model` takes: a
            registered name (its card gives the input size and the class names), ``net.pt2``,
            ``file.py:function``, ``hf:DIR``, an ``nn.Module`` (then pass ``size``), or a
            :class:`~foolkit.models.sources.ResolvedModel`.
        attack: a registry name (``"deepfool"``, ``"fgsm"``, ``"sparsefool"``, ...) or an instance.
        target: a class index or name for a targeted attack.
        checkpoint: a state_dict (``.pt`` or ``.safetensors``) for a registered name or a factory.
        device: where the model and the image go (``"cpu"``, ``"cuda"``, ``"cuda:N"``); None: an
            ``nn.Module``'s own device, else the CPU.
        classes: class names (a sequence, a file, or ``"cifar10"`` / ``"imagenet"``); default from the card.
        size: the square input size S (the model takes 3 x S x S; default the card's or the export's).
        mean, std: the normalisation the network expects (foolkit applies it; the attack sees [0,1] pixels).
        precision: None/"float32", "bf16" or "fp16" for the attack's own passes (verified in float32).
        **params: the attack's parameters (``norm="inf"``, ``eps=0.01``, ...).

    Returns:
        ``(result, figure)``: the :class:`AttackResult` of the one image (``result.extra["image"]``
        says how it was cropped, ``["description"]`` in one line; the figure's subtitle shows it)
        and the figure of :func:`foolkit.show`. Nothing is printed.
    """
    from .oom import OomSplitter
    from ..runtime.machine import parse_device
    from ..report.figures import show

    if device is None:  # the model's own device
        module = getattr(model, "module", model)
        device = next((p.device for p in module.parameters()), "cpu") if isinstance(module, nn.Module) else "cpu"
    device = parse_device(device)  # "cuda" without CUDA: a clear ValueError, not torch's assert
    resolved, size = resolve_image_model(model, checkpoint=checkpoint, mean=mean, std=std, classes=classes,
                                         device=device, size=size)
    atk = make_attack(attack, params)
    x, info = load_for_model(path, size)
    names = resolved.classes
    x = x.to(device)
    tgt = resolve_target(target, names, resolved.num_classes)
    # one image: nothing to split, but out of memory becomes one line naming what to change
    result, _ = OomSplitter().attack(atk, resolved.module, x, target=tgt, precision=precision)
    result.extra["image"] = info
    result.extra["model"] = resolved.name
    fig = show(result, 0, names, subtitle=f"{resolved.name}: {info['description']}")
    return result, fig


__all__ = ["apply_perturbation", "attack_image", "describe_crop", "load_for_model", "make_attack",
           "resolve_image_model", "resolve_target"]
