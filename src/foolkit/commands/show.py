"""``foolkit show runs/x.db``: the metrics table of every run in a store."""
from __future__ import annotations

NAME = "show"
HELP = "metrics table (thesis columns) of every run in a run store"


def add_arguments(p) -> None:
    p.add_argument("store", help="SQLite run store written by `foolkit attack` or `foolkit demo`")
    p.add_argument("--details", action="store_true", help="also the accuracies, claimed vs verified and run ids")
    p.add_argument("--best", action="store_true",
                   help="also, per model and norm, the best-known ρ̂ (smallest verified perturbation of any run, "
                        "per image) and each run's AttackBench optimality and ρ̂ gap")


def run(args) -> int:
    from ..evaluation import metrics
    from ..evaluation.store import Store

    with Store(args.store, readonly=True) as s:
        runs = s.runs()
        rows = [(r, metrics.compute(s.samples(r["run_id"]))) for r in runs]
    if not rows:
        print(f"{args.store}: no runs")
        return 0
    titles = []
    for r, _ in rows:
        status = "" if r["n_done"] >= r["n_total"] else f" [{r['n_done']}/{r['n_total']} done]"
        titles.append(f"{r['title']}{status}")
    print(metrics.format_table(list(zip(titles, [m for _, m in rows]))))
    print("fool%, fool8% (still fooling as 8-bit images): over the correctly classified |D'|; conf%, pix%: over the fooled; "
          "Δ̂, ρ̂: means over |D'| (thesis sec. 11.3)")
    if args.details:
        for (r, m), title in zip(rows, titles):
            print(f"\n{r['run_id']}  {title}\n  {metrics.describe(m)}")
    if args.best:
        from ..evaluation.optimality import format_best, frontier
        print("\n" + format_best(frontier(args.store)))
    return 0
