"""``foolkit eval MODEL [--data PATH]``: accuracy, per-class accuracy, confusion matrix (Table 11.4)."""
from __future__ import annotations

NAME = "eval"
HELP = "clean accuracy, per-class accuracy and confusion matrix of a model (Table 11.4)"


def add_arguments(p) -> None:
    p.add_argument("model", nargs="+", help="registered model name(s), e.g. cifar10/resnet20")
    p.add_argument("--data", default=None, help="CIFAR-10 root; default $FOOLKIT_DATA, else the bundled 1,000 images")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=None, help="first N images only")
    p.add_argument("--checkpoint", default=None, help="state_dict file for the raw network (one model only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..data import class_names, load
    from ..evaluation.clean import clean_accuracy
    from ..models.registry import card, load as load_model

    if args.checkpoint and len(args.model) > 1:
        raise ValueError("--checkpoint applies to one model; name a single model")
    for name in args.model:
        if card(name).dataset != "cifar10":
            raise ValueError(f"{name} is a {card(name).dataset} model; foolkit eval measures CIFAR-10 models "
                             f"(attack photos with `foolkit attack --image PATH --model {name}`)")
    # no torch.set_grad_enabled(False) here: it would outlast the command in the calling
    # process (tests, notebooks); clean_accuracy runs under no_grad itself
    x, y = load("cifar10", args.split, n=args.n, root=args.data)
    rows = []
    for name in args.model:
        c = card(name)
        model = load_model(name, checkpoint=args.checkpoint)
        print(f"== {name} ({c.num_params / 1e6:.2f}M parameters)", flush=True)  # before the bar
        report = clean_accuracy(model, x, y, class_names(c.dataset), progress=not getattr(args, "quiet", False),
                                desc=name)
        print(report.format())
        print()
        rows.append((name, c.num_params, report.accuracy))
    if len(rows) > 1:
        print(f"{'model':32s} {'params':>8s} {'accuracy':>9s}")
        for name, params, acc in rows:
            print(f"{name:32s} {params / 1e6:7.2f}M {100 * acc:8.2f}%")
    return 0
