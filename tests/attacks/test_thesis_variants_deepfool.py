"""DeepFool and SparseFool ``variant="thesis"`` against a plain one-image-at-a-time reference of
the thesis code's algorithms (written here from the algorithm, independent of the batched code),
on a small random CNN and on the shipped ResNet-20, in its normalised space; affine oracles;
parameters and identity.

The comparisons run in float64: the algorithms branch (argmin over classes, a label test near
the boundary), and float32 differences between a batch and a single image can flip a near-tie.
"""
import copy
import math

import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.attacks import DeepFool, SparseFool
from conftest import make_affine

THESIS_MEAN, THESIS_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


# ---- the reference: one image z [1,C,H,W] at a time, in the network's (normalised) input space ----

def ref_deepfool(net, z, p, overshoot, lambda_fac, max_iter=50, num_classes=10, lo=None, hi=None):
    """Returns (z_adv, loops, normal)."""
    logits = net(z)[0].detach()
    ranked = sorted(range(len(logits)), key=lambda c: -float(logits[c]))[:num_classes]
    label = ranked[0]
    r_tot = torch.zeros_like(z)
    current, loops = label, 0
    while current == label and loops < max_iter:
        point = (z + r_tot).requires_grad_(True)
        out = net(point)[0]
        best, best_w = math.inf, None
        for c in ranked[1:]:
            w_c = torch.autograd.grad(out[c] - out[label], point, retain_graph=True)[0]
            f_c = float((out[c] - out[label]).detach())
            dist = abs(f_c) / float(w_c.abs().sum() if p == math.inf else w_c.norm())
            if dist < best:
                best, best_w = dist, w_c
        size = max(best, 1e-4)
        r_tot = r_tot + (size * best_w.sign() if p == math.inf else size * best_w / best_w.norm())
        current = int(net(z + (1 + overshoot) * r_tot).argmax())
        loops += 1
    point = (z + r_tot).requires_grad_(True)
    out = net(point)[0]
    g = torch.autograd.grad(out[current] - out[label], point)[0]
    z_adv = z + lambda_fac * r_tot
    if lo is not None:
        z_adv = torch.minimum(torch.maximum(z_adv, lo), hi)
    return z_adv.detach(), loops, g / g.norm()


def ref_linear_solver(x, normal, x_b, lb, ub):
    """The thesis's greedy coordinate walk towards the plane, from either side."""
    coord = normal.clone().flatten()
    n, pb, xi = normal.flatten(), x_b.flatten(), x.clone().flatten()
    side = float(torch.dot(n, xi - pb).sign())
    if not math.isfinite(side):
        return x.clone()
    cur = side
    while cur == side and bool((coord != 0).any()):
        f = float(torch.dot(n, xi - pb)) + 1e-3 * side
        j = int(coord.abs().argmax())
        step = max(abs(f) / float(coord[j].abs()), 1e-4) * -side * float(coord[j].sign())
        xi[j] += step
        xi = torch.minimum(torch.maximum(xi, lb.flatten()), ub.flatten())
        cur = float(torch.dot(n, xi - pb).sign())
        coord[j] = 0
    return xi.view_as(x)


def ref_sparsefool(net, z0, label, lb, ub, lambda_=3.0, max_iter=20, epsilon=0.02):
    x_i, fool, loops, cur = z0.clone(), z0.clone(), 0, label
    while cur == label and loops < max_iter:
        x_b, _, normal = ref_deepfool(net, x_i, 2, 0.02, lambda_)
        x_i = ref_linear_solver(x_i, normal, x_b, lb, ub)
        fool = torch.minimum(torch.maximum(z0 + (1 + epsilon) * (x_i - z0), lb), ub)
        cur = int(net(fool).argmax())
        loops += 1
    return fool, loops


def small_cnn(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).double().eval()
    return fk.models.Normalized(net, THESIS_MEAN, THESIS_STD).double().eval()


def to_z(model, x):
    return (x - model.mean) / model.std


def compare_deepfool(model, x, p):
    res = DeepFool(norm=p, overshoot=0.01, variant="thesis")(model, x)
    lo, hi = to_z(model, torch.zeros_like(x[:1])), to_z(model, torch.ones_like(x[:1]))
    q = 2 if p == 2 else math.inf
    checked = 0
    for i in range(len(x)):
        z = to_z(model, x[i:i + 1])
        z_adv, loops, _ = ref_deepfool(model.net, z, p, 0.01, 1.01, lo=lo, hi=hi)
        r_ref = torch.linalg.vector_norm((z_adv - z) * model.std, q)
        r_ours = torch.linalg.vector_norm(res.x_adv[i] - x[i], q)
        assert int(model.net(z_adv).argmax()) == int(res.adv_label[i]), i
        assert float(r_ours) == pytest.approx(float(r_ref), rel=1e-3), i
        assert loops == int(res.iterations[i]), i
        checked += 1
    return res, checked


@pytest.mark.parametrize("p", [2, math.inf])
def test_deepfool_thesis_equals_reference_on_a_small_cnn(p):
    model = small_cnn()
    x = torch.rand(12, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    res, checked = compare_deepfool(model, x, p)
    assert checked == 12 and res.attacked.all()


@pytest.mark.slow
@pytest.mark.parametrize("p", [2, math.inf])
def test_deepfool_thesis_equals_reference_on_resnet20(p, resnet20, bundled, one_thread):
    model = copy.deepcopy(resnet20).double()
    x, y = bundled[0][:20].double(), bundled[1][:20]
    keep = model(x).argmax(1) == y  # the thesis attacks the correctly classified images
    res, _ = compare_deepfool(model, x[keep], p)
    # the thesis's algorithm tests the unclipped point, so the clipped result need not fool
    assert 0.5 < res.fooling_rate <= 1


def test_deepfool_thesis_clip_changes_the_geometry_but_not_the_step():
    # the end clip keeps x_adv in [0,1]; without it the same steps are returned unclipped
    model = small_cnn(seed=2)
    x = torch.rand(10, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a = DeepFool(norm=2, variant="thesis")(model, x)
    b = DeepFool(norm=2, variant="thesis", clip=False)(model, x)
    assert (a.x_adv >= 0).all() and (a.x_adv <= 1).all()
    assert torch.equal(a.iterations, b.iterations)
    torch.testing.assert_close(a.x_adv, b.x_adv.clamp(0, 1), rtol=0, atol=1e-12)


# ---- affine oracles: one step, the exact minimal perturbation, times lambda_fac = 1.01 ----

def exact_minimal_z(affine, x, p, std):
    """Minimal Lp distance in z = (x - mean) / std: the z-space weights are W * std."""
    logits = affine(x).detach()
    lab = logits.argmax(1)
    w = (affine.weight.detach().view(10, *x.shape[1:]) * std).flatten(1)
    wdiff = w[None] - w[lab][:, None]
    dual = wdiff.abs().sum(2) if p == math.inf else wdiff.norm(dim=2)
    dist = (logits - logits.gather(1, lab[:, None])).abs() / dual
    return dist.scatter(1, lab[:, None], math.inf).min(1).values


@pytest.mark.parametrize("p", [2, math.inf])
@pytest.mark.parametrize("normalized", [False, True])
def test_deepfool_thesis_on_affine_is_exact_times_lambda_fac(p, normalized):
    affine = make_affine(seed=1)
    x = torch.rand(32, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    model, std = affine, torch.ones(1, 3, 1, 1, dtype=torch.float64)
    if normalized:  # Normalized(net) with net(z) = affine(z * std + mean) is the affine model on pixels
        net = nn.Sequential()
        model = fk.models.Normalized(net, THESIS_MEAN, THESIS_STD).double()
        std = model.std
        net.forward = lambda z: affine(z * model.std + model.mean)
    res = DeepFool(norm=p, overshoot=0.01, clip=False, variant="thesis")(model, x)
    exact = exact_minimal_z(affine, x, p, std)
    r_z = (res.x_adv - x) / std
    q = 2 if p == 2 else math.inf
    ratio = torch.linalg.vector_norm(r_z.flatten(1), q, dim=1) / exact
    assert res.success.all() and (res.iterations == 1).all()
    # the step is never below 1e-4 (the thesis's clamp), which binds for a few images
    torch.testing.assert_close(ratio, 1.01 * exact.clamp_min(1e-4) / exact, rtol=1e-9, atol=0)


# ---- SparseFool ----

def test_sparsefool_thesis_equals_reference_on_a_small_cnn():
    model = small_cnn(seed=4)
    x = (torch.randint(0, 256, (8, 3, 8, 8), generator=torch.Generator().manual_seed(5)) / 255).double()
    for delta in (255, 20):
        res = SparseFool(variant="thesis", delta=delta)(model, x)
        for i in range(len(x)):
            z0 = to_z(model, x[i:i + 1])
            im = torch.round(x[i:i + 1] * 255)
            lb = to_z(model, (im - delta).clamp_min(0) / 255)
            ub = to_z(model, (im + delta).clamp_max(255) / 255)
            fool, loops = ref_sparsefool(model.net, z0, int(res.label[i]), lb, ub)
            r_ref = (fool - z0) * model.std
            r_ours = res.x_adv[i:i + 1] - x[i:i + 1]
            assert int(model.net(fool).argmax()) == int(res.adv_label[i]), (delta, i)
            assert float(r_ours.norm()) == pytest.approx(float(r_ref.norm()), rel=1e-3), (delta, i)
            assert int((r_ours != 0).sum()) == int((r_ref.abs() > 1e-12).sum()), (delta, i)
            assert loops == int(res.iterations[i]), (delta, i)


@pytest.mark.slow
def test_sparsefool_thesis_equals_reference_on_resnet20(resnet20, bundled, one_thread):
    model = copy.deepcopy(resnet20).double()
    x, y = bundled[0][:10].double(), bundled[1][:10]
    res = SparseFool(variant="thesis", max_iter=50)(model, x, y)
    assert res.attacked.sum() >= 8
    for i in res.attacked.nonzero().flatten().tolist():
        z0 = to_z(model, x[i:i + 1])
        lb, ub = to_z(model, torch.zeros_like(z0)), to_z(model, torch.ones_like(z0))
        fool, loops = ref_sparsefool(model.net, z0, int(y[i]), lb, ub, max_iter=50)
        r_ref, r_ours = (fool - z0) * model.std, res.x_adv[i:i + 1] - x[i:i + 1]
        assert int(model.net(fool).argmax()) == int(res.adv_label[i]), i
        assert float(r_ours.norm()) == pytest.approx(float(r_ref.norm()), rel=1e-3), i
        assert loops == int(res.iterations[i]), i


# ---- parameters, identity ----

def test_variant_is_in_the_identity_only_when_not_the_default():
    for cls in (DeepFool, SparseFool):
        assert "variant" not in cls().identity_params()
        assert cls(variant="thesis").identity_params()["variant"] == "thesis"
        assert cls().params()["variant"] == "foolkit"


@pytest.mark.parametrize("kwargs", [{"variant": "paper"}, {"variant": "thesis", "norm": 1.5}])
def test_deepfool_bad_variant(kwargs):
    with pytest.raises(ValueError, match="variant|norm"):
        DeepFool(**kwargs)


def test_deepfool_thesis_has_no_targeted_mode(affine):
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    with pytest.raises(ValueError, match="no targeted mode"):
        DeepFool(variant="thesis")(affine, x, target=1)
    assert DeepFool()(affine, x, target=1).target is not None  # foolkit's variant keeps it
