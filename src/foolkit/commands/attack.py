"""``foolkit attack``: a resumable run over a data set, or one image.

    foolkit attack --model NAME --attack NAME [params] --n N --out runs/x.db     # data set
    foolkit attack --image PATH [--model NAME] --attack NAME [params] [--out x.png]   # one image
    foolkit attack --cifar-index N --attack NAME                                  # one bundled image
    ... [--device cpu|cuda|cuda:N]                                                # where to run (default cpu)
    ... [--precision bf16|fp16]              # autocast for the attack's passes; results verified in float32

Every keyword-only parameter of every available attack class is a flag (``--norm``,
``--overshoot``, ``--max-iter``, ``--eps``, ...), converted to the type its annotation names
("inf" is accepted for norms, "none" where None is allowed). A flag the chosen attack does not
take is an error. Ctrl-C stops after the batch in flight is discarded; rerunning the same
command resumes.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import InputError
from ._params import PARAM_PREFIX, attack_params, check_minimums, check_param_flags, flag_for

if TYPE_CHECKING:
    from ..attacks.base import Attack

NAME = "attack"
HELP = "attack a model on a data set, storing every sample in SQLite (rerun to resume)"

# What a parameter's values mean, where the defaults alone do not say (shown in --help).
PARAM_NOTES = {"mode": "universal: faithful (one image at a time, the authors' loop) or batched (DeepFool on "
                       "--attack-batch-size images at once: faster), as in `foolkit fit-universal --mode`"}


def _one_line_errors(p: argparse.ArgumentParser) -> None:
    """argparse errors of this subcommand as one line (no multi-line usage), exit code 2."""
    def error(message: str):
        print(f"foolkit {NAME}: error: {message}", file=sys.stderr)
        sys.exit(2)

    original = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = original(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)} (see `foolkit attack --help`; "
                  f"`foolkit attacks` lists the attacks)")
        return ns, extras

    # replaced on this one parser instance on purpose (argparse has no hook for either)
    p.error = error  # type: ignore[method-assign]
    p.parse_known_args = parse_known_args  # type: ignore[method-assign]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..attacks import registry
    from ..runtime.files import FORCE_HELP

    p.usage = "foolkit attack --model NAME --attack NAME [attack parameters] [--n N] [--out FILE] [options]"
    p.add_argument("--model", default=None, help="registered name (see `foolkit models`), net.pt2 (torch.export) "
                   "file.py:function (a factory: Python code, run because you name it) or hf:DIR (transformers); one image: "
                   "default imagenet/efficientnet-lite0 (--image) or cifar10/resnet20 (--cifar-index)")
    p.add_argument("--attack", default=None, help="attack name (see `foolkit attacks`); one image: default deepfool")
    p.add_argument("--image", default=None, metavar="PATH",
                   help="attack this one photo (any size/colour mode; resized and centre-cropped to the model)")
    p.add_argument("--cifar-index", type=int, default=None, metavar="N", help="attack bundled CIFAR-10 test image N")
    p.add_argument("--perturbation", default=None, metavar="FILE",
                   help="one image: apply a saved universal perturbation (foolkit fit-universal) instead of attacking")
    p.add_argument("--n", type=int, default=None, help="first N images (default: the whole split)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="CIFAR-10 root (official or ImageFolder); default $FOOLKIT_DATA, else the bundled 1,000 images")
    p.add_argument("--split", default="test", help="train or test (default test)")
    p.add_argument("--batch-size", type=int, default=100, help="images per batch = per committed transaction; part of the run's identity "
                   "(resume with the batch size the run started with)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the run (each batch derives its own)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="state_dict (.pt, read weights-only; or .safetensors) for a registered model or a factory")
    from ..models.sources import add_model_options
    add_model_options(p)  # --mean --std --input-size --classes
    p.add_argument("--out", default=None, metavar="FILE",
                   help="SQLite run store (default runs/foolkit.db); one image: the figure (default <image>-<attack>.png)")
    p.add_argument("--target", type=str, default=None, help="target class (index, or a class name for one image)")
    p.add_argument("--fit-size", type=int, default=None,
                   help="universal perturbations: images of the set X (default half of --n)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where the model and images go: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--precision", default="float32", choices=("float32", "bf16", "fp16"),
                   help="autocast the attack's forward and backward passes to bf16 or fp16 (default float32); "
                        "every result is verified in float32, and a low-precision run is another run in the store")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only shard K of N (1 <= K <= N): the batches b with b %% N == K-1; same run id in "
                        "every shard, combine the shards' stores with `foolkit merge`")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="one image: " + FORCE_HELP)
    group = p.add_argument_group("attack parameters (keyword arguments of the attack classes)")
    defaults: dict[str, list[str]] = {}
    for name, cls in registry.available().items():
        for param in registry.parameters(cls):
            default = param.default
            defaults.setdefault(param.name, []).append(f"{name} {default!r}")
    for pname in defaults:
        note = f"{PARAM_NOTES[pname]}; " if pname in PARAM_NOTES else ""
        group.add_argument(flag_for(pname), dest=PARAM_PREFIX + pname, default=argparse.SUPPRESS, metavar="V",
                           help=f"{note}defaults: {'; '.join(defaults[pname])}".replace("%", "%%"))
    _one_line_errors(p)


def attack_from_args(args: argparse.Namespace) -> Attack:
    """The attack of ``--attack`` with the parameter flags given (a flag it does not take is refused)."""
    from ..attacks import registry

    given = attack_params(args)
    check_param_flags(args.attack, given)
    return registry.create(args.attack, **registry.convert_params(args.attack, given))


def run(args: argparse.Namespace) -> int:
    from ..evaluation import metrics
    from ..evaluation.runner import evaluate
    from ..runtime.machine import parse_device

    device = parse_device(getattr(args, "device", None) or "cpu")  # a bad name fails before any work
    if args.image is not None or args.cifar_index is not None:
        one = "--image" if args.image is not None else "--cifar-index"
        for flag, value in (("--n", args.n), ("--fit-size", args.fit_size), ("--shard", args.shard)):
            if value is not None:  # silently ignored before: refuse, the user meant something
                raise InputError(f"{flag} applies to data sets, not to {one} (one image)")
        from .image_attack import run_image_command
        return run_image_command(args)
    if args.model is None or args.attack is None:
        raise InputError("--model and --attack are required (or --image PATH / --cifar-index N for one image)")
    if args.perturbation is not None:
        raise InputError("--perturbation applies to one image (--image or --cifar-index)")
    from ..evaluation.shards import parse_shard
    shard = None if args.shard is None else parse_shard(args.shard)  # bad K/N fails before any work
    from ..runtime.files import check_output
    # a store is written into, not replaced; only the default folder runs/ is created
    args.out = str(check_output(args.out or "runs/foolkit.db", inputs=[args.checkpoint], kind="store",
                                create_folder=args.out is None))
    if args.target is not None:
        try:
            args.target = int(args.target)
        except ValueError:
            raise InputError(f"--target must be a class index for a data-set run, got {args.target!r}") from None
    check_minimums(("--n", args.n, 1), ("--batch-size", args.batch_size, 1), ("--seed", args.seed, 0),
                   ("--fit-size", args.fit_size, 1))
    attack = attack_from_args(args)
    from ..models.sources import resolve_from_args
    model = resolve_from_args(args, device=device)  # bad models fail before any data is read
    run_ = evaluate(model, attack, ("cifar10", args.split, args.n, args.data), args.out,
                    batch_size=args.batch_size, seed=args.seed, target=args.target,
                    fit_size=args.fit_size, device=device, progress=not args.quiet, shard=shard,
                    precision=getattr(args, "precision", None))
    m = run_.metrics()
    print(metrics.format_table([(run_.title, m)]))
    print(metrics.describe(m))
    if shard is not None and not run_.complete:
        print(f"shard {shard[0]}/{shard[1]} of run {run_.run_id} stored in {args.out} ({m['n']} of "
              f"{run_.n_total} samples); combine the shards with `foolkit merge OUT.db SHARD.db ...`")
    else:
        print(f"run {run_.run_id} stored in {args.out} ({m['n']} samples)")
    return 0
