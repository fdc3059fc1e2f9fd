"""``foolkit report runs/x.db -o report.html``: one self-contained HTML file."""
from __future__ import annotations
from ..errors import InputError

NAME = "report"
HELP = "write a self-contained HTML report (metrics, histograms, image grids) of a run store"


def add_arguments(p) -> None:
    from ..runtime.files import FORCE_HELP

    p.add_argument("store", help="SQLite run store written by `foolkit attack` or `foolkit demo`")
    p.add_argument("-o", "--out", default="report.html",
                   help="output HTML file (default report.html); its folder must exist")
    p.add_argument("--images", type=int, default=6, help="adversarial examples shown per run (default 6)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def run(args) -> int:
    from ..runtime.files import check_output
    from ..report import write_report

    if args.images < 0:
        raise InputError(f"--images must be >= 0, got {args.images}")
    out = check_output(args.out, inputs=[args.store], kind="report", force=args.force)
    out = write_report(args.store, out, max_images=args.images)
    print(f"wrote {out}")
    return 0
