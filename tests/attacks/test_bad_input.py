"""Bad input gets a ValueError that names the problem."""
import math

import pytest
import torch

import foolkit as fk


@pytest.fixture(params=["fgsm", "deepfool", "lbfgs"])
def attack(request):
    return {"fgsm": fk.attacks.FGSM(eps=0.01), "deepfool": fk.attacks.DeepFool(norm=2),
            "lbfgs": fk.attacks.LBFGS(search_steps=1, max_iter=2)}[request.param]


@pytest.mark.parametrize("x, message", [
    (torch.rand(3, 8, 8), "rank 4"),
    ((torch.rand(2, 3, 8, 8) * 255).to(torch.uint8), "float"),
    (torch.full((2, 3, 8, 8), float("nan")), "NaN"),
    (torch.full((2, 3, 8, 8), float("inf")), "NaN or Inf"),
    (torch.rand(2, 3, 8, 8) + 1.0, r"\[0,1\]"),
    (torch.rand(2, 3, 8, 8) - 1.0, r"\[0,1\]"),
    (torch.zeros(0, 3, 8, 8), "empty"),
    ([[0.5]], "torch.Tensor"),
])
def test_bad_images(attack, affine, x, message):
    with pytest.raises(ValueError, match=message):
        attack(affine, x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x)


@pytest.mark.parametrize("y, message", [
    (torch.tensor([0, 10]), r"\[0, 9\]"),
    (torch.tensor([-1, 0]), r"\[0, 9\]"),
    (torch.tensor([0, 1, 2]), r"shape \[2\]"),
    (torch.tensor([0.0, 1.0]), "integer"),
])
def test_bad_labels(attack, affine, y, message):
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        attack(affine, x, y)
    with pytest.raises(ValueError, match=message.replace("labels y", "target")):
        attack(affine, x, target=y)


@pytest.mark.parametrize("make, message", [
    (lambda: fk.attacks.DeepFool(norm=0.5), "p must be >= 1"),
    (lambda: fk.attacks.DeepFool(norm="two"), "norm must be a number"),
    (lambda: fk.attacks.DeepFool(max_iter=0), "max_iter"),
    (lambda: fk.attacks.DeepFool(overshoot=-0.1), "overshoot"),
    (lambda: fk.attacks.DeepFool(candidates=1), "candidates"),
    (lambda: fk.attacks.FGSM(eps=-0.1), "eps"),
    (lambda: fk.attacks.FGSM(eps=torch.tensor([0.1, -0.1])), "eps"),
    (lambda: fk.attacks.LBFGS(initial_const=0), "initial_const"),
    (lambda: fk.attacks.LBFGS(max_iter=0), "max_iter"),
])
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        fk.attacks.DeepFool(2)  # noqa
    with pytest.raises(TypeError):
        fk.attacks.FGSM(0.1)  # noqa


def test_per_sample_eps_length(affine):
    with pytest.raises(ValueError, match="per-sample eps"):
        fk.attacks.FGSM(eps=torch.tensor([0.1, 0.2, 0.3]))(affine, torch.rand(2, 3, 8, 8, dtype=torch.float64))


# --- every registered attack: one table of bad input ------------------------------------------
from foolkit.attacks import registry  # noqa: E402

# quick settings; an attack missing here runs with its defaults (bad input fails before any work)
QUICK = {"lbfgs": {"search_steps": 1, "max_iter": 2}, "sparsefool": {"max_iter": 2},
         "onepixel": {"population": 8, "generations": 2}, "universal": {"max_passes": 1}}


def make_attack(name: str):
    attack = registry.create(name, **QUICK.get(name, {}))
    if hasattr(attack, "fit"):  # a universal perturbation is applied, not computed, on a call
        attack.perturbation_ = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    return attack


def good_x():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def with_nan():
    x = good_x()
    x[1, 2, 3, 4] = float("nan")
    return x


def out_of_range():
    x = good_x()
    x[0, 0, 0, 0] = 1.5
    return x


BAD_CALLS = {  # case -> (x, y, target, message)
    "nan pixels": (with_nan, None, None, "NaN"),
    "out-of-range pixels": (out_of_range, None, None, r"\[0,1\]"),
    "wrong ndim": (lambda: good_x()[0], None, None, "rank 4"),
    "empty batch": (lambda: good_x()[:0], None, None, "empty"),
    "more labels than images": (good_x, torch.tensor([0, 1, 2]), None, r"labels y must have shape \[2\]"),
    "fewer labels than images": (good_x, torch.tensor([0]), None, r"labels y must have shape \[2\]"),
    "label out of range": (good_x, torch.tensor([0, 10]), None, r"labels y must lie in \[0, 9\]"),
    "negative label": (good_x, torch.tensor([-1, 0]), None, r"labels y must lie in \[0, 9\]"),
    "target out of range": (good_x, None, torch.tensor([0, 10]), r"target must lie in \[0, 9\]"),
    "target length": (good_x, None, torch.tensor([0, 1, 2]), r"target must have shape \[2\]"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
@pytest.mark.parametrize("name", registry.list_attacks())
def test_every_attack_rejects_bad_input_in_one_line_without_touching_it(name, case, affine):
    make_x, y, target, message = BAD_CALLS[case]
    attack = make_attack(name)
    if target is not None and not attack.supports_target:
        message = "no targeted mode"
    x = make_x()
    x_before, y_before = x.clone(), None if y is None else y.clone()
    with pytest.raises(ValueError, match=message) as info:
        attack(affine, x, y, target=target)
    assert "\n" not in str(info.value)
    torch.testing.assert_close(x, x_before, rtol=0, atol=0, equal_nan=True)  # inputs untouched, exactly
    if y is not None:
        assert torch.equal(y, y_before)


@pytest.mark.parametrize("case", ["nan pixels", "out-of-range pixels", "wrong ndim", "empty batch"])
@pytest.mark.parametrize("name", [n for n, cls in registry.available().items() if hasattr(cls, "fit")])
def test_fitting_a_universal_perturbation_rejects_bad_images(name, case, affine):
    make_x, _, _, message = BAD_CALLS[case]
    x = make_x()
    x_before = x.clone()
    with pytest.raises(ValueError, match=message) as info:
        registry.create(name, **QUICK.get(name, {})).fit(affine, x)
    assert "\n" not in str(info.value)
    torch.testing.assert_close(x, x_before, rtol=0, atol=0, equal_nan=True)


def test_the_table_covers_every_registered_attack():
    assert set(registry.list_attacks()) == set(registry.ATTACKS)  # none silently skipped as unavailable
