"""Combine run stores: ``merge_stores(out, inputs)``, behind ``foolkit merge OUT.db IN.db ...``.

Shards of a run (``evaluate(..., shard=(K, N))``), or runs made on several machines, each
write their own store (SQLite's WAL mode does not work over network file systems); merging
puts them in one.

- Runs are matched by run id; per-sample records and images by (run id, sample index), run
  artifacts (a fitted universal perturbation) by (run id, key).
- A key already present with the same content is skipped, so merging twice, or merging
  overlapping shards, changes nothing. Wall-clock timing (the ``seconds`` column, and
  ``seconds`` inside JSON artifacts such as the fit history) is not compared: it differs
  between two computations of the same result.
- A key present with other content is a conflict: the merge is refused with one line naming
  the run, the sample (or artifact) and the files, and OUT is left as it was: an existing OUT
  is changed in one transaction, a new OUT is written to a temporary file renamed at the end.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.cifar10 import missing_path_error
from ..errors import InputError, MergeConflict, StoreError
from .store import Store
from .store_format import BLOB_COLUMNS, SAMPLE_COLUMNS, decode

# Columns that hold wall-clock measurements, not results: never compared.
TIMING_COLUMNS = ("seconds",)
COMPARED_COLUMNS = tuple(c for c in SAMPLE_COLUMNS if c not in TIMING_COLUMNS)
_CHUNK = 500




def merge_stores(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> dict:
    """Merge the runs of ``inputs`` into the store ``out`` (created when missing).

    Args:
        out: the output store: a new file, or an existing foolkit store (its runs are kept).
            Never one of the inputs.
        inputs: one or more run stores, read only.

    Returns:
        ``{"runs": runs merged, "added": samples added, "present": samples already there,
        "complete": runs complete in out}``.

    Raises:
        MergeConflict (a ValueError): a record differs between two stores; ``out`` unchanged.
        StoreError / FileNotFoundError: an input or ``out`` is missing, corrupt or not a store.
    """
    from ..runtime.files import atomic_path, check_output

    inputs = [str(p) for p in inputs]
    if not inputs:
        raise InputError("give at least one input store to merge")
    out_path = check_output(out, inputs=inputs, kind="store")
    sources: list[Store] = []
    try:
        # every input is opened (and checked) before OUT is touched
        for path in inputs:
            if not Path(path).exists():
                raise missing_path_error(path, "run store", f"no such run store: {path}", error=ValueError)
            sources.append(Store(path, readonly=True))
        if out_path.exists() and out_path.stat().st_size > 0:
            with Store(out_path) as dst:
                return _merge_into(dst, str(out_path), sources)
        with atomic_path(out_path) as tmp:  # a new OUT appears only complete
            with Store(tmp) as dst:
                return _merge_into(dst, str(out_path), sources)
    finally:
        for s in sources:
            s.close()


def _merge_into(dst: Store, out_name: str, sources: list[Store]) -> dict:
    stats = {"runs": 0, "added": 0, "present": 0}

    def merge(c) -> dict:  # one transaction (the store's own): a conflict leaves OUT as it was
        run_ids = set()
        for src in sources:
            for run in _read(src, src.runs):
                _merge_run(c, out_name, src, run, stats)
                run_ids.add(run["run_id"])
        c.execute("UPDATE runs SET complete = 1 WHERE complete = 0 AND n_total <= "
                  "(SELECT COUNT(*) FROM samples s WHERE s.run_id = runs.run_id)")
        stats["runs"] = len(run_ids)
        stats["complete"] = c.execute("SELECT COUNT(*) FROM runs WHERE complete = 1").fetchone()[0]
        return stats

    return dst._write(merge)


def _read(src: Store, fn, *args):
    """Call a reader of ``src``, turning SQLite errors (a corrupt page) into a one-line StoreError."""
    try:
        return fn(*args)
    except sqlite3.DatabaseError as exc:
        raise src._error(exc) from exc


def _rows(src: Store, sql: str, params: tuple):
    """Stream the rows of a query on an input store, in chunks."""
    try:
        cur = src._c.execute(sql, params)
        while True:
            chunk = cur.fetchmany(_CHUNK)
            if not chunk:
                return
            yield from chunk
    except sqlite3.DatabaseError as exc:
        raise src._error(exc) from exc


def _merge_run(c: sqlite3.Connection, out_name: str, src: Store, run: dict, stats: dict) -> None:
    rid = run["run_id"]
    config_text = _read(src, lambda: src._c.execute("SELECT config FROM runs WHERE run_id = ?",
                                                       (rid,)).fetchone()[0])
    have = c.execute("SELECT config, n_total FROM runs WHERE run_id = ?", (rid,)).fetchone()
    if have is None:
        c.execute("INSERT INTO runs (run_id, title, config, n_total, created, updated, complete) "
                  "VALUES (?, ?, ?, ?, ?, ?, 0)",
                  (rid, run["title"], config_text, run["n_total"], run["created"], run["updated"]))
    else:
        strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "title"}  # noqa: E731
        if have[1] != run["n_total"] or strip(have[0]) != strip(config_text):
            raise MergeConflict(f"run {rid} has another configuration or size in {src.path} than in {out_name}; "
                                f"refusing to merge ({out_name} is unchanged)")
        # the earliest start and latest update: the same whatever the order of the merges
        c.execute("UPDATE runs SET created = MIN(created, ?), updated = MAX(updated, ?) WHERE run_id = ?",
                  (run["created"], run["updated"], rid))
    _merge_samples(c, out_name, src, rid, stats)
    _merge_blobs(c, out_name, src, rid)
    _merge_artifacts(c, out_name, src, rid)


class _Inserter:
    """Rows of one run for ``table``'s ``cols`` (after ``run_id``), inserted ``_CHUNK`` at a time."""

    def __init__(self, c: sqlite3.Connection, table: str, cols: list[str], run_id: str):
        self.c, self.run_id = c, run_id
        self.pending: list[tuple] = []
        self.sql = f"INSERT INTO {table} (run_id, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))})"

    def add(self, row: tuple) -> None:
        self.pending.append((self.run_id, *row))
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.c.executemany(self.sql, self.pending)
            self.pending.clear()


def _merge_samples(c, out_name, src, rid, stats) -> None:
    cols = ["idx", *SAMPLE_COLUMNS]
    select = f"SELECT {', '.join(cols)} FROM samples WHERE run_id = ? ORDER BY idx"
    existing = {r[0]: r for r in c.execute(select, (rid,))}
    inserter = _Inserter(c, "samples", cols, rid)
    compared = [cols.index(k) for k in COMPARED_COLUMNS]
    for row in _rows(src, select, (rid,)):
        old = existing.get(row[0])
        if old is None:
            inserter.add(row)
            existing[row[0]] = row  # a later input must agree with this one
            stats["added"] += 1
            continue
        stats["present"] += 1
        for j in compared:
            if not _same_value(old[j], row[j]):
                raise MergeConflict(f"run {rid} sample {row[0]}: {cols[j]} is {row[j]!r} in {src.path} but "
                                    f"{old[j]!r} in {out_name} or an earlier input; refusing to merge "
                                    f"({out_name} is unchanged)")
    inserter.flush()


def _merge_blobs(c, out_name, src, rid) -> None:
    cols = ["idx", *BLOB_COLUMNS]
    have = {r[0] for r in c.execute("SELECT idx FROM blobs WHERE run_id = ?", (rid,))}
    inserter = _Inserter(c, "blobs", cols, rid)
    for row in _rows(src, f"SELECT {', '.join(cols)} FROM blobs WHERE run_id = ? ORDER BY idx", (rid,)):
        if row[0] not in have:
            inserter.add(row)
            have.add(row[0])
            continue
        inserter.flush()  # the row compared against may be among them
        old = c.execute(f"SELECT {', '.join(BLOB_COLUMNS)} FROM blobs WHERE run_id = ? AND idx = ?",
                        (rid, row[0])).fetchone()
        for name, a, b in zip(BLOB_COLUMNS, old, row[1:]):
            if not _same_blob(a, b):
                raise MergeConflict(f"run {rid} sample {row[0]}: the stored {name} differs between {src.path} and "
                                    f"{out_name} or an earlier input; refusing to merge ({out_name} is unchanged)")
    inserter.flush()


def _merge_artifacts(c, out_name, src, rid) -> None:
    for key, data in _rows(src, "SELECT key, data FROM artifacts WHERE run_id = ? ORDER BY key", (rid,)):
        old = c.execute("SELECT data FROM artifacts WHERE run_id = ? AND key = ?", (rid, key)).fetchone()
        if old is None:
            c.execute("INSERT INTO artifacts (run_id, key, data) VALUES (?, ?, ?)", (rid, key, data))
        elif not _same_blob(old[0], data):
            hint = (" (a universal perturbation fitted differently: fit on identical machines and thread counts, "
                    "or fit once and copy that store to every shard)" if key.startswith("universal") else "")
            raise MergeConflict(f"run {rid} artifact {key!r} differs between {src.path} and {out_name} or an "
                                f"earlier input{hint}; refusing to merge ({out_name} is unchanged)")


# --- comparing values --------------------------------------------------------------------
def _same_value(a, b) -> bool:
    if a == b:
        return True
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def _strip_timing(v):
    if isinstance(v, dict):
        return {k: _strip_timing(x) for k, x in v.items() if k not in TIMING_COLUMNS}
    if isinstance(v, list):
        return [_strip_timing(x) for x in v]
    return v


def _json(blob: bytes):
    try:
        return json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _NOT_JSON


_NOT_JSON = object()


def _same_array(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # no NaN in this dtype
        return bool(np.array_equal(a, b))


def _same_blob(a: bytes | None, b: bytes | None) -> bool:
    """Equal stored content: the same bytes, else the same decoded arrays (zlib may compress the
    same array differently on another machine), or the same JSON apart from timing."""
    if a is None or b is None:
        return a is None and b is None
    a, b = bytes(a), bytes(b)
    if a == b:
        return True
    ja, jb = _json(a), _json(b)
    if ja is not _NOT_JSON or jb is not _NOT_JSON:
        return _strip_timing(ja) == _strip_timing(jb)
    try:
        da, db = decode(a), decode(b)
    except Exception:  # undecodable content cannot be shown equal
        return False
    if isinstance(da, dict) or isinstance(db, dict):
        return (isinstance(da, dict) and isinstance(db, dict) and da.keys() == db.keys()
                and all(_same_array(da[k], db[k]) for k in da))
    return _same_array(da, db)


__all__ = ["MergeConflict", "StoreError", "merge_stores"]
