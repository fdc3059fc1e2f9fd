"""The SQLite run store: schema, atomic batches, UNIQUE samples, codecs, refusing bad files."""
import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from foolkit.evaluation import store_format as st
from foolkit.errors import StoreError
from foolkit.evaluation.store import Store


def row(idx, **kw):
    base = {k: 0 for k in st.SAMPLE_COLUMNS}
    base.update(idx=idx, label=1, pred=1, attacked=True, l2=0.5, target=None, batch=0)
    base.update(kw)
    return base


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_wal_and_two_runs_coexist(tmp_path):
    path = tmp_path / "sub" / "runs.db"
    with Store(path) as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.ensure_run("aaaa1111", {"attack": "a"}, 3, "run a")
        assert not s.ensure_run("aaaa1111", {"attack": "a"}, 3, "run a")  # exists: no-op
        assert s.ensure_run("bbbb2222", {"attack": "b"}, 2, "run b")
        assert s.insert_batch("aaaa1111", [row(0), row(1)], [{"idx": 0, "image": b"x"}, {"idx": 1}])
        assert s.insert_batch("bbbb2222", [row(0, l2=7.0)])
    with Store(path, readonly=True) as s:
        runs = {r["run_id"]: r for r in s.runs()}
        assert runs["aaaa1111"]["n_done"] == 2 and runs["bbbb2222"]["n_done"] == 1
        assert runs["aaaa1111"]["config"] == {"attack": "a"}
        assert [r["l2"] for r in s.samples("bbbb2222")] == [7.0]
        assert s.done_indices("aaaa1111") == {0, 1}
        assert s.run("aaaa")["run_id"] == "aaaa1111"  # unique prefix
        with pytest.raises(StoreError, match="no run"):
            s.run("cccc")


def test_duplicate_sample_is_refused_and_batch_is_atomic(tmp_path):
    with Store(tmp_path / "r.db") as s:
        s.ensure_run("r1", {}, 4, "r")
        assert s.insert_batch("r1", [row(0), row(1)])
        # a batch overlapping a stored sample goes in not at all
        assert not s.insert_batch("r1", [row(2), row(1)])
        assert s.done_indices("r1") == {0, 1}
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute("INSERT INTO samples (run_id, idx, label, pred, attacked, adv_label, success, verified, "
                           "q_label, verified_q, quant_lost) VALUES ('r1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)")
        assert s.conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 2


def test_booleans_and_nulls_round_trip(tmp_path):
    with Store(tmp_path / "r.db") as s:
        s.ensure_run("r1", {}, 1, "r")
        s.insert_batch("r1", [row(0, success=np.bool_(True), verified=True, xc_l2=None, iterations=np.int64(3),
                                 seconds=np.float32(0.25))])
        (rec,) = s.samples("r1")
    assert rec["success"] is True and rec["verified_q"] is False
    assert rec["xc_l2"] is None and rec["target"] is None
    assert rec["iterations"] == 3 and rec["seconds"] == 0.25


def test_codecs_are_exact():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(3, 8, 8)).astype(np.float32) / np.float32(255)
    blob = st.encode_image(u8)
    assert blob.startswith(b"\x89PNG")
    assert np.array_equal(st.decode(blob), u8)
    gray = u8[:1]
    assert np.array_equal(st.decode(st.encode_image(gray)), gray)
    real = rng.random((3, 8, 8), dtype=np.float32)  # not 8-bit: stored as exact floats
    blob = st.encode_image(real)
    assert not blob.startswith(b"\x89PNG") and np.array_equal(st.decode(blob), real)
    r = (rng.standard_normal((3, 8, 8)) * 1e-3).astype(np.float32)
    assert np.array_equal(st.decode(st.encode_array(r)), r)
    extra = st.decode(st.encode_extra({"trace": np.arange(5.0), "best": np.array([1, 2])}))
    assert set(extra) == {"trace", "best"} and np.array_equal(extra["trace"], np.arange(5.0))
    assert st.encode_extra({}) is None and st.decode(None) is None
    q = st.decode(st.encode_png(np.full((3, 2, 2), 0.5004, dtype=np.float32)))
    assert np.allclose(q, 128 / 255)


def test_artifacts(tmp_path):
    with Store(tmp_path / "r.db") as s:
        s.ensure_run("r1", {}, 1, "r")
        s.set_artifact("r1", "v", b"one")
        s.set_artifact("r1", "v", b"two")
        assert s.artifact("r1", "v") == b"two" and s.artifact("r1", "w") is None
        assert s.artifact_keys("r1") == ["v"]


def test_not_sqlite_file_is_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my thesis notes, not a database\n" * 10)
    before = digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match="not an SQLite database"):
            Store(path, readonly=readonly)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_foreign_sqlite_database_is_left_alone(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'ada')")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(StoreError, match="something else.*customers"):
        Store(path)
    assert digest(path) == before


def test_corrupt_store_is_refused(tmp_path):
    path = tmp_path / "r.db"
    with Store(path) as s:
        s.ensure_run("r1", {}, 200, "r")
        s.insert_batch("r1", [row(i) for i in range(200)])
    # keep the SQLite header, overwrite the pages after the first one
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xde\xad\xbe\xef" * ((len(data) - 4096) // 4)
    path.write_bytes(bytes(data))
    before = digest(path)
    with pytest.raises(StoreError, match="corrupt|SQLite error|something else"):
        Store(path, readonly=True)
    with pytest.raises(StoreError):
        Store(path)
    assert digest(path) == before


def test_locked_store_gives_a_clear_error(tmp_path):
    path = tmp_path / "r.db"
    Store(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing
    try:
        with Store(path, timeout=0.1) as s:  # reading is fine in WAL mode ...
            with pytest.raises(StoreError, match="locked"):  # ... writing waits, then says so
                s.ensure_run("r1", {}, 1, "r")
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Store(path) as s:
        assert s.runs() == []


def test_readonly_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        Store(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreError, match="folder"):
        Store(tmp_path)


def test_empty_sqlite_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with Store(path) as s:
        assert s.runs() == []
    with pytest.raises(StoreError, match="empty database"):
        sqlite3.connect(tmp_path / "e2.db").execute("PRAGMA user_version = 1").connection.close()
        Store(tmp_path / "e2.db", readonly=True)


def test_memory_store():
    with Store(":memory:") as s:
        s.ensure_run("r1", {"a": 1}, 1, "r")
        assert s.insert_batch("r1", [row(0)])
        assert len(s.samples("r1")) == 1


def finished_store(path, n=50):
    with Store(path) as s:
        s.ensure_run("r1", {}, n, "r")
        s.insert_batch("r1", [row(i) for i in range(n)])
    assert not Path(f"{path}-wal").exists()  # a clean close checkpoints and removes the -wal file


def test_reading_creates_no_sidecar_files_and_changes_nothing(tmp_path):
    """A finished store is read with immutable=1: a plain mode=ro connection would leave -wal
    and -shm files beside it (and cannot open it at all in a read-only folder without them)."""
    path = tmp_path / "r.db"
    finished_store(path)
    before, mtime = digest(path), path.stat().st_mtime_ns
    with Store(path, readonly=True) as s:
        assert len(s.samples("r1")) == 50
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]
    assert digest(path) == before and path.stat().st_mtime_ns == mtime


def test_reading_beside_a_live_writer_sees_its_commits(tmp_path):
    """With a -wal file (a writer is open, or was killed), reading goes through mode=ro, which
    sees the commits still in the -wal file; immutable=1 would miss them."""
    path = tmp_path / "r.db"
    finished_store(path)
    with Store(path) as writer:
        writer.insert_batch("r1", [row(i) for i in range(50, 60)])
        assert Path(f"{path}-wal").exists()
        with Store(path, readonly=True) as s:
            assert len(s.samples("r1")) == 60


def test_read_only_folder_with_a_wal_file_falls_back_to_the_main_file(tmp_path, monkeypatch):
    """Simulated: SQLite's 'unable to open database file' for mode=ro (what a read-only folder
    without a -shm file gives) makes the store fall back to immutable=1. Tests run as root, where
    a chmod'ed folder stays writable, so the failure is injected rather than real."""
    path = tmp_path / "r.db"
    finished_store(path)
    Path(f"{path}-wal").write_bytes(b"")  # left by a killed writer: empty, nothing to replay
    real = sqlite3.connect

    def connect(database, *args, **kwargs):
        if isinstance(database, str) and database.endswith("?mode=ro"):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with Store(path, readonly=True) as s:
        assert len(s.samples("r1")) == 50


def test_corrupt_store_gets_no_wal_files_and_a_whole_one_line_message(tmp_path):
    path = tmp_path / "r.db"
    finished_store(path, n=200)
    clean = path.read_bytes()
    page = int.from_bytes(clean[16:18], "big")
    found = None
    for start in range(page, len(clean), page):  # a page whose damage quick_check reports on 2+ lines
        data = bytearray(clean)
        data[start + 8:start + 12] = b"\xde\xad\xbe\xef"
        path.write_bytes(bytes(data))
        try:
            Store(path, readonly=True).close()
        except StoreError as exc:
            if "On tree page" in str(exc):
                found = str(exc)
                break
    assert found, "no corruption reported by quick_check"
    assert "\n" not in found and found.endswith("nothing was written to it")
    before = digest(path)
    for readonly in (True, False):
        with pytest.raises(StoreError, match="is corrupt"):
            Store(path, readonly=readonly)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]


def test_a_closed_store_is_a_one_line_store_error():
    s = Store(":memory:")
    s.close()
    s.close()  # closing again is a no-op
    with pytest.raises(StoreError, match="closed"):
        s.runs()
