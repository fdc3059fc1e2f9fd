"""``foolkit attack --image PATH`` / ``--cifar-index N`` / ``--perturbation v.pt``: attack one
image, print what happened, save the figure and the adversarial PNG, and check the PNG again.
The library side (loading, cropping, attacking one image) is :mod:`foolkit.evaluation.single_image`."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..attacks.base import predict
from ..runtime.files import PNG_SOFTWARE, atomic_path, check_output
from ..runtime.machine import parse_device
from ..evaluation.single_image import (DEFAULT_ATTACK, DEFAULT_CIFAR_MODEL, DEFAULT_IMAGE_MODEL, PARAM_PREFIX,
                            _class_names, apply_perturbation, load_for_model,
                            make_attack, resolve_image_model, resolve_target)
from ..report.figures import format_percent
from ..errors import InputError


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
        raise InputError(f"--out {out}: the figure needs an image file name ending in .png, .pdf or .svg "
                         f"(got {out.suffix or 'no extension'})")
    if out.exists() and out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as {out / 'result.png'}")
    adv = out.with_name(out.stem + "-adv.png")
    # never an input; an existing image only with --force, unless foolkit wrote it (a rerun)
    inputs = (getattr(args, "image", None), getattr(args, "perturbation", None), getattr(args, "checkpoint", None))
    force = bool(getattr(args, "force", False))
    check_output(out, inputs=inputs, kind="figure", force=force)
    check_output(adv, inputs=inputs, kind="image", force=force)
    return out, adv


def save_png(x: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``[1,3,H,W]`` or ``[3,H,W]`` in [0,1] as a lossless 8-bit RGB PNG (rounded to levels)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = x[0] if x.ndim == 4 else x
    arr = torch.round(img.detach().to("cpu", torch.float64).clamp(0, 1) * 255).to(torch.uint8)
    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)  # marks it as foolkit's: a rerun may replace it
    with atomic_path(path) as tmp:
        Image.fromarray(arr.permute(1, 2, 0).numpy(), "RGB").save(tmp, format="PNG", optimize=False, pnginfo=info)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def norms_report(r: torch.Tensor) -> list[str]:
    """Lines on a perturbation ``[C,H,W]``: L0 (pixels, entries), L2, L-inf in [0,1] and 0-255 units."""
    pix = int((r != 0).any(0).sum())
    total = r.shape[-1] * r.shape[-2]
    entries = int((r != 0).sum())
    l2 = float(r.flatten().norm(2))
    linf = float(r.abs().max()) if r.numel() else 0.0
    return [f"  L0:  {pix} of {total} pixels changed ({format_percent(pix / total, 2)}), "
            f"{entries} of {r.numel()} values",
            f"  L2:  {_fmt(l2)} in [0,1] units = {_fmt(255 * l2)} in 0-255 levels",
            f"  L∞:  {_fmt(linf)} in [0,1] units = {_fmt(255 * linf)} in 0-255 levels"]


def run_image_command(args) -> int:
    """``foolkit attack --image PATH`` / ``--cifar-index N``: attack one image, print, save figure and PNG.

    Reads from ``args`` (missing attributes take the defaults):
        image (path or None), cifar_index (int or None) -- exactly one of them;
        model (None: imagenet/efficientnet-lite0 for --image, cifar10/resnet20 for --cifar-index;
        with --perturbation: the model in the file's card): a registered name, ``net.pt2``,
        ``file.py:function`` or ``hf:DIR``; checkpoint, mean, std, input_size, classes (None);
        precision (None/"float32", "bf16", "fp16");
        attack ("deepfool"); attack parameters as ``param__<name>`` text (e.g. ``param__norm="inf"``);
        target (None, a class index or name); out (None: ``<image>-<attack>.png``);
        perturbation (None, or a file of ``foolkit fit-universal``); data (CIFAR-10 root, None);
        device ("cpu", "cuda" or "cuda:N"; default cpu).

    Returns 0; user errors raise ``ValueError`` / ``DataError`` / ``ModelError`` (one line).
    """
    from ..data.cifar10 import load as load_cifar
    from ..evaluation.oom import OomSplitter
    from ..models.sources import resolve_from_args
    from ..report.figures import show

    image = getattr(args, "image", None)
    cifar_index = getattr(args, "cifar_index", None)
    device = parse_device(_arg(args, "device", "cpu"))
    if image is not None and cifar_index is not None:
        raise InputError("give either --image PATH or --cifar-index N, not both")
    if image is None and cifar_index is None:
        raise InputError("give an image: --image PATH or --cifar-index N (a bundled CIFAR-10 test image)")
    universal = None
    perturbation = getattr(args, "perturbation", None)
    if perturbation is not None:
        from ..evaluation.universal_io import load_universal
        universal = load_universal(perturbation)
        if _attack_params(args):
            raise InputError("--perturbation applies a saved universal perturbation; attack parameters "
                             f"({', '.join(sorted(_attack_params(args)))}) do not apply to it")
        if getattr(args, "target", None) is not None:
            raise InputError("--perturbation: a universal perturbation is untargeted; drop --target")
    model_name = getattr(args, "model", None)
    if model_name is None:
        if universal is not None and universal.model:
            model_name = universal.model
        else:
            model_name = DEFAULT_CIFAR_MODEL if cifar_index is not None else DEFAULT_IMAGE_MODEL
    if cifar_index is not None and getattr(args, "input_size", None) is None:
        from ..models.registry import card, list_models
        if model_name in list_models() and card(model_name).dataset != "cifar10":
            raise InputError(f"--cifar-index needs a CIFAR-10 model; {model_name} is a "
                             f"{card(model_name).dataset} model")
        if model_name not in list_models():
            args.input_size = "3,32,32"  # what a bundled CIFAR-10 image is, when the model does not say
    # any source (registered, .pt2, factory, hf:), with --checkpoint/--mean/--std/--input-size/--classes;
    # a bad model fails before any image is read
    spec = model_name
    resolved = resolve_from_args(args, model_name, device=device)
    if getattr(args, "classes", None) is None and resolved.classes is None and cifar_index is not None \
            and resolved.num_classes == 10:
        resolved.classes = tuple(_class_names("cifar10", None))  # a CIFAR-10 model without its own names
    resolved, size = resolve_image_model(resolved, device=device)
    net, names, model_name = resolved.module, resolved.classes, resolved.name

    true_label = None
    if cifar_index is not None:
        if resolved.dataset not in (None, "cifar10") or size != 32 or resolved.num_classes != 10:
            raise InputError(f"--cifar-index needs a CIFAR-10 model (3x32x32 images, 10 classes); {model_name} "
                             f"takes 3x{size}x{size} into {resolved.num_classes} classes")
        if isinstance(cifar_index, bool) or not isinstance(cifar_index, (int, np.integer)):
            try:
                cifar_index = int(cifar_index)
            except (TypeError, ValueError):
                raise InputError(f"--cifar-index must be an integer, got {cifar_index!r}") from None
        if cifar_index < 0:
            raise InputError(f"--cifar-index must be >= 0, got {cifar_index}")
        xs, ys = load_cifar("cifar10", "test", root=getattr(args, "data", None))
        if cifar_index >= len(xs):
            raise InputError(f"--cifar-index {cifar_index} is out of range: the test images are 0..{len(xs) - 1}")
        x, true_label = xs[cifar_index:cifar_index + 1].clone(), int(ys[cifar_index])
        del xs, ys
        stem = f"cifar10-{cifar_index}"
        info = {"path": f"cifar10 test #{cifar_index}", "mode": "RGB", "original_size": (32, 32),
                "resized_size": (32, 32), "crop_box": (0, 0, 32, 32),
                "description": f"CIFAR-10 test image #{cifar_index} (32x32, true class "
                               f"{_class_names('cifar10', None)[true_label]}), used as is"}
    else:
        with warnings.catch_warnings():  # the "image:" line below says it, in one line
            warnings.filterwarnings("ignore", message=r".* is animated \(\d+ frames\)")
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

    x = x.to(device)
    tgt = resolve_target(getattr(args, "target", None), names, resolved.num_classes)

    def label(k: int) -> str:
        k = int(k)
        return f"{names[k]} (class {k})" if names and 0 <= k < len(names) else f"class {k}"

    print(f"image: {info['description']}")
    if universal is not None:
        print(f"perturbation: {perturbation}: {universal.describe()}")
        if universal.model and universal.model != spec:
            print(f"note: fitted on {universal.model}, applied to {model_name} (transfer)")
        result = apply_perturbation(net, x, universal.perturbation, name="UniversalPerturbation",
                                    params={"norm": universal.card.get("norm"), "xi": universal.card.get("xi")})
        print(f"model: {model_name}, universal perturbation from {perturbation}")
    else:
        print(f"model: {model_name}, attack: {atk!r}" + (f", target: {label(tgt)}" if tgt is not None else ""),
              flush=True)  # seen before a long attack, even when piped
        from ..runtime.progress import elapsed_ticker
        with elapsed_ticker(f"attacking with {type(atk).__name__}", enabled=not getattr(args, "quiet", False)):
            # one image: nothing to split, but out of memory becomes one line naming what to change
            result, _ = OomSplitter().attack(atk, net, x, target=tgt, precision=getattr(args, "precision", None))
    result.extra["image"] = info
    result.extra["model"] = model_name

    clean_k, adv_k = int(result.clean_label[0]), int(result.adv_label[0])
    truth = ""
    if true_label is not None:
        truth = "  [correct]" if clean_k == true_label else f"  [wrong: the true class is {_class_names('cifar10', None)[true_label]}]"
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
    with atomic_path(out) as tmp:
        fmt = out.suffix.lower().lstrip(".")
        fig.savefig(tmp, format=fmt, dpi=100, bbox_inches="tight",
                    metadata={"Software": PNG_SOFTWARE} if fmt == "png" else None)
    save_png(result.x_adv, adv_path)
    print(f"figure:      {out}")

    # Read the saved PNG back as a file: what anyone using the image would feed the model.
    from ..data.images import load_image_with_info

    x_back, _ = load_image_with_info(adv_path, None)
    x_back = x_back.to(device)
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
