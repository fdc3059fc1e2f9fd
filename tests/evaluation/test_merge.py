"""merge_stores / ``foolkit merge``: idempotent on (run id, sample index), conflicts refused with
OUT unchanged, timing ignored, bad inputs one line."""
import shutil
import sqlite3

import numpy as np
import pytest
import torch

import foolkit as fk
from conftest import make_affine, run_cli
from foolkit.evaluation import Store, runs_in
from foolkit.errors import MergeConflict
from foolkit.evaluation.merge import merge_stores
from foolkit.evaluation.store_format import encode_array

torch.set_num_threads(1)

N, BATCH = 30, 8


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Three shards of one DeepFool run, and the unsharded run, each in its own store."""
    d = tmp_path_factory.mktemp("stores")
    x, _ = fk.data.load("cifar10", "test", n=N)
    model = make_affine(shape=(3, 32, 32), dtype=torch.float32, seed=3)
    attack = fk.attacks.DeepFool(norm=2, overshoot=0.02)
    for k in (1, 2, 3):
        fk.evaluate(model, attack, x, d / f"s{k}.db", batch_size=BATCH, shard=(k, 3))
    fk.evaluate(model, attack, x, d / "full.db", batch_size=BATCH)
    fk.evaluate(model, "fgsm", x[:10], d / "other.db", batch_size=BATCH)  # another run
    return d


def content(db) -> dict:
    """Every row of every table, timing included: what 'changes nothing' means."""
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("runs", "samples", "blobs", "artifacts", "foolkit_meta")}
    finally:
        con.close()


def shards(d):
    return [d / f"s{k}.db" for k in (1, 2, 3)]


def tampered(src, dst, sql, params=()):
    shutil.copy(src, dst)
    con = sqlite3.connect(dst)
    con.execute(sql, params)
    con.commit()
    con.close()
    return dst


def test_merging_twice_changes_nothing(stores, tmp_path):
    out = tmp_path / "m.db"
    stats = merge_stores(out, shards(stores))
    assert stats == {"runs": 1, "added": N, "present": 0, "complete": 1}
    first = content(out)
    stats = merge_stores(out, shards(stores))
    assert stats["added"] == 0 and stats["present"] == N
    assert content(out) == first
    # another order of the inputs gives the same content too
    merge_stores(tmp_path / "r.db", shards(stores)[::-1])
    assert content(tmp_path / "r.db") == first


def test_overlapping_shards_merge_to_the_same_store(stores, tmp_path):
    s1, s2, s3 = shards(stores)
    merge_stores(tmp_path / "a.db", [s1, s2])
    merge_stores(tmp_path / "b.db", [s2, s3])
    merge_stores(tmp_path / "ab.db", [tmp_path / "a.db", tmp_path / "b.db", s1, s2])
    merge_stores(tmp_path / "ref.db", [s1, s2, s3])
    assert content(tmp_path / "ab.db") == content(tmp_path / "ref.db")
    (run,) = runs_in(tmp_path / "ab.db")
    assert run.complete and len(run.records()) == N


def test_merge_into_an_existing_store_keeps_its_runs(stores, tmp_path):
    out = tmp_path / "m.db"
    shutil.copy(stores / "other.db", out)
    before = content(out)
    merge_stores(out, shards(stores))
    after = content(out)
    assert {r[0] for r in after["runs"]} == {r[0] for r in before["runs"]} | {runs_in(stores / "s1.db")[0].run_id}
    assert set(before["samples"]) <= set(after["samples"])
    assert len(after["samples"]) == len(before["samples"]) + N


@pytest.mark.parametrize("existing", [False, True])
def test_a_conflicting_record_is_refused_and_out_is_unchanged(stores, tmp_path, existing):
    s1, s2, s3 = shards(stores)
    bad = tampered(s2, tmp_path / "bad.db", "UPDATE samples SET l2 = l2 * 1.001 WHERE idx = 9")
    out = tmp_path / "m.db"
    if existing:
        merge_stores(out, [s1, s2])
        before = content(out)
    run_id = runs_in(s1)[0].run_id
    with pytest.raises(MergeConflict, match=f"run {run_id} sample 9: l2 is .* in {bad}") as info:
        merge_stores(out, [s1, s2, s3, bad])
    assert "\n" not in str(info.value) and "unchanged" in str(info.value)
    if existing:
        assert content(out) == before
    else:
        assert not out.exists() and list(tmp_path.glob(".m.db*")) == []  # no temporary file left


def test_a_conflicting_image_or_artifact_is_refused(stores, tmp_path):
    s2 = stores / "s2.db"
    bad = tampered(s2, tmp_path / "bad.db", "UPDATE blobs SET perturbation = ? WHERE idx = 10",
                   (encode_array(np.zeros((3, 32, 32), np.float32)),))
    with pytest.raises(MergeConflict, match="sample 10: the stored perturbation differs"):
        merge_stores(tmp_path / "m.db", [s2, bad])
    run_id = runs_in(s2)[0].run_id
    a = tampered(s2, tmp_path / "a.db", "INSERT INTO artifacts VALUES (?, 'universal_perturbation', ?)",
                 (run_id, encode_array(np.ones((1, 3, 32, 32), np.float32))))
    b = tampered(s2, tmp_path / "b.db", "INSERT INTO artifacts VALUES (?, 'universal_perturbation', ?)",
                 (run_id, encode_array(np.full((1, 3, 32, 32), 2, np.float32))))
    with pytest.raises(MergeConflict, match="artifact 'universal_perturbation' differs"):
        merge_stores(tmp_path / "m.db", [a, b])
    assert not (tmp_path / "m.db").exists()


def test_timing_is_not_a_conflict(stores, tmp_path):
    s2 = stores / "s2.db"
    slow = tampered(s2, tmp_path / "slow.db", "UPDATE samples SET seconds = seconds + 5")
    run_id = runs_in(s2)[0].run_id
    fit_a = tampered(s2, tmp_path / "fa.db", "INSERT INTO artifacts VALUES (?, 'universal_fit', ?)",
                     (run_id, b'{"seconds": 1.5, "history": [{"pass": 1, "seconds": 0.7}], "passes": 1}'))
    fit_b = tampered(s2, tmp_path / "fb.db", "INSERT INTO artifacts VALUES (?, 'universal_fit', ?)",
                     (run_id, b'{"seconds": 9.0, "history": [{"pass": 1, "seconds": 4.2}], "passes": 1}'))
    stats = merge_stores(tmp_path / "m.db", [s2, slow, fit_a, fit_b])
    assert stats["present"] == 3 * 8
    fit_c = tampered(s2, tmp_path / "fc.db", "INSERT INTO artifacts VALUES (?, 'universal_fit', ?)",
                     (run_id, b'{"seconds": 9.0, "history": [{"pass": 1, "seconds": 4.2}], "passes": 2}'))
    with pytest.raises(MergeConflict, match="artifact 'universal_fit' differs"):
        merge_stores(tmp_path / "m.db", [fit_c])


# --- the command line --------------------------------------------------------------------


def test_cli_merge(stores, tmp_path, capsys):
    out = tmp_path / "m.db"
    code, text, err = run_cli(["merge", str(out), *map(str, shards(stores))], capsys)
    assert code == 0 and err == [] and "30 new sample(s)" in text
    code, text, err = run_cli(["merge", str(out), *map(str, shards(stores))], capsys)
    assert code == 0 and "0 new sample(s), 30 already there" in text


def corrupt(stores, tmp_path):
    p = tmp_path / "corrupt.db"
    shutil.copy(stores / "s1.db", p)
    with open(p, "r+b") as fh:  # garbage over the pages after the header page
        fh.seek(4096)
        fh.write(b"\xa5" * 8192)
    return p


@pytest.mark.parametrize("case, message", [
    ("self", "is also an input of this command"),
    ("missing", "no such run store"),
    ("loop", "is a symlink loop"),
    ("garbage", "is not an SQLite database"),
    ("corrupt", "corrupt"),
    ("foreign", "an SQLite database of something else"),
    ("conflict", "sample 9: l2 is"),
])
def test_cli_merge_errors_are_one_line_exit_2(stores, tmp_path, capsys, case, message):
    out = tmp_path / "m.db"
    merge_stores(out, [stores / "s1.db"])
    before = content(out)
    if case == "self":
        bad = out
    elif case == "missing":
        bad = tmp_path / "nope.db"
    elif case == "loop":
        bad = tmp_path / "loop.db"
        bad.symlink_to(bad)
    elif case == "garbage":
        bad = tmp_path / "g.db"
        bad.write_bytes(b"not a store at all")
    elif case == "corrupt":
        bad = corrupt(stores, tmp_path)
    elif case == "foreign":
        bad = tmp_path / "f.db"
        con = sqlite3.connect(bad)
        con.execute("CREATE TABLE t (a)")
        con.commit()
        con.close()
    else:
        bad = tampered(stores / "s2.db", tmp_path / "bad.db", "UPDATE samples SET l2 = l2 + 1 WHERE idx = 9")
    code, text, err = run_cli(["merge", str(out), str(stores / "s2.db"), str(bad)], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("foolkit merge: error: ") and message in err[0], err
    assert content(out) == before


def test_cli_merge_needs_an_input(tmp_path, capsys):
    code, text, err = run_cli(["merge", str(tmp_path / "m.db")], capsys)
    assert code == 2 and not (tmp_path / "m.db").exists()


def test_merged_store_reads_like_any_store(stores, tmp_path):
    merge_stores(tmp_path / "m.db", [*shards(stores), stores / "other.db"])
    with Store(tmp_path / "m.db", readonly=True) as s:
        assert sorted((r["n_done"], r["complete"]) for r in s.runs()) == [(10, True), (N, True)]
