"""``foolkit demo``: the main job on the shipped model and the bundled images.

Prints the clean accuracy of cifar10/resnet20 on the 1,000 bundled test images, runs every
available attack with quick settings on the first ``--n`` of them through the resumable engine
(into ``runs/demo.db``: rerunning skips what is stored), prints the thesis's table and writes
an HTML report.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from ..attacks.base import Attack

NAME = "demo"
HELP = "evaluate cifar10/resnet20 on the bundled images and attack them (quick settings), with a report"

MODEL = "cifar10/resnet20"
DEFAULT_STORE = "runs/demo.db"
DEFAULT_REPORT = "runs/demo-report.html"

# (row title, registry name, quick parameters). Parameters an attack class does not take are
# dropped (with a note), attacks that are not available are skipped.
QUICK: list[tuple[str, str, dict]] = [
    ("FGSM eps=0.01", "fgsm", {"eps": 0.01}),
    ("FGSM eps=0.05", "fgsm", {"eps": 0.05}),
    ("L-BFGS (3 c values x 10 iters)", "lbfgs", {"search_steps": 3, "max_iter": 10}),
    ("DeepFool L2", "deepfool", {"norm": 2, "overshoot": 0.01}),
    ("DeepFool Linf", "deepfool", {"norm": math.inf, "overshoot": 0.01}),
    ("SparseFool lambda=3", "sparsefool", {"lambda_": 3.0, "max_iter": 10}),
    ("One Pixel (pop 25, 10 gens)", "onepixel", {"population": 25, "generations": 10}),
    ("Universal Linf xi=10/255", "universal", {"norm": math.inf, "xi": 10 / 255, "mode": "batched", "max_passes": 3}),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..runtime.files import FORCE_HELP

    p.add_argument("--n", type=int, default=200, help="bundled test images to attack (default 200)")
    p.add_argument("--out", default=None, help=f"run store (default {DEFAULT_STORE}; rerun to resume)")
    p.add_argument("--report", default=None, help=f"HTML report (default {DEFAULT_REPORT})")
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="weights for resnet20 instead of the shipped ones")
    p.add_argument("--batch-size", type=int, default=100, help="images per committed batch")
    p.add_argument("--device", default="cpu", metavar="DEVICE", help="where the model runs: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _quick_attacks() -> tuple[list[tuple[str, Attack]], list[str]]:
    """[(title, attack instance)] for the available attacks; notes about dropped settings."""
    from ..attacks import registry

    available = registry.available()
    out, notes = [], []
    for title, name, params in QUICK:
        if name not in available:
            notes.append(f"{name}: not available, skipped")
            continue
        known = {p.name for p in registry.parameters(available[name])}
        dropped = sorted(set(params) - known)
        if dropped:
            notes.append(f"{name}: quick settings {dropped} not taken by {available[name].__name__}, left at defaults")
        out.append((title, registry.create(name, **{k: v for k, v in params.items() if k in known})))
    return out, notes


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..evaluation import metrics
    from ..data import CIFAR10_CLASSES, load
    from ..evaluation.clean import clean_accuracy
    from ..evaluation.runner import evaluate
    from ..runtime.files import check_output
    from ..models.registry import load as load_model
    from ..report import write_report

    from ..runtime.machine import parse_device

    device = parse_device(getattr(args, "device", None) or "cpu")  # a bad name fails before any work
    if args.n < 1 or args.n > 1000:
        raise InputError(f"--n must be between 1 and 1000 (the bundled images), got {args.n}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    # Both outputs are checked before the long job; only the default folder runs/ is created.
    args.out = str(check_output(args.out or DEFAULT_STORE, inputs=[args.checkpoint], kind="store",
                                create_folder=args.out is None))
    args.report = str(check_output(args.report or DEFAULT_REPORT, inputs=[args.out, args.checkpoint], kind="report",
                                   force=args.force, create_folder=args.report is None))
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = load_model(MODEL, checkpoint=args.checkpoint, device=device)
    x_all, y_all = load("cifar10", "test")
    print(f"{MODEL} on the 1,000 bundled CIFAR-10 test images (Table 11.4)")
    print(clean_accuracy(model, x_all, y_all, CIFAR10_CLASSES).format())
    del model

    attacks, notes = _quick_attacks()
    for note in notes:
        print(f"note: {note}")
    print(f"\nattacks on the first {args.n} bundled images, stored in {args.out} (rerun to resume)")
    rows, failed = [], []
    for title, attack in attacks:
        try:
            run_ = evaluate(MODEL, attack, ("cifar10", "test", args.n), args.out, batch_size=args.batch_size,
                            checkpoint=args.checkpoint, progress=not args.quiet, title=title, device=device)
        except Exception as exc:  # one broken attack must not hide the others' results
            if getattr(args, "debug", False):
                raise
            failed.append(title)
            text = str(exc).splitlines()[0] if str(exc) else ""
            print(f"foolkit demo: {title} failed: {type(exc).__name__}: {text} (rerun with --debug for the traceback)",
                  file=sys.stderr)
            continue
        rows.append((title, run_.metrics()))

    print()
    print(metrics.format_table(rows))
    print("fool%: fooled / correctly classified (|D'|), each success re-verified by a fresh forward pass; "
          "fool8%: still fooling as 8-bit images;\nconf%: mean top probability on the fooled images; "
          "Δ̂p, ρ̂p: means of ||r||_p and ||r||_p/||x||_p over |D'| (thesis sec. 11.3); "
          "pix%: median % of pixels changed (fooled); ms/img over |D'|")
    lost = [(t, m["n_quant_lost"]) for t, m in rows if m.get("n_quant_lost")]
    if lost:
        print("lost to 8-bit quantisation: " + ", ".join(f"{t} {k}" for t, k in lost))
    out = write_report(args.out, args.report)
    print(f"\nreport: {out}   store: {args.out}   wall time {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0
