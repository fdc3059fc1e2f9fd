"""``foolkit reproduce``: Part III of the thesis on our models, as a Markdown + HTML report.

    foolkit reproduce --quick --out reports/thesis-quick
    foolkit reproduce --sizes cpu --data ../shared/datasets/cifar10-jpeg --out reports/thesis
    foolkit reproduce --only table-12.3,figure-12.2 --models cifar10/resnet20 --out reports/thesis
    foolkit reproduce --models cifar10/resnet50=r50.pt,cifar10/mobilenet_v2=mnv2.pt --out reports/thesis
    foolkit reproduce --quick --engine ray --out reports/thesis-quick     # one Ray task per attack run

Runs are stored in ``<out>/runs.db``: rerun the same command to resume an interrupted run.
"""
from __future__ import annotations
from ..errors import InputError

NAME = "reproduce"
HELP = "reproduce the thesis's Part III tables, figures and claims on our models (resumable)"


def _split(values) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true",
                   help="fewer images and smaller grids (at most 10 minutes on 2 cores; the expected time is printed "
                        "first); "
                        "same as --sizes quick")
    p.add_argument("--sizes", choices=("quick", "cpu", "thesis"), default=None,
                   help="sample sizes: quick; cpu (the thesis's experiments with samples cut; the planner "
                        "estimates about 4 hours on 2 CPU cores, each cut listed in the report); thesis (default: the thesis's sizes)")
    p.add_argument("--only", action="append", metavar="IDS",
                   help="comma-separated experiment, table or figure ids (e.g. table-12.3,figure-12.2)")
    p.add_argument("--models", action="append", metavar="MODELS",
                   help="comma-separated models, NAME[=CHECKPOINT] or THESIS:NAME[=CHECKPOINT] "
                        "(THESIS one of ResNet-50, DenseNet-169, MobileNetV2, InceptionV3); default: "
                        "the compact member of each family that foolkit ships (cifar10/resnet20, densenet_bc40, "
                        "mobilenet_v2_050, inception_small_050) and imagenet/efficientnet-lite0")
    p.add_argument("--checkpoint", action="append", metavar="NAME=PATH",
                   help="state_dict file for a model named in --models (repeatable)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default $FOOLKIT_DATA, else the 1,000 bundled "
                                                "test images)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--max-images", type=int, default=None,
                   help="cap every experiment's image count (smoke tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: the runs one after the other) or ray: the attack runs as Ray tasks, one per "
                        "run, merged into runs.db, then the rest as with local (pip install 'foolkit[ray]')")
    p.add_argument("--address", default=None,
                   help="with --engine ray: a Ray cluster to join (e.g. head:6379; --out on a shared file system); "
                        "default: a local instance on 127.0.0.1")
    p.add_argument("--out", default=None, help="output folder (default reports/thesis), created if missing; its "
                                              "parent folder must exist")


def run(args) -> int:
    from ..experiments.reproduce import reproduce
    from ..runtime.files import check_output_folder
    from ..runtime.machine import parse_device

    parse_device(args.device)

    if args.max_images is not None and args.max_images < 1:
        raise InputError(f"--max-images must be >= 1, got {args.max_images}")
    if args.address is not None and args.engine != "ray":
        raise InputError("--address joins a Ray cluster: use it with --engine ray")
    if args.quick and args.sizes not in (None, "quick"):
        raise InputError(f"--quick contradicts --sizes {args.sizes}")
    # a user-given folder's parent must exist; the default's (reports/) may be created
    out = check_output_folder(args.out or "reports/thesis", create_parents=args.out is None,
                              inputs=[c.split("=", 1)[-1] for c in _split(args.checkpoint)],
                              writes=("runs.db", "report.md", "report.html"))
    path = reproduce(out, quick=args.quick, sizes=args.sizes, only=_split(args.only) or None, models=_split(args.models) or None,
                     checkpoints=_split(args.checkpoint), data_root=args.data, device=args.device,
                     progress=not args.no_progress, n_override=args.max_images,
                     debug=getattr(args, "debug", False), engine=args.engine, address=args.address)
    print(f"wrote {path} and {path.with_suffix('.html')}")
    import json
    import sys

    from ..experiments.reproduction_report import failures
    failed = failures(json.loads((path.parent / "results.json").read_text()))
    for exp_id, status in failed:  # the report says the same under "Failed experiments"
        print(f"foolkit reproduce: experiment {exp_id} {status}", file=sys.stderr)
    return 1 if failed else 0
