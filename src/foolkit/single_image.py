"""Attack one image and see the result: ``fk.attack_image`` (Python) and ``foolkit attack --image``.

The photo is resized and centre-cropped to the model's input (the card's ``input_size``: 224
for EfficientNet-Lite0, 32 for the CIFAR-10 models) the ImageNet way (shorter side to
``size * 256/224``, centre crop); an image already of exactly that size is used as it is.
What was done is stated (``result.extra["image"]`` and the figure's subtitle).

Example:
    >>> result, fig = fk.attack_image("cat.jpg", model="imagenet/efficientnet-lite0", attack="deepfool")
    >>> fig.savefig("cat-deepfool.png"); result.adv_label, result.norms(2)

Command line (``run_image_command``)::

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

# Used only when foolkit.attacks.registry cannot be imported.
_FALLBACK_ATTACKS = {
    "fgsm": ("foolkit.attacks.fgsm", "FGSM"),
    "deepfool": ("foolkit.attacks.deepfool", "DeepFool"),
    "lbfgs": ("foolkit.attacks.lbfgs", "LBFGS"),
    "sparsefool": ("foolkit.attacks.sparsefool", "SparseFool"),
    "onepixel": ("foolkit.attacks.onepixel", "OnePixel"),
}


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


def _attack_class(name: str):
    try:
        from .attacks import registry
    except ImportError:  # pragma: no cover - the registry is part of foolkit
        import importlib

        key = str(name).lower()
        if key not in _FALLBACK_ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known: {', '.join(_FALLBACK_ATTACKS)}") from None
        module, cls = _FALLBACK_ATTACKS[key]
        try:
            return getattr(importlib.import_module(module), cls), None
        except (ImportError, AttributeError):
            raise ValueError(f"attack {name!r} is not available in this installation") from None
    return registry.get(name), registry


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
    cls, registry = _attack_class(attack)
    if registry is not None:
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
                 classes=None, size: int | None = None, verbose: bool = True,
                 **params: Any) -> tuple[AttackResult, Any]:
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
        verbose: print how the image was cropped.
        **params: the attack's parameters (``norm="inf"``, ``eps=0.01``, ...).

    Returns:
        ``(result, figure)``: the :class:`AttackResult` of the one image (``result.extra["image"]``
        says how it was cropped) and the figure of :func:`foolkit.show`.
    """
    from .visualize import show

    net, model_name, size, dataset = _model_and_card(model, checkpoint, device, size)
    atk = make_attack(attack, params)
    x, info = load_for_model(path, size)
    if verbose:
        print(f"image: {info['description']}")
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


# --------------------------------------------------------------------------- the command
def _arg(args, name, default=None):
    value = getattr(args, name, default)
    return default if value is None else value


def _attack_params(args) -> dict:
    params = {k[len(PARAM_PREFIX):]: v for k, v in vars(args).items() if k.startswith(PARAM_PREFIX)}
    extra = getattr(args, "params", None)
    if isinstance(extra, dict):
        params.update(extra)
    return params


def _out_paths(args, stem: str, attack_name: str) -> tuple[Path, Path]:
    out = getattr(args, "out", None)
    out = Path(out) if out else Path(f"{stem}-{attack_name}.png")
    supported = ("png", "pdf", "svg", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")
    if out.suffix.lower().lstrip(".") not in supported:
        raise ValueError(f"--out {out}: the figure needs an image file name ending in .png, .pdf or .svg "
                         f"(got {out.suffix or 'no extension'})")
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name such as {out / 'result.png'}")
    return out, out.with_name(out.stem + "-adv.png")


def save_png(x: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``[1,3,H,W]`` or ``[3,H,W]`` in [0,1] as a lossless 8-bit RGB PNG (rounded to levels)."""
    from PIL import Image

    img = x[0] if x.ndim == 4 else x
    arr = torch.round(img.detach().to("cpu", torch.float64).clamp(0, 1) * 255).to(torch.uint8)
    Image.fromarray(arr.permute(1, 2, 0).numpy(), "RGB").save(path, format="PNG", optimize=False)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def norms_report(r: torch.Tensor) -> list[str]:
    """Lines on a perturbation ``[C,H,W]``: L0 (pixels, entries), L2, L-inf in [0,1] and 0-255 units."""
    pix = int((r != 0).any(0).sum())
    total = r.shape[-1] * r.shape[-2]
    entries = int((r != 0).sum())
    l2 = float(r.flatten().norm(2))
    linf = float(r.abs().max()) if r.numel() else 0.0
    return [f"  L0:  {pix} of {total} pixels changed ({100 * pix / total:.2f}%), {entries} of {r.numel()} values",
            f"  L2:  {_fmt(l2)} in [0,1] units = {_fmt(255 * l2)} in 0-255 levels",
            f"  L∞:  {_fmt(linf)} in [0,1] units = {_fmt(255 * linf)} in 0-255 levels"]


def run_image_command(args) -> int:
    """``foolkit attack --image PATH`` / ``--cifar-index N``: attack one image, print, save figure and PNG.

    Reads from ``args`` (missing attributes take the defaults):
        image (path or None), cifar_index (int or None) -- exactly one of them;
        model (None: imagenet/efficientnet-lite0 for --image, cifar10/resnet20 for --cifar-index;
        with --perturbation: the model in the file's card); checkpoint (None);
        attack ("deepfool"); attack parameters as ``param__<name>`` text (e.g. ``param__norm="inf"``);
        target (None, a class index or name); out (None: ``<image>-<attack>.png``);
        perturbation (None, or a file of ``foolkit fit-universal``); data (CIFAR-10 root, None).

    Returns 0; user errors raise ``ValueError`` / ``DataError`` / ``ModelError`` (one line).
    """
    from .data.cifar10 import load as load_cifar
    from .models import registry
    from .visualize import show

    image = getattr(args, "image", None)
    cifar_index = getattr(args, "cifar_index", None)
    if image is not None and cifar_index is not None:
        raise ValueError("give either --image PATH or --cifar-index N, not both")
    if image is None and cifar_index is None:
        raise ValueError("give an image: --image PATH or --cifar-index N (a bundled CIFAR-10 test image)")
    universal = None
    perturbation = getattr(args, "perturbation", None)
    if perturbation is not None:
        from .universal_io import load_universal
        universal = load_universal(perturbation)
        if _attack_params(args):
            raise ValueError("--perturbation applies a saved universal perturbation; attack parameters "
                             f"({', '.join(sorted(_attack_params(args)))}) do not apply to it")
        if getattr(args, "target", None) is not None:
            raise ValueError("--perturbation: a universal perturbation is untargeted; drop --target")
    model_name = getattr(args, "model", None)
    if model_name is None:
        if universal is not None and universal.model:
            model_name = universal.model
        else:
            model_name = DEFAULT_CIFAR_MODEL if cifar_index is not None else DEFAULT_IMAGE_MODEL
    c = registry.card(model_name)  # unknown names fail before any file is read
    size = int(c.input_size)
    names = _class_names(None, c.dataset)

    true_label = None
    if cifar_index is not None:
        if c.dataset != "cifar10":
            raise ValueError(f"--cifar-index needs a CIFAR-10 model; {model_name} is a {c.dataset} model")
        if isinstance(cifar_index, bool) or not isinstance(cifar_index, (int, np.integer)):
            try:
                cifar_index = int(cifar_index)
            except (TypeError, ValueError):
                raise ValueError(f"--cifar-index must be an integer, got {cifar_index!r}") from None
        if cifar_index < 0:
            raise ValueError(f"--cifar-index must be >= 0, got {cifar_index}")
        xs, ys = load_cifar("cifar10", "test", root=getattr(args, "data", None))
        if cifar_index >= len(xs):
            raise ValueError(f"--cifar-index {cifar_index} is out of range: the test images are 0..{len(xs) - 1}")
        x, true_label = xs[cifar_index:cifar_index + 1].clone(), int(ys[cifar_index])
        del xs, ys
        stem = f"cifar10-{cifar_index}"
        info = {"path": f"cifar10 test #{cifar_index}", "mode": "RGB", "original_size": (32, 32),
                "resized_size": (32, 32), "crop_box": (0, 0, 32, 32),
                "description": f"CIFAR-10 test image #{cifar_index} (32x32, true class {names[true_label]}), used as is"}
    else:
        x, info = load_for_model(image, size)
        stem = Path(image).stem

    if universal is not None:
        attack_name = "universal"
        atk = None
    else:
        atk = make_attack(_arg(args, "attack", DEFAULT_ATTACK), _attack_params(args))
        attack_name = str(_arg(args, "attack", DEFAULT_ATTACK)).lower() if isinstance(
            _arg(args, "attack", DEFAULT_ATTACK), str) else type(atk).__name__.lower()
    out, adv_path = _out_paths(args, stem, attack_name)

    net = registry.load(model_name, checkpoint=getattr(args, "checkpoint", None))
    with torch.no_grad():
        num_classes = net(x).shape[1]
    tgt = resolve_target(getattr(args, "target", None), names, num_classes)

    def label(k: int) -> str:
        k = int(k)
        return f"{names[k]} (class {k})" if names and 0 <= k < len(names) else f"class {k}"

    print(f"image: {info['description']}")
    if universal is not None:
        print(f"perturbation: {perturbation}: {universal.describe()}")
        if universal.model and universal.model != model_name:
            print(f"note: fitted on {universal.model}, applied to {model_name} (transfer)")
        result = apply_perturbation(net, x, universal.perturbation, name="UniversalPerturbation",
                                    params={"norm": universal.card.get("norm"), "xi": universal.card.get("xi")})
        print(f"model: {model_name}, universal perturbation from {perturbation}")
    else:
        print(f"model: {model_name}, attack: {atk!r}" + (f", target: {label(tgt)}" if tgt is not None else ""))
        result = atk(net, x, target=tgt)
    result.extra["image"] = info
    result.extra["model"] = model_name

    clean_k, adv_k = int(result.clean_label[0]), int(result.adv_label[0])
    truth = ""
    if true_label is not None:
        truth = "  [correct]" if clean_k == true_label else f"  [wrong: the true class is {names[true_label]}]"
    print(f"original:    {label(clean_k)}, confidence {100 * float(result.clean_confidence[0]):.2f}%{truth}")
    if not bool(result.attacked[0]):
        print(f"adversarial: not attacked: the image is already classified as the target {label(tgt)}")
    else:
        verdict = "fooled" if bool(result.success[0]) else (
            "NOT fooled (the perturbation does not fool this image)" if universal is not None else
            "NOT fooled (the attack failed)" if tgt is None else "NOT fooled (target not reached)")
        print(f"adversarial: {label(adv_k)}, confidence {100 * float(result.adv_confidence[0]):.2f}%  -> {verdict}")
    if universal is not None:
        print("iterations:  none (a saved universal perturbation, added as it is)")
    else:
        print(f"iterations:  {int(result.iterations[0])}   ({result.seconds:.2f}s)")
    r = (result.x_adv - result.x)[0]
    print("perturbation:")
    for line in norms_report(r):
        print(line)

    fig = show(result, 0, names, subtitle=f"{model_name}: {info['description']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    save_png(result.x_adv, adv_path)
    print(f"figure:      {out}")

    # Read the saved PNG back as a file: what anyone using the image would feed the model.
    from .data.images import load_image_with_info

    x_back, _ = load_image_with_info(adv_path, None)
    q_label, q_probs = predict(net, x_back)
    q_k, q_p = int(q_label[0]), float(q_probs[0, q_label[0]])
    label_attacked = int(result.label[0])
    fools = (q_k != label_attacked) if tgt is None else (q_k == tgt)
    result.extra["png"] = {"path": str(adv_path), "label": q_k, "confidence": q_p, "fools": bool(fools)}
    read_back = f"read back as {label(q_k)}, confidence {100 * q_p:.2f}%"
    if not bool(result.attacked[0]):
        print(f"adversarial image: {adv_path} (lossless 8-bit PNG; {read_back})")
    elif fools and bool(result.success[0]):
        print(f"adversarial image: {adv_path} (lossless 8-bit PNG): {read_back} -> still fools the model")
    elif fools:
        print(f"adversarial image: {adv_path} (lossless 8-bit PNG): {read_back} -> fools the model "
              f"(although the float image did not)")
    elif bool(result.success[0]):
        print(f"adversarial image: {adv_path} (lossless 8-bit PNG): {read_back} -> quantisation to 8 bits "
              f"broke the attack (the float image fooled the model, the PNG does not)")
    else:
        print(f"adversarial image: {adv_path} (lossless 8-bit PNG): {read_back} -> does not fool the model")
    return 0


__all__ = ["apply_perturbation", "attack_image", "describe_crop", "load_for_model", "make_attack",
           "norms_report", "resolve_target", "run_image_command", "save_png"]
