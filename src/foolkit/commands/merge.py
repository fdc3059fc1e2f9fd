"""``foolkit merge OUT.db IN.db [IN.db ...]``: combine run stores (shards, other machines).

Runs are matched by run id, samples by (run id, index); what OUT already holds is kept, so
merging twice or merging overlapping shards changes nothing. Different results under the same
key are refused with one line, and OUT is left unchanged.
"""
from __future__ import annotations

NAME = "merge"
HELP = "combine run stores (e.g. the shards of `foolkit attack --shard K/N`) into one"


def add_arguments(p) -> None:
    p.add_argument("out", metavar="OUT.db", help="output run store: a new file, or an existing store (its runs are kept)")
    p.add_argument("inputs", metavar="IN.db", nargs="+", help="run stores to merge in (read only)")


def run(args) -> int:
    from ..evaluation.merge import merge_stores

    stats = merge_stores(args.out, args.inputs)
    print(f"merged {len(args.inputs)} store(s) into {args.out}: {stats['runs']} run(s), "
          f"{stats['added']} new sample(s), {stats['present']} already there; "
          f"{stats['complete']} complete run(s) in {args.out} (`foolkit show {args.out}`)")
    return 0
