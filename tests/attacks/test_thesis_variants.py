"""``variant="thesis"`` of FGSM, One Pixel and the universal perturbation: per-image reference
implementations written from the thesis code's algorithm (one image at a time, in the normalised
space z of a ``Normalized`` model), compared with the batched variants, plus analytic cases."""
import math

import pytest
import torch
import torch.nn.functional as F

import foolkit as fk
from foolkit.attacks import _de
from foolkit.attacks.onepixel import OnePixel, apply_fractional
from foolkit.attacks.universal import UniversalPerturbation
from foolkit.models import Normalized

from conftest import make_affine

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def normalized_affine(seed=0):
    return Normalized(make_affine(seed=seed), MEAN, STD).double().eval()


def z_box(dtype=torch.float64):
    mean = torch.tensor(MEAN, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=dtype).view(1, 3, 1, 1)
    return mean, std, (0 - mean) / std, (1 - mean) / std


# ----------------------------------------------------------------------------------- FGSM
def reference_fgsm_z(net, z, label, eps, clip):
    """The thesis's fgsm on one normalised image: nll_loss on logits, step eps / std_c in z,
    clamp z to the image of [0,1]."""
    mean, std, lo, hi = z_box()
    zg = z.clone().requires_grad_(True)
    F.nll_loss(net(zg), label).backward()
    z_adv = z + zg.grad.sign() * (eps / std)
    return torch.minimum(torch.maximum(z_adv, lo), hi) if clip else z_adv


@pytest.mark.parametrize("clip", [True, False])
def test_fgsm_thesis_matches_per_image_reference_in_z(clip):
    model = normalized_affine()
    x = torch.rand(12, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    result = fk.attacks.FGSM(eps=0.03, clip=clip, variant="thesis")(model, x, y)
    mean, std, _, _ = z_box()
    z = (x - mean) / std
    expected = torch.cat([reference_fgsm_z(model.net, z[i:i + 1], y[i:i + 1], 0.03, clip) for i in range(12)])
    torch.testing.assert_close(result.x_adv, expected * std + mean, atol=1e-12, rtol=0)


def test_fgsm_thesis_on_a_linear_model_steps_along_minus_sign_w_y():
    # nll on logits of f = W x + b has gradient -w_y whatever the other classes: the step is
    # -eps * sign(w_y); cross-entropy's gradient sum_k p_k w_k - w_y points elsewhere.
    model = make_affine()
    x = torch.full((10, 3, 8, 8), 0.5, dtype=torch.float64)
    y = torch.arange(10)
    thesis = fk.attacks.FGSM(eps=0.02, clip=False, variant="thesis")(model, x, y)
    w = model.weight.detach().view(10, 3, 8, 8)
    attacked = thesis.attacked
    assert attacked.any()
    torch.testing.assert_close(thesis.x_adv[attacked], (x - 0.02 * w.sign())[attacked], atol=1e-15, rtol=0)
    foolkit = fk.attacks.FGSM(eps=0.02, clip=False)(model, x, y)
    assert not torch.equal(foolkit.x_adv[attacked], thesis.x_adv[attacked])


def test_fgsm_variant_parameter_and_run_identity():
    assert fk.attacks.FGSM(eps=0.1).identity_params() == {"eps": 0.1, "clip": True}
    assert fk.attacks.FGSM(eps=0.1, variant="thesis").identity_params()["variant"] == "thesis"
    with pytest.raises(ValueError, match="variant must be one of"):
        fk.attacks.FGSM(variant="paper")


def test_minimal_epsilon_thesis_agrees_with_fgsm_thesis():
    model = make_affine()
    x = torch.rand(12, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grid = torch.arange(1, 51) / 100
    eps_min = fk.attacks.minimal_epsilon(model, x, grid=grid, clip=False, variant="thesis")
    for i in torch.isfinite(eps_min).nonzero().squeeze(1).tolist():
        e = float(eps_min[i])
        assert fk.attacks.FGSM(eps=e, clip=False, variant="thesis")(model, x[i:i + 1]).success.item()
        if e > 0.011:
            assert not fk.attacks.FGSM(eps=e - 0.01, clip=False, variant="thesis")(model, x[i:i + 1]).success.item()


# ------------------------------------------------------------------------------ One Pixel
def test_apply_fractional_uses_the_thesis_pixel_and_unrounded_colour():
    x = torch.zeros(2, 3, 10, 10, dtype=torch.float64)
    genes = torch.tensor([[[0.55, 0.999, 0.1234, 0.5, 1.0]], [[1.0, 0.0, 0.3, 0.2, 0.7]]], dtype=torch.float64)
    out = apply_fractional(x, genes)
    assert out[0, :, 5, 9].tolist() == [0.1234, 0.5, 1.0]  # int(5.5) = 5, int(9.99) = 9, not rounded
    assert out[1, :, 9, 0].tolist() == [0.3, 0.2, 0.7]  # int(10) = 10 clipped to 9
    assert ((out != 0).any(1).flatten(1).sum(1) == 1).all() and torch.equal(x, torch.zeros_like(x))


def test_resampled_children_stay_in_the_box_and_pool_mixes_slots():
    # A fitness that rewards leaving the box: clipped children pile up on the bound, resampled
    # ones never leave [0,1) nor sit on it.
    seen = []

    def fitness(cand, problems):
        seen.append(cand.clone())
        return -cand.sum(-1)

    pop = torch.rand(3, 20, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kw = dict(lower=torch.zeros(10, dtype=torch.float64), upper=torch.ones(10, dtype=torch.float64), generations=15)
    _de.minimize(fitness, pop, generator=torch.Generator().manual_seed(1), boundary="resample", gene_pool=2, **kw)
    children = torch.cat([c.flatten() for c in seen[1:]])
    assert ((children >= 0) & (children < 1)).all()
    seen.clear()
    _de.minimize(fitness, pop, generator=torch.Generator().manual_seed(1), **kw)
    assert (torch.cat([c.flatten() for c in seen[1:]]) == 1).any()
    # pooled mutation: slot-0 genes near 0 and slot-1 genes near 10, so a child's slot 0 mixes in slot 1
    pa = torch.cat([torch.rand(1, 50, 5, dtype=torch.float64) * 0.1, 10 + torch.rand(1, 50, 5, dtype=torch.float64)], -1)
    child = _de._pooled_mutants(pa, 2, 0.5, torch.Generator().manual_seed(0)).view(1, 50, 2, 5)
    assert (child[..., 0, :] > 4).any() and (child[..., 1, :] < 6).any()


def test_draw_distinct_without_exclusions_is_distinct_and_covers_the_pool():
    r = _de._draw_distinct(torch.empty(4, 500, 0, dtype=torch.long), 5, torch.Generator().manual_seed(0))
    assert (r[..., 0] != r[..., 1]).all() and (r[..., 1] != r[..., 2]).all() and (r[..., 0] != r[..., 2]).all()
    assert set(r.flatten().tolist()) == set(range(5))


class Constant(torch.nn.Module):
    """Two classes with fixed probabilities whatever the image."""

    def __init__(self, p0):
        super().__init__()
        self.logit = math.log(p0 / (1 - p0))

    def forward(self, x):
        z = torch.full((len(x),), self.logit, dtype=x.dtype)
        return torch.stack([z, torch.zeros_like(z)], 1)


class Fragile(torch.nn.Module):
    """Class 0 on the grey image; any pixel moved 0.1 away from grey makes it class 1."""

    def forward(self, x):
        z = 5 - 100 * (x - 0.5).abs().flatten(1).amax(1)
        return torch.stack([z, torch.zeros_like(z)], 1)


def test_onepixel_thesis_iterations_are_the_loop_index():
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    # never below 10 %: all generations run, the thesis reports generations - 1
    never = OnePixel(population=8, generations=6, variant="thesis")(Constant(0.9), x)
    assert never.iterations.tolist() == [5, 5, 5]
    assert torch.isfinite(never.extra["probability_trace"]).all()  # 6 generations were run
    # target 1 has 10 %: never above 50 % either
    assert OnePixel(population=8, generations=6, variant="thesis")(Constant(0.9), x, target=1).iterations.tolist() == [5] * 3
    # the initial population already succeeds: the loop breaks at index 0
    grey = torch.full((3, 3, 8, 8), 0.5, dtype=torch.float64)
    at_once = OnePixel(population=8, generations=6, variant="thesis")(Fragile(), grey)
    assert at_once.iterations.tolist() == [0, 0, 0] and at_once.success.all()
    assert OnePixel(population=8, generations=6, variant="thesis")(Fragile(), grey, target=1).iterations.tolist() == [0] * 3


def test_onepixel_thesis_stopping_rule_and_trace():
    from test_onepixel import OnePixelDecides

    model = OnePixelDecides(size=16, where=(11, 5))  # the best pixel leaves p_label ~ 0.49
    x = torch.full((6, 3, 16, 16), 0.2, dtype=torch.float64)
    result = OnePixel(population=60, generations=40, seed=3, threshold=0.55, variant="thesis")(model, x)
    trace = result.extra["probability_trace"].double()
    it = result.iterations
    assert (it < 39).all()
    for i in range(6):
        run = trace[i][torch.isfinite(trace[i])]
        assert len(run) == it[i] + 1  # stopped by the rule: the loop index is the generations run
        assert run[-1] < 0.55 and (run[:-1] >= 0.55).all()
        assert (run.diff() <= 0).all()  # a child replaces its parent only when better
    assert ((result.x_adv != x).any(1).flatten(1).sum(1) == 1).all()
    p = model(result.x_adv).softmax(1)[:, 0]
    torch.testing.assert_close(p, trace.gather(1, it[:, None]).squeeze(1), atol=1e-6, rtol=0)


def test_onepixel_thesis_finds_the_known_best_pixel():
    from test_onepixel import OnePixelDecides

    model = OnePixelDecides(size=16, where=(11, 5))
    x = torch.full((6, 3, 16, 16), 0.2, dtype=torch.float64)
    result = OnePixel(population=60, generations=40, seed=3, variant="thesis")(model, x)
    changed = (result.x_adv != x).any(1)
    assert result.success.all() and (result.iterations == 39).all()  # p_label never < 10 %: all 40 run
    assert (changed.flatten(1).sum(1) == 1).all() and changed[:, 11, 5].all()


def test_onepixel_thesis_targeted_stops_above_half_and_is_deterministic():
    from test_onepixel import OnePixelDecides

    model = OnePixelDecides(size=16, where=(11, 5))
    x = torch.full((4, 3, 16, 16), 0.2, dtype=torch.float64)
    attack = OnePixel(population=60, generations=40, seed=1, variant="thesis")
    a = attack(model, x, torch.zeros(4, dtype=torch.long), target=1)
    b = attack(model, x, torch.zeros(4, dtype=torch.long), target=1)
    assert torch.equal(a.x_adv, b.x_adv) and a.success.all()
    p_target = model(a.x_adv).softmax(1)[:, 1]
    assert (p_target > 0.5).all() and (a.iterations < 39).all()
    assert OnePixel(variant="thesis").identity_params()["variant"] == "thesis"
    assert "variant" not in OnePixel().identity_params()


# ---------------------------------------------------------------------------- universal
def reference_deepfool_z(net, z, norm, overshoot, lambda_fac, max_iter, num_classes=10):
    """The thesis's deepfool on one image z [1,...]: returns (lambda_fac * R, loops)."""
    f0 = net(z).detach()[0]
    order = f0.argsort(descending=True)[:num_classes].tolist()
    label = order[0]
    r_tot = torch.zeros_like(z)
    k_i, loops = label, 0
    while k_i == label and loops < max_iter:
        zi = (z + r_tot).detach().requires_grad_(True)
        fs = net(zi)[0]
        g0 = torch.autograd.grad(fs[label], zi, retain_graph=True)[0]
        best, w = math.inf, None
        for k in order[1:]:
            gk = torch.autograd.grad(fs[k], zi, retain_graph=True)[0]
            wk, fk = gk - g0, float((fs[k] - fs[label]).detach())
            dist = abs(fk) / float(wk.norm() if norm == 2 else wk.abs().sum())
            if dist < best:
                best, w = dist, wk
        r = max(best, 1e-4) * (w / w.norm() if norm == 2 else w.sign())
        r_tot = r_tot + r
        k_i = int(net(z + (1 + overshoot) * r_tot).argmax())
        loops += 1
    return lambda_fac * r_tot, loops


def reference_universal_z(net, Z, labels, *, norm, xi, delta, max_iter_uni, overshoot, max_iter_df, seed):
    """The thesis's universal_perturbation, one image at a time, with foolkit's shuffling draws."""
    n = len(Z)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        clean = net(Z).argmax(1)
    v = torch.zeros_like(Z[:1])
    v_best, best, fooling, passes = v.clone(), 0.0, 0.0, 0
    order = torch.arange(n)
    while fooling < 1 - delta and passes < max_iter_uni:
        order = order[torch.randperm(n, generator=gen)]
        for k in order.tolist():
            z = Z[k:k + 1]
            if int(net(z).argmax()) == int(labels[k]) and int(net(z + v).argmax()) == int(labels[k]):
                dr, loops = reference_deepfool_z(net, z + v, norm, overshoot, 1 + overshoot, max_iter_df)
                if loops < max_iter_df - 1:
                    v = v + dr
                    v = v * min(1.0, xi / float(v.norm())) if norm == 2 else v.sign() * v.abs().clamp_max(xi)
        passes += 1
        with torch.no_grad():
            fooling = float((net(Z + v).argmax(1) != clean).double().mean())
        if fooling > best:
            v_best, best = v.clone(), fooling
    return v_best, best, passes


@pytest.mark.parametrize("norm,xi", [(2, 2.0), (math.inf, 0.3)])
def test_universal_thesis_matches_per_image_reference(norm, xi):
    model = normalized_affine(seed=3)
    X = torch.rand(40, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = model(X).argmax(1)
    y[:5] = (y[:5] + 1) % 10  # misclassified: never attacked
    kw = dict(xi=xi, delta=0.05, overshoot=0.02, seed=7)
    uap = UniversalPerturbation(norm=norm, max_passes=3, deepfool_max_iter=10, batch_size=8, variant="thesis",
                                **kw).fit(model, X, y)
    mean, std = model.mean, model.std  # the wrapper's buffers (float32 values held in float64)
    Z = (X - mean) / std
    v_ref, best, passes = reference_universal_z(model.net, Z, y, norm=norm, max_iter_uni=3, max_iter_df=10,
                                                **{k: kw[k] for k in ("xi", "delta", "overshoot", "seed")})
    assert best > 0.2  # the test exercises real updates
    assert uap.fooling_rate_ == best and uap.passes_ == passes
    torch.testing.assert_close(uap.perturbation_, v_ref * std, atol=1e-10, rtol=0)
    assert uap.fooling_rate_ == max(h["fooling_rate"] for h in uap.history_)  # the best pass's v
    v_z = uap.perturbation_ / std  # the ball is in z
    assert (float(v_z.norm()) if norm == 2 else float(v_z.abs().max())) <= xi * (1 + 1e-12)


def test_universal_thesis_attacks_only_correct_images_and_never_clips():
    model = normalized_affine(seed=3)
    X = torch.rand(20, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    wrong = (model(X).argmax(1) + 1) % 10
    none = UniversalPerturbation(norm=2, xi=2.0, max_passes=2, variant="thesis").fit(model, X, wrong)
    assert torch.equal(none.perturbation_, torch.zeros_like(none.perturbation_)) and none.fooling_rate_ == 0.0
    uap = UniversalPerturbation(norm=math.inf, xi=1.0, max_passes=2, variant="thesis").fit(model, X)
    x_adv = uap.apply(X)
    assert torch.equal(x_adv, X + uap.perturbation_) and ((x_adv < 0) | (x_adv > 1)).any()


def test_universal_thesis_parameters():
    assert UniversalPerturbation(norm="inf", variant="thesis").deepfool_norm == math.inf
    assert UniversalPerturbation(norm="inf").deepfool_norm == 2  # foolkit's default is unchanged
    assert "variant" not in UniversalPerturbation().identity_params()
    with pytest.raises(ValueError, match="deepfool_norm must equal norm"):
        UniversalPerturbation(norm="inf", deepfool_norm=2, variant="thesis")
    with pytest.raises(ValueError, match="mode must be 'faithful'"):
        UniversalPerturbation(mode="batched", variant="thesis")
