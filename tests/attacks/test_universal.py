"""Universal perturbations: the ball constraint at every update, faithful == batched at batch
size 1, stopping, the call contract, transfer_matrix, bad input, and ResNet-20 (slow)."""
import math

import pytest
import torch

import foolkit as fk
from foolkit import norms
from foolkit.attacks.universal import UniversalPerturbation
from conftest import make_affine


def data(n=120, seed=0):
    return torch.rand(n, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


@pytest.mark.parametrize("mode", ["faithful", "batched"])
@pytest.mark.parametrize("norm, xi", [(2, 0.3), (2, 1.5), (math.inf, 0.02), (math.inf, 0.1)])
def test_norm_never_exceeds_xi(mode, norm, xi):
    model = make_affine(seed=1)
    uap = UniversalPerturbation(norm=norm, xi=xi, mode=mode, batch_size=16, max_passes=2, delta=0.0,
                                candidates=4)
    seen = []
    project = uap._project
    uap._project = lambda v: seen.append(project(v)) or seen[-1]  # record every update
    uap.fit(model, data(48))
    assert seen, "no update happened"
    for v in seen + [uap.perturbation_]:
        assert float(norms.lp_norm(v, norm)) <= xi * (1 + 1e-12)
    assert uap.perturbation_.shape == (1, 3, 8, 8)


def test_faithful_equals_batched_with_batch_size_one():
    model = make_affine(seed=2)
    X = data(60)
    a = UniversalPerturbation(norm=2, xi=0.8, mode="faithful", batch_size=1, max_passes=2, delta=0.0).fit(model, X)
    b = UniversalPerturbation(norm=2, xi=0.8, mode="batched", batch_size=1, max_passes=2, delta=0.0).fit(model, X)
    assert torch.equal(a.perturbation_, b.perturbation_)
    assert a.history_ == [dict(h, seconds=a.history_[i]["seconds"]) for i, h in enumerate(b.history_)]


def test_faithful_chunked_predictions_do_not_change_the_result():
    model = make_affine(seed=2)
    X = data(60)
    a = UniversalPerturbation(norm=math.inf, xi=0.05, mode="faithful", batch_size=1, max_passes=2, delta=0.0)
    b = UniversalPerturbation(norm=math.inf, xi=0.05, mode="faithful", batch_size=32, max_passes=2, delta=0.0)
    torch.testing.assert_close(a.fit(model, X).perturbation_, b.fit(model, X).perturbation_)


def test_fooling_rate_history_and_stopping():
    model = make_affine(seed=3)
    X = data(100)
    uap = UniversalPerturbation(norm=math.inf, xi=0.1, mode="batched", batch_size=25, max_passes=5, delta=0.3)
    uap.fit(model, X)
    clean = model(X).argmax(1)
    rate = float((model(uap.apply(X)).argmax(1) != clean).double().mean())
    assert uap.fooling_rate_ == pytest.approx(rate)
    assert uap.passes_ == len(uap.history_) and 1 <= uap.passes_ <= 5
    assert [h["pass"] for h in uap.history_] == list(range(1, uap.passes_ + 1))
    if uap.passes_ < 5:
        assert uap.fooling_rate_ >= 0.7
        assert all(h["fooling_rate"] < 0.7 for h in uap.history_[:-1])
    # delta = 1: any fooling rate is enough, one pass
    one = UniversalPerturbation(norm=2, xi=0.5, mode="batched", delta=1.0).fit(model, X)
    assert one.passes_ == 1


def test_call_contract_apply_and_determinism():
    model = make_affine(seed=4)
    X, x = data(80, seed=1), data(20, seed=2)
    before = X.clone()
    uap = UniversalPerturbation(norm=math.inf, xi=0.08, mode="batched", batch_size=20, max_passes=3).fit(model, X)
    again = UniversalPerturbation(norm=math.inf, xi=0.08, mode="batched", batch_size=20, max_passes=3).fit(model, X)
    assert torch.equal(X, before)
    assert torch.equal(uap.perturbation_, again.perturbation_)
    assert all(p.grad is None for p in model.parameters())
    result = uap(model, x)
    torch.testing.assert_close(result.x_adv, (x + uap.perturbation_).clamp(0, 1), rtol=0, atol=0)
    torch.testing.assert_close(uap.apply(x), result.x_adv, rtol=0, atol=0)
    assert torch.equal(result.success, result.attacked & (model(result.x_adv).argmax(1) != result.label))
    assert "perturbation_" not in result.params and result.params["xi"] == 0.08
    assert uap.fooling_rate_ > 0.3  # a linear model has real universal perturbations


def test_unfitted_and_shape_mismatch():
    model = make_affine()
    uap = UniversalPerturbation(norm=2, xi=1.0)
    with pytest.raises(ValueError, match="not fitted"):
        uap(model, data(4))
    with pytest.raises(ValueError, match="not fitted"):
        uap.apply(data(4))
    uap.fit(model, data(10))
    with pytest.raises(ValueError, match="do not match"):
        uap.apply(torch.rand(2, 3, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="targeted"):
        uap(model, data(4), target=1)


@pytest.mark.parametrize("kwargs, match", [
    ({"xi": 0}, "xi"), ({"xi": -1}, "xi"), ({"xi": math.inf}, "xi"), ({"norm": 1}, "norm"),
    ({"norm": "l7"}, "norm"), ({"mode": "fast"}, "mode"), ({"delta": 1.5}, "delta"),
    ({"max_passes": 0}, "max_passes"), ({"batch_size": 0}, "batch_size"), ({"deepfool_norm": 3}, "deepfool_norm")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UniversalPerturbation(**kwargs)


def test_empty_or_invalid_X():
    model = make_affine()
    with pytest.raises(ValueError, match="empty"):
        UniversalPerturbation(xi=0.1).fit(model, torch.zeros(0, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        UniversalPerturbation(xi=0.1).fit(model, data(4) + 1)


def test_transfer_matrix():
    models = {"a": make_affine(seed=5), "b": make_affine(seed=6)}
    X, x = data(60), data(40, seed=9)
    vs = {k: UniversalPerturbation(norm=2, xi=1.0, mode="batched", max_passes=2).fit(m, X).perturbation_
          for k, m in models.items()}
    names, matrix = fk.transfer_matrix(vs, models, x)
    assert names == ["a", "b"] and matrix.shape == (2, 2)
    for i, p in enumerate(names):
        for j, m in enumerate(names):
            model = models[m]
            rate = (model((x + vs[p]).clamp(0, 1)).argmax(1) != model(x).argmax(1)).double().mean()
            assert matrix[i, j] == pytest.approx(float(rate))
    with pytest.raises(ValueError, match="same"):
        fk.transfer_matrix({"a": vs["a"]}, models, x)


@pytest.mark.slow
def test_resnet20_linf_generalises(resnet20, bundled):
    x, _ = bundled
    X, held_out = x[:500], x[500:]
    uap = UniversalPerturbation(norm="inf", xi=0.05, mode="batched", batch_size=100, max_passes=3, seed=0)
    uap.fit(resnet20, X)
    assert float(uap.perturbation_.abs().max()) <= 0.05 * (1 + 1e-6)
    with torch.no_grad():
        clean = resnet20(held_out).argmax(1)
        fooled = resnet20(uap.apply(held_out)).argmax(1) != clean
        # the baseline: random +-xi sign noise, the strongest of five draws (the rate itself depends
        # on the network: 0.22 on X with the 200-epoch weights, random noise 0.12-0.14)
        clean_fit, noise_rates = resnet20(X).argmax(1), []
        for s in range(5):
            sign = torch.randint(0, 2, (1, *X.shape[1:]), generator=torch.Generator().manual_seed(s)) * 2 - 1
            noise_rates.append(float((resnet20((X + 0.05 * sign).clamp(0, 1)).argmax(1) != clean_fit).float().mean()))
    assert uap.fooling_rate_ >= 1.3 * max(noise_rates)
    assert float(fooled.float().mean()) >= 0.8 * uap.fooling_rate_


# --------------------------------------------------------------------------- files and their cards (issue #16)
def _card_file(path, v, **card):
    torch.save({"format": "foolkit.universal", "version": 1, "perturbation": v, "card": card}, path)
    return path


@pytest.mark.parametrize("norm, xi, scale", [("inf", 0.05, 100.0), ("2", 0.5, 1.01), ("inf", 8 / 255, 1.001)])
def test_load_refuses_a_perturbation_beyond_its_cards_radius(tmp_path, norm, xi, scale):
    from foolkit.evaluation.universal_io import UniversalFileError, load_universal
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 3, 8, 8, generator=g)
    v = v / (v.abs().max() if norm == "inf" else v.norm()) * xi  # exactly on the sphere: accepted
    ok = _card_file(tmp_path / "ok.pt", v, model="m", norm=norm, xi=xi)
    assert torch.equal(load_universal(ok).perturbation, v)
    bad = _card_file(tmp_path / "bad.pt", v * scale, model="m", norm=norm, xi=xi)
    with pytest.raises(UniversalFileError, match=r"norm [\d.e-]+ exceeds the radius xi") as info:
        load_universal(bad)
    assert "\n" not in str(info.value) and "bad.pt" in str(info.value)


def test_save_refuses_a_perturbation_beyond_xi_and_writes_nothing(tmp_path):
    from foolkit.evaluation.universal_io import save_universal
    with pytest.raises(ValueError, match="exceeds the radius"):
        save_universal(tmp_path / "v.pt", torch.full((1, 3, 8, 8), 5.0), model="m", norm="inf", xi=0.05)
    assert not any(tmp_path.iterdir())
    # within NORM_RTOL of xi (float32 rounding of a projection): saved and read back
    v = torch.full((1, 3, 8, 8), 0.05) * (1 + 1e-6)
    assert save_universal(tmp_path / "w.pt", v, model="m", norm="inf", xi=0.05).is_file()


def test_load_refuses_a_bare_tensor_and_incomplete_or_inconsistent_cards(tmp_path):
    from foolkit.evaluation.universal_io import UniversalFileError, load_universal
    v = torch.zeros(1, 3, 8, 8)
    torch.save(v, tmp_path / "bare.pt")
    cases = {
        "bare.pt": "bare tensor without a card",
        _card_file(tmp_path / "nocard.pt", v).name: "the card lacks model, norm, xi",
        _card_file(tmp_path / "noxi.pt", v, model="m", norm="inf").name: "the card lacks xi",
        _card_file(tmp_path / "l1.pt", v, model="m", norm="1", xi=0.1).name: "card norm must be 2 or inf",
        _card_file(tmp_path / "zero.pt", v, model="m", norm="inf", xi=0.0).name: "xi must be a positive",
        _card_file(tmp_path / "shape.pt", v, model="m", norm="inf", xi=0.1, shape=[1, 3, 32, 32]).name:
            r"shape \[1, 3, 8, 8\] but its card says",
        _card_file(tmp_path / "size.pt", v, model="m", norm="inf", xi=0.1, input_size=32).name:
            "8x8 but its card says input_size 32",
    }
    for name, message in cases.items():
        with pytest.raises(UniversalFileError, match=message) as info:
            load_universal(tmp_path / name)
        assert "\n" not in str(info.value)


def test_applying_an_oversized_file_is_refused_by_the_cli(tmp_path, capsys):
    from foolkit import cli
    v = torch.full((1, 3, 32, 32), 5.0)  # the file: 5.0 against "Linf <= 0.05"
    _card_file(tmp_path / "v.pt", v, model="cifar10/resnet20", norm="inf", xi=0.05, input_size=32)
    rc = cli.main(["attack", "--cifar-index", "0", "--perturbation", str(tmp_path / "v.pt"),
                   "--out", str(tmp_path / "fig.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "exceeds the radius xi = 0.05" in err[0]
    assert not (tmp_path / "fig.png").exists()


def test_symlink_loop_perturbation_file(tmp_path):
    import os
    from foolkit.evaluation.universal_io import UniversalFileError, load_universal
    os.symlink("v.pt", tmp_path / "v.pt")
    with pytest.raises(UniversalFileError, match="symlink loop"):
        load_universal(tmp_path / "v.pt")
