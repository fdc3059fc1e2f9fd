"""Shards: ``evaluate(..., shard=(K, N))`` / ``foolkit attack --shard K/N`` run interleaved slices
of whole batches under the run's id; N shards merged equal one unsharded run."""
import math
import sqlite3

import pytest
import torch

import foolkit as fk
from conftest import make_affine, run_cli
from foolkit.evaluation import Store, runs_in
from foolkit.evaluation.merge import merge_stores
from foolkit.evaluation.shards import parse_shard, shard_indices

torch.set_num_threads(1)

N, BATCH = 30, 8  # batches [0,8) [8,16) [16,24) [24,30): shard 1/3 holds batches 0 and 3


@pytest.fixture(scope="module")
def data():
    x, _ = fk.data.load("cifar10", "test", n=N)
    model = make_affine(shape=(3, 32, 32), dtype=torch.float32, seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::5] = (y[::5] + 1) % 10  # some misclassified images: not attacked
    return model, x, y


def records(db) -> list[tuple]:
    """Every column of every sample, except the wall-clock seconds (which differ run to run)."""
    con = sqlite3.connect(db)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(samples)") if r[1] != "seconds"]
        return con.execute(f"SELECT {', '.join(cols)} FROM samples ORDER BY run_id, idx").fetchall()
    finally:
        con.close()


def table(db, name: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()
    finally:
        con.close()


def same_metrics(a: dict, b: dict) -> bool:
    a, b = dict(a), dict(b)
    a.pop("ms_per_image"), b.pop("ms_per_image")  # timing
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_shard_indices_interleave_whole_batches():
    assert shard_indices(N, BATCH, (1, 3)) == list(range(0, 8)) + list(range(24, 30))
    assert shard_indices(N, BATCH, (2, 3)) == list(range(8, 16))
    assert shard_indices(N, BATCH, (3, 3)) == list(range(16, 24))
    assert shard_indices(N, BATCH, (5, 5)) == []  # more shards than batches: an empty shard
    assert sorted(sum((shard_indices(N, BATCH, (k, 4)) for k in range(1, 5)), [])) == list(range(N))
    assert parse_shard(" 2/3 ") == (2, 3)


def test_three_shards_merged_equal_one_unsharded_run(data, tmp_path):
    model, x, y = data
    attack = fk.attacks.DeepFool(norm=2, overshoot=0.02)
    full = fk.evaluate(model, attack, (x, y), tmp_path / "full.db", batch_size=BATCH)
    shards = []
    for k in (1, 2, 3):
        seen = []
        run = fk.evaluate(model, attack, (x, y), tmp_path / f"s{k}.db", batch_size=BATCH, shard=(k, 3),
                          progress=seen.append)
        assert run.run_id == full.run_id  # the shard is not in the run's identity
        assert [r["idx"] for r in run.records()] == shard_indices(N, BATCH, (k, 3))
        assert seen[-1]["done"] == seen[-1]["total"] == len(shard_indices(N, BATCH, (k, 3)))
        assert not run.complete
        with Store(tmp_path / f"s{k}.db", readonly=True) as s:
            assert s.runs()[0]["complete"] is False and s.runs()[0]["n_total"] == N
        shards.append(tmp_path / f"s{k}.db")

    merge_stores(tmp_path / "merged.db", shards)
    (merged,) = runs_in(tmp_path / "merged.db")
    assert merged.run_id == full.run_id and merged.complete
    assert table(tmp_path / "merged.db", "runs")[0][6] == 1  # the complete flag
    # the same batches in the same process: every record is exactly equal (timing aside)
    assert records(tmp_path / "merged.db") == records(tmp_path / "full.db")
    assert table(tmp_path / "merged.db", "blobs") == table(tmp_path / "full.db", "blobs")
    assert same_metrics(merged.metrics(), full.metrics())
    assert full.metrics()["n_fooled"] > 0


def test_a_shard_resumes_and_never_runs_other_shards_batches(data, tmp_path):
    model, x, y = data
    db = tmp_path / "s.db"
    fk.evaluate(model, "deepfool", (x, y), db, batch_size=BATCH, shard=(2, 3))
    rows = records(db)
    fk.evaluate(model, "deepfool", (x, y), db, batch_size=BATCH, shard=(2, 3))  # rerun: nothing new
    assert records(db) == rows
    # the unsharded run then fills in exactly the rest and completes the run
    run = fk.evaluate(model, "deepfool", (x, y), db, batch_size=BATCH)
    assert run.complete and [r["idx"] for r in run.records()] == list(range(N))


@pytest.mark.parametrize("shard, message", [
    ((0, 3), "shard 0/3: K must be in 1..N"),
    ((4, 3), "shard 4/3: K must be in 1..N"),
    ((1, 0), "shard 1/0"),
    ((True, 2), "shard must be a pair of integers"),
    ((1.0, 2), "shard must be a pair of integers"),
    ((1, 2, 3), "shard must be a pair of integers"),
    ("a/b", "--shard must be K/N"),
])
def test_bad_shards_are_refused_before_any_store(data, tmp_path, shard, message):
    model, x, y = data
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        fk.evaluate(model, "deepfool", (x, y), tmp_path / "r.db", batch_size=BATCH, shard=shard)
    assert not (tmp_path / "r.db").exists()


def test_universal_shards_refit_the_same_perturbation(data, tmp_path):
    model, x, y = data
    from foolkit.attacks import registry

    make = lambda: registry.create("universal", norm=2, xi=2.0, mode="batched", max_passes=2)  # noqa: E731
    kw = dict(batch_size=BATCH, fit_size=12)
    full = fk.evaluate(model, make(), (x, y), tmp_path / "full.db", **kw)
    for k in (1, 2):
        fk.evaluate(model, make(), (x, y), tmp_path / f"s{k}.db", shard=(k, 2), **kw)
    merge_stores(tmp_path / "m.db", [tmp_path / "s1.db", tmp_path / "s2.db"])
    (merged,) = runs_in(tmp_path / "m.db")
    assert merged.run_id == full.run_id and merged.complete
    assert records(tmp_path / "m.db") == records(tmp_path / "full.db")
    v, w = merged.artifact("universal_perturbation"), full.artifact("universal_perturbation")
    assert v.shape == w.shape and (v == w).all() and abs(v).max() > 0


# --- the command line --------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights(random_resnet20_weights):
    return random_resnet20_weights


def attack_args(weights, out, *extra):
    return ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "20",
            "--batch-size", "8", "--out", str(out), "--quiet", *extra]


def test_cli_shards_show_partial_and_merge_to_the_full_run(weights, tmp_path, capsys):
    for k in (1, 2, 3):
        code, out, err = run_cli(attack_args(weights, tmp_path / f"s{k}.db", "--shard", f"{k}/3"), capsys)
        assert code == 0, err
        assert f"shard {k}/3 of run" in out
    code, out, err = run_cli(["show", str(tmp_path / "s2.db")], capsys)
    assert code == 0 and "[8/20 done]" in out  # batch [8,16) only: a partial run
    assert run_cli(attack_args(weights, tmp_path / "full.db"), capsys)[0] == 0
    code, out, err = run_cli(["merge", str(tmp_path / "m.db"), *(str(tmp_path / f"s{k}.db") for k in (1, 2, 3))],
                             capsys)
    assert code == 0, err
    assert "20 new sample(s)" in out and "1 complete run(s)" in out
    assert records(tmp_path / "m.db") == records(tmp_path / "full.db")
    code, out, err = run_cli(["show", str(tmp_path / "m.db")], capsys)
    assert code == 0 and "done]" not in out


@pytest.mark.parametrize("shard, message", [
    ("0/3", "shard 0/3: K must be in 1..N"),
    ("4/3", "shard 4/3: K must be in 1..N"),
    ("a/b", "--shard must be K/N with 1 <= K <= N (e.g. 2/4), got 'a/b'"),
    ("3", "--shard must be K/N"),
])
def test_cli_bad_shard_is_one_line_exit_2(weights, tmp_path, capsys, shard, message):
    code, out, err = run_cli(attack_args(weights, tmp_path / "r.db", "--shard", shard), capsys)
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r.db").exists()


def test_cli_shard_with_one_image_is_refused(capsys):
    code, out, err = run_cli(["attack", "--cifar-index", "3", "--attack", "fgsm", "--shard", "1/2"], capsys)
    assert code == 2 and len(err) == 1 and "--shard applies to data sets" in err[0], err
