"""Crash safety: a run killed with SIGKILL (or stopped with Ctrl-C) mid-way and rerun ends with
exactly the records of an uninterrupted run: none missing, none twice."""
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

N, BATCH = 120, 10

SCRIPT = textwrap.dedent("""
    import math, os, sys, time
    import torch
    torch.set_num_threads(1)
    import foolkit as fk

    DELAY = float(os.environ.get("FK_TEST_DELAY", "0"))  # not an attack parameter: not in the run hash

    class Affine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.weight = torch.nn.Parameter(torch.randn(10, 3072, generator=g) / math.sqrt(3072))
            self.bias = torch.nn.Parameter(torch.randn(10, generator=g) * 0.1)

        def forward(self, x):
            return x.flatten(1) @ self.weight.T + self.bias

    class SlowDeepFool(fk.attacks.DeepFool):
        def _run(self, *args, **kw):
            time.sleep(DELAY)
            return super()._run(*args, **kw)

    model = Affine().eval()
    x, _ = fk.data.load("cifar10", "test", n={n})
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::7] = (y[::7] + 1) % 10
    run = fk.evaluate(model, SlowDeepFool(norm=2, overshoot=0.02), (x, y), sys.argv[1], batch_size={batch})
    print(run.run_id)
""").format(n=N, batch=BATCH)


def count_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def launch(script: Path, db: Path, delay: float) -> subprocess.Popen:
    env = dict(os.environ, FK_TEST_DELAY=str(delay), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), str(db)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, db: Path, rows: int, sig=signal.SIGKILL, timeout=60) -> int:
    """Send ``sig`` once at least ``rows`` samples are committed; returns the rows seen then."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        seen = count_rows(db)
        if seen >= rows:
            proc.send_signal(sig)
            proc.wait(30)
            return seen
        time.sleep(0.01)
    pytest.fail(f"the run ended or stalled before {rows} rows were committed: {proc.communicate()}")


def records(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(samples)") if r[1] not in ("seconds",)]
        return con.execute(f"SELECT {', '.join(cols)} FROM samples ORDER BY run_id, idx").fetchall()
    finally:
        con.close()


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    killed_db, clean_db = tmp_path / "killed.db", tmp_path / "clean.db"

    # two kills at different points, each losing at most the batch in flight
    for rows in (2 * BATCH, 6 * BATCH):
        proc = launch(script, killed_db, delay=0.15)
        kill_when(proc, killed_db, rows)
        assert proc.returncode == -signal.SIGKILL
        stored = count_rows(killed_db)
        assert rows <= stored < N and stored % BATCH == 0  # whole batches only
    done = subprocess.run([sys.executable, str(script), str(killed_db)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    ref = subprocess.run([sys.executable, str(script), str(clean_db)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert ref.returncode == 0, ref.stderr
    assert done.stdout.strip() == ref.stdout.strip()  # the same run id

    con = sqlite3.connect(killed_db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT idx), MIN(idx), MAX(idx) FROM samples").fetchone() == \
        (N, N, 0, N - 1)
    assert con.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == N
    assert con.execute("SELECT complete FROM runs").fetchone()[0] == 1
    con.close()
    assert records(killed_db) == records(clean_db)

    from foolkit.evaluation import runs_in
    (a,), (b,) = runs_in(killed_db), runs_in(clean_db)
    ma, mb = a.metrics(), b.metrics()
    ma.pop("ms_per_image"), mb.pop("ms_per_image")
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == mb[k] or (isinstance(ma[k], float) and math.isnan(ma[k]) and math.isnan(mb[k])), k
    assert ma["n"] == N and ma["n_fooled"] > 0


def test_ctrl_c_in_the_cli_stops_cleanly_and_rerun_resumes(tmp_path):
    import foolkit as fk

    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(fk.models.build("cifar10/resnet20").net.state_dict(), weights)
    db = tmp_path / "cli.db"
    n = 300
    cmd = [sys.executable, "-m", "foolkit.cli", "attack", "--model", "cifar10/resnet20", "--checkpoint",
           str(weights), "--attack", "fgsm", "--eps", "0.02", "--n", str(n), "--batch-size", "5", "--out", str(db),
           "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(proc, db, 10, sig=signal.SIGINT)
    err = proc.stderr.read()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    stored = count_rows(db)
    assert stored < n and stored % 5 == 0
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT idx) FROM samples").fetchone() == (n, n)
    con.close()
    assert "fool%" in done.stdout
