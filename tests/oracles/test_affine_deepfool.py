"""DeepFool on an affine classifier: one step reaches the exact minimal Lp perturbation."""
import math

import pytest
import torch

import foolkit as fk
from foolkit import norms
from conftest import make_affine


def exact_minimal(model, x, p):
    logits = model(x).detach()
    lab = logits.argmax(1)
    w = model.weight.detach()
    q = norms.dual_exponent(p)
    gap = (logits - logits.gather(1, lab[:, None])).abs()
    wdiff = w[None] - w[lab][:, None]
    dist = gap / torch.linalg.vector_norm(wdiff, ord=q, dim=2)
    dist.scatter_(1, lab[:, None], math.inf)
    return dist.min(1).values


@pytest.mark.parametrize("p", [2, math.inf, 1.5, 3])
@pytest.mark.parametrize("overshoot", [0.02, 0.0])
def test_deepfool_reaches_exact_minimal_perturbation(p, overshoot):
    model = make_affine(seed=1)
    x = torch.rand(32, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    result = fk.attacks.DeepFool(norm=p, overshoot=overshoot, clip=False)(model, x)
    exact = exact_minimal(model, x, p)
    ratio = result.norms(p) / exact
    assert result.success.all()
    assert (result.iterations == 1).all()
    assert (ratio >= 1 - 1e-9).all()
    assert (ratio <= (1 + overshoot) * (1 + 1e-4)).all(), ratio.max()


def test_deepfool_inputs_untouched_and_no_param_grads(affine):
    x = torch.rand(8, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    before = x.clone()
    fk.attacks.DeepFool(norm=2)(affine, x)
    assert torch.equal(x, before)
    assert all(p.grad is None for p in affine.parameters())
    assert not affine.training


def test_deepfool_targeted_reaches_target(affine):
    x = torch.rand(8, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    pred = affine(x).argmax(1)
    target = (pred + 3) % 10
    result = fk.attacks.DeepFool(norm=2, max_iter=50, clip=False)(affine, x, target=target)
    assert (result.adv_label == target).all()
    assert result.success.all()


def test_deepfool_keep_closest_matches_full_on_affine(affine):
    x = torch.rand(16, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    full = fk.attacks.DeepFool(norm=2, clip=False, keep_closest=None)(affine, x)
    pruned = fk.attacks.DeepFool(norm=2, clip=False, keep_closest=2)(affine, x)
    torch.testing.assert_close(full.x_adv, pruned.x_adv)
