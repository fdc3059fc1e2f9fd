"""Universal adversarial perturbations (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, CVPR 2017,
arXiv:1610.08401): one image-agnostic v with ||v||_p <= xi that fools most images.

Thesis: chapter 9 (Algorithm 6), experiments 12.5 (Tables 12.8-12.10, Figs 12.20-12.25).

    v <- 0
    while Err(X_v) < 1 - delta and passes < max_passes:
        for x_i in shuffle(X):
            if k(x_i + v) == k(x_i):
                dv <- DeepFool(x_i + v)               (minimal L2 step across the boundary)
                if DeepFool converged: v <- P_{p,xi}(v + dv)
Err(X_v) is the fraction of X whose prediction on clip(x + v) differs from the clean one.

``mode="faithful"`` runs that loop one image at a time, as the authors do (predictions of the
images ahead are computed in chunks and reused until v changes, which does not change the
result). ``mode="batched"`` runs DeepFool on ``batch_size`` images at once and applies
v <- P(v + sum of their converged dv). The sum, not the mean: the faithful loop also adds the
updates of consecutive images (projecting in between), so the sum is what a mini-batch of the
faithful loop would accumulate; with batch_size = 1 it *is* the faithful algorithm. A mean
would shrink every update by the batch size, so v would grow batch_size times more slowly and
barely reach the ball's boundary within 10 passes.

Example:
    >>> uap = UniversalPerturbation(norm="inf", xi=8 / 255).fit(model, x_train)
    >>> uap.fooling_rate_, uap(model, x_test).fooling_rate

Deviations from the authors' code (LTS4/universal, python/universal_pert.py):
- The model always sees clip(x + v) in [0,1] (the authors add v to mean-subtracted images
  without clipping); DeepFool starts from that clipped point, but its step itself is not
  clipped, as in the authors' DeepFool.
- A DeepFool update is kept when DeepFool's point is misclassified (the authors keep it when
  DeepFool stopped before max_iter - 1 steps); the inner DeepFool is foolkit's
  (``candidates`` top classes, ``overshoot`` applied to the accumulated step).
- ``deepfool_norm`` (default 2, the authors' choice for both p = 2 and p = inf) lets the
  inner DeepFool use the L-inf norm for p = inf, as the thesis's Table 12.9 does.
- Shuffling uses a seeded ``torch.Generator``; the authors' ``max_iter_uni`` defaults to
  infinity, here ``max_passes`` = 10 (the thesis's setting).

``variant="thesis"`` is the thesis code's ``universal_perturbation`` (one image at a time, as
the thesis, with predictions of the images ahead computed in chunks):
- everything happens in the normalised space z = (x - mean) / std of a
  :class:`foolkit.models.Normalized` model (pixel space for any other model): v, the inner
  DeepFool (the thesis's, ``deepfool_thesis.deepfool_z``: in ``norm``, returning
  (1 + overshoot) R), the projection (L2: v * min(1, xi / ||v||_2); L-inf: each entry clipped
  to [-xi, xi]), so **xi is in z units** (the thesis's Table 12.8: xi = 15, Table 12.9: 0.5);
- nothing is clipped: the model sees z + v, also when measuring the fooling rate;
- an image is attacked only when its clean prediction equals its true label (``fit``'s ``y``;
  the clean prediction when None) and z + v is still classified the same; its DeepFool update
  is kept when DeepFool took fewer than ``deepfool_max_iter - 1`` steps;
- after each pass the fooling rate on X is the fraction of *all* images with
  pred(z + v) != pred(z); it stops once that reaches 1 - delta, and returns the v of the pass
  with the highest fooling rate (zero if no pass fooled any image);
- ``perturbation_`` is that v in pixel units (v_z * std), and images are attacked with the
  unclipped x + v.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import nn

from .. import norms as _norms
from ..errors import InputError
from ..runtime.model_state import eval_mode
from .base import Attack, predict
from .checks import check_nonnegative, check_positive_int, check_variant, validate_images, validate_labels
from .deepfool import deepfool
from .deepfool_thesis import deepfool_z, normalised_space, to_z
from .queries import Counter

_MODES = ("faithful", "batched")


class UniversalPerturbation(Attack):
    """Fit one perturbation on a set X (``fit``), then add it to any image (``apply`` / call).

    Args:
        norm: 2 or inf (``"inf"`` accepted): the ball ||v||_p <= xi.
        xi: > 0, the radius, in [0,1] pixel units (the authors' ImageNet default 10/255 for
            L-inf on the 0-255 scale; CIFAR-10 models need more, e.g. 8/255-16/255).
        delta: in [0,1]; stop once the fooling rate on X reaches 1 - delta (0.2: 80 %).
        max_passes: >= 1, passes over X at most (thesis 10).
        mode: "faithful" (one image at a time, the authors' loop) or "batched".
        batch_size: images per DeepFool call in batched mode, and per prediction chunk.
        overshoot: DeepFool's overshoot (authors 0.02).
        deepfool_max_iter: DeepFool steps per image (authors 10).
        deepfool_norm: the inner DeepFool's norm (default 2, the authors'; inf as in thesis
            Table 12.9). With ``variant="thesis"`` it defaults to ``norm``, and must equal it.
        candidates: classes considered by DeepFool (authors 10).
        seed: seed of the per-pass shuffling.
        variant: "foolkit" (default) or "thesis", the thesis code's algorithm (module docstring;
            xi is then in the model's normalised units, and only ``mode="faithful"`` exists).

    Fitted attributes: ``perturbation_`` [1,C,H,W], ``fooling_rate_`` (on X, against the
    model's clean predictions), ``history_`` (one dict per pass: pass, fooling_rate,
    seconds, and the cumulative forward and gradient counts), ``passes_``.

    Call: ``uap(model, x [N,C,H,W], y=None) -> AttackResult`` with x_adv = clip(x + v); as
    for every attack, the fooling rate counts the correctly classified images only.
    """

    name = "universal"
    supports_target = False
    added_params = {"variant": "foolkit"}

    def __init__(self, *, norm: float | str = math.inf, xi: float = 10 / 255, delta: float = 0.2,
                 max_passes: int = 10, mode: str = "faithful", batch_size: int = 100, overshoot: float = 0.02,
                 deepfool_max_iter: int = 10, deepfool_norm: float | str | None = None, candidates: int = 10,
                 seed: int = 0, variant: str = "foolkit") -> None:
        self.norm = _check_norm("norm", norm)
        self.xi = check_nonnegative("xi", xi, strict=True)
        if not math.isfinite(self.xi):
            raise InputError(f"xi must be finite, got {xi!r}")
        self.delta = check_nonnegative("delta", delta)
        if self.delta > 1:
            raise InputError(f"delta must lie in [0,1] (the tolerated fraction not fooled), got {delta!r}")
        self.max_passes = check_positive_int("max_passes", max_passes)
        if mode not in _MODES:
            raise InputError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.overshoot = check_nonnegative("overshoot", overshoot)
        self.deepfool_max_iter = check_positive_int("deepfool_max_iter", deepfool_max_iter)
        self.variant = check_variant(variant)
        thesis = self.variant == "thesis"
        default_df = self.norm if thesis else 2.0
        self.deepfool_norm = default_df if deepfool_norm is None else _check_norm("deepfool_norm", deepfool_norm)
        if thesis and self.deepfool_norm != self.norm:
            raise InputError(f"the thesis's code runs DeepFool in the norm of the ball: deepfool_norm must equal "
                             f"norm ({self.norm}), got {deepfool_norm!r}")
        if thesis and mode != "faithful":
            raise InputError("variant='thesis' is the thesis's one-image-at-a-time loop: mode must be 'faithful'")
        self.candidates = check_positive_int("candidates", candidates, minimum=2)
        self.seed = check_positive_int("seed", seed, minimum=0)

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    # ----------------------------------------------------------------------------- fitting
    def fit(self, model: nn.Module, X: torch.Tensor, y: Any = None) -> UniversalPerturbation:
        """Compute v on images X ``[n,C,H,W]`` in [0,1] (never modified). Returns self.

        ``y`` (int64 ``[n]``, optional) is used by ``variant="thesis"`` only, which attacks only
        the images whose clean prediction is their label; None: every image qualifies.
        """
        X = validate_images(X)
        self._counter = Counter()
        with eval_mode(model), self._counter.watch(model):
            if self.variant == "thesis":
                self._fit_thesis(model, X, y)
            else:
                self._fit(model, X)
        return self

    def _fit(self, model: nn.Module, X: torch.Tensor) -> None:
        n = len(X)
        device = X.device
        with self._counter.paused():  # the reference predictions, as an attack's clean pass
            clean, _ = predict(model, X, self.batch_size)
        gen = torch.Generator(device=device).manual_seed(self.seed)
        v = torch.zeros((1,) + X.shape[1:], dtype=X.dtype, device=device)
        history: list[dict[str, Any]] = []
        fooling = 0.0
        for k in range(self.max_passes):
            start = time.perf_counter()
            order = torch.randperm(n, generator=gen, device=device)
            if self.mode == "faithful":
                v = self._faithful_pass(model, X[order], clean[order], v)
            else:
                v = self._batched_pass(model, X[order], clean[order], v)
            pred, _ = predict(model, (X + v).clamp(0, 1), self.batch_size)
            fooling = float((pred != clean).double().mean())
            history.append({"pass": k + 1, "fooling_rate": fooling, "seconds": time.perf_counter() - start,
                            "forward": self._counter.forward, "gradient": self._counter.gradient})
            if fooling >= 1 - self.delta:
                break
        self.perturbation_ = v
        self.fooling_rate_ = fooling
        self.history_ = history
        self.passes_ = len(history)

    def _step(self, model: nn.Module, xp: torch.Tensor, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """DeepFool from the perturbed images xp [m,...]: their steps dv [m,...] and whether
        DeepFool's point is misclassified (converged) [m]."""
        x_df, _ = deepfool(model, xp, lab, norm=self.deepfool_norm, overshoot=self.overshoot,
                           max_iter=self.deepfool_max_iter, candidates=self.candidates, clip=False)
        with torch.no_grad():
            ok = model(x_df).argmax(1) != lab
        return x_df - xp, ok

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        return _norms.project_lp_ball(v, self.norm, self.xi)

    def _faithful_pass(self, model: nn.Module, X: torch.Tensor, clean: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n = len(X)
        fooled = torch.zeros(n, dtype=torch.bool, device=X.device)
        valid_until = 0  # fooled[i:valid_until] is up to date with the current v
        for i in range(n):  # the authors' sequential loop: each update changes v for the next image
            if i >= valid_until:
                hi = min(n, i + self.batch_size)
                pred, _ = predict(model, (X[i:hi] + v).clamp(0, 1), self.batch_size)
                fooled[i:hi] = pred != clean[i:hi]
                valid_until = hi
            if fooled[i]:
                continue
            dv, ok = self._step(model, (X[i:i + 1] + v).clamp(0, 1), clean[i:i + 1])
            if ok.item():
                v = self._project(v + dv)
                valid_until = i + 1  # predictions of the images ahead are stale now
        return v

    def _batched_pass(self, model: nn.Module, X: torch.Tensor, clean: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        for s in range(0, len(X), self.batch_size):
            xb, cb = X[s:s + self.batch_size], clean[s:s + self.batch_size]
            xp = (xb + v).clamp(0, 1)
            with torch.no_grad():
                active = model(xp).argmax(1) == cb
            if not active.any():
                continue
            dv, ok = self._step(model, xp[active], cb[active])
            if ok.any():
                v = self._project(v + dv[ok].sum(0, keepdim=True))
        return v

    # ----------------------------------------------------------------- the thesis's variant
    def _fit_thesis(self, model: nn.Module, X: torch.Tensor, y: Any) -> None:
        n = len(X)
        net, mean, std = normalised_space(model)
        Z = to_z(X, mean, std)

        def logits(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([net(z[i:i + self.batch_size]) for i in range(0, len(z), self.batch_size)])

        def pred(z: torch.Tensor) -> torch.Tensor:
            return logits(z).argmax(1)

        with torch.no_grad():
            clean_logits = logits(Z)
        clean, classes = clean_logits.argmax(1), clean_logits.shape[1]
        label = clean if y is None else validate_labels(y, n, classes, "labels y", X.device)
        gen = torch.Generator(device=X.device).manual_seed(self.seed)
        v = torch.zeros((1,) + X.shape[1:], dtype=X.dtype, device=X.device)
        v_best, best, fooling = v.clone(), 0.0, 0.0
        order = torch.arange(n, device=X.device)
        history: list[dict[str, Any]] = []
        while fooling < 1 - self.delta and len(history) < self.max_passes:
            start = time.perf_counter()
            order = order[torch.randperm(n, generator=gen, device=X.device)]  # the thesis reshuffles its shuffled set
            v = self._thesis_pass(net, Z[order], clean[order], label[order], v, pred)
            with torch.no_grad():
                fooling = float((pred(Z + v) != clean).double().mean())
            if fooling > best:
                v_best, best = v.clone(), fooling
            history.append({"pass": len(history) + 1, "fooling_rate": fooling, "seconds": time.perf_counter() - start,
                            "forward": self._counter.forward, "gradient": self._counter.gradient})
        self.perturbation_ = v_best * std
        self.fooling_rate_ = best
        self.history_ = history
        self.passes_ = len(history)

    def _thesis_pass(self, net: nn.Module, Z: torch.Tensor, clean: torch.Tensor, label: torch.Tensor, v: torch.Tensor,
                     pred: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        n = len(Z)
        same = torch.zeros(n, dtype=torch.bool, device=Z.device)
        valid_until = 0  # same[i:valid_until] is up to date with the current v
        for i in range(n):  # sequential: each update changes v for the next image
            if clean[i] != label[i]:
                continue
            if i >= valid_until:
                hi = min(n, i + self.batch_size)
                with torch.no_grad():
                    same[i:hi] = pred(Z[i:hi] + v) == clean[i:hi]
                valid_until = hi
            if not same[i]:
                continue
            start = Z[i:i + 1] + v
            z_adv, loops, _, _ = deepfool_z(net, start, norm=self.norm, overshoot=self.overshoot,
                                            lambda_fac=1 + self.overshoot, max_iter=self.deepfool_max_iter,
                                            candidates=self.candidates)
            if loops.item() < self.deepfool_max_iter - 1:  # the thesis's "converged" test
                v = v + (z_adv - start)
                if self.norm == 2:
                    size = float(v.norm())
                    v = v * (self.xi / size) if size > self.xi else v  # v * min(1, xi / ||v||)
                else:
                    v = v.clamp(-self.xi, self.xi)
                valid_until = i + 1  # predictions of the images ahead are stale now
        return v

    # ------------------------------------------------------------------------ applying
    def _fitted(self) -> torch.Tensor:
        if not hasattr(self, "perturbation_"):
            raise InputError("UniversalPerturbation is not fitted yet: call fit(model, X) first")
        return self.perturbation_

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """clip(x + v) (``variant="thesis"``: x + v) for images x ``[N,C,H,W]`` in [0,1] with the shape of the fitted X."""
        v = self._fitted()
        x = validate_images(x)
        if x.shape[1:] != v.shape[1:]:
            raise InputError(f"images of shape {tuple(x.shape[1:])} do not match the perturbation's "
                             f"{tuple(v.shape[1:])}")
        out = x + v.to(device=x.device, dtype=x.dtype)
        return out if self.variant == "thesis" else out.clamp(0, 1)  # the thesis never clips

    def _check_call(self, x: torch.Tensor) -> None:
        v = self._fitted()
        if x.shape[1:] != v.shape[1:]:
            raise InputError(f"images of shape {tuple(x.shape[1:])} do not match the perturbation's "
                             f"{tuple(v.shape[1:])}")

    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        ones = torch.ones(len(x0), dtype=torch.long, device=x0.device)
        return self.apply(x0), ones, {}


def _check_norm(name: str, norm: float | str) -> float:
    return _norms.parse_norm(norm, allowed=(2.0, math.inf), name=name)
