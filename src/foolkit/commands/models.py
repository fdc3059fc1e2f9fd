"""``foolkit models``: one line per registered model, with whether its weights are available.

``foolkit models --check SPEC ... [--checkpoint PATH] [--mean R,G,B --std R,G,B] [--input-size C,H,W]
[--classes FILE]`` loads each model (a registered name, ``net.pt2`` or ``file.py:function``) and
prints what foolkit understood: input size, classes, normalisation, identity, and the accuracy
on the bundled CIFAR-10 images when the model takes 3x32x32 images into 10 classes.
"""
from __future__ import annotations

import argparse

from ..errors import InputError
from ._params import model_options

NAME = "models"
HELP = "list the registered models and whether their weights are available"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models.sources import add_model_options

    p.add_argument("--check", nargs="+", default=None, metavar="MODEL",
                   help="load these models (registered name, net.pt2, file.py:function, hf:DIR) and print what foolkit "
                        "understood of each")
    add_model_options(p, checkpoint=True)
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="with --check: where the model runs: cpu, cuda "
                   "or cuda:N (default cpu)")


def check(args: argparse.Namespace) -> int:
    """``--check``: load each model and describe it; accuracy on the bundled images where they fit."""
    from ..data import class_names, load
    from ..evaluation.clean import clean_accuracy
    from ..runtime.machine import parse_device
    from ..models.sources import resolve_from_args

    device = parse_device(getattr(args, "device", None) or "cpu")
    options = model_options(args)
    if options and len(args.check) > 1:
        raise InputError(f"{options[0]} applies to one model; check a single model")
    for i, spec in enumerate(args.check):
        resolved = resolve_from_args(args, spec, device=device)
        if i:
            print()
        for line in resolved.describe():
            print(line)
        if resolved.num_classes == 10 and resolved.input_size in (None, (3, 32, 32)):
            x, y = load("cifar10", "test")  # the bundled 1,000 images
            report = clean_accuracy(resolved.module, x, y, resolved.classes or class_names("cifar10"))
            print(f"accuracy:       {100 * report.accuracy:.2f}% on the {len(x)} bundled CIFAR-10 test images "
                  f"(labels in the CIFAR-10 class order)")
        else:
            print("accuracy:       not measured (the bundled images are 3x32x32 CIFAR-10, 10 classes)")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..models.registry import card, list_models, weights_status

    if getattr(args, "check", None):
        return check(args)
    if model_options(args):
        raise InputError("--checkpoint, --mean, --std, --input-size and --classes go with --check MODEL")
    rows = []
    for name in list_models():
        c = card(name)
        available, how = weights_status(name)
        acc = c.extra.get("test_accuracy")
        if available and isinstance(acc, (int, float)):
            state = f"acc {100 * acc:.2f}%"
        elif available:
            state = "weights " + how.split(" (")[0]  # "weights installed": the package is named when missing
        else:
            state = how
        rows.append((name, c, state))
    width = max([22] + [len(state) for _, _, state in rows])
    for name, c, state in rows:
        print(f"{name:32s} {c.num_params / 1e6:6.2f}M params  {state:{width}s} {c.architecture}")
    return 0
