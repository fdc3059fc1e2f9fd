"""``foolkit fit-universal --model NAME --norm inf --xi 10/255 --n 500 --out v.pt``: fit and save a
universal perturbation with its card (model, norm, xi, fooling rates, date).

The work (which images, the fit, the file) is :mod:`foolkit.evaluation.universal_fit`.

The file is read with ``torch.load(weights_only=True)`` (see ``foolkit.evaluation.universal_io``), and
applied to one image by ``foolkit attack --image PATH --perturbation v.pt``.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import InputError
from ._params import check_minimums, parse_xi

NAME = "fit-universal"
HELP = "fit a universal perturbation on N images and save it with its card (model, norm, xi, fooling rates)"


def default_mode() -> str:
    """UniversalPerturbation's default mode, so `fit-universal` and `attack --attack universal` fit alike."""
    import inspect

    from ..attacks.universal import UniversalPerturbation
    return inspect.signature(UniversalPerturbation).parameters["mode"].default


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..runtime.files import FORCE_HELP

    mode = default_mode()
    from ..models.sources import add_model_options

    p.add_argument("--model", required=True, help="registered name (see `foolkit models`), net.pt2 (torch.export) "
                                                  "or file.py:function (a factory)")
    add_model_options(p, checkpoint=True)  # --checkpoint --mean --std --input-size --classes
    p.add_argument("--norm", default="inf", help="2 or inf (default inf)")
    p.add_argument("--xi", default="10/255",
                   help="radius of the Lp ball in [0,1] pixel units; fractions allowed (default 10/255)")
    p.add_argument("--n", type=int, default=500, help="images in the set X the perturbation is fitted on (default 500)")
    p.add_argument("--n-test", type=int, default=None,
                   help="held-out images to measure the fooling rate on (default: up to --n of the images left)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="CIFAR-10 root for CIFAR models (default $FOOLKIT_DATA, else the bundled test images); "
                        "a folder of photos for ImageNet models")
    p.add_argument("--split", default=None, help="CIFAR-10 split (default train with --data/$FOOLKIT_DATA, "
                                                 "else test: the bundled images)")
    p.add_argument("--delta", type=float, default=0.2, help="stop at a fooling rate of 1 - delta on X (default 0.2)")
    p.add_argument("--max-passes", type=int, default=10, help="passes over X at most (default 10)")
    p.add_argument("--mode", default=mode, choices=("faithful", "batched"),
                   help=f"faithful (one image at a time, the authors' loop) or batched (DeepFool on --batch-size "
                        f"images at once: faster); default {mode}, as in `foolkit attack --attack universal`")
    p.add_argument("--batch-size", type=int, default=50, help="images per DeepFool call in batched mode (default 50)")
    p.add_argument("--deepfool-norm", default="2", help="the inner DeepFool's norm, 2 (default) or inf")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffling (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default="universal.pt", metavar="FILE",
                   help="output file (default universal.pt); its folder must exist; an earlier perturbation "
                        "file is replaced")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def run(args: argparse.Namespace) -> int:
    from .. import norms
    from ..attacks import registry
    from ..attacks.universal import UniversalPerturbation
    from ..evaluation.universal_fit import fit_and_save, load_fit_images
    from ..evaluation.universal_io import norm_text
    from ..models.sources import resolve_from_args
    from ..runtime.files import check_output
    from ..runtime.machine import parse_device

    check_minimums(("--n", args.n, 1), ("--n-test", args.n_test, 0), ("--max-passes", args.max_passes, 1),
                   ("--batch-size", args.batch_size, 1), ("--seed", args.seed, 0))
    parse_device(args.device)
    xi = parse_xi(args.xi)
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as {out / 'universal.pt'}")
    check_output(out, inputs=[args.checkpoint], kind="perturbation", force=args.force)  # before the fit
    resolved = resolve_from_args(args, device=args.device)  # bad models fail before any data is read
    uap = registry.create("universal", norm=args.norm, xi=xi, delta=args.delta, max_passes=args.max_passes,
                          mode=args.mode, batch_size=args.batch_size, deepfool_norm=args.deepfool_norm, seed=args.seed)
    assert isinstance(uap, UniversalPerturbation)  # what the registry makes of "universal"
    x_fit, x_test, source = load_fit_images(args.model if resolved.kind == "registered" else resolved, args.data,
                                            args.split, args.n, args.n_test)
    x_fit = x_fit.to(args.device)
    print(f"fitting a universal perturbation for {args.model}: L{norm_text(uap.norm)} <= {xi:.4g} "
          f"({255 * xi:.3g}/255), {len(x_fit)} images of {source}, {args.mode} mode")
    saved = fit_and_save(uap, resolved.module, x_fit, x_test, out, model_name=args.model, data=source,
                         checkpoint=args.checkpoint)
    for h in uap.history_:
        print(f"  pass {h['pass']}: fooling rate on X {100 * h['fooling_rate']:.1f}% ({h['seconds']:.1f}s)")
    rates = saved.card["fooling_rates"]
    print(f"fooling rate on X (vs clean predictions): {100 * rates['fit']:.1f}%")
    if "test" in rates:
        assert x_test is not None  # a held-out rate is measured only on held-out images
        print(f"fooling rate on {len(x_test)} held-out images (vs clean predictions): {100 * rates['test']:.1f}%")
    v = saved.perturbation.reshape(1, -1)
    l2, linf = float(norms.lp_norm(v, 2)[0]), float(norms.lp_norm(v, math.inf)[0])
    print(f"||v||_2 = {l2:.4g}, ||v||_inf = {linf:.4g} ({255 * linf:.3g}/255)")
    print(f"saved {out} ({saved.describe()})")
    return 0
