"""project_lp_ball is the exact Euclidean projection (p = 1, 2, inf): closed forms, an
independent bisection for p = 1, and brute-force optimality against random points of the ball."""
import math

import pytest
import torch

from foolkit import norms


def random_batch(seed, n=16, shape=(3, 4, 4), scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n,) + shape, generator=g, dtype=torch.float64) * scale


def l1_projection_by_bisection(v, radius):
    """Projection onto {||u||_1 <= r}: u = sign(v) max(|v| - theta, 0), theta by bisection."""
    out = []
    for row in v.flatten(1):
        if row.abs().sum() <= radius:
            out.append(row)
            continue
        lo, hi = 0.0, float(row.abs().max())
        for _ in range(200):
            mid = (lo + hi) / 2
            if (row.abs() - mid).clamp_min(0).sum() > radius:
                lo = mid
            else:
                hi = mid
        out.append(row.sign() * (row.abs() - hi).clamp_min(0))
    return torch.stack(out).view_as(v)


def test_l2_closed_form():
    v = random_batch(0)
    out = norms.project_lp_ball(v, 2, 1.5)
    n = v.flatten(1).norm(dim=1)
    expected = v * torch.clamp(1.5 / n, max=1.0).view(-1, 1, 1, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


def test_linf_closed_form():
    v = random_batch(1)
    out = norms.project_lp_ball(v, math.inf, 0.3)
    torch.testing.assert_close(out, v.clamp(-0.3, 0.3), rtol=0, atol=0)


def test_l1_matches_bisection():
    v = random_batch(2, scale=0.5)
    for r in [0.1, 1.0, 5.0, 100.0]:
        torch.testing.assert_close(norms.project_lp_ball(v, 1, r), l1_projection_by_bisection(v, r),
                                   rtol=0, atol=1e-10)


@pytest.mark.parametrize("p", [1, 2, math.inf])
@pytest.mark.parametrize("radius", [0.05, 0.7, 3.0])
def test_projection_is_feasible_idempotent_and_closest(p, radius):
    v = random_batch(3, n=8, shape=(2, 3, 3))
    out = norms.project_lp_ball(v, p, radius)
    assert (norms.lp_norm(out, p) <= radius * (1 + 1e-12)).all()
    outside = norms.lp_norm(v, p) > radius
    assert torch.allclose(norms.lp_norm(out[outside], p), torch.full((int(outside.sum()),), radius,
                                                                     dtype=torch.float64))
    torch.testing.assert_close(out[~outside], v[~outside], rtol=0, atol=0)
    torch.testing.assert_close(norms.project_lp_ball(out, p, radius), out, rtol=0, atol=1e-12)
    # brute force: no point of the ball (random boundary points and shrunk copies) is closer to v
    g = torch.Generator().manual_seed(4)
    cand = torch.randn((4000,) + v.shape[1:], generator=g, dtype=torch.float64)
    cand = norms.project_lp_ball(cand * 10, p, radius)  # on the boundary (scaled far out first)
    cand = torch.cat([cand, cand * torch.rand(4000, 1, 1, 1, generator=g, dtype=torch.float64)])
    for i in range(len(v)):
        best = (cand - v[i]).flatten(1).norm(dim=1).min()
        assert (out[i] - v[i]).norm() <= best + 1e-12
        # first-order optimality: small moves inside the ball never get closer
        near = norms.project_lp_ball(out[i] + 1e-3 * torch.randn((200,) + v.shape[1:], generator=g,
                                                                  dtype=torch.float64), p, radius)
        assert ((near - v[i]).flatten(1).norm(dim=1) >= (out[i] - v[i]).norm() - 1e-12).all()


def test_per_sample_radius_and_bad_radius():
    v = random_batch(5, n=3)
    radius = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    out = norms.project_lp_ball(v, 2, radius)
    for i in range(3):
        torch.testing.assert_close(out[i:i + 1], norms.project_lp_ball(v[i:i + 1], 2, float(radius[i])))
    with pytest.raises(ValueError, match="radius"):
        norms.project_lp_ball(v, 2, 0.0)
    with pytest.raises(ValueError, match="p = 1, 2 and inf"):
        norms.project_lp_ball(v, 3, 1.0)
