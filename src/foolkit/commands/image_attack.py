"""``foolkit attack --image PATH`` / ``--cifar-index N`` / ``--perturbation v.pt``: attack one
image, print what happened, save the figure and the adversarial PNG, and check the PNG again.
The work is :func:`foolkit.attack_image` (:mod:`foolkit.evaluation.single_image`); this module prints it."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import norms
from ..data import class_names
from ..evaluation.image_outputs import save_png  # noqa: F401 -- tests and scripts write test images with it
from ..evaluation.single_image import DEFAULT_ATTACK, ImageJob
from ..report.figures import format_percent
from ..report.single_image import attack_image
from ._params import attack_params


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def norms_report(r: torch.Tensor) -> list[str]:
    """Lines on a perturbation ``[C,H,W]``: L0 (pixels, entries), L2, L-inf in [0,1] and 0-255 units."""
    pix = int((r != 0).any(0).sum())
    total = r.shape[-1] * r.shape[-2]
    entries = int((r != 0).sum())
    l2 = float(norms.lp_norm(r[None], 2)[0])
    linf = float(norms.lp_norm(r[None], float("inf"))[0]) if r.numel() else 0.0
    return [f"  L0:  {pix} of {total} pixels changed ({format_percent(pix / total, 2)}), "
            f"{entries} of {r.numel()} values",
            f"  L2:  {_fmt(l2)} in [0,1] units = {_fmt(255 * l2)} in 0-255 levels",
            f"  L∞:  {_fmt(linf)} in [0,1] units = {_fmt(255 * linf)} in 0-255 levels"]


def _label(k: int, names: tuple[str, ...] | None) -> str:
    k = int(k)
    return f"{names[k]} (class {k})" if names and 0 <= k < len(names) else f"class {k}"


def _announce(job: ImageJob, perturbation: str | None) -> None:
    """The lines printed before the attack (seen before a long attack, even when piped)."""
    names = job.model.classes
    print(f"image: {job.info['description']}")
    if job.universal is not None:
        print(f"perturbation: {perturbation}: {job.universal.describe()}")
        if job.universal.model and job.universal.model != job.spec:
            print(f"note: fitted on {job.universal.model}, applied to {job.model.name} (transfer)")
        print(f"model: {job.model.name}, universal perturbation from {perturbation}")
    else:
        target = f", target: {_label(job.target, names)}" if job.target is not None else ""
        print(f"model: {job.model.name}, attack: {job.attack!r}{target}", flush=True)


def run_image_command(args: argparse.Namespace) -> int:
    """``foolkit attack --image PATH`` / ``--cifar-index N``: attack one image, print, save figure and PNG.

    Reads from ``args`` (missing attributes take :func:`~foolkit.evaluation.single_image.attack_one_image`'s
    defaults): image, cifar_index, model, checkpoint, mean, std, input_size, classes, precision,
    attack, attack parameters as ``param__<name>`` text, target, out (None: ``<image>-<attack>.png``),
    perturbation, data, device (default cpu), force, quiet.

    Returns 0; user errors raise ``InputError`` / ``DataError`` / ``ModelError`` (one line).
    """
    image, cifar_index = getattr(args, "image", None), getattr(args, "cifar_index", None)
    perturbation = getattr(args, "perturbation", None)
    attack = getattr(args, "attack", None) or DEFAULT_ATTACK
    out = getattr(args, "out", None)
    if out is None:
        stem = Path(image).stem if image is not None else f"cifar10-{cifar_index}"
        out = f"{stem}-{'universal' if perturbation is not None else str(attack).lower()}.png"
    result, _ = attack_image(
        image, getattr(args, "model", None), attack, cifar_index=cifar_index, perturbation=perturbation,
        target=getattr(args, "target", None), checkpoint=getattr(args, "checkpoint", None),
        device=getattr(args, "device", None) or "cpu", classes=getattr(args, "classes", None),
        input_size=getattr(args, "input_size", None), mean=getattr(args, "mean", None),
        std=getattr(args, "std", None), precision=getattr(args, "precision", None), data=getattr(args, "data", None),
        out=out, force=bool(getattr(args, "force", False)), progress=not getattr(args, "quiet", False),
        announce=lambda job: _announce(job, perturbation), **attack_params(args))
    extra = result.extra
    names, tgt, true_label = extra["classes"], extra["target"], extra["true_label"]
    clean_k, adv_k = int(result.clean_label[0]), int(result.adv_label[0])
    truth = ""
    if true_label is not None:  # a CIFAR-10 test image: its label is in the CIFAR-10 class order
        truth = "  [correct]" if clean_k == true_label else \
            f"  [wrong: the true class is {class_names('cifar10')[true_label]}]"
    print(f"original:    {_label(clean_k, names)}, confidence {100 * float(result.clean_confidence[0]):.2f}%{truth}")
    if not bool(result.attacked[0]):
        print(f"adversarial: not attacked: the image is already classified as the target {_label(tgt, names)}")
    else:
        verdict = "fooled" if bool(result.success[0]) else (
            "NOT fooled (the perturbation does not fool this image)" if perturbation is not None else
            "NOT fooled (the attack failed)" if tgt is None else "NOT fooled (target not reached)")
        print(f"adversarial: {_label(adv_k, names)}, confidence {100 * float(result.adv_confidence[0]):.2f}%  "
              f"-> {verdict}")
    if perturbation is not None:
        print("iterations:  none (a saved universal perturbation, added as it is)")
    else:
        print(f"iterations:  {int(result.iterations[0])}   ({result.seconds:.2f}s)")
    print("perturbation:")
    for line in norms_report((result.x_adv - result.x)[0]):
        print(line)
    print(f"figure:      {extra['figure']}")
    png = extra["png"]
    adv_path, fools = png["path"], png["fools"]
    read_back = f"read back as {_label(png['label'], names)}, confidence {100 * png['confidence']:.2f}%"
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
