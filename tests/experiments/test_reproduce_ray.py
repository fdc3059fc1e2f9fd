"""``reproduce(..., engine="ray")``: the attack runs as Ray tasks on a local instance bound to
127.0.0.1, merged into runs.db, give the local engine's records and verdicts; a rerun finds
them all in the store. The Ray test is skipped when Ray is not installed (``make test`` has it)."""
import importlib.util
import json
from pathlib import Path

import pytest

from foolkit.evaluation.run import runs_in
from foolkit.experiments.reproduce import reproduce
from foolkit.experiments.verdicts import all_verdicts

ARGS = dict(quick=True, only=["table-12.3"], models=["cifar10/resnet20"], n_override=3, progress=False,
            log=lambda *a, **k: None)


def _ray_helpers():
    """tests/evaluation/test_ray.py's helpers (loopback check, record comparison), loaded by path:
    the test folders are not packages."""
    path = Path(__file__).resolve().parents[1] / "evaluation" / "test_ray.py"
    spec = importlib.util.spec_from_file_location("_foolkit_test_ray_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kwargs, message", [({"engine": "spark"}, "unknown engine"),
                                             ({"address": "head:6379"}, "use it with engine='ray'")])
def test_bad_engine_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        reproduce(tmp_path / "out", **ARGS, **kwargs)
    assert not (tmp_path / "out").exists()


def test_reproduce_on_ray_equals_local_engine_on_loopback(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    helpers = _ray_helpers()
    from foolkit.evaluation import ray_engine

    seen = []
    original = ray_engine.run_on_ray

    def watched(*args, on_done=None, **kwargs):  # look at Ray's sockets while its tasks finish
        def done(summary):
            seen.append(helpers.listening_addresses())
            on_done(summary)
        return original(*args, on_done=done, **kwargs)

    monkeypatch.setattr(ray_engine, "run_on_ray", watched)
    reproduce(tmp_path / "ray", engine="ray", **ARGS)
    reproduce(tmp_path / "local", **ARGS)

    assert len(seen) == 2  # table-12.3's two runs (thesis's DeepFool and foolkit's), one Ray task each
    for ips in seen:
        assert ips and ips <= helpers.LOOPBACK, f"Ray listens on {ips - helpers.LOOPBACK}"
    assert not (tmp_path / "ray" / "tasks").exists()  # merged into runs.db, then removed
    a = {r.run_id: r for r in runs_in(tmp_path / "ray" / "runs.db")}
    b = {r.run_id: r for r in runs_in(tmp_path / "local" / "runs.db")}
    assert a.keys() == b.keys() and len(a) == 2 and all(r.complete for r in a.values())
    for rid in a:
        helpers.assert_same_records(a[rid], b[rid])

    ra, rb = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("ray", "local"))
    assert ra["ray"]["runs"] == 2 and ra["ray"]["failed"] == 0 and "ray" not in rb
    pa, pb = (r["experiments"]["deepfool-l2"] for r in (ra, rb))
    assert pa["status"] == pb["status"] == "done"
    assert [p["run_id"] for p in pa["points"]] == [p["run_id"] for p in pb["points"]]
    va, vb = all_verdicts(ra), all_verdicts(rb)
    assert [(v["claim"], v["verdict"]) for v in va] == [(v["claim"], v["verdict"]) for v in vb]
    assert any(v["verdict"] != "not checkable" for v in va)  # table-12.3's claims were judged

    # a rerun predicts every run id, finds them in runs.db, and starts no Ray task
    reproduce(tmp_path / "ray", engine="ray", **ARGS)
    again = json.loads((tmp_path / "ray" / "results.json").read_text())["ray"]
    assert (again["runs"], again["stored"], again["local"]) == (0, 2, 0)
    assert len(seen) == 2
