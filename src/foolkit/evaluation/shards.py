"""Shards: the K-th of N interleaved slices of a run's batches, for spreading one run over
processes or machines (a SLURM array, any scheduler) whose stores ``foolkit merge`` combines.

Convention (the same in the library and on the command line): shards are numbered from 1,
``shard=(K, N)`` with ``1 <= K <= N``; batch ``b`` (0-based, the images ``[b*B, (b+1)*B)``)
belongs to shard K iff ``b % N == K - 1``. Interleaving spreads easy and hard images (and the
short last batch) evenly. The shard is not part of the run's identity: every shard writes the
same run id, and each batch runs under its own seed, so N shards together hold exactly the
records of one unsharded run.
"""
from __future__ import annotations

import re
from ..errors import InputError

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def check_shard(shard) -> tuple[int, int] | None:
    """Validate ``(K, N)``; returns it as a tuple of ints (None stays None). Raises a one-line ValueError."""
    if shard is None:
        return None
    if isinstance(shard, str):
        return parse_shard(shard)
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in shard)):
        raise InputError(f"shard must be a pair of integers (K, N) with 1 <= K <= N, got {shard!r}")
    k, n = shard
    if n < 1 or not 1 <= k <= n:
        raise InputError(f"shard {k}/{n}: K must be in 1..N (shards are numbered from 1) and N >= 1")
    return int(k), int(n)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``, checked; a one-line ValueError otherwise."""
    m = _SHARD.fullmatch(str(text))
    if not m:
        raise InputError(f"--shard must be K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    shard = check_shard((int(m.group(1)), int(m.group(2))))
    assert shard is not None  # a pair in, a pair out
    return shard


def in_shard(batch: int, shard: tuple[int, int] | None) -> bool:
    """Whether the 0-based batch number ``batch`` belongs to ``shard`` (every batch when None)."""
    return shard is None or batch % shard[1] == shard[0] - 1


def shard_indices(n: int, batch_size: int, shard: tuple[int, int] | None) -> list[int]:
    """The sample indices (of ``n``) whose batches belong to ``shard``, in order."""
    return [i for start in range(0, n, batch_size) if in_shard(start // batch_size, shard)
            for i in range(start, min(start + batch_size, n))]
