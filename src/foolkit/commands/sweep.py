"""``foolkit sweep SPEC.toml --out DIR``: a grid of (model x attack x parameters) runs.

    foolkit sweep sweep.toml --out sweeps/a                          # one machine
    foolkit sweep sweep.toml --out sweeps/a --engine ray             # local Ray instance (127.0.0.1)
    foolkit sweep sweep.toml --out sweeps/a --engine ray --address head:6379   # a Ray cluster

One store per task in DIR/tasks/, merged into DIR/results.db, with DIR/report.html. Rerun the
same command to resume: finished tasks are skipped, unfinished ones resume batch by batch.
"""
from __future__ import annotations
from ..errors import InputError

NAME = "sweep"
HELP = "run a grid of models x attacks x parameters from a TOML spec (resumable; local or on Ray)"


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep: data, models, [[attacks]] (a list value is a grid axis)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (created; its parent must exist): tasks/, results.db, report.html")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: task after task in this process (default); ray: Ray Core tasks (pip install 'foolkit[ray]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join (head:6379, auto); default: a local instance on 127.0.0.1 only")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="split each run into N tasks (interleaved batches; overrides the spec's shards)")
    p.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="CPUs of a local Ray instance (default: all)")
    p.add_argument("--cpus-per-task", type=int, default=1, metavar="N",
                   help="CPUs each task reserves and its torch threads (default 1)")
    p.add_argument("--gpus-per-task", type=float, default=0, metavar="G",
                   help="GPUs each Ray task reserves (use with --device cuda)")
    p.add_argument("--max-retries", type=int, default=3, metavar="N",
                   help="Ray: re-runs of a task whose worker died (default 3; it resumes its store)")
    p.add_argument("--device", default="cpu", help="where each task computes: cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..evaluation.sweep import sweep

    if args.num_cpus is not None and args.num_cpus < 1:
        raise InputError(f"--num-cpus must be >= 1, got {args.num_cpus}")
    if args.gpus_per_task < 0:
        raise InputError(f"--gpus-per-task must be >= 0, got {args.gpus_per_task}")
    if args.engine != "ray":
        for flag, value in (("--address", args.address), ("--num-cpus", args.num_cpus)):
            if value is not None:
                raise InputError(f"{flag} applies to --engine ray")
    res = sweep(args.spec, args.out, engine=args.engine, address=args.address, shards=args.shards,
                device=args.device, num_cpus=args.num_cpus, cpus_per_task=args.cpus_per_task,
                gpus_per_task=args.gpus_per_task, max_retries=args.max_retries, progress=not args.quiet,
                report=not args.no_report)
    print(f"sweep: {res['tasks']} task(s), {res['ran']} run now, {res['skipped']} already finished; "
          f"{res['images']} image(s) in {res['seconds']:.1f} s")
    print(f"results: {res['results']} (`foolkit show {res['results']}`)")
    if res["report"]:
        print(f"report: {res['report']}")
    return 0
