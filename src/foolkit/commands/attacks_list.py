"""``foolkit attacks``: one line per attack."""
from __future__ import annotations

import argparse

NAME = "attacks"
HELP = "list the attacks (and their parameters with `-v`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="also each attack's parameters and defaults")


def run(args: argparse.Namespace) -> int:
    from ..attacks import registry
    from ._params import flag_for

    for name, (cls, reason) in registry.status().items():
        if cls is None:
            if not reason.startswith("missing"):
                print(f"{name:12s} (unavailable: {reason})")
            continue
        print(f"{name:12s} {registry.summary(cls)}")
        if args.verbose:
            params = " ".join(f"{flag_for(p.name)} {p.default!r}" for p in registry.parameters(cls))
            print(f"{'':12s}   {params}")
    return 0
