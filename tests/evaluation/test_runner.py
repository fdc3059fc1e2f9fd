"""evaluate(): per-sample records, run identity, resume, verification, 8-bit check, universal runs."""
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import foolkit as fk
from conftest import make_affine
from foolkit.attacks.base import Attack
from foolkit.evaluation import Store, quantize_8bit, runs_in
from foolkit.evaluation.run import Run

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    x, _ = fk.data.load("cifar10", "test", n=40)  # 8-bit exact images
    model = make_affine(shape=(3, 32, 32), dtype=torch.float32, seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::5] = (y[::5] + 1) % 10  # every fifth image "misclassified": outside D'test
    return x, y


@pytest.fixture
def model():
    return make_affine(shape=(3, 32, 32), dtype=torch.float32, seed=3)


def same(a: dict, b: dict) -> bool:
    """Metric dicts equal, nan equal to nan."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


class CountingDeepFool(fk.attacks.DeepFool):
    calls = 0

    def _run(self, *args, **kw):
        type(self).calls += 1
        return super()._run(*args, **kw)


def test_records_match_a_direct_attack(model, data, tmp_path):
    x, y = data
    attack = fk.attacks.DeepFool(norm=2, overshoot=0.02)
    run = fk.evaluate(model, attack, (x, y), tmp_path / "r.db", batch_size=16)
    # The direct attack runs on the runner's batches [0,16), [16,32), [32,40): floats depend on
    # the batch shape (BLAS/oneDNN pick kernels by shape and CPU), so only the same batches are
    # the same computation. (Batch 16 against 40 differed by 1e-4 relative under MKL_CBWR=COMPATIBLE.)
    parts = [attack(model, x[i:i + 16], y[i:i + 16]) for i in range(0, 40, 16)]
    attacked, success = torch.cat([p.attacked for p in parts]), torch.cat([p.success for p in parts])
    l2, linf = torch.cat([p.norms(2) for p in parts]), torch.cat([p.norms(math.inf) for p in parts])
    recs = run.samples(as_frame=False)
    assert [r["idx"] for r in recs] == list(range(40))
    assert [r["attacked"] for r in recs] == attacked.tolist()
    assert [r["success"] for r in recs] == success.tolist()
    # the same computation in the same process: equal up to float32 storage round trips
    assert np.allclose([r["l2"] for r in recs], l2.numpy(), rtol=1e-6, atol=1e-9)
    assert np.allclose([r["linf"] for r in recs], linf.numpy(), rtol=1e-6, atol=1e-9)
    # a float32 sum of 3,072 squares in another order (batch 16 vs 40): ~sqrt(3072) * 6e-8 = 3e-6
    assert np.allclose([r["x_l2"] for r in recs], x.flatten(1).norm(dim=1).numpy(), rtol=1e-5)
    m = run.metrics()
    assert m["n"] == 40 and m["n_attacked"] == 32
    assert m["fooling_rate"] == pytest.approx(float(success.sum()) / 32)
    assert m["delta_2"] == pytest.approx(float(l2[attacked].mean()), rel=1e-5)
    assert m["accuracy"] == pytest.approx(32 / 40)
    assert all(r["seconds"] > 0 for r in recs if r["attacked"])
    assert all(r["seconds"] == 0 and r["l2"] == 0 for r in recs if not r["attacked"])
    assert recs[0]["xc_l2"] is None  # tensors, a model without a mean: ||x - mean|| unknown
    assert m["rho_2_centered"] is None  # undefined metrics are None (foolkit.evaluation.metrics), never nan
    assert run.complete


def test_images_round_trip(model, data, tmp_path):
    x, y = data
    run = fk.evaluate(model, fk.attacks.DeepFool(norm=math.inf), (x, y), tmp_path / "r.db", batch_size=40)
    direct = fk.attacks.DeepFool(norm=math.inf)(model, x, y)
    images = run.images([1, 5])
    np.testing.assert_array_equal(images[1]["x"], x[1].numpy())  # 8-bit data: exact PNG
    np.testing.assert_allclose(images[1]["x_adv"], direct.x_adv[1].numpy(), atol=1e-6)
    np.testing.assert_array_equal(images[1]["x_adv_8bit"], quantize_8bit(direct.x_adv[1]).numpy())
    assert not images[5]["perturbation"].any()  # index 5: not attacked, nothing stored but x
    assert set(run.images()) == set(range(40))


def test_rerun_resumes_and_two_configurations_coexist(model, data, tmp_path):
    x, y = data
    path = tmp_path / "r.db"
    CountingDeepFool.calls = 0
    first = fk.evaluate(model, CountingDeepFool(norm=2), (x, y), path, batch_size=10)
    assert CountingDeepFool.calls == 4
    again = fk.evaluate(model, CountingDeepFool(norm=2), (x, y), path, batch_size=10)
    assert CountingDeepFool.calls == 4  # nothing recomputed
    assert again.run_id == first.run_id and same(again.metrics(), first.metrics())
    other = fk.evaluate(model, CountingDeepFool(norm=2, overshoot=0.5), (x, y), path, batch_size=10)
    assert other.run_id != first.run_id
    runs = runs_in(path)
    assert {r.run_id for r in runs} == {first.run_id, other.run_id}
    with Store(path, readonly=True) as s:
        assert s.conn.execute("SELECT COUNT(*), COUNT(DISTINCT run_id || '/' || idx) FROM samples").fetchone() == (80, 80)
    assert other.metrics()["delta_2"] > first.metrics()["delta_2"]


def test_progress_reports_every_batch(model, data, tmp_path):
    x, y = data
    path = tmp_path / "r.db"
    fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x[:15], y[:15]), path)  # a different data set: another run
    calls = []
    run = fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x, y), path, batch_size=7, progress=calls.append)
    assert calls[-1]["done"] == 40 and len(calls) == 6
    assert calls[-1]["fooling_rate"] == pytest.approx(run.metrics()["fooling_rate"])
    assert len(runs_in(path)) == 2


def _records_without_time(run) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in run.samples(as_frame=False)]


def test_another_batch_size_is_another_run_never_a_mixed_resume(model, data, tmp_path):
    # One Pixel killed at batch size 10 and resumed at 20 used to mix both under one run id, and a
    # rerun at another batch size silently returned the old records.
    x, y = data
    x, y = x[:20], y[:20]
    attack = lambda: fk.attacks.OnePixel(population=8, generations=3)  # noqa: E731
    path = tmp_path / "r.db"
    a10 = fk.evaluate(model, attack(), (x, y), path, batch_size=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a10 is complete: nothing to warn about
        a20 = fk.evaluate(model, attack(), (x, y), path, batch_size=20)
    fresh = fk.evaluate(model, attack(), (x, y), tmp_path / "fresh.db", batch_size=20)
    assert a20.run_id != a10.run_id and a20.run_id == fresh.run_id
    assert a10.config["batch_size"] == 10 and a20.config["batch_size"] == 20
    assert "batch=10" in a10.title and "batch=20" in a20.title
    # the same batch composition: the same computation, bit for bit (one machine, one process)
    assert _records_without_time(a20) == _records_without_time(fresh)
    assert {r.run_id for r in runs_in(path)} == {a10.run_id, a20.run_id}
    assert fk.evaluate(model, attack(), (x, y), path, batch_size=10).run_id == a10.run_id  # resumes


def test_an_unfinished_run_at_another_batch_size_is_named(model, data, tmp_path):
    x, y = data
    path = tmp_path / "r.db"

    class Stop(Exception):
        pass

    def stop_after_first(info):
        raise Stop

    with pytest.raises(Stop):
        fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x, y), path, batch_size=10, progress=stop_after_first)
    (partial,) = runs_in(path)
    assert not partial.complete and len(partial.records()) == 10
    with pytest.warns(UserWarning, match=f"unfinished run {partial.run_id} .* batch size 10"):
        other = fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x, y), path, batch_size=20)
    assert other.run_id != partial.run_id and len(partial.records()) == 10  # left as it was
    resumed = fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x, y), path, batch_size=10)
    assert resumed.run_id == partial.run_id and resumed.complete


def test_run_identity(model, data):
    x, y = data
    attack = fk.attacks.FGSM(eps=0.01)
    base = fk.evaluate(model, attack, (x, y)).run_id
    assert fk.evaluate(model, attack, (x, y)).run_id == base
    assert fk.evaluate(model, attack, (x, y), seed=1).run_id != base
    assert fk.evaluate(model, attack, (x[:39], y[:39])).run_id != base
    assert fk.evaluate(model, fk.attacks.FGSM(eps=0.02), (x, y)).run_id != base
    changed = make_affine(shape=(3, 32, 32), dtype=torch.float32, seed=3)
    with torch.no_grad():
        changed.bias[0] += 1e-3
    assert fk.evaluate(changed, attack, (x, y)).run_id != base


class Nudge(Attack):
    """Moves every pixel by a per-image amount (in 1/255 units) given at construction."""

    name = "nudge"

    def __init__(self, *, levels=(0.3, 0.8)):
        self.levels = list(levels)

    def _run(self, model, x0, label, target, counter, index):
        step = torch.tensor(self.levels, dtype=x0.dtype)[index].view(-1, 1, 1, 1) / 255
        trace = torch.arange(3, dtype=torch.float32).repeat(len(x0), 1) + index[:, None]
        return x0 + step, torch.ones(len(x0), dtype=torch.long), {"trace": trace, "note": torch.tensor(7.0)}


class Threshold(nn.Module):
    """Class 1 when the mean pixel exceeds 100.2/255, else class 0."""

    def forward(self, x):
        s = (x.flatten(1).mean(1) - 100.2 / 255) * 1e4
        return torch.stack([torch.zeros_like(s), s], 1)


def test_quantisation_losses_are_flagged_and_extras_stored(tmp_path):
    x = torch.full((2, 3, 4, 4), 100 / 255)
    run = fk.evaluate(Threshold(), Nudge(levels=[0.3, 0.8]), x, tmp_path / "q.db", batch_size=2)
    a, b = run.samples(as_frame=False)
    # +0.3/255 fools in float but rounds back to 100/255; +0.8/255 rounds to 101/255 and still fools
    assert a["verified"] and not a["verified_q"] and a["quant_lost"] and a["q_label"] == 0
    assert b["verified"] and b["verified_q"] and not b["quant_lost"]
    m = run.metrics()
    assert m["fooling_rate"] == 1 and m["fooling_rate_8bit"] == 0.5 and m["n_quant_lost"] == 1
    images = run.images()
    np.testing.assert_array_equal(images[1]["extra"]["trace"], [1.0, 2.0, 3.0])
    assert run.artifact("extra/note/batch0") == pytest.approx(7.0)


class Liar(fk.attacks.FGSM):
    """Claims success everywhere without changing anything."""

    def __call__(self, model, x, y=None, *, target=None):
        result = super().__call__(model, x, y, target=target)
        result.x_adv = x.clone()
        result.success = result.attacked.clone()
        return result


def test_claimed_successes_are_re_verified(model, data):
    x, y = data
    m = fk.evaluate(model, Liar(eps=0.0), (x, y)).metrics()
    assert m["fooling_rate_claimed"] == 1 and m["fooling_rate"] == 0 and m["n_fooled"] == 0


def test_targeted_run(model, data):
    x, y = data
    run = fk.evaluate(model, fk.attacks.DeepFool(norm=2, max_iter=50, clip=False), (x, y), target=3)
    recs = run.samples(as_frame=False)
    assert all(r["target"] == 3 for r in recs)
    assert all(r["adv_label"] == 3 for r in recs if r["verified"])
    assert not any(r["attacked"] for r in recs if r["label"] == 3)


def test_registered_model_with_checkpoint(tmp_path):
    net = fk.models.build("cifar10/resnet20")
    path = tmp_path / "w.pt"
    torch.save(net.net.state_dict(), path)
    run = fk.evaluate("cifar10/resnet20", fk.attacks.FGSM(eps=0.03), ("cifar10", "test", 6), tmp_path / "r.db",
                      checkpoint=str(path))
    model_spec = run.config["model"]
    assert model_spec["name"] == "cifar10/resnet20" and model_spec["weights"].startswith("sha256:")
    assert run.config["data"]["n"] == 6 and run.config["classes"][0] == "airplane"
    assert run.metrics()["n"] == 6
    rec = run.samples(as_frame=False)[0]
    mean = torch.tensor((0.4914, 0.4822, 0.4465)).view(3, 1, 1)
    x, _ = fk.data.load("cifar10", "test", n=1)
    assert rec["xc_l2"] == pytest.approx(float((x[0] - mean).norm()), rel=1e-5)  # the model's normalisation mean


def test_universal_run_fits_once(model, data, tmp_path, monkeypatch):
    from foolkit.attacks import registry
    x, y = data
    make = lambda: registry.create("universal", norm=2, xi=2.0, mode="batched", max_passes=2)  # noqa: E731
    path = tmp_path / "u.db"
    run = fk.evaluate(model, make(), (x, y), path, fit_size=16, batch_size=10)
    recs = run.samples(as_frame=False)
    assert [r["in_fit"] for r in recs] == [i < 16 for i in range(40)]
    m = run.metrics()
    assert {"fooling_rate_fit", "fooling_rate_unseen"} <= m.keys()
    v = run.artifact("universal_perturbation")
    assert v.shape == (1, 3, 32, 32) and np.linalg.norm(v) <= 2.0 + 1e-4
    # every attacked image got the same perturbation (where clipping left it alone)
    monkeypatch.setattr(type(make()), "fit", lambda *a, **k: pytest.fail("refitted on resume"))
    again = fk.evaluate(model, make(), (x, y), path, fit_size=16, batch_size=10)
    assert again.run_id == run.run_id and same(again.metrics(), m)


def test_samples_without_pandas(model, data):
    x, y = data
    run = fk.evaluate(model, fk.attacks.FGSM(), (x[:4], y[:4]))
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert isinstance(run.samples(), list)
        with pytest.raises(ImportError):
            run.samples(as_frame=True)
    else:
        assert len(run.samples()) == 4
    assert isinstance(run, Run) and "fgsm" in repr(run)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"data": "cifar10"}, "data must be"),
    ({"target": [1, 2]}, "target"),
    ({"attack": "nope"}, "unknown attack"),
    ({"attack": "deepfool", "attack_params": {"eps": 1}}, "no parameter eps"),
    ({"model": 3}, "model must be"),
    ({"checkpoint": "w.pt"}, "checkpoint"),
])
def test_bad_arguments(model, data, kwargs, match):
    x, y = data
    args = {"model": model, "attack": fk.attacks.FGSM(), "data": (x[:4], y[:4])}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fk.evaluate(**args)


def test_bad_fit_size(model, data):
    from foolkit.attacks import registry
    x, y = data
    with pytest.raises(ValueError, match="fit_size"):
        fk.evaluate(model, registry.create("universal"), (x[:4], y[:4]), fit_size=5)


def test_a_module_with_batchnorm_is_hashed(data):
    # BatchNorm keeps a 0-dim num_batches_tracked buffer in its state_dict
    x, y = data
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)).eval()
    run = fk.evaluate(net, fk.attacks.FGSM(eps=0.05), (x[:4], y[:4]))
    assert run.metrics()["n"] == 4


@pytest.mark.parametrize("make_data, kwargs, match", [
    (lambda x, y: (torch.rand(10), None), {}, "rank 4"),
    (lambda x, y: (x[:4], y[:2]), {}, r"shape \[4\]"),
    (lambda x, y: (x[:0], y[:0]), {}, "empty"),
    (lambda x, y: (x[:4] * float("nan"), y[:4]), {}, "NaN"),
    (lambda x, y: (x[:4] * 2, y[:4]), {}, r"\[0,1\]"),
    (lambda x, y: (x[:4], y[:4] + 10), {}, "must lie in"),
    (lambda x, y: (x[:4], y[:4]), {"target": True}, "target"),
    (lambda x, y: (x[:4], y[:4]), {"fit_size": 2}, "fit_size applies to universal"),
])
def test_bad_input_leaves_no_store_behind(model, data, tmp_path, make_data, kwargs, match):
    x, y = data
    store = tmp_path / "runs.db"
    with pytest.raises(ValueError, match=match):
        fk.evaluate(model, fk.attacks.FGSM(), make_data(x, y), store, **kwargs)
    assert not store.exists()


def test_models_are_checked_against_their_data(tmp_path):
    store = tmp_path / "runs.db"
    with pytest.raises(ValueError, match="imagenet model; it cannot be evaluated on cifar10"):
        fk.evaluate("imagenet/efficientnet-lite0", "fgsm", ("cifar10", "test", 2), store)
    with pytest.raises(ValueError, match="takes 32x32 images, got 64x64"):
        fk.evaluate("cifar10/resnet20", "fgsm", torch.rand(2, 3, 64, 64), store)
    with pytest.raises(ValueError, match="NaN or Inf logits"):
        fk.evaluate(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10, bias=False)).apply(
            lambda m: nn.init.constant_(m.weight, float("nan")) if isinstance(m, nn.Linear) else None),
            "fgsm", torch.rand(2, 3, 32, 32), store)
    assert not store.exists()


def test_run_config_is_the_identity_evaluate_hashes(model, data):
    """identity.run_config + run_hash, called without attacking (as the reproduce planner does),
    give the run id evaluate() stores."""
    from foolkit.evaluation.identity import run_config, run_hash
    from foolkit.runtime.hashing import state_dict_sha256, tensor_sha256

    x, y = data[0][:4], data[1][:4]
    attack = fk.attacks.DeepFool(norm=2)
    run = fk.evaluate(model, attack, (x, y), batch_size=4)
    cls = type(model)
    model_spec = {"class": f"{cls.__module__}.{cls.__qualname__}", "state_dict": state_dict_sha256(model)}
    data_spec = {"tensors": True, "sha256": tensor_sha256(x, y), "shape": list(x.shape)}
    config = run_config(model_spec, attack, "deepfool", data_spec, seed=0, target=None, fit_size=None, batch_size=4)
    assert run_hash(config) == run.run_id
    assert run_hash(dict(config, batch_size=5)) != run.run_id
