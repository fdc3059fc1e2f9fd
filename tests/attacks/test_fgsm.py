import math

import pytest
import torch
import torch.nn.functional as F

import foolkit as fk


def reference_fgsm(model, x, y, eps, clip=True, target=None):
    xg = x.clone().requires_grad_(True)
    wanted = y if target is None else target
    loss = F.cross_entropy(model(xg), wanted)
    (g,) = torch.autograd.grad(loss, xg)
    out = x + eps * g.sign() if target is None else x - eps * g.sign()
    return out.clamp(0, 1) if clip else out


@pytest.mark.parametrize("clip", [True, False])
def test_fgsm_equals_formula(affine, clip):
    x = torch.rand(16, 3, 8, 8, dtype=torch.float64)
    y = affine(x).argmax(1)
    result = fk.attacks.FGSM(eps=0.05, clip=clip)(affine, x, y)
    assert torch.equal(result.x_adv, reference_fgsm(affine, x, y, 0.05, clip))
    if not clip:
        assert torch.allclose(result.norms(math.inf), torch.full((16,), 0.05, dtype=torch.float64))


def test_fgsm_targeted_and_per_sample_eps(affine):
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    y = affine(x).argmax(1)
    target = (y + 1) % 10
    eps = torch.tensor([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    result = fk.attacks.FGSM(eps=eps, clip=False)(affine, x, y, target=target)
    expected = torch.stack([reference_fgsm(affine, x[i:i + 1], y[i:i + 1], float(eps[i]), False, target[i:i + 1])[0]
                            for i in range(6)])
    torch.testing.assert_close(result.x_adv, expected)


def test_misclassified_samples_are_flagged_not_attacked(affine):
    x = torch.rand(10, 3, 8, 8, dtype=torch.float64)
    pred = affine(x).argmax(1)
    y = pred.clone()
    y[:3] = (pred[:3] + 1) % 10  # the model is "wrong" on the first three
    result = fk.attacks.FGSM(eps=0.3)(affine, x, y)
    assert not result.attacked[:3].any() and result.attacked[3:].all()
    assert not result.success[:3].any()
    assert torch.equal(result.x_adv[:3], x[:3])


def test_minimal_epsilon_is_minimal(affine):
    x = torch.rand(12, 3, 8, 8, dtype=torch.float64)
    grid = torch.arange(1, 51) / 100
    eps_min = fk.attacks.minimal_epsilon(affine, x, grid=grid)
    y = affine(x).argmax(1)
    for i in range(12):
        if math.isnan(eps_min[i]):
            continue
        xi, yi = x[i:i + 1], y[i:i + 1]
        assert fk.attacks.FGSM(eps=float(eps_min[i]))(affine, xi, yi).success.item()
        below = float(eps_min[i]) - 0.01
        if below > 0:
            assert not fk.attacks.FGSM(eps=below)(affine, xi, yi).success.item()
