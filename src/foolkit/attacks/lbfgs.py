"""Box-constrained L-BFGS attack (Szegedy et al., "Intriguing properties of neural networks",
ICLR 2014, arXiv:1312.6199; thesis section 6.1).

For each image, for a penalty constant c > 0 solve

    minimise_r   c * ||r||_2^2 + loss(x + r)      subject to   x + r in [0,1]^m

with box-constrained L-BFGS, and search c per image for the largest value whose minimiser is
still adversarial (the smallest perturbation). ``loss`` is the cross-entropy towards the
target (targeted) or ``-log(1 - p_label)`` (untargeted: push the label's probability down; it
is bounded below, so the search over c stays well posed). Untargeted, the minimiser follows
the probability-weighted mix of competing classes, so it can cross a farther boundary than
DeepFool's nearest one: the targeted problem is the one the paper defines.

Choices, and why:
- Optimiser: SciPy's L-BFGS-B over the stacked variables of all images in the batch. It
  enforces the box exactly (projected Cauchy point), which is what the paper used; torch's
  L-BFGS has no bounds. The objective is a sum of per-image terms with disjoint variables,
  so the joint minimiser is the per-image minimisers, and one function evaluation is one
  batched forward + backward pass. Large images are solved a few at a time
  (``max_variables``), which bounds SciPy's memory (about 25 float64 copies of the variables).
- Squared norm: the thesis writes c*||r||; minimisers of c*||r|| + L and c'*||r||^2 + L trace
  the same path as c varies (c = 2 c' ||r||), and the squared form is smooth at r = 0, where
  the search starts.
- The thesis (after the paper) says "the minimum c > 0 for which the minimiser is
  adversarial"; with c on the distance term that is the *largest* such c, which is what is
  searched here (a geometric bisection, widened by x10 until bracketed).

Example:
    >>> result = LBFGS()(model, x, target=torch.full((len(x),), 3))
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F
from torch import nn

from .base import Attack, wide_logits
from .checks import check_nonnegative, check_positive_int
from .queries import Counter


class LBFGS(Attack):
    """Szegedy et al.'s attack: L-BFGS-B on c*||r||^2 + loss, with a per-image search over c.

    Args:
        initial_const: first value of c for every image (> 0).
        search_steps: number of c values tried per image (each is one L-BFGS-B solve).
        max_iter: L-BFGS-B iterations per solve.
        search_tolerance: stop refining c once c_high / c_low < 1 + this.

    Call: ``LBFGS()(model, x [N,C,H,W] in [0,1], y=None, target=None) -> AttackResult``;
    ``iterations`` counts the function evaluations of the solves for each image.
    """

    name = "lbfgs"

    def __init__(self, *, initial_const: float = 1.0, search_steps: int = 12, max_iter: int = 100,
                 search_tolerance: float = 0.01) -> None:
        self.initial_const = check_nonnegative("initial_const", initial_const, strict=True)
        self.search_steps = check_positive_int("search_steps", search_steps)
        self.max_iter = check_positive_int("max_iter", max_iter)
        self.search_tolerance = check_nonnegative("search_tolerance", search_tolerance, strict=True)

    #: Most variables in one L-BFGS-B solve: SciPy keeps about 2*maxcor+5 = 25 float64 vectors
    #: of this length (1.7 GB here), so large images are solved a few at a time.
    max_variables = 2 ** 23

    def _solve(self, model: nn.Module, x0: torch.Tensor, const: torch.Tensor, wanted: torch.Tensor, targeted: bool,
               x_start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L-BFGS-B solves for the rows of x0, as few joint solves as memory allows; returns the
        minimisers and the number of function evaluations per row ``[n]``."""
        per = max(1, self.max_variables // x0[0].numel())
        parts = [self._solve_joint(model, x0[i:i + per], const[i:i + per], wanted[i:i + per], targeted,
                                   x_start[i:i + per]) for i in range(0, len(x0), per)]
        evaluations = torch.cat([torch.full((len(x),), e, dtype=torch.long, device=x0.device) for x, e in parts])
        return torch.cat([x for x, _ in parts]), evaluations

    def _solve_joint(self, model: nn.Module, x0: torch.Tensor, const: torch.Tensor, wanted: torch.Tensor,
                     targeted: bool, x_start: torch.Tensor) -> tuple[torch.Tensor, int]:
        """One L-BFGS-B solve for all rows of x0 at once; returns the minimiser and #evaluations."""
        shape, dtype, device = x0.shape, x0.dtype, x0.device
        const_t = const.to(dtype).view(-1, 1, 1, 1)
        evaluations = 0

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            nonlocal evaluations
            evaluations += 1
            z = torch.from_numpy(flat).to(device=device, dtype=dtype).view(shape).requires_grad_(True)
            with torch.enable_grad():
                logits = wide_logits(model(z))
                if targeted:
                    loss = F.cross_entropy(logits, wanted, reduction="none")
                else:  # -log(1 - p_label), computed stably: bounded below, unlike log p_label
                    others = logits.scatter(1, wanted[:, None], float("-inf"))
                    loss = logits.logsumexp(1) - others.logsumexp(1)
                dist = (z - x0).flatten(1).pow(2).sum(1)
                total = (const_t.flatten() * dist + loss).sum()
                (grad,) = torch.autograd.grad(total, z)
            return float(total.detach()), grad.detach().double().cpu().numpy().ravel()

        start = x_start.detach().double().cpu().numpy().ravel()
        solution = scipy.optimize.minimize(
            objective, start, jac=True, method="L-BFGS-B", bounds=scipy.optimize.Bounds(0.0, 1.0),
            options={"maxiter": self.max_iter, "maxcor": 10, "ftol": 1e-12, "gtol": 1e-10})
        x_opt = torch.from_numpy(solution.x).to(device=device, dtype=dtype).view(shape)
        return x_opt, evaluations

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        n, device = len(x0), x0.device
        targeted = target is not None
        wanted = label if target is None else target
        const = torch.full((n,), self.initial_const, dtype=torch.float64, device=device)
        c_low = torch.zeros(n, dtype=torch.float64, device=device)  # largest c known to succeed
        c_high = torch.full((n,), float("inf"), dtype=torch.float64, device=device)  # smallest c known to fail
        best = x0.clone()
        best_norm = torch.full((n,), float("inf"), device=device, dtype=torch.float64)
        iterations = torch.zeros(n, dtype=torch.long, device=device)
        active = torch.arange(n, device=device)
        for _ in range(self.search_steps):
            if len(active) == 0:
                break
            x_opt, evals = self._solve(model, x0[active], const[active], wanted[active], targeted, x0[active])
            iterations[active] += evals
            with torch.no_grad():
                pred = model(x_opt).argmax(1)
            ok = pred == wanted[active] if targeted else pred != label[active]
            norm = (x_opt - x0[active]).flatten(1).norm(dim=1).double()
            improve = ok & (norm < best_norm[active])
            best[active[improve]] = x_opt[improve]
            best_norm[active[improve]] = norm[improve]
            c = const[active]
            c_low[active] = torch.where(ok, torch.maximum(c_low[active], c), c_low[active])
            c_high[active] = torch.where(ok, c_high[active], torch.minimum(c_high[active], c))
            lo, hi = c_low[active], c_high[active]
            # grow c x10 until a failure brackets it, shrink /10 until a success does, then bisect
            new_c = torch.where(torch.isinf(hi), c * 10, torch.where(lo == 0, c / 10, (lo * hi).sqrt()))
            const[active] = new_c
            converged = torch.isfinite(hi) & (lo > 0) & (hi / lo.clamp_min(1e-300) < 1 + self.search_tolerance)
            active = active[~converged]
        return best, iterations, {"const": c_low}
