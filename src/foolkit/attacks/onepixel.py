"""One Pixel Attack (Su, Vargas & Sakurai, IEEE TEVC 2019, arXiv:1710.08864): d pixels, black box.

Thesis: chapter 8, experiments 12.4 (Table 12.7, Figs 12.16-12.19).

A candidate is d x (row, col, c_1..c_C): d pixels and the colours they are set to (0-255).
Differential evolution (DE/rand/1, F = 0.5, no crossover, as in the paper) minimises
    untargeted: p_label(x')            stops early once p_label < 10 %
    targeted:   1 - p_target(x')       stops early once p_target > 50 %
using only the model's probabilities. Coordinates start uniform over the image, colours from
N(128, 127) clipped to [0, 255]. Many images evolve together (``attacks._de``): one forward
pass evaluates the children of every image still running, chunked to ``forward_batch`` images.

Example:
    >>> result = OnePixel(pixels=1, population=100, generations=50)(model, x, y)
    >>> result.fooling_rate, result.extra["probability_trace"]

Deviations from the paper / the authors' code:
- Defaults are the thesis's reduced budget (population 100, 50 generations); the paper uses
  400 and 100 (pass them to reproduce it).
- Children leaving the search box are clipped to it (scipy, used by the Keras reference,
  re-samples them at random; the paper does not say). Coordinates are floored to integers and
  colours rounded to integer levels when a candidate is applied, so x_adv is a valid 8-bit
  image where x was.
- Early stopping uses the paper's probability thresholds only by default; the Keras reference
  and torchattacks also stop as soon as the best candidate fools the model, which
  ``stop_on_success=True`` adds (for comparisons under the same rule). Success is decided
  afterwards by the base class on the best candidate, so an image can be fooled without reaching the threshold (thesis Fig. 12.16).
- The random draws of an image depend on which other images of its batch are still running.
- A candidate whose applied pixels (floored coordinates, rounded colours) were already evaluated
  for its image is not evaluated again: its earlier probability is reused (the random streams
  are unchanged; the probabilities differ from a fresh evaluation only by float noise across
  batch compositions). At d = 1, 100 x 50, this saves about 12 % of the model queries.

``variant="thesis"`` is the thesis code's ``one_pixel_attack`` (batched here, over images and
candidates; its random streams are torch's, not numpy's):
- a pixel is 2 + C genes in [0,1]: (row, col) as fractions of the image, floored to
  int(frac * size) and clipped to size - 1, and the colour itself in [0,1], not rounded to
  8-bit levels (the thesis sets the normalised colour in z, the same pixel in [0,1] units);
- the initial coordinates are uniform, the colours N(0.5, 0.5) clipped to [0,1];
- each pixel of a child is x1 + 0.5 (x2 - x3) for three different pixels drawn from all the
  population's pixels (its own parent included); coordinates leaving [0,1] are redrawn
  uniformly in [0,1) (``evolve(..., strategy="resample")``), not clipped;
- the fitness is the softmax probability of the label (lower is better) or of the target
  (higher is better); a child replaces its parent only when strictly better; an image stops
  before a generation once its best probability is < 10 % (untargeted) or > 50 % (targeted);
- ``iterations`` is the thesis's loop index: the generations run when the rule stopped the
  image, else ``generations - 1`` (although ``generations`` were run).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from . import _de
from ..errors import InputError
from .base import Attack, wide_logits
from .checks import check_positive_int, check_variant
from .queries import Counter


class OnePixel(Attack):
    """Change at most ``pixels`` pixels, found by differential evolution on the probabilities.

    Args:
        pixels: d >= 1, the number of pixels changed (1: the one pixel attack).
        population: candidates per image (>= 4; thesis 100, paper 400).
        generations: DE generations after the initial population (thesis 50, paper 100).
        seed: seed of the ``torch.Generator`` (on the images' device) driving DE.
        batch_images: images evolved together in one DE run (their populations share every
            forward pass).
        forward_batch: at most this many candidate images per forward pass; None chooses
            about 2**24 values on an accelerator (5,461 CIFAR-10 images), 2**18 on the CPU
            (85 images; larger CPU batches run slower per image).
        threshold: None for the paper's early-stop thresholds (p_label < 0.1 untargeted,
            p_target > 0.5 targeted); a float in [0,1] replaces whichever applies.
        stop_on_success: also stop an image as soon as its best candidate is misclassified
            (untargeted) or classified as the target (targeted), as the Keras reference code and
            torchattacks do; False (the paper's rule) keeps lowering the probability.
        variant: "foolkit" (default) or "thesis", the thesis code's algorithm (module docstring:
            genes in [0,1], pooled mutation, out-of-box genes resampled, colours not rounded,
            ``iterations`` at most ``generations - 1``).

    Call: ``OnePixel(...)(model, x [N,C,H,W] in [0,1], y=None, target=None) -> AttackResult``.
    ``extra["probability_trace"]`` is float ``[N, generations+1]``: the best candidate's
    probability of the label (untargeted) or of the target (targeted) after each generation,
    NaN after the image stopped (rows of images not attacked are 0). ``iterations`` counts
    generations run; ``forward_count`` counts the candidate images passed forward: a candidate
    setting the same pixels to the same 8-bit colours as one already evaluated for its image
    reuses that one's probability (``variant="foolkit"``; the thesis variant's colours are not
    discrete and every candidate is evaluated).
    """

    name = "onepixel"
    added_params = {"stop_on_success": False, "variant": "foolkit"}
    _memoize = True  # reuse the probabilities of candidates already evaluated (tests switch it off)

    def __init__(self, *, pixels: int = 1, population: int = 100, generations: int = 50, seed: int = 0,
                 batch_images: int = 100, forward_batch: int | None = None, threshold: float | None = None,
                 stop_on_success: bool = False, variant: str = "foolkit"):
        self.pixels = check_positive_int("pixels", pixels)
        self.population = check_positive_int("population", population, minimum=4)
        self.generations = check_positive_int("generations", generations)
        self.seed = check_positive_int("seed", seed, minimum=0)
        self.batch_images = check_positive_int("batch_images", batch_images)
        self.forward_batch = None if forward_batch is None else check_positive_int("forward_batch", forward_batch)
        if threshold is not None:
            try:
                threshold = float(threshold)
            except (TypeError, ValueError):
                raise InputError(f"threshold must be a probability in [0,1] or None, got {threshold!r}") from None
            if not 0 <= threshold <= 1:
                raise InputError(f"threshold must be a probability in [0,1] or None, got {threshold!r}")
        self.threshold = threshold
        if not isinstance(stop_on_success, bool):
            raise InputError(f"stop_on_success must be True or False, got {stop_on_success!r}")
        self.stop_on_success = stop_on_success
        self.variant = check_variant(variant)

    def _check_call(self, x: torch.Tensor) -> None:
        if x.shape[2] * x.shape[3] < self.pixels:
            raise InputError(f"images of {x.shape[2]}x{x.shape[3]} pixels have fewer than pixels={self.pixels}")

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        n, c, h, w = x0.shape
        device = x0.device
        per = 2 + c  # row, col, one value per channel
        dim = self.pixels * per
        budget = 2 ** 18 if device.type == "cpu" else 2 ** 24  # CPU caches favour small batches
        chunk = self.forward_batch or max(1, budget // (c * h * w))
        nhwc = device.type == "cpu"  # oneDNN convolutions run 10-30% faster on NHWC batches; same values to ~1e-6
        wanted = label if target is None else target
        gen = torch.Generator(device=device).manual_seed(self.seed)
        thesis = self.variant == "thesis"
        put = apply_fractional if thesis else apply
        lower = torch.zeros(dim, dtype=torch.float64, device=device)
        upper = (torch.ones(dim, dtype=torch.float64, device=device) if thesis else
                 torch.tensor(([h - 1e-6, w - 1e-6] + [255.0] * c) * self.pixels, dtype=torch.float64, device=device))

        def forward(imgs: torch.Tensor) -> torch.Tensor:
            nonlocal nhwc
            with torch.no_grad():
                if nhwc:
                    try:
                        out: torch.Tensor = model(imgs.contiguous(memory_format=torch.channels_last))
                        return out
                    except RuntimeError:  # e.g. a model that flattens with .view() needs NCHW-contiguous input
                        nhwc = False
                out = model(imgs)
                return out

        def query(genes: torch.Tensor, owner: torch.Tensor, xs: torch.Tensor, want: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Probability of ``want`` and the fooled flag of candidates ``genes [M, d, per]``."""
            out, hit = [], []
            for s in range(0, len(genes), chunk):
                imgs = put(xs[owner[s:s + chunk]], genes[s:s + chunk])
                prob = wide_logits(forward(imgs)).softmax(1)
                wanted_now = want[owner[s:s + chunk]]
                out.append(prob.gather(1, wanted_now[:, None]).squeeze(1))
                # fooled: the label lost (untargeted) or the target won (targeted)
                hit.append((prob.argmax(1) != wanted_now) if target is None else (prob.argmax(1) == wanted_now))
            if not out:
                return torch.empty(0, device=device), torch.empty(0, dtype=torch.bool, device=device)
            return torch.cat(out), torch.cat(hit)

        def fitness(cand: torch.Tensor, problems: torch.Tensor, xs: torch.Tensor, want: torch.Tensor,
                    memo: _Memo | None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
            b, p, _ = cand.shape
            genes = cand.reshape(b * p, self.pixels, per)
            owner = problems.repeat_interleave(p)
            if memo is None:
                prob, hit = query(genes, owner, xs, want)
            else:
                prob, hit = memo.lookup(genes, owner, lambda g, o: query(g, o, xs, want))
            prob, hit = prob.view(b, p).to(torch.float64), hit.view(b, p)
            # lower is better; the thesis maximises the target's probability itself
            fit = prob if target is None else -prob if thesis else 1 - prob
            return (fit, hit) if self.stop_on_success else fit

        x_adv = x0.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=device)
        trace = torch.full((n, self.generations + 1), float("nan"), dtype=torch.float32, device=device)
        default = 0.1 if target is None else 0.5
        thr = default if self.threshold is None else self.threshold
        stop = thr if target is None else -thr if thesis else 1 - thr
        for s in range(0, n, self.batch_images):
            xs, want = x0[s:s + self.batch_images], wanted[s:s + self.batch_images]
            b = len(xs)
            coords = torch.rand(b, self.population, self.pixels, 2, generator=gen, device=device, dtype=torch.float64)
            colours = torch.randn(b, self.population, self.pixels, c, generator=gen, device=device, dtype=torch.float64)
            if thesis:  # fractions of the image; colours N(0.5, 0.5) in [0,1] units
                colours = colours * 0.5 + 0.5
            else:  # pixel coordinates; colours N(128, 127) in 8-bit levels
                coords = coords * torch.tensor([h, w], dtype=torch.float64, device=device)
                colours = colours * 127 + 128
            pop = torch.cat([coords, colours], -1).reshape(b, self.population, dim)
            pop = torch.minimum(torch.maximum(pop, lower), upper)
            # late generations re-propose pixels already tried (>half of the children by generation 50
            # at d = 1): the foolkit variant's candidates are discrete, so their probabilities are reused
            memo = None if thesis or not self._memoize else _Memo.create(h, w, c, b * (self.generations + 1) * self.population)
            best, _, ran, tr = _de.minimize(lambda cand, pr: fitness(cand, pr, xs, want, memo), pop, lower=lower,
                                            upper=upper, generations=self.generations, generator=gen,
                                            threshold=stop, boundary="resample" if thesis else "clip",
                                            gene_pool=self.pixels if thesis else None)
            x_adv[s:s + b] = put(xs, best.view(b, self.pixels, per))
            # the thesis reports its loop index: the generations run, or generations - 1 when none stopped it
            iterations[s:s + b] = ran.clamp_max(self.generations - 1) if thesis else ran
            trace[s:s + b] = (tr if target is None else -tr if thesis else 1 - tr).to(torch.float32)
        return x_adv, iterations, {"probability_trace": trace}


class _Memo:
    """The candidates of one DE run already evaluated, per image: a candidate whose applied pixels
    (floored coordinates, rounded 8-bit colours, in order) equal an earlier one's of the same
    image gets that one's probability and fooled flag instead of a forward pass.

    Candidates are identified exactly: each pixel packs into one int64 (row, col, colours), and
    (image, pixel 1, ..., pixel d) is ranked one pixel at a time with 1-D ``torch.unique``
    (sorting rows of a 2-D key is ~70x slower)."""

    def __init__(self, h: int, w: int, c: int) -> None:
        self.h, self.w, self.c = h, w, c
        self.span = h * w * 256 ** c  # distinct values of one pixel's key
        # filled on the first lookup, on the candidates' device
        self.owner = self.keys = self.prob = self.hit = torch.empty(0)
        self._started = False

    @classmethod
    def create(cls, h: int, w: int, c: int, most: int) -> "_Memo | None":
        """None when ``most`` ranks times a pixel's key range could overflow int64."""
        return cls(h, w, c) if (most + 1) * h * w * 256 ** c < 2 ** 62 else None

    def _pixel_keys(self, genes: torch.Tensor) -> torch.Tensor:
        """``genes [M, d, 2+C]`` -> int64 ``[M, d]``, equal exactly when ``apply`` sets the same pixel."""
        key = (genes[..., 0].floor().long().clamp(0, self.h - 1) * self.w
               + genes[..., 1].floor().long().clamp(0, self.w - 1))
        for v in genes[..., 2:].round().clamp(0, 255).long().unbind(-1):
            key = key * 256 + v
        return key

    def lookup(self, genes: torch.Tensor, owner: torch.Tensor,
               query: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and fooled flags ``([M], [M])`` of ``genes [M, d, 2+C]`` for images
        ``owner [M]``; ``query(genes [m, d, 2+C], owner [m])`` evaluates the m new ones."""
        keys = self._pixel_keys(genes)
        if not self._started:
            self._started = True
            self.owner = owner[:0]
            self.keys = keys[:0]
            self.prob = torch.empty(0, device=genes.device)
            self.hit = torch.empty(0, dtype=torch.bool, device=genes.device)
        known = len(self.owner)
        ids = torch.cat([self.owner, owner])
        all_keys = torch.cat([self.keys, keys])
        for j in range(all_keys.shape[1]):  # rank (image, pixels so far); ranks < 2**62 / span: no overflow
            ids = torch.unique(ids * self.span + all_keys[:, j], return_inverse=True)[1]
        n_ids = int(ids.max()) + 1 if len(ids) else 0
        mine = ids[known:]
        seen = torch.zeros(n_ids, dtype=torch.bool, device=ids.device)
        seen[ids[:known]] = True
        # the first child proposing each unseen candidate is evaluated, in the children's order
        first = torch.full((n_ids,), len(mine), dtype=torch.long, device=ids.device)
        first.scatter_reduce_(0, mine, torch.arange(len(mine), device=ids.device), "amin")
        pos = first[torch.unique(mine[~seen[mine]])].sort().values
        prob, hit = query(genes[pos], owner[pos])
        table_prob = torch.empty(n_ids, dtype=prob.dtype, device=ids.device)
        table_hit = torch.zeros(n_ids, dtype=torch.bool, device=ids.device)
        table_prob[ids[:known]] = self.prob.to(prob.dtype)
        table_hit[ids[:known]] = self.hit
        table_prob[mine[pos]] = prob
        table_hit[mine[pos]] = hit
        self.owner = torch.cat([self.owner, owner[pos]])
        self.keys = torch.cat([self.keys, keys[pos]])
        self.prob = torch.cat([self.prob.to(prob.dtype), prob])
        self.hit = torch.cat([self.hit, hit])
        return table_prob[mine], table_hit[mine]


def apply(x: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
    """Set pixels: x ``[M,C,H,W]``, genes ``[M, d, 2+C]`` (row, col, values 0-255) -> new ``[M,C,H,W]``.

    Coordinates are floored, values rounded to integer levels; a later pixel of the same
    candidate wins where two coincide.
    """
    out = x.clone()
    m, c, h, w = x.shape
    rows = genes[..., 0].floor().long().clamp(0, h - 1)
    cols = genes[..., 1].floor().long().clamp(0, w - 1)
    vals = genes[..., 2:].round().clamp(0, 255).div(255).to(x.dtype)  # [M, d, C]
    batch = torch.arange(m, device=x.device)
    for j in range(genes.shape[1]):  # d is small; later pixels overwrite earlier ones
        out[batch, :, rows[:, j], cols[:, j]] = vals[:, j]
    return out


def apply_fractional(x: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
    """Set pixels as the thesis's code does: x ``[M,C,H,W]``, genes ``[M, d, 2+C]`` in [0,1]
    (row and column as fractions of the image, then the colour) -> new ``[M,C,H,W]``.

    The pixel is (int(row * H), int(col * W)), clipped to the image; the colour is set unrounded
    (clipped to [0,1]). A later pixel of the same candidate wins where two coincide.
    """
    out = x.clone()
    m, c, h, w = x.shape
    rows = (genes[..., 0] * h).floor().long().clamp(0, h - 1)
    cols = (genes[..., 1] * w).floor().long().clamp(0, w - 1)
    vals = genes[..., 2:].clamp(0, 1).to(x.dtype)  # [M, d, C]
    batch = torch.arange(m, device=x.device)
    for j in range(genes.shape[1]):  # d is small; later pixels overwrite earlier ones
        out[batch, :, rows[:, j], cols[:, j]] = vals[:, j]
    return out
