"""The run store: one SQLite file (WAL mode) holding any number of runs and their per-sample records.

The tables and the bytes in them are :mod:`foolkit.evaluation.store_format`'s. A batch's rows go
in with one transaction (:meth:`Store.insert_batch`): after ``kill -9`` a batch is either all
there or not at all. A file that is not SQLite, is corrupt, is locked, or is an SQLite database
of something else raises :class:`StoreError` before anything is written.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from ..errors import StoreError
from ..runtime.files import SQLITE_HEADER
from .store_format import (APPLICATION_ID, ARTIFACT_UPSERT, BLOB_COLUMNS, BOOL_COLUMNS, SAMPLE_COLUMNS, SCHEMA,
                           SCHEMA_VERSION, decode, sql_value)

T = TypeVar("T")


def _one_line(text: str, limit: int = 300) -> str:
    """SQLite's messages (quick_check's especially) may span lines; the CLI shows one line."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _symlink_loop(p: Path) -> bool:
    try:
        os.stat(p)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _connect_readonly(p: Path, timeout: float) -> sqlite3.Connection:
    """A connection to an existing store that writes nothing and creates no file.

    A store in WAL mode has a ``-wal`` file beside it while any connection is open (and after a
    killed one). Without one, the main file holds every commit, and ``immutable=1`` reads it
    without locks and without creating ``-wal``/``-shm`` files (which a plain ``mode=ro``
    connection leaves behind), also on read-only media. With one, ``mode=ro`` reads the
    commits in it; a read-only folder where SQLite cannot make its ``-shm`` file falls back to
    the main file alone.
    """
    real = p.resolve()  # SQLite names the -wal file after the file a symlink points to
    uri = real.as_uri()
    immutable = f"{uri}?mode=ro&immutable=1"
    if not any(Path(f"{real}{suffix}").exists() for suffix in ("-wal", "-journal")):
        return sqlite3.connect(immutable, uri=True, timeout=timeout, isolation_level=None)
    conn = None
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file (and the -shm)
        return conn
    except sqlite3.OperationalError as exc:
        if conn is not None:
            conn.close()
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise
        return sqlite3.connect(immutable, uri=True, timeout=timeout, isolation_level=None)


def _locked(exc: Exception) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Store:
    """An open run store. Use as a context manager, or call :meth:`close`.

    Args:
        path: the SQLite file; created (with its folder) when missing, unless ``readonly``.
            ``":memory:"`` keeps everything in memory.
        readonly: open without writing anything (``show``, ``report``): no ``-wal``/``-shm``
            files, no change, also on read-only media (see :func:`_connect_readonly`).

    An existing file is checked (header, foolkit schema, ``PRAGMA quick_check``) through a
    read-only connection before a writing one is opened and switched to WAL mode, so a corrupt
    or foreign file is left exactly as it was.
        timeout: seconds to wait for another process's lock before :class:`StoreError`.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False, timeout: float = 10.0):
        self.path = str(path)
        self.readonly = readonly
        self.conn: sqlite3.Connection | None = None
        memory = self.path == ":memory:"
        p = Path(self.path)
        existing = False
        if not memory:
            if p.is_dir():
                raise StoreError(f"{p} is a folder, not a run store file")
            if p.exists() and p.stat().st_size > 0:
                with open(p, "rb") as fh:
                    head = fh.read(len(SQLITE_HEADER))
                if head != SQLITE_HEADER:
                    raise StoreError(f"{p} is not an SQLite database (not a foolkit run store); refusing to touch it")
                existing = True
            elif not p.exists():
                from ..data.cifar10 import missing_path_error  # names a symlink loop or a broken symlink
                if readonly:
                    raise missing_path_error(p, "run store", f"no such run store: {p}", error=FileNotFoundError)
                if p.is_symlink() and _symlink_loop(p):  # a broken symlink is written through
                    raise missing_path_error(p, "run store", error=StoreError)
                p.parent.mkdir(parents=True, exist_ok=True)
        try:
            if existing:
                # Check a file that is there through a connection that writes nothing: a corrupt or
                # foreign file gets no -wal/-shm files beside it and no WAL switch.
                self.conn = _connect_readonly(p, timeout)
                empty = self._check_existing()
                if not readonly:
                    self.conn.close()
                    self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
                    self.conn.execute("PRAGMA journal_mode = WAL")
                    if empty:
                        self._create()
            elif readonly:  # an empty (0-byte) file
                raise StoreError(f"{self.path} is an empty file, not a foolkit run store")
            else:
                self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
                if not memory:
                    self.conn.execute("PRAGMA journal_mode = WAL")
                self._create()
            if not readonly:
                self._c.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
        except StoreError:
            self.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._error(exc) from exc

    @property
    def _c(self) -> sqlite3.Connection:
        """The open connection; a closed store is a one-line :class:`StoreError`."""
        if self.conn is None:
            raise StoreError(f"{self.path} is closed")
        return self.conn

    def _error(self, exc: Exception) -> StoreError:
        msg = _one_line(str(exc)) if str(exc) else type(exc).__name__
        if _locked(exc):
            return StoreError(f"{self.path} is locked by another process ({msg}); try again when it has finished")
        if "malformed" in msg or "not a database" in msg or "corrupt" in msg:
            return StoreError(f"{self.path} is corrupt ({msg}); nothing was written to it")
        if "readonly" in msg or "read-only" in msg:
            return StoreError(f"{self.path} cannot be written ({msg}): a read-only file or folder")
        return StoreError(f"{self.path}: SQLite error: {msg}")

    def _create(self) -> None:
        """Create the schema in an empty database, in one transaction."""
        c = self._c
        c.execute("BEGIN IMMEDIATE")
        try:
            if c.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:  # another process was first
                c.execute("ROLLBACK")
                self._check_existing()
                return
            for stmt in SCHEMA:
                c.execute(stmt)
            c.execute("INSERT INTO foolkit_meta VALUES ('format', 'foolkit-run-store'), ('schema', ?)",
                      (SCHEMA_VERSION,))
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _check_existing(self) -> bool:
        """Check an SQLite file is an intact foolkit store; True when it is an empty database
        (no tables: it may become a store)."""
        c = self._c
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and app_id == 0:
            if self.readonly:
                raise StoreError(f"{self.path} is an empty database, not a foolkit run store")
            return True
        if app_id != APPLICATION_ID or "foolkit_meta" not in tables:
            shown = ", ".join(sorted(tables)[:5]) or "none"
            raise StoreError(f"{self.path} is an SQLite database of something else (tables: {shown}), "
                             f"not a foolkit run store; refusing to touch it")
        schema = dict(c.execute("SELECT key, value FROM foolkit_meta").fetchall()).get("schema")
        if schema != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has run-store schema {schema!r}; this foolkit reads {SCHEMA_VERSION!r}")
        check = c.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise StoreError(f"{self.path} is corrupt ({_one_line(check)}); nothing was written to it")
        return False

    # --- context management ---
    def close(self) -> None:
        """Close the connection (again: no-op)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_sql(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._c.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    # --- runs ---
    def ensure_run(self, run_id: str, config: dict[str, Any], n_total: int, title: str) -> bool:
        """Register a run (no-op when it exists). Returns True when it was created."""
        now = time.time()
        text = json.dumps(config, sort_keys=True)
        try:
            cur = self._c.execute(
                "INSERT INTO runs (run_id, title, config, n_total, created, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING", (run_id, title, text, int(n_total), now, now))
            return cur.rowcount == 1
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def runs(self) -> list[dict[str, Any]]:
        """Every run: run_id, title, config (dict), n_total, n_done, created, updated, complete."""
        rows = self._run_sql(
            "SELECT r.run_id, r.title, r.config, r.n_total, r.created, r.updated, r.complete, "
            "(SELECT COUNT(*) FROM samples s WHERE s.run_id = r.run_id) FROM runs r ORDER BY r.created, r.run_id")
        return [{"run_id": r[0], "title": r[1], "config": json.loads(r[2]), "n_total": r[3], "created": r[4],
                 "updated": r[5], "complete": bool(r[6]), "n_done": r[7]} for r in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        """The run ``run_id``, or the one whose id starts with it (4 characters or more)."""
        for r in self.runs():
            if r["run_id"] == run_id or (len(run_id) >= 4 and r["run_id"].startswith(run_id)):
                return r
        raise StoreError(f"no run {run_id!r} in {self.path}")

    def mark_complete(self, run_id: str) -> None:
        """Mark the run as having every sample stored."""
        self._write(lambda c: c.execute("UPDATE runs SET complete = 1, updated = ? WHERE run_id = ?",
                                        (time.time(), run_id)))

    # --- samples ---
    def done_indices(self, run_id: str) -> set[int]:
        """Indices of the run's stored samples."""
        return {r[0] for r in self._run_sql("SELECT idx FROM samples WHERE run_id = ?", (run_id,))}

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one ``BEGIN IMMEDIATE`` transaction, rolled back on any error;
        an ``IntegrityError`` (a sample already stored) is raised as it is."""
        c = self._c
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        try:
            out = fn(c)
            c.execute("COMMIT")
            return out
        except BaseException as exc:
            try:
                c.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._error(exc) from exc
            raise

    def insert_batch(self, run_id: str, rows: list[dict[str, Any]], blobs: list[dict[str, Any]] | None = None,
                     artifacts: dict[str, bytes] | None = None) -> bool:
        """Insert a batch's records, blobs and run-level artifacts (key -> bytes) in one
        transaction: an interrupted run keeps all of a batch or none of it.

        Returns False, inserting nothing, when any of the samples is already stored (another
        process finished it); the UNIQUE constraints make a double insert impossible.
        """
        cols = ["run_id", "idx", *SAMPLE_COLUMNS]
        sql = f"INSERT INTO samples ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        bcols = ["run_id", "idx", *BLOB_COLUMNS]
        bsql = f"INSERT INTO blobs ({', '.join(bcols)}) VALUES ({', '.join('?' * len(bcols))})"

        def work(c: sqlite3.Connection) -> None:
            c.executemany(sql, [(run_id, int(r["idx"]), *(sql_value(r.get(k)) for k in SAMPLE_COLUMNS)) for r in rows])
            if blobs:
                c.executemany(bsql, [(run_id, int(b["idx"]), *(b.get(k) for k in BLOB_COLUMNS)) for b in blobs])
            if artifacts:
                c.executemany(ARTIFACT_UPSERT, [(run_id, key, data) for key, data in artifacts.items()])
            c.execute("UPDATE runs SET updated = ? WHERE run_id = ?", (time.time(), run_id))

        try:
            self._write(work)
        except sqlite3.IntegrityError:
            return False
        return True

    def samples(self, run_id: str) -> list[dict[str, Any]]:
        """Per-sample records of a run, ordered by index (booleans as bool, NULL as None)."""
        cols = ["idx", *SAMPLE_COLUMNS]
        rows = self._run_sql(f"SELECT {', '.join(cols)} FROM samples WHERE run_id = ? ORDER BY idx", (run_id,))
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            for k in BOOL_COLUMNS:
                d[k] = bool(d[k])
            out.append(d)
        return out

    def blobs(self, run_id: str, indices: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """Decoded blobs: idx -> {"image", "adv", "perturbation", "extra"} (None where absent)."""
        if indices is None:
            rows = self._run_sql(f"SELECT idx, {', '.join(BLOB_COLUMNS)} FROM blobs WHERE run_id = ? ORDER BY idx",
                                 (run_id,))
        else:
            rows = []
            idx = [int(i) for i in indices]
            for start in range(0, len(idx), 500):
                chunk = idx[start:start + 500]
                rows += self._run_sql(
                    f"SELECT idx, {', '.join(BLOB_COLUMNS)} FROM blobs WHERE run_id = ? AND idx IN "
                    f"({', '.join('?' * len(chunk))}) ORDER BY idx", (run_id, *chunk))
        return {r[0]: {k: decode(v) for k, v in zip(BLOB_COLUMNS, r[1:])} for r in rows}

    def has_extra(self, run_id: str, key: str) -> bool:
        """Whether any sample of the run stored the extra array ``key`` (reads at most 50 rows)."""
        for (blob,) in self._run_sql("SELECT extra FROM blobs WHERE run_id = ? AND extra IS NOT NULL LIMIT 50",
                                     (run_id,)):
            extra = decode(blob)
            if isinstance(extra, dict) and key in extra:
                return True
        return False

    # --- artifacts ---
    def set_artifact(self, run_id: str, key: str, data: bytes) -> None:
        """Store (or replace) the run-level bytes ``key``."""
        self._write(lambda c: c.execute(ARTIFACT_UPSERT, (run_id, key, data)))

    def artifact(self, run_id: str, key: str) -> bytes | None:
        """The run-level bytes ``key``; None when absent."""
        rows = self._run_sql("SELECT data FROM artifacts WHERE run_id = ? AND key = ?", (run_id, key))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def artifact_keys(self, run_id: str) -> list[str]:
        """The run's artifact keys, sorted."""
        return [r[0] for r in self._run_sql("SELECT key FROM artifacts WHERE run_id = ? ORDER BY key", (run_id,))]

