"""Attacks on models unlike the shipped ones: other precisions, flattening MLPs, geometry where
the label stops being the runner-up, clipped pixels, and models that break the contract."""
import math

import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.attacks import DeepFool, FGSM, OnePixel
from foolkit.attacks.fgsm import minimal_epsilon

torch.set_num_threads(1)


class ThreeClassPlane(nn.Module):
    """Logits of two pixels (x1, x2): class 0 constant, class 1 and 2 affine.

    From (0.5, 0.5) (class 0) the nearest point of class 2 is (0.6, 0.55), at L2 distance
    sqrt(0.0125); the straight route towards class 2 passes through class 1 first."""

    def forward(self, x):
        x1, x2 = x[:, 0, 0, 0], x[:, 0, 0, 1]
        return torch.stack([torch.zeros_like(x1), 20 * (x1 - 0.55) - 20 * (x2 - 0.5), 10 * (x1 - 0.6)], 1)


def test_targeted_deepfool_follows_the_current_runner_up():
    x = torch.full((1, 1, 1, 2), 0.5)
    result = DeepFool(norm=2)(ThreeClassPlane(), x, target=2)
    assert bool(result.success[0]) and int(result.adv_label[0]) == 2
    assert float(result.norms(2)[0]) <= 1.1 * math.sqrt(0.0125)


def test_l1_deepfool_does_not_push_clipped_pixels():
    # Before clipped pixels were left out, the L1 step pushed the same saturated pixel for all
    # 50 iterations: this MLP was fooled on 40% of the images only.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 5))
    x = torch.rand(20, 3, 6, 6)
    result = DeepFool(norm=1)(model, x)
    assert result.fooling_rate >= 0.95
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


def test_fgsm_keeps_float64_logits():
    # Margin 120: a float32 softmax gives the other classes probability 0 and FGSM a zero
    # gradient; in float64 the gradient pushes x2 up and the image is fooled at eps 0.5.
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0., 0, 0, 0], [0, 300, 0, 0], [0, 0, 1, 0]], dtype=torch.float64))
        model[1].bias.copy_(torch.tensor([120., -150, 0], dtype=torch.float64))
    x = torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64)
    assert int(model(x).argmax()) == 0
    assert bool(FGSM(eps=0.5)(model, x).success[0])
    assert float(minimal_epsilon(model, x, grid=[0.1, 0.3, 0.5])[0]) == 0.5


def test_one_pixel_on_a_model_that_flattens_with_view():
    class ViewMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 5)

        def forward(self, x):
            return self.fc(x.view(x.shape[0], -1))  # needs NCHW-contiguous input

    torch.manual_seed(0)
    result = OnePixel(population=10, generations=2)(ViewMLP().eval(), torch.rand(3, 3, 8, 8))
    assert result.attacked.all()


def test_minimal_epsilon_restores_training_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).train()
    minimal_epsilon(model, torch.rand(2, 3, 2, 2), grid=[0.1])
    assert model.training


def test_a_single_class_index_applies_to_every_image():
    model = fk.models.build("cifar10/resnet20").eval()
    x = torch.rand(3, 3, 32, 32)
    for target in (4, torch.tensor(4), __import__("numpy").int64(4)):
        result = FGSM(eps=0.01)(model, x, target=target)
        assert result.target.tolist() == [4, 4, 4]


class ReturnsVector(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1)


class ReturnsTuple(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3], None


class ReturnsNaN(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3] * float("nan")


@pytest.mark.parametrize("model, message", [
    (lambda x: x.flatten(1)[:, :3], "must be a torch.nn.Module"),
    (ReturnsVector(), r"shape \[N,K\]"),
    (ReturnsTuple(), "logits tensor"),
    (ReturnsNaN(), "NaN or Inf logits"),
    (nn.Sequential(nn.Flatten(), nn.Linear(12, 1)), "at least 2 class scores"),
])
def test_models_breaking_the_contract_are_named(model, message):
    with pytest.raises(ValueError, match=message):
        DeepFool()(model, torch.rand(2, 3, 2, 2))


def test_precision_and_device_mismatch_are_explained():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match="images are torch.float64 but the model's weights are torch.float32"):
        FGSM()(model, torch.rand(2, 3, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="normalises 3 channels but the images have 1"):
        FGSM()(fk.models.build("cifar10/resnet20").eval(), torch.rand(2, 1, 32, 32))


@pytest.mark.parametrize("make", [lambda: FGSM(eps=math.inf), lambda: DeepFool(overshoot=math.inf)])
def test_infinite_parameters_are_refused(make):
    with pytest.raises(ValueError, match="finite"):
        make()


@pytest.mark.parametrize("norm", [2, "inf", 1, 3])
def test_half_precision_model(norm):
    # norms are taken in float32: float16 sums of |w|^q overflow and the 1e-30 floors round to 0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 5)).half()
    x = torch.rand(8, 3, 8, 8).half()
    result = DeepFool(norm=norm)(model, x)
    assert result.x_adv.dtype == torch.float16 and torch.isfinite(result.x_adv.float()).all()
    assert result.fooling_rate >= 0.9


def test_lbfgs_solves_large_batches_in_parts(monkeypatch):
    # L-BFGS-B's memory grows with the variables of a joint solve; parts must give the same answer
    from foolkit.attacks import LBFGS
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 4)).double()
    x = torch.rand(6, 3, 4, 4, dtype=torch.float64)
    whole = LBFGS(search_steps=3, max_iter=20)(model, x)
    monkeypatch.setattr(LBFGS, "max_variables", 3 * 4 * 4 * 2)  # two images per solve
    parts = LBFGS(search_steps=3, max_iter=20)(model, x)
    assert parts.success.tolist() == whole.success.tolist()
    assert torch.allclose(parts.norms(2), whole.norms(2), rtol=0.05)


def test_a_users_mean_attribute_is_not_taken_for_normalisation():
    class WithMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.mean = torch.zeros(10)  # something else entirely
            self.fc = nn.Linear(12, 3)

        def forward(self, x):
            return self.fc(x.flatten(1))

    assert FGSM(eps=0.1)(WithMean(), torch.rand(2, 3, 2, 2)).attacked.all()
