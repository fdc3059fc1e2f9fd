"""The same small sweep with ``--engine local`` and ``--engine ray``: Ray's overhead per task.

    python benchmarks/bench_sweep.py --n 100 --tasks 4 --cpus 2

Both engines run every task on 1 torch thread (``cpus_per_task=1``). The local engine runs
the tasks one after another; Ray runs up to ``--cpus`` of them at once on a fresh local
instance (127.0.0.1), so two numbers are reported:

- wall time of each sweep (Ray's includes starting and stopping its instance and workers);
- Ray overhead per task = (Ray's summed task-seconds minus local's) / tasks, plus the start-up
  cost, i.e. what a task costs more in a worker than in-process (first import of torch and
  foolkit in each fresh worker, loading the model, object transfer).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import foolkit as fk  # noqa: E402
from _common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="images per task")
    ap.add_argument("--tasks", type=int, default=4, help="FGSM eps values = tasks")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = ap.parse_args()
    eps = [round(0.005 * (i + 1), 4) for i in range(args.tasks)]
    spec = {"data": {"dataset": "cifar10", "split": "test", "n": args.n}, "models": ["cifar10/resnet20"],
            "batch_size": 50, "attacks": [{"name": "deepfool", "norm": 2, "max_iter": 20, "overshoot": eps}]}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "ray"):
            start = time.perf_counter()
            kw = {"num_cpus": args.cpus} if engine == "ray" else {}
            res = fk.sweep(spec, Path(tmp) / engine, engine=engine, progress=False, report=False, **kw)
            rows[engine] = (time.perf_counter() - start, res["task_seconds"], res["tasks"])
    (lw, lt, k), (rw, rt, _) = rows["local"], rows["ray"]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"sweep: {k} DeepFool L2 tasks x {args.n} images (batch 50), 1 torch thread per task, Ray on {args.cpus} CPUs")
    print("| engine | wall s | summed task s | task s per task |")
    print("|---|---|---|---|")
    for name, (w, t, _) in rows.items():
        print(f"| {name} | {w:.1f} | {t:.1f} | {t / k:.2f} |")
    per_task = (rt - lt) / k
    print(f"Ray overhead per task (inside the task): {per_task:+.2f} s ({100 * per_task / (lt / k):+.0f}% of a local task)")
    print(f"Ray wall-clock overhead per task (start-up, scheduling, shutdown included, "
          f"parallelism excluded): {(rw * min(args.cpus, k) - lw) / k:+.2f} s "
          f"({100 * ((rw * min(args.cpus, k) - lw) / lw):+.0f}% of local)")


if __name__ == "__main__":
    main()
