"""SparseFool: the closed-form LinearSolver against the authors' loop and an LP, affine oracles,
the box, the contract, bad input, and the trained ResNet-20 (slow)."""
import math

import numpy as np
import pytest
import torch

import foolkit as fk
from foolkit.attacks.sparsefool import SparseFool, linear_solver
from conftest import make_affine


def authors_linear_solver(x, w, x_b, lb, ub, beta=1e-3):
    """The authors' coordinate loop (LTS4/SparseFool linear_solver.py), one image, flat."""
    coord = w.clone()
    f = torch.dot(w, x - x_b)
    sign_true = f.sign().item()
    b = beta * sign_true
    cur = sign_true
    x_i = x.clone()
    while cur == sign_true and coord.nonzero().numel() > 0:
        f = torch.dot(w, x_i - x_b) + b
        pert = f.abs() / coord.abs().max()
        mask = torch.zeros_like(coord)
        mask[torch.argmax(coord.abs())] = 1.0
        r = torch.clamp(pert, min=1e-4) * mask * coord.sign()
        x_i = torch.minimum(torch.maximum(x_i + r, lb), ub)
        cur = torch.dot(w, x_i - x_b).sign().item()
        coord[r != 0] = 0
    return x_i


def random_problem(m, d, seed, far=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(m, d, generator=g, dtype=torch.float64)
    w = torch.randn(m, d, generator=g, dtype=torch.float64)
    w = w / w.norm(dim=1, keepdim=True)
    x_b = x + far * torch.rand(m, 1, generator=g, dtype=torch.float64) * w  # beyond x along w
    radius = torch.rand(m, 1, generator=g, dtype=torch.float64) * 0.5 + 0.02
    lb, ub = (x - radius).clamp_min(0), (x + radius).clamp_max(1)
    return x, w, x_b, lb, ub


@pytest.mark.parametrize("far", [0.05, 1.0, 20.0])  # plane reached early / late / never
def test_linear_solver_equals_authors_loop(far):
    x, w, x_b, lb, ub = random_problem(24, 48, seed=int(far * 10), far=far)
    x_b[0] = x[0] - 0.3 * w[0]  # one image already beyond its plane: saturates, as the authors'
    ours = linear_solver(x, w, x_b, lb, ub)
    ref = torch.stack([authors_linear_solver(x[i], w[i], x_b[i], lb[i], ub[i]) for i in range(len(x))])
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    assert ((ours >= lb) & (ours <= ub)).all()


def test_linear_solver_is_the_l1_optimum_of_the_linearised_problem():
    from scipy.optimize import linprog
    x, w, x_b, lb, ub = random_problem(6, 30, seed=3, far=0.3)
    out = linear_solver(x, w, x_b, lb, ub)
    for i in range(len(x)):
        gap = float(torch.dot(w[i], x_b[i] - x[i])) + 1e-3
        d = x.shape[1]
        wi = w[i].numpy()
        # r = p - n, p, n >= 0: min sum(p + n) s.t. w.(p - n) = gap, box on r
        res = linprog(np.ones(2 * d), A_eq=np.concatenate([wi, -wi])[None], b_eq=[gap],
                      bounds=[(0, float(ub[i, j] - x[i, j])) for j in range(d)]
                      + [(0, float(x[i, j] - lb[i, j])) for j in range(d)], method="highs")
        if res.status == 0:
            assert float((out[i] - x[i]).abs().sum()) == pytest.approx(res.fun, rel=1e-7, abs=1e-9)
        else:  # infeasible: every useful coordinate saturates
            assert float(torch.dot(w[i], out[i] - x_b[i])) < 0


def test_sparsefool_on_affine_is_much_sparser_than_deepfool():
    model = make_affine(seed=1)
    x = torch.rand(32, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    sf = SparseFool()(model, x)
    df = fk.attacks.DeepFool(norm=2)(model, x)
    assert sf.success.all() and df.success.all()
    assert (sf.iterations == 1).all()  # the boundary is exactly linear
    changed_sf, changed_df = sf.norms(0), df.norms(0)
    assert changed_sf.median() * 20 <= changed_df.median()
    assert (changed_sf <= 0.1 * x[0].numel()).all()
    assert sf.pixels_changed().median() < 0.15


def test_lambda_one_on_affine_changes_one_coordinate():
    model = make_affine(seed=2)
    x = torch.rand(16, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.4
    result = SparseFool(lambda_=1.0)(model, x)
    assert result.success.all()
    assert (result.norms(0) <= 2).all()


@pytest.mark.parametrize("delta", [10, 40])
def test_box_is_respected(delta):
    model = make_affine(seed=1)
    x = torch.rand(16, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    result = SparseFool(delta=delta)(model, x)
    assert (result.perturbation.abs() <= delta / 255 + 1e-12).all()
    assert (result.x_adv >= 0).all() and (result.x_adv <= 1).all()
    assert result.fooling_rate > 0.5


def test_contract_inputs_untouched_no_param_grads_deterministic(affine):
    x = torch.rand(8, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    before = x.clone()
    a = SparseFool()(affine, x)
    b = SparseFool()(affine, x)
    assert torch.equal(x, before)
    assert all(p.grad is None for p in affine.parameters())
    assert torch.equal(a.x_adv, b.x_adv)
    assert a.forward_count > 0 and a.gradient_count > 0


def test_misclassified_images_are_not_attacked(affine):
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    y = (affine(x).argmax(1) + 1) % 10
    y[3:] = affine(x[3:]).argmax(1)
    result = SparseFool()(affine, x, y)
    assert not result.attacked[:3].any() and torch.equal(result.x_adv[:3], x[:3])
    assert result.success[3:].all()


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": 0}, "delta"), ({"delta": -3}, "delta"), ({"lambda_": 0.5}, "lambda_"),
    ({"lambda_": math.inf}, "lambda_"), ({"max_iter": 0}, "max_iter"), ({"overshoot": -0.1}, "overshoot"),
    ({"candidates": 1}, "candidates"), ({"deepfool_max_iter": 0}, "deepfool_max_iter")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseFool(**kwargs)


def test_no_targeted_mode(affine):
    with pytest.raises(ValueError, match="targeted"):
        SparseFool()(affine, torch.rand(2, 3, 8, 8, dtype=torch.float64), target=1)


@pytest.mark.slow
def test_resnet20_sparse_and_reliable(resnet20, bundled):
    torch.manual_seed(0)
    x, y = bundled
    with torch.no_grad():
        correct = (resnet20(x[:300]).argmax(1) == y[:300]).nonzero().squeeze(1)[:100]
    result = SparseFool()(resnet20, x[correct], y[correct])
    assert result.attacked.all()
    assert result.fooling_rate >= 0.95
    assert result.pixels_changed()[result.success].median() <= 0.02
    with torch.no_grad():  # re-verify independently of the base class
        assert (resnet20(result.x_adv[result.success]).argmax(1) != y[correct][result.success]).all()


@pytest.mark.parametrize("value, expected", [(1e9, 10**9), (7.0, 7), (3, 3)])
def test_max_iter_accepts_integral_numbers(value, expected):
    assert SparseFool(max_iter=value).max_iter == expected


@pytest.mark.parametrize("value", [1.5, math.inf, math.nan, 0, -3, 0.0, "5", True])
def test_max_iter_rejects_non_integers(value):
    with pytest.raises(ValueError, match="max_iter"):
        SparseFool(max_iter=value)


def test_max_iter_from_the_command_line_accepts_1e9():
    from foolkit.attacks import registry
    param = next(p for p in registry.parameters("sparsefool") if p.name == "max_iter")
    assert registry.create("sparsefool", max_iter=registry.convert(param, "1e9")).max_iter == 10**9


def test_no_progress_stops_an_image_that_cannot_move(affine):
    # delta = 1 level: the affine boundary lies outside the box; the first step saturates the box
    # towards the plane, the second leaves the iterate where it is, and the image stops (failed)
    x = torch.full((4, 3, 8, 8), 0.5, dtype=torch.float64)
    with torch.no_grad():
        affine.bias[0] += 10.0  # class 0 wins by far more than a 1-level box can change
    result = SparseFool(delta=1, max_iter=10**9)(affine, x)
    assert result.attacked.all() and not result.success.any()
    assert (result.iterations == 2).all()
    assert (result.x_adv - x).abs().max() <= 1 / 255 + 1e-12


@pytest.mark.slow
def test_no_progress_stop_returns_in_seconds_on_resnet20(resnet20, bundled, one_thread):
    # issue #16: --delta 1 --max-iter 1e9 ran for minutes; the corner-flipping iterates of the
    # images it cannot fool now stop once the margin stops improving
    import time
    x, y = bundled[0][:8], bundled[1][:8]
    start = time.perf_counter()
    result = SparseFool(delta=1, max_iter=1e9)(resnet20, x, y)
    assert time.perf_counter() - start < 120
    failed = result.attacked & ~result.success
    assert failed.any() and result.success.any()
    assert (result.iterations[failed] < 100).all()
    # the stop does not cost successes: the same images as with a budget of 50 and no stop
    import foolkit.attacks.sparsefool as sf
    patience, sf._PATIENCE = sf._PATIENCE, 10**9
    try:
        reference = SparseFool(delta=1, max_iter=50)(resnet20, x, y)
    finally:
        sf._PATIENCE = patience
    assert torch.equal(result.success, reference.success)


@pytest.mark.slow
def test_thesis_variant_also_stops_when_the_margin_stalls(resnet20, bundled, one_thread):
    # the thesis variant with a huge max_iter wandered between box corners for ever; it now stops
    # an image after PATIENCE loops without a better margin, which the thesis's own max_iter (20)
    # never reaches
    import foolkit.attacks.sparsefool_thesis as st

    assert st.PATIENCE > 20
    x, y = bundled[0][:4], bundled[1][:4]
    result = SparseFool(delta=1, max_iter=1e9, variant="thesis")(resnet20, x, y)
    failed = result.attacked & ~result.success
    assert (result.iterations[failed] < 10**9).all()
