"""Attack one image: the workflow of ``fk.attack_image`` (:mod:`foolkit.report.single_image`, which
draws it) and ``foolkit attack --image``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..attacks.base import Attack, AttackResult, predict
from ..attacks.checks import validate_images
from ..data.classes import class_names
from ..errors import InputError
from ..runtime.model_state import eval_mode

DEFAULT_IMAGE_MODEL = "imagenet/efficientnet-lite0"
DEFAULT_CIFAR_MODEL = "cifar10/resnet20"
DEFAULT_ATTACK = "deepfool"

# --------------------------------------------------------------------------- image input
def _fmt_size(wh: tuple[int, int]) -> str:
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
def resolve_image_model(model: Any, *, checkpoint: str | os.PathLike | None = None, mean: Any = None,
                        std: Any = None, input_size: Any = None, classes: Any = None,
                        device: str | torch.device = "cpu", size: int | None = None,
                        default_classes: str | None = None) -> tuple[Any, int]:
    """The model of a one-image attack, from any source :func:`foolkit.models.sources.resolve_model`
    takes (registered name, ``.pt2``, ``file.py:function``, ``hf:DIR``, ``nn.Module``) or a
    :class:`~foolkit.models.sources.ResolvedModel`. -> ``(resolved, square input size)``.

    ``classes`` may also be ``"cifar10"`` / ``"imagenet"`` (those data sets' names); ``size``
    (an int) is ``input_size=(3, size, size)``. The photo is cropped to a square RGB image, so
    the model must take 3 x S x S input; its size must be known (card, export, or given).
    ``default_classes`` (``"cifar10"``): those names for a model of as many classes that has none.
    """
    from ..models.sources import ResolvedModel, resolve_model

    named = None
    if isinstance(classes, str) and classes in ("cifar10", "imagenet"):
        named, classes = class_names(classes), None
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
    elif resolved.classes is None and default_classes is not None \
            and len(class_names(default_classes)) == resolved.num_classes:
        resolved.classes = class_names(default_classes)
    elif resolved.classes is None and resolved.dataset in ("cifar10", "imagenet"):
        resolved.classes = class_names(resolved.dataset)
    shape = resolved.input_size
    if shape is None:
        raise InputError(f"{resolved.name}: its input size is unknown; give it (--input-size 3,H,W, or size=)")
    if shape[0] != 3 or shape[1] != shape[2]:
        raise InputError(f"{resolved.name} takes {'x'.join(map(str, shape))} input; a photo is cropped to a square "
                         f"RGB image, 3xSxS")
    return resolved, int(shape[1])


def resolve_target(target: Any, classes: Any = None, num_classes: int | None = None) -> int | None:
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
    assert k is not None  # int(target), int(text) or hits[0]: every path above that does not raise sets it
    limit = num_classes if num_classes is not None else (len(classes) if classes else None)
    if k < 0 or (limit is not None and k >= limit):
        if limit is None:  # only k < 0 gets here; building the message below would be a TypeError
            raise InputError(f"target class {k} is out of range: class indices start at 0")
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


# --------------------------------------------------------------------------- the workflow
@dataclass
class ImageJob:
    """A one-image attack, loaded and checked, as :func:`attack_one_image` hands it to ``announce``
    just before the attack: ``model`` a :class:`~foolkit.models.sources.ResolvedModel` (``spec``:
    the model as asked for), ``x`` ``[1,3,S,S]`` in [0,1], ``info`` as ``result.extra["image"]``,
    ``attack`` (None when ``universal``, a :class:`~foolkit.evaluation.universal_io.UniversalFile`,
    is applied), ``target`` a class index or None."""

    model: Any
    spec: Any
    x: torch.Tensor
    info: dict
    attack: Attack | None
    universal: Any
    target: int | None


def _cifar_image(index: Any, resolved: Any, size: int, data: str | os.PathLike | None) -> tuple[torch.Tensor, dict, int]:
    """Bundled (or ``data``) CIFAR-10 test image ``index`` -> ``(x [1,3,32,32], info, true label)``."""
    from ..data.cifar10 import load as load_cifar

    if resolved.dataset not in (None, "cifar10") or size != 32 or resolved.num_classes != 10:
        raise InputError(f"--cifar-index needs a CIFAR-10 model (3x32x32 images, 10 classes); {resolved.name} "
                         f"takes 3x{size}x{size} into {resolved.num_classes} classes")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise InputError(f"--cifar-index must be an integer, got {index!r}") from None
    if index < 0:
        raise InputError(f"--cifar-index must be >= 0, got {index}")
    xs, ys = load_cifar("cifar10", "test", root=data)
    if index >= len(xs):
        raise InputError(f"--cifar-index {index} is out of range: the test images are 0..{len(xs) - 1}")
    x, label = xs[index:index + 1].clone(), int(ys[index])
    info = {"path": f"cifar10 test #{index}", "mode": "RGB", "original_size": (32, 32),
            "resized_size": (32, 32), "crop_box": (0, 0, 32, 32),
            "description": f"CIFAR-10 test image #{index} (32x32, true class "
                           f"{class_names('cifar10')[label]}), used as is"}
    return x, info, label


def attack_one_image(path: str | os.PathLike | None = None, model: Any = None, attack: str | Attack = DEFAULT_ATTACK,
                 *, cifar_index: int | None = None, perturbation: str | os.PathLike | None = None,
                 target: int | str | None = None, checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device | None = None, classes: Any = None, size: int | None = None,
                 input_size: Any = None, mean: Any = None, std: Any = None, precision: str | None = None,
                 data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, force: bool = False,
                 progress: bool = False, announce: Callable[[ImageJob], None] | None = None,
                 **params: Any) -> AttackResult:
    """Attack one photo (or one CIFAR-10 test image, or apply a saved universal perturbation).

    :func:`foolkit.attack_image` (:mod:`foolkit.report.single_image`) adds the figure.

    Args:
        path: an image file (any format and colour mode Pillow reads); or give ``cifar_index``.
        model: any model source :func:`foolkit.models.sources.resolve_model` takes: a
            registered name (its card gives the input size and the class names), ``net.pt2``,
            ``file.py:function``, ``hf:DIR``, an ``nn.Module`` (then pass ``size``), or a
            :class:`~foolkit.models.sources.ResolvedModel`. Default: imagenet/efficientnet-lite0
            for a photo, cifar10/resnet20 for ``cifar_index``, the file's model for ``perturbation``.
        attack: a registry name (``"deepfool"``, ``"fgsm"``, ``"sparsefool"``, ...), class or instance.
        cifar_index: attack CIFAR-10 test image N (the bundled 1,000, or ``data``'s) instead of ``path``.
        perturbation: a file of :func:`foolkit.evaluation.universal_io.save_universal`, added to the
            image instead of an attack (no ``params``, no ``target``).
        target: a class index or name for a targeted attack.
        checkpoint: a state_dict (``.pt`` or ``.safetensors``) for a registered name or a factory.
        device: where the model and the image go (``"cpu"``, ``"cuda"``, ``"cuda:N"``); None: an
            ``nn.Module``'s own device, else the CPU.
        classes: class names (a sequence, a file, or ``"cifar10"`` / ``"imagenet"``); default from the card.
        size / input_size: the model's input, S (3 x S x S) or ``(3, S, S)`` / ``"3,S,S"`` (default the
            card's or the export's).
        mean, std: the normalisation the network expects (foolkit applies it; the attack sees [0,1] pixels).
        precision: None/"float32", "bf16" or "fp16" for the attack's own passes (verified in float32).
        out: the figure's file (checked here, before the attack; drawn by the caller): the
            adversarial image is written beside it as a lossless 8-bit PNG (``<out>-adv.png``) and
            read back (``result.extra["png"]``); an existing image is replaced only with ``force``
            or when foolkit wrote it. None: nothing is written.
        progress: show the elapsed time on a terminal (stderr) during the attack.
        announce: called with the :class:`ImageJob` once all is loaded, just before the attack.
        **params: the attack's parameters (``norm="inf"``, ``eps=0.01``, ...; text is converted).

    Returns:
        the :class:`AttackResult` of the one image; ``result.extra``: ``"image"`` (how it was
        cropped, ``["description"]`` in one line), ``"model"``, ``"classes"``, ``"target"``,
        ``"true_label"`` (CIFAR-10, else None), and with ``out`` ``"figure"`` (its path) and
        ``"png"``. Nothing is printed.
    """
    from ..attacks import registry
    from ..models.registry import card, list_models
    from ..runtime.machine import parse_device
    from ..runtime.progress import elapsed_ticker
    from .image_outputs import check_outputs, save_and_read_back
    from .oom import OomSplitter

    if device is None:  # the model's own device
        module = getattr(model, "module", model)
        device = next((p.device for p in module.parameters()), "cpu") if isinstance(module, nn.Module) else "cpu"
    device = parse_device(device)  # "cuda" without CUDA: a clear error, not torch's assert
    if path is not None and cifar_index is not None:
        raise InputError("give either --image PATH or --cifar-index N, not both")
    if path is None and cifar_index is None:
        raise InputError("give an image: --image PATH or --cifar-index N (a bundled CIFAR-10 test image)")
    universal = None
    if perturbation is not None:
        from .universal_io import load_universal
        universal = load_universal(perturbation)
        if params:
            raise InputError("--perturbation applies a saved universal perturbation; attack parameters "
                             f"({', '.join(sorted(params))}) do not apply to it")
        if target is not None:
            raise InputError("--perturbation: a universal perturbation is untargeted; drop --target")
    if model is None:
        model = universal.model if universal is not None and universal.model else (
            DEFAULT_CIFAR_MODEL if cifar_index is not None else DEFAULT_IMAGE_MODEL)
    if cifar_index is not None and input_size is None and size is None and isinstance(model, (str, nn.Module)):
        if isinstance(model, str) and model in list_models() and card(model).dataset != "cifar10":
            raise InputError(f"--cifar-index needs a CIFAR-10 model; {model} is a {card(model).dataset} model")
        if not (isinstance(model, str) and model in list_models()):
            input_size = (3, 32, 32)  # what a bundled CIFAR-10 image is, when the model does not say
    # a bad model fails before any image is read
    resolved, size = resolve_image_model(model, checkpoint=checkpoint, mean=mean, std=std, input_size=input_size,
                                         classes=classes, device=device, size=size,
                                         default_classes="cifar10" if cifar_index is not None else None)
    true_label = None
    if cifar_index is not None:
        x, info, true_label = _cifar_image(cifar_index, resolved, size, data)
    else:
        assert path is not None  # exactly one of path and cifar_index, checked above
        with warnings.catch_warnings():  # the description says it, in one line
            warnings.filterwarnings("ignore", message=r".* is animated \(\d+ frames\)")
            x, info = load_for_model(path, size)
    atk = None if universal is not None else registry.create(attack, **registry.convert_params(attack, params))
    paths = None if out is None else check_outputs(out, (path, perturbation, checkpoint), force)
    x = x.to(device)
    tgt = resolve_target(target, resolved.classes, resolved.num_classes)
    if announce is not None:
        announce(ImageJob(model=resolved, spec=model, x=x, info=info, attack=atk, universal=universal, target=tgt))
    if universal is not None:
        result = apply_perturbation(resolved.module, x, universal.perturbation, name="UniversalPerturbation",
                                    params={"norm": universal.card.get("norm"), "xi": universal.card.get("xi")})
    else:
        with elapsed_ticker(f"attacking with {type(atk).__name__}", enabled=progress):
            # one image: nothing to split, but out of memory becomes one line naming what to change
            result, _ = OomSplitter().attack(atk, resolved.module, x, target=tgt, precision=precision)
    result.extra.update({"image": info, "model": resolved.name, "classes": resolved.classes, "target": tgt,
                         "true_label": true_label})
    if paths is not None:
        result.extra["figure"] = str(paths[0])
        save_and_read_back(result, resolved.module, paths[1], tgt)
    return result


__all__ = ["ImageJob", "apply_perturbation", "attack_one_image", "describe_crop", "load_for_model",
           "resolve_image_model", "resolve_target"]
