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
