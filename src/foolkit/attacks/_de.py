"""Batched differential evolution (DE/rand/1) over many independent minimisation problems.

Storn & Price (1997); the variant of the One Pixel Attack (Su, Vargas & Sakurai 2019, eq. in
thesis chapter 8): for every member i of a population,
    child_i = x_r1 + F * (x_r2 - x_r3),   r1, r2, r3, i pairwise different, F = 0.5,
no crossover by default (the paper's choice: the child is the mutant), and the child replaces
its parent when its fitness is lower.

B problems evolve together as one tensor ``[B, P, D]``; each generation makes a single fitness
call for the B * P children of the problems still running, and a problem leaves the batch as
soon as its best fitness falls below its threshold or, when the fitness also reports which
candidates solve their problem, as soon as its best candidate does. Randomness comes from one
seeded ``torch.Generator`` on the population's device, so a run is deterministic given the seed
(and the set of problems: the draws of a problem depend on which others are still running).

Example:
    >>> best, fit, ran, trace = minimize(lambda c, i: (c ** 2).sum(-1), torch.rand(8, 20, 3),
    ...     lower=torch.zeros(3), upper=torch.ones(3), generations=50, generator=torch.Generator())
"""
from __future__ import annotations

from typing import Callable

import torch
from ..errors import InputError


def _distinct(b: int, p: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Indices ``[b, p, 3]``: for member i, three members r1, r2, r3 all different from i and
    from each other, uniformly (draw from the smaller range, then skip the excluded ones)."""
    return _draw_distinct(torch.arange(p, device=device).expand(b, p)[..., None], p, generator)


def _draw_distinct(taken: torch.Tensor, pool: int, generator: torch.Generator) -> torch.Tensor:
    """Three indices in [0, pool) per entry of ``taken [b, m, t]``, different from each other and
    from the t indices in ``taken`` (t may be 0), uniformly. Returns ``[b, m, 3]``."""
    b, m, t = taken.shape
    picks = []
    for j in range(3):
        u = torch.randint(0, pool - t - j, (b, m), generator=generator, device=taken.device)
        excl, _ = taken.sort(-1)
        for s in range(excl.shape[-1]):  # ascending exclusions: shift past each one
            u = u + (u >= excl[..., s]).long()
        picks.append(u)
        taken = torch.cat([taken, u[..., None]], -1)
    return torch.stack(picks, -1)


#: ``fitness(candidates [b, P, D], problems [b]) -> fitness [b, P]`` or ``(fitness, solved [b, P])``
Fitness = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]


def minimize(fitness: Fitness, population: torch.Tensor, *,
             lower: torch.Tensor, upper: torch.Tensor, generations: int, generator: torch.Generator,
             threshold: torch.Tensor | float = -float("inf"), scale: float = 0.5,
             crossover: float | None = None, boundary: str = "clip", gene_pool: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimise B independent problems with DE/rand/1.

    Args:
        fitness: ``fitness(candidates [b, P, D], problems [b] int64) -> [b, P]`` float, lower is
            better; ``problems`` are the indices (into B) of the candidates' problems. It may
            instead return ``(fitness [b, P], solved [b, P] bool)``: a problem then also stops
            once its best candidate (lowest fitness) is solved.
        population: initial population ``[B, P, D]`` (P >= 4), already inside the bounds.
        lower, upper: bounds ``[D]`` (or broadcastable to ``[B, P, D]``); children are clipped.
        generations: number of generations after the initial one.
        generator: seeded ``torch.Generator`` on the population's device.
        threshold: ``[B]`` or a float: a problem stops once its best fitness is < threshold.
        scale: the mutation factor F (0.5 in the paper).
        crossover: None for no crossover (the paper); a probability CR in [0,1] for binomial
            crossover (each coordinate from the mutant with probability CR, one always).
        boundary: "clip": a child's coordinates outside [lower, upper] are clipped to the box;
            "resample": they are drawn again uniformly in [lower, upper) (the thesis's code).
        gene_pool: None: the donors r1, r2, r3 are three other members (the paper). An integer
            g (the thesis's code): each member is g genes of D / g coordinates (e.g. g pixels),
            and each gene of each child is x1 + F (x2 - x3) for three different genes drawn
            from all P * g genes of the population, the member itself included.

    Returns:
        ``(best [B, D], best_fitness [B], generations_run [B] int64, trace [B, generations+1])``
        where ``trace[:, g]`` is the best fitness after generation g (0: the initial population)
        and NaN after the problem stopped.
    """
    b, p, d = population.shape
    if p < 4:
        raise InputError(f"differential evolution needs a population of at least 4, got {p}")
    if boundary not in ("clip", "resample"):
        raise InputError(f"boundary must be 'clip' or 'resample', got {boundary!r}")
    if gene_pool is not None and (gene_pool < 1 or d % gene_pool):
        raise InputError(f"gene_pool must divide the {d} coordinates of a member, got {gene_pool!r}")
    device = population.device
    pop = population.clone()
    threshold = torch.as_tensor(threshold, dtype=torch.float64, device=device).expand(b)

    def evaluate(cand: torch.Tensor, problems: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = fitness(cand, problems)
        fit, solved = out if isinstance(out, tuple) else (out, torch.zeros(out.shape, dtype=torch.bool,
                                                                          device=device))
        return fit.to(torch.float64), solved.to(torch.bool)

    def running(problems: torch.Tensor, best_fit: torch.Tensor) -> torch.Tensor:
        """The problems (subset of ``problems``) whose best is neither below threshold nor solved."""
        best_solved = solved[problems].gather(1, fit[problems].argmin(1, keepdim=True)).squeeze(1)
        return problems[(best_fit >= threshold[problems]) & ~best_solved]

    fit, solved = evaluate(pop, torch.arange(b, device=device))
    trace = torch.full((b, generations + 1), float("nan"), dtype=torch.float64, device=device)
    trace[:, 0] = fit.min(1).values
    ran = torch.zeros(b, dtype=torch.long, device=device)
    active = running(torch.arange(b, device=device), trace[:, 0])
    for g in range(1, generations + 1):
        if len(active) == 0:
            break
        pa = pop[active]
        if gene_pool is None:
            r = _distinct(len(active), p, generator, device)
            child = _pick(pa, r, 0) + scale * (_pick(pa, r, 1) - _pick(pa, r, 2))
        else:
            child = _pooled_mutants(pa, gene_pool, scale, generator)
        if crossover is not None:
            take = torch.rand(pa.shape, generator=generator, device=device) < crossover
            forced = torch.randint(0, d, (len(active), p, 1), generator=generator, device=device)
            take.scatter_(2, forced, True)
            child = torch.where(take, child, pa)
        if boundary == "clip":
            child = torch.minimum(torch.maximum(child, lower), upper)
        else:
            out = (child < lower) | (child > upper)
            fresh = lower + (upper - lower) * torch.rand(child.shape, generator=generator, device=device,
                                                         dtype=child.dtype)
            child = torch.where(out, fresh, child)
        child_fit, child_solved = evaluate(child, active)
        better = child_fit < fit[active]
        pop[active] = torch.where(better[..., None], child, pa)
        fit[active] = torch.where(better, child_fit, fit[active])
        solved[active] = torch.where(better, child_solved, solved[active])
        ran[active] = g
        trace[active, g] = fit[active].min(1).values
        active = running(active, trace[active, g])
    best_fit, best_idx = fit.min(1)
    best = pop.gather(1, best_idx.view(b, 1, 1).expand(b, 1, d)).squeeze(1)
    return best, best_fit, ran, trace


def _pooled_mutants(pa: torch.Tensor, genes: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """DE/rand/1 mutants over a pool of genes: ``pa [b, P, D]`` is P members of ``genes`` genes
    each; every gene of every child mixes three different genes of the pool (any member, any
    slot, its own included). Returns ``[b, P, D]``."""
    b, p, d = pa.shape
    g = d // genes
    pool = pa.view(b, p, genes, g).transpose(1, 2).reshape(b, genes * p, g)  # slot-major, as the thesis indexes
    r = _draw_distinct(torch.empty(b, p * genes, 0, dtype=torch.long, device=pa.device), genes * p, generator)
    child = _pick(pool, r, 0) + scale * (_pick(pool, r, 1) - _pick(pool, r, 2))  # [b, P * genes, g], member-major
    return child.view(b, p, d)


def _pick(pool: torch.Tensor, r: torch.Tensor, j: int) -> torch.Tensor:
    """Donor j of every child: ``pool [b, m, D]`` gathered at ``r[..., j]`` (``r [b, P, 3]``) -> ``[b, P, D]``."""
    return pool.gather(1, r[..., j:j + 1].expand(-1, -1, pool.shape[2]))
