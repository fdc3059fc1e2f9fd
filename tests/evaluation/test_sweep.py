"""Sweeps: spec parsing, the task grid, the local engine, resume, and the direct-evaluate oracle."""
import sys

import numpy as np
import pytest
import torch

import foolkit as fk
from foolkit.cli import main
from foolkit.evaluation import sweep as sweep_mod
from foolkit.evaluation.run import runs_in
from foolkit.evaluation.sweep_spec import load_spec
from conftest import assert_same_records

MODEL = "cifar10/resnet20"


def spec(**over):
    s = {"data": {"dataset": "cifar10", "split": "test", "n": 20}, "models": [MODEL], "batch_size": 10,
         "attacks": [{"name": "fgsm", "eps": [0.01, 0.03]}]}
    s.update(over)
    return s


def by_title(path):
    return {r.title: r for r in runs_in(path)}


def test_grid_and_task_ids_are_stable(tmp_path):
    s = load_spec(spec(attacks=[{"name": "deepfool", "norm": [2, "inf"], "max_iter": [5, 10]},
                                {"name": "fgsm", "eps": 0.01}], shards=2))
    tasks = s.tasks()
    assert len(tasks) == (2 * 2 + 1) * 2  # grid points x shards
    assert {t.params["norm"] for t in tasks if t.attack == "deepfool"} == {2, float("inf")}
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert [t.task_id for t in load_spec(spec(attacks=[{"name": "deepfool", "norm": [2, "inf"], "max_iter": [5, 10]},
                                                       {"name": "fgsm", "eps": 0.01}], shards=2)).tasks()] == \
        [t.task_id for t in tasks]


def test_local_sweep_equals_direct_evaluate(tmp_path):
    res = fk.sweep(spec(), tmp_path / "sw", progress=False)
    assert res["tasks"] == 2 and res["ran"] == 2
    assert (tmp_path / "sw" / "report.html").stat().st_size > 0
    merged = runs_in(tmp_path / "sw" / "results.db")
    assert len(merged) == 2 and all(r.complete for r in merged)
    for eps in (0.01, 0.03):
        direct = fk.evaluate(MODEL, "fgsm", ("cifar10", "test", 20), tmp_path / "direct.db",
                             attack_params={"eps": eps}, batch_size=10)
        (same,) = [r for r in merged if r.run_id == direct.run_id]  # the same run identity
        assert_same_records(same, direct)


def test_npz_data_and_shards(tmp_path):
    x, y = fk.data.load("cifar10", "test", n=20)
    np.savez(tmp_path / "d.npz", x=(x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), y=y.numpy())
    res = fk.sweep(spec(data=str(tmp_path / "d.npz"), attacks=[{"name": "fgsm", "eps": 0.03}]), tmp_path / "sw",
                   progress=False, shards=2, report=False)
    assert res["tasks"] == 2
    (run,) = runs_in(tmp_path / "sw" / "results.db")  # two shards merged into one complete run
    assert run.complete and len(run.records()) == 20
    direct = fk.evaluate(MODEL, "fgsm", (x, y), None, attack_params={"eps": 0.03}, batch_size=10)
    assert run.run_id == direct.run_id
    assert_same_records(run, direct)


def test_npz_relative_to_spec_file(tmp_path):
    x, y = fk.data.load("cifar10", "test", n=4)
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "d.npz", x=x.numpy(), y=y.numpy())
    (tmp_path / "sub" / "s.toml").write_text('data = "d.npz"\nmodels = ["cifar10/resnet20"]\n'
                                             '[[attacks]]\nname = "fgsm"\n')
    assert load_spec(tmp_path / "sub" / "s.toml").data["npz"] == str((tmp_path / "sub" / "d.npz").resolve())


def test_interrupted_sweep_does_no_finished_work_twice(tmp_path, monkeypatch):
    s = spec(attacks=[{"name": "fgsm", "eps": [0.01, 0.02, 0.03]}])
    real = sweep_mod.run_task
    calls, batches = [], []

    def interrupting(task, spec_, out, **kw):
        calls.append(task.task_id)
        if len(calls) == 2:  # the second task stops after its first stored batch
            def stop(k):
                raise KeyboardInterrupt
            kw["progress"] = stop
        return real(task, spec_, out, **kw)

    monkeypatch.setattr(sweep_mod, "run_task", interrupting)
    with pytest.raises(KeyboardInterrupt):
        fk.sweep(s, tmp_path / "sw", progress=False, report=False)
    assert not (tmp_path / "sw" / "results.db").exists()
    first = sweep_mod.task_path(tmp_path / "sw", load_spec(s).tasks()[0])
    mtime = first.stat().st_mtime_ns

    from foolkit.attacks.fgsm import FGSM
    real_call = FGSM.__call__

    def counting(self, model, x, *a, **k):
        batches.append(len(x))
        return real_call(self, model, x, *a, **k)

    monkeypatch.setattr(FGSM, "__call__", counting)
    calls.clear()
    monkeypatch.setattr(sweep_mod, "run_task", real)
    res = fk.sweep(s, tmp_path / "sw", progress=False, report=False)
    assert res["skipped"] == 1 and res["ran"] == 2
    assert batches == [10, 10, 10]  # the second task's missing batch, then the third task's two
    assert first.stat().st_mtime_ns == mtime  # the finished task's store was not touched
    runs = runs_in(tmp_path / "sw" / "results.db")
    assert len(runs) == 3 and all(r.complete and len(r.records()) == 20 for r in runs)
    again = fk.sweep(s, tmp_path / "sw", progress=False, report=False)
    assert again["ran"] == 0 and batches == [10, 10, 10]


@pytest.mark.parametrize("change, needle", [
    ({"attacks": [{"name": "nosuch"}]}, "unknown attack 'nosuch'"),
    ({"attacks": [{"name": "fgsm", "epsilon": [0.1]}]}, "'epsilon' is not a parameter of fgsm"),
    ({"attacks": [{"name": "deepfool", "norm": ["two"]}]}, "attacks[0]: norm"),
    ({"attacks": [{"name": "fgsm", "eps": []}]}, "eps is an empty list"),
    ({"attacks": [{"eps": 0.1}]}, "missing key 'name'"),
    ({"model": [MODEL]}, "unknown key 'model'"),
    ({"models": ["cifar10/nosuch"]}, "models:"),
    ({"models": ["missing.pt2"]}, "no such file"),
    ({"data": {"dataset": "cifar10", "count": 3}}, "unknown key data.count"),
    ({"data": {"dataset": "cifar10", "n": 0}}, "data.n must be"),
    ({"batch_size": 0}, "batch_size must be"),
])
def test_spec_errors_are_one_line(tmp_path, change, needle):
    with pytest.raises((ValueError, OSError)) as info:
        load_spec(spec(**change), base=tmp_path)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_cli_sweep_errors_and_runs(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('data = { n = 4 }\nmodels = ["cifar10/resnet20"]\n[[attacks]]\nname = "fgsm"\nepz = 0.1\n')
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("foolkit sweep: error:") and "'epz'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    (tmp_path / "bad2.toml").write_text("data = [")
    assert main(["sweep", str(tmp_path / "bad2.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    (tmp_path / "pickle.toml").write_bytes(b"\x80\x04\x95 not text")  # a binary file as the spec
    assert main(["sweep", str(tmp_path / "pickle.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "not a TOML sweep spec" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text('data = { n = 4 }\nmodels = ["cifar10/resnet20"]\n[[attacks]]\nname = "fgsm"\neps = 0.01\n')
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]) == 0
    assert "1 task(s), 1 run now" in capsys.readouterr().out
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]) == 0
    assert "0 run now, 1 already finished" in capsys.readouterr().out


def test_ray_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ValueError, match=r"pip install 'foolkit\[ray\]'"):
        fk.sweep(spec(data={"n": 4}), tmp_path / "sw", engine="ray", progress=False, report=False)
