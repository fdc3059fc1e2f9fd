"""One Pixel Attack and the batched DE behind it: toy oracles, the contract, bad input, and the
trained ResNet-20 (slow)."""
import math

import pytest
import torch
from torch import nn

from foolkit.attacks import _de
from foolkit.attacks.onepixel import OnePixel, apply


class OnePixelDecides(nn.Module):
    """Two classes; class 1 wins only when pixel (r, c) is made bright: no other single pixel
    flips it. The logit of class 1 rises smoothly towards (r, c) (so DE has a landscape to
    climb, not a needle to find) and with every channel; the best single-pixel change is pixel
    (r, c) set to (255, 255, 255)."""

    def __init__(self, size=16, where=(11, 5)):
        super().__init__()
        r = torch.arange(size, dtype=torch.float64)
        dist = ((r[:, None] - where[0]) ** 2 + (r[None] - where[1]) ** 2).sqrt()
        w = torch.stack([1 - 0.06 * dist, torch.full_like(dist, 0.1), torch.full_like(dist, 0.1)])
        self.register_buffer("w", w)

    def forward(self, x):
        z = 3 * ((x - 0.2) * self.w).flatten(1).sum(1) - 2.8
        return torch.stack([torch.zeros_like(z), z], 1)


def test_only_the_known_pixel_flips_the_toy_model():
    model = OnePixelDecides(size=16, where=(11, 5))
    x = torch.full((256, 3, 16, 16), 0.2, dtype=torch.float64)
    rows, cols = torch.arange(256) // 16, torch.arange(256) % 16
    x[torch.arange(256), :, rows, cols] = 1.0  # every pixel set to white, one image each
    flipped = (model(x).argmax(1) == 1).nonzero().squeeze(1)
    assert flipped.tolist() == [11 * 16 + 5]


def test_de_finds_the_known_best_pixel():
    model = OnePixelDecides(size=16, where=(11, 5))
    x = torch.full((8, 3, 16, 16), 0.2, dtype=torch.float64)
    # threshold 0: never stop early, so the best candidate is DE's optimum after all generations
    result = OnePixel(population=100, generations=50, threshold=0.0, seed=1)(model, x)
    changed = (result.x_adv != x).any(1)
    assert result.success.all()
    assert (changed.flatten(1).sum(1) == 1).all()
    assert changed[:, 11, 5].all()
    assert (result.x_adv[:, :, 11, 5] >= 250 / 255).all()  # all channels (nearly) saturated


def test_de_minimizes_independent_quadratics_and_stops_each_problem():
    g = torch.Generator().manual_seed(0)
    b, p, d = 8, 30, 4
    centres = torch.rand(b, 1, d, generator=g, dtype=torch.float64) * 6 - 3
    calls = []

    def fitness(cand, problems):
        calls.append(len(problems))
        return ((cand - centres[problems]) ** 2).sum(-1)

    pop = torch.rand(b, p, d, generator=g, dtype=torch.float64) * 10 - 5
    thr = torch.full((b,), -1.0, dtype=torch.float64)
    thr[:4] = 1e-2  # the first four stop early
    best, fit, ran, trace = _de.minimize(fitness, pop, lower=torch.full((d,), -5.0, dtype=torch.float64),
                                         upper=torch.full((d,), 5.0, dtype=torch.float64), generations=120,
                                         generator=torch.Generator().manual_seed(1), threshold=thr)
    assert torch.allclose(best[4:], centres[4:, 0], atol=1e-3)
    assert (fit[:4] < 1e-2).all() and (ran[:4] < 120).all() and (ran[4:] == 120).all()
    finite = torch.isfinite(trace)
    assert (finite.sum(1) == ran + 1).all()  # NaN after stopping
    diffs = trace[:, 1:] - trace[:, :-1]
    assert (diffs[torch.isfinite(diffs)] <= 0).all()  # the best never gets worse
    assert calls[0] == b and max(calls[1:]) <= b and calls[-1] == 4  # finished problems leave


def test_de_stops_a_problem_once_its_best_candidate_is_solved():
    g = torch.Generator().manual_seed(0)
    b, p, d = 6, 20, 2
    pop = torch.rand(b, p, d, generator=g, dtype=torch.float64) * 4 - 2

    def fitness(cand, problems):
        fit = (cand ** 2).sum(-1)
        # problems 0-2 count as solved inside the disc of radius 0.5; the others never are
        return fit, (fit < 0.25) & (problems[:, None] < 3)

    best, fit, ran, _ = _de.minimize(fitness, pop, lower=torch.full((d,), -2.0, dtype=torch.float64),
                                     upper=torch.full((d,), 2.0, dtype=torch.float64), generations=60,
                                     generator=torch.Generator().manual_seed(1))
    assert (fit[:3] < 0.25).all() and (ran[:3] < 60).all()  # solved problems stop at once
    assert (ran[3:] == 60).all() and (fit[3:] < 1e-3).all()  # the others run to the end
    assert (fit[:3] > 1e-3).any()  # stopped, not optimised further


def test_de_mutation_indices_are_distinct():
    r = _de._distinct(50, 5, torch.Generator().manual_seed(0), "cpu")
    me = torch.arange(5).expand(50, 5)[..., None]
    allidx = torch.cat([me, r], -1).sort(-1).values
    assert (allidx[..., 1:] != allidx[..., :-1]).all()
    assert r.min() >= 0 and r.max() <= 4


def test_de_binomial_crossover_runs():
    pop = torch.rand(2, 10, 3, dtype=torch.float64)
    best, fit, _, _ = _de.minimize(lambda c, pr: (c ** 2).sum(-1), pop, lower=torch.zeros(3, dtype=torch.float64),
                                   upper=torch.ones(3, dtype=torch.float64), generations=30,
                                   generator=torch.Generator().manual_seed(0), crossover=0.5)
    assert (fit < (pop ** 2).sum(-1).min(1).values + 1e-12).all()


def test_apply_sets_pixels_to_integer_levels():
    x = torch.rand(2, 3, 4, 4)
    genes = torch.tensor([[[1.7, 2.2, 10.4, 300.0, -5.0]], [[3.99, 0.0, 0.0, 128.5, 255.0]]])
    out = apply(x, genes)
    assert torch.equal(out[0, :, 1, 2], torch.tensor([10.0, 255.0, 0.0]) / 255)
    assert torch.equal(out[1, :, 3, 0], torch.tensor([0.0, 128.0, 255.0]) / 255)
    assert ((out != x).any(1).flatten(1).sum(1) <= 1).all()


def test_contract_trace_determinism_and_budget():
    model = OnePixelDecides(size=8, where=(2, 3))
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64) * 0.1 + 0.15
    before = x.clone()
    a = OnePixel(pixels=2, population=8, generations=6, seed=3)(model, x)
    b = OnePixel(pixels=2, population=8, generations=6, seed=3)(model, x)
    assert torch.equal(x, before)
    assert torch.equal(a.x_adv, b.x_adv)
    assert ((a.x_adv != x).any(1).flatten(1).sum(1) <= 2).all()
    trace = a.extra["probability_trace"]
    assert trace.shape == (5, 7)
    assert (torch.isfinite(trace).sum(1) == a.iterations + 1).all()
    # every candidate is evaluated once per image; repeats of one already tried reuse its probability
    assert a.forward_count <= 8 * int((a.iterations + 1).sum())
    stopped = a.iterations < 6
    last = trace[torch.arange(5), a.iterations]
    assert (last[stopped] < 0.1).all()  # untargeted early stop: p(label) < 10 %


def test_targeted_stops_above_half():
    model = OnePixelDecides(size=8, where=(2, 3))
    x = torch.full((3, 3, 8, 8), 0.2, dtype=torch.float64)
    result = OnePixel(population=40, generations=30)(model, x, target=1)
    trace = result.extra["probability_trace"]
    assert result.success.all()
    assert (trace[torch.arange(3), result.iterations] > 0.5).all()


def test_stop_on_success_stops_at_the_first_fooling_candidate():
    model = OnePixelDecides(size=8, where=(2, 3))
    x = torch.full((4, 3, 8, 8), 0.2, dtype=torch.float64)
    # threshold 0: the probability rule alone never stops, so only success can
    plain = OnePixel(population=40, generations=30, threshold=0.0, seed=2)(model, x)
    early = OnePixel(population=40, generations=30, threshold=0.0, seed=2, stop_on_success=True)(model, x)
    assert (plain.iterations == 30).all()
    assert early.success.all() and (early.iterations < 30).all()
    assert early.forward_count < plain.forward_count
    assert (model(early.x_adv).argmax(1) == 1).all()
    trace = early.extra["probability_trace"]
    assert torch.isfinite(trace).sum(1).tolist() == (early.iterations + 1).tolist()


def test_stop_on_success_targeted_stops_once_the_target_wins():
    model = OnePixelDecides(size=8, where=(2, 3))
    x = torch.full((3, 3, 8, 8), 0.2, dtype=torch.float64)
    result = OnePixel(population=40, generations=30, threshold=1.0, stop_on_success=True)(model, x, target=1)
    assert result.success.all() and (result.iterations < 30).all()


def test_added_parameter_at_its_old_value_keeps_the_run_identity():
    assert "stop_on_success" not in OnePixel().identity_params()
    assert OnePixel(stop_on_success=True).identity_params()["stop_on_success"] is True
    assert OnePixel().params()["stop_on_success"] is False


def test_chunked_forward_gives_the_same_result():
    model = OnePixelDecides(size=8, where=(2, 3))
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 0.1 + 0.15
    a = OnePixel(population=10, generations=5, batch_images=4)(model, x)
    b = OnePixel(population=10, generations=5, batch_images=4, forward_batch=7)(model, x)
    assert torch.equal(a.x_adv, b.x_adv)


def test_memo_reuses_repeated_candidates_without_changing_the_result(monkeypatch):
    """A tiny 4x4 image has 16 pixels: DE re-proposes evaluated candidates, which the memo answers;
    the random streams and the float64 toy's probabilities are unchanged, so is the result."""
    model = OnePixelDecides(size=4, where=(2, 1))
    x = torch.rand(6, 3, 4, 4, dtype=torch.float64) * 0.1 + 0.15
    kw = dict(population=12, generations=15, threshold=0.0, seed=4)
    memo = OnePixel(**kw)(model, x)
    monkeypatch.setattr(OnePixel, "_memoize", False)
    plain = OnePixel(**kw)(model, x)
    assert plain.forward_count == 12 * 16 * 6  # threshold 0: every image runs every generation
    assert memo.forward_count < plain.forward_count
    assert torch.equal(memo.x_adv, plain.x_adv)
    assert torch.equal(memo.iterations, plain.iterations)
    assert torch.equal(memo.extra["probability_trace"], plain.extra["probability_trace"])


def test_memo_identifies_candidates_by_their_applied_pixels():
    from foolkit.attacks.onepixel import _Memo
    memo = _Memo(4, 4, 3)
    calls = []

    def query(genes, owner):
        calls.append(len(genes))
        return genes[:, 0, 2].clone(), owner == 1

    # same image, same floored coordinates and rounded colours -> one evaluation; other image -> another
    genes = torch.tensor([[[1.2, 2.9, 10.4, 0, 0]], [[1.7, 2.1, 9.6, 0, 0]], [[1.2, 2.9, 10.4, 0, 0]],
                          [[1.2, 2.9, 11.0, 0, 0]]], dtype=torch.float64)
    prob, hit = memo.lookup(genes, torch.tensor([0, 0, 1, 0]), query)
    assert calls == [3] and prob.tolist() == [10.4, 10.4, 10.4, 11.0] and hit.tolist() == [False, False, True, False]
    # a second pixel makes the candidate distinct; the pixel order of a d = 2 key matters
    two = _Memo(4, 4, 3)
    g2 = torch.tensor([[[0, 0, 1, 1, 1], [3, 3, 2, 2, 2]], [[3, 3, 2, 2, 2], [0, 0, 1, 1, 1]],
                       [[0, 0, 1, 1, 1], [3, 3, 2, 2, 2]]], dtype=torch.float64)
    calls.clear()
    two.lookup(g2, torch.zeros(3, dtype=torch.long), query)
    assert calls == [2]
    prob, _ = memo.lookup(genes[:2], torch.tensor([0, 1]), query)  # both already known
    assert calls == [2, 0] and prob.tolist() == [10.4, 10.4]


@pytest.mark.parametrize("kwargs, match", [
    ({"pixels": 0}, "pixels"), ({"population": 3}, "population"), ({"generations": 0}, "generations"),
    ({"seed": -1}, "seed"), ({"batch_images": 0}, "batch_images"), ({"threshold": 1.5}, "threshold"),
    ({"forward_batch": 0}, "forward_batch"), ({"stop_on_success": "yes"}, "stop_on_success")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OnePixel(**kwargs)


def test_image_smaller_than_d_pixels():
    model = OnePixelDecides(size=2, where=(0, 1))
    with pytest.raises(ValueError, match="fewer than pixels=5"):
        OnePixel(pixels=5)(model, torch.rand(2, 3, 2, 2, dtype=torch.float64))


@pytest.mark.slow
def test_resnet20_five_pixels(resnet20, bundled):
    x, y = bundled
    with torch.no_grad():
        correct = (resnet20(x[:100]).argmax(1) == y[:100]).nonzero().squeeze(1)[:20]
    result = OnePixel(pixels=5, population=50, generations=20)(resnet20, x[correct], y[correct])
    assert result.attacked.all()
    assert result.success.sum() >= 1
    assert ((result.x_adv != x[correct]).any(1).flatten(1).sum(1) <= 5).all()
    with torch.no_grad():  # every success re-verifies with a fresh forward pass
        assert (resnet20(result.x_adv[result.success]).argmax(1) != y[correct][result.success]).all()
    # candidates already evaluated for an image are not queried again (the memo): at most the
    # full budget, and at least the first population of every image
    budget = 50 * int((result.iterations + 1).sum())
    assert 50 * len(result) <= result.forward_count <= budget
    assert not math.isnan(float(result.extra["probability_trace"][:, 0].mean()))
