"""``foolkit eval MODEL [--data PATH]``: accuracy, per-class accuracy, confusion matrix (Table 11.4)."""
from __future__ import annotations

import argparse

from ..errors import InputError
from ._params import model_options

NAME = "eval"
HELP = "clean accuracy, per-class accuracy and confusion matrix of a model (Table 11.4)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="+", help="registered model name(s), e.g. cifar10/resnet20, net.pt2 (torch.export) "
                   "or file.py:function (a factory)")
    p.add_argument("--data", default=None, help="CIFAR-10 root; default $FOOLKIT_DATA, else the bundled 1,000 images")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=None, help="first N images only")
    p.add_argument("--checkpoint", default=None, help="state_dict file (.pt or .safetensors) for the raw network "
                   "(one model only)")
    from ..models.sources import add_model_options
    add_model_options(p)  # --mean --std --input-size --classes (one model only)
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="where the model runs: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..data import class_names, load
    from ..evaluation.clean import clean_accuracy
    from ..models.registry import ModelError, card, list_models
    from ..runtime.machine import parse_device
    from ..models.sources import resolve_from_args

    device = parse_device(getattr(args, "device", None) or "cpu")  # a bad name fails before any work
    options = model_options(args)
    if options and len(args.model) > 1:
        raise InputError(f"{options[0]} applies to one model; name a single model")
    for name in args.model:
        if name in list_models() and card(name).dataset != "cifar10":
            raise InputError(f"{name} is a {card(name).dataset} model; foolkit eval measures CIFAR-10 models "
                             f"(attack photos with `foolkit attack --image PATH --model {name}`)")
    models = []
    for name in args.model:  # every model loads (or fails) before the data is read
        resolved = resolve_from_args(args, name, device=device)
        if resolved.num_classes != 10:
            raise ModelError(f"{resolved.name} outputs {resolved.num_classes} classes; foolkit eval measures "
                             f"CIFAR-10 models (10 classes)")
        resolved.check_input((1, 3, 32, 32))
        models.append(resolved)
    # no torch.set_grad_enabled(False) here: it would outlast the command in the calling
    # process (tests, notebooks); clean_accuracy runs under no_grad itself
    x, y = load("cifar10", args.split, n=args.n, root=args.data)
    rows = []
    for resolved in models:
        name, model = resolved.name, resolved.module
        params = card(name).num_params if resolved.kind == "registered" else sum(p.numel() for p in model.parameters())
        print(f"== {name} ({params / 1e6:.2f}M parameters)", flush=True)  # before the bar
        report = clean_accuracy(model, x, y, resolved.classes or class_names("cifar10"),
                                progress=not getattr(args, "quiet", False), desc=name)
        print(report.format())
        print()
        rows.append((name, params, report.accuracy))
    if len(rows) > 1:
        print(f"{'model':32s} {'params':>8s} {'accuracy':>9s}")
        for name, params, acc in rows:
            print(f"{name:32s} {params / 1e6:7.2f}M {100 * acc:8.2f}%")
    return 0
