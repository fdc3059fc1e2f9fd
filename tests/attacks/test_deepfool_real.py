"""DeepFool, FGSM and L-BFGS on the shipped ResNet-20 (bundled images)."""
import math

import pytest
import torch

import foolkit as fk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(bundled):
    x, y = bundled
    return x[:200], y[:200]


@pytest.mark.parametrize("norm", [2, math.inf])
def test_deepfool_fools_and_verifies(resnet20, images, norm):
    x, y = images
    result = fk.attacks.DeepFool(norm=norm)(resnet20, x, y)
    assert result.fooling_rate >= 0.95
    with torch.no_grad():
        again = resnet20(result.x_adv[result.success]).argmax(1)
    assert (again != y[result.success]).all()  # every reported success re-verifies
    assert (result.iterations[result.attacked] >= 1).all()
    assert (result.iterations[~result.attacked] == 0).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


def test_median_norm_shrinks_with_overshoot(resnet20, images):
    x, y = images
    medians = []
    for overshoot in (0.2, 0.05, 0.0):
        r = fk.attacks.DeepFool(norm=2, overshoot=overshoot)(resnet20, x, y)
        medians.append(float(r.norms(2)[r.success].median()))
    assert medians[0] > medians[1] > medians[2], medians


def test_keep_closest_within_2_percent(resnet20, images):
    x, y = images
    full = fk.attacks.DeepFool(norm=2, keep_closest=None)(resnet20, x, y)
    fast = fk.attacks.DeepFool(norm=2, keep_closest=3)(resnet20, x, y)
    assert fast.fooling_rate >= full.fooling_rate - 0.01
    ratio = fast.norms(2)[fast.success].median() / full.norms(2)[full.success].median()
    assert ratio <= 1.02, ratio
    assert fast.gradient_count < full.gradient_count


def test_fgsm_larger_eps_fools_more(resnet20, images):
    x, y = images
    rates = [fk.attacks.FGSM(eps=e)(resnet20, x, y).fooling_rate for e in (0.002, 0.01, 0.05)]
    assert rates[0] < rates[1] < rates[2]


def test_deterministic_and_no_side_effects(resnet20, images):
    x, y = images[0][:20], images[1][:20]
    before = x.clone()
    a = fk.attacks.DeepFool(norm=2)(resnet20, x, y)
    b = fk.attacks.DeepFool(norm=2)(resnet20, x, y)
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(x, before)
    assert all(p.grad is None for p in resnet20.parameters())
    assert not resnet20.training


def test_lbfgs_targeted_on_real_model(resnet20, images):
    x, y = images[0][:4], images[1][:4]
    target = (y + 1) % 10
    result = fk.attacks.LBFGS(search_steps=5, max_iter=30)(resnet20, x, y, target=target)
    assert result.success[result.attacked].float().mean() >= 0.75
    assert (result.adv_label[result.success] == target[result.success]).all()
