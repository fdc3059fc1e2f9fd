"""``foolkit report runs/x.db -o report.html``: one self-contained HTML file."""
from __future__ import annotations

NAME = "report"
HELP = "write a self-contained HTML report (metrics, histograms, image grids) of a run store"


def add_arguments(p) -> None:
    p.add_argument("store", help="SQLite run store written by `foolkit attack` or `foolkit demo`")
    p.add_argument("-o", "--out", default="report.html", help="output HTML file (default report.html)")
    p.add_argument("--images", type=int, default=6, help="adversarial examples shown per run (default 6)")


def run(args) -> int:
    from ..report import write_report

    if args.images < 0:
        raise ValueError(f"--images must be >= 0, got {args.images}")
    out = write_report(args.store, args.out, max_images=args.images)
    print(f"wrote {out}")
    return 0
