"""The contract shared by every attack: input checks, bookkeeping, verification, ``AttackResult``.

An attack is a small class. Its constructor takes keyword-only parameters and validates them;
``attack(model, x, y=None, *, target=None)`` checks the inputs, classifies the clean images,
calls ``_run`` (the algorithm, one per module) on the samples worth attacking, then decides
success by a fresh forward pass of ``x_adv``.

Rules (the thesis's D'test convention, chapter 12):
- ``label`` is the label attacked: ``y`` when given, else the model's clean prediction.
- Samples the model already misclassifies (clean prediction != label) are *not attacked*:
  ``x_adv = x``, ``attacked = False``, ``success = False``. Fooling rates are computed over
  the attacked (correctly classified) samples only.
- Untargeted success: the prediction on ``x_adv`` differs from ``label``. Targeted success:
  the prediction equals ``target``.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import norms as _norms
from ..errors import InputError
from ..runtime.model_state import eval_mode


@dataclass
class AttackResult:
    """Per-sample outcome of one attack on a batch of N images.

    Attributes:
        x: the clean images ``[N,C,H,W]`` in [0,1] (not a copy; never modified).
        x_adv: adversarial images ``[N,C,H,W]`` (equal to ``x`` where not attacked).
        label: int64 ``[N]``, the label attacked (``y`` when given, else the clean prediction).
        clean_label: int64 ``[N]``, the model's prediction on ``x``.
        attacked: bool ``[N]``, clean prediction == label (the D'test mask); only these count.
        success: bool ``[N]``, verified by a fresh forward pass of ``x_adv``.
        adv_label: int64 ``[N]``, the prediction on ``x_adv``.
        adv_confidence: float ``[N]``, softmax probability of ``adv_label`` on ``x_adv``.
        clean_confidence: float ``[N]``, softmax probability of ``clean_label`` on ``x``.
        iterations: int64 ``[N]``, the attack's iterations per sample (0 when not attacked).
        target: int64 ``[N]`` or None, the target class of a targeted attack.
        forward_count: images passed forward by the attack (verification excluded).
        gradient_count: input-gradient evaluations (per image, per backward pass).
        seconds: wall time of the whole call.
        extra: attack-specific per-sample data (probability traces, universal perturbation...).
    """

    x: torch.Tensor
    x_adv: torch.Tensor
    label: torch.Tensor
    clean_label: torch.Tensor
    attacked: torch.Tensor
    success: torch.Tensor
    adv_label: torch.Tensor
    adv_confidence: torch.Tensor
    clean_confidence: torch.Tensor
    iterations: torch.Tensor
    target: torch.Tensor | None = None
    forward_count: int = 0
    gradient_count: int = 0
    seconds: float = 0.0
    attack_name: str = ""
    params: dict = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Results are data, never part of a caller's autograd graph: an `x` that requires grad
        # must not hand back an `x_adv` with a grad_fn (nor keep the graph alive).
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor) and (value.requires_grad or value.grad_fn is not None):
                setattr(self, name, value.detach())
        self.extra = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in self.extra.items()}

    @property
    def perturbation(self) -> torch.Tensor:
        """``x_adv - x``, ``[N,C,H,W]``."""
        return self.x_adv - self.x

    def norms(self, p: float) -> torch.Tensor:
        """Per-sample Lp norm of the perturbation, p in {0, 1 <= p, inf}. ``[N]`` float.

        p = 0 counts changed entries (pixel-channels); see :meth:`pixels_changed` for pixels.
        """
        return _norms.lp_norm(self.perturbation, p)

    def pixels_changed(self) -> torch.Tensor:
        """Per-sample fraction of pixels with any channel changed, ``[N]`` in [0,1]."""
        return _norms.pixels_changed(self.perturbation)

    @property
    def fooling_rate(self) -> float | None:
        """Successes over attacked (correctly classified) samples, in [0,1].

        ``None`` when no sample was attacked (the model misclassifies every image, or
        ``target == label`` for all): a rate over zero images is undefined, and ``None`` (unlike
        nan) cannot silently enter an average. ``foolkit.evaluation.metrics`` reports it the same way.
        """
        n = int(self.attacked.sum())
        return float(self.success[self.attacked].sum()) / n if n else None

    def __len__(self) -> int:
        return len(self.x)

    def summary(self) -> str:
        n_att = int(self.attacked.sum())
        r2 = self.norms(2)[self.success]
        med = f"{r2.median():.4f}" if len(r2) else "n/a"
        rate = "n/a" if self.fooling_rate is None else f"{100 * self.fooling_rate:.1f}%"
        return (f"{self.attack_name}: fooled {int(self.success.sum())}/{n_att} correctly classified "
                f"({rate}), median L2 {med}, {self.seconds:.2f}s")


class Counter:
    """Per-call state: model query counts, and a cache the clean pass may fill for ``_run``."""

    def __init__(self) -> None:
        self.forward = 0
        self.gradient = 0
        self.cache: dict[str, Any] = {}


def validate_images(x: Any) -> torch.Tensor:
    """Check an image batch: a float tensor ``[N,C,H,W]``, finite, in [0,1].

    Returns ``x.detach()`` (a view of the same storage, not a copy), so that nothing an attack
    computes from it joins the caller's autograd graph when ``x.requires_grad``.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"images must be a torch.Tensor, got {type(x).__name__}")
    x = x.detach()
    if x.ndim != 4:
        raise InputError(f"images must have rank 4 [N,C,H,W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(f"images must be a float tensor in [0,1], got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise InputError("images are empty (N = 0)")
    if not torch.isfinite(x).all():
        raise InputError("images contain NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise InputError(f"image values must lie in [0,1], found range [{lo:.4g}, {hi:.4g}]")
    return x


def check_model(model: Any, x: torch.Tensor) -> None:
    """Check what can be checked of a model before it runs on ``x`` ``[N,C,H,W]``: an
    ``nn.Module``, and for foolkit's ``Normalized`` wrapper a normalisation of C channels."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module (float [N,C,H,W] in [0,1] -> logits), "
                         f"got {type(model).__name__}")
    from ..models.wrappers import Normalized  # foolkit's own wrapper: a user's `mean` may mean anything

    mean = model.mean if isinstance(model, Normalized) else None
    if isinstance(mean, torch.Tensor) and mean.numel() not in (1, x.shape[1]):
        raise InputError(f"the model normalises {mean.numel()} channels but the images have {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")


@contextmanager
def forward_errors_explained(model: nn.Module, x: torch.Tensor):
    """Around a forward pass: re-raise its failure as a clearer ``ValueError`` when the usual
    reason holds (images on another device, or of another float type, than the model's weights)."""
    try:
        yield
    except RuntimeError as exc:
        weight = next((t for t in model.parameters() if t.is_floating_point()), None)
        if weight is not None and weight.device != x.device:
            raise InputError(f"the images are on {x.device} but the model is on {weight.device}; "
                             f"move one to the other ({exc})") from exc
        if weight is not None and weight.dtype != x.dtype:
            raise InputError(f"the images are {x.dtype} but the model's weights are {weight.dtype}; "
                             f"convert one to the other, e.g. x.to({weight.dtype}) ({exc})") from exc
        raise


def check_logits(logits: Any, n: int) -> torch.Tensor:
    """Check a model's output for ``n`` images: finite float logits ``[n,K]`` with K >= 2."""
    if not isinstance(logits, torch.Tensor):
        raise InputError(f"the model must return a logits tensor [N,K], got {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[0] != n:
        raise InputError(f"the model must return logits of shape [N,K] = [{n},K], got {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise InputError(f"the model must return at least 2 class scores per image, got {logits.shape[1]}")
    if not logits.is_floating_point():
        raise InputError(f"the model must return float logits, got dtype {logits.dtype}")
    if not torch.isfinite(logits).all():
        raise InputError("the model returned NaN or Inf logits (are its weights finite?)")
    return logits


def check_model_output(model: Any, x: torch.Tensor) -> int:
    """Run ``model`` once on ``x`` (a few images) in eval mode and check its output; returns the
    number of classes K. Cheap enough to call before any long job."""
    x = validate_images(x)
    check_model(model, x)
    with eval_mode(model), torch.no_grad(), forward_errors_explained(model, x):
        logits = model(x)
    return check_logits(logits, len(x)).shape[1]


def validate_labels(labels: Any, n: int, num_classes: int, what: str, device) -> torch.Tensor:
    """Check labels: integer ``[n]`` (an int is broadcast) with values in [0, num_classes)."""
    if isinstance(labels, bool):
        raise InputError(f"{what} must be integer class indices, got {labels!r}")
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception:
            raise InputError(f"{what} must be integer class indices, got {type(labels).__name__}") from None
    if labels.ndim == 0:  # one class for every image (an int, a numpy int, a 0-dim tensor)
        labels = labels.expand(n)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise InputError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(f"{what} must have shape [{n}] (one per image), got {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(f"{what} must lie in [0, {num_classes - 1}] for a {num_classes}-class model, "
                         f"found range [{int(labels.min())}, {int(labels.max())}]")
    return labels.to(device=device, dtype=torch.long)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_nonnegative(name: str, value: Any, strict: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (strict and v == 0):
        raise InputError(f"{name} must be a finite number {'> 0' if strict else '>= 0'}, got {value!r}")
    return v


VARIANTS = ("foolkit", "thesis")


def check_variant(variant: Any) -> str:
    """An attack's ``variant``: "foolkit" (foolkit's algorithm, the default) or "thesis" (the
    algorithm of the thesis's published code, in the normalised space of a ``Normalized`` model)."""
    if variant not in VARIANTS:
        raise InputError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def wide_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits in at least float32 (half/bfloat16 models), float64 kept: a float32 softmax of a
    float64 model's confident logits can underflow to a zero gradient."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(prediction [N] int64, softmax probabilities [N,K])``, in batches."""
    preds, probs = [], []
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        logits = wide_logits(logits)
        probs.append(logits.softmax(1))
        preds.append(logits.argmax(1))  # from logits: softmax can round close classes together
    return torch.cat(preds), torch.cat(probs)


class Attack:
    """Base class. Subclasses set ``name``, store validated parameters, implement ``_run``."""

    name = "attack"
    supports_target = True
    #: Parameters added after runs were stored, each with the value that keeps the earlier
    #: behaviour. At that value they stay out of a stored run's identity, so results computed
    #: before the parameter existed are still found; any other value enters it.
    added_params: dict = {}

    def params(self) -> dict:
        """The constructor parameters, as given (after validation)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def identity_params(self) -> dict:
        """:meth:`params` less the ``added_params`` still at their earlier-behaviour value."""
        return {k: v for k, v in self.params().items()
                if not (k in self.added_params and v == self.added_params[k])}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # The algorithm: x0 [M,C,H,W] (only the samples to attack), label [M], target [M] or None,
    # index [M]: their positions in the caller's batch (for per-sample parameters).
    # Returns (x_adv [M,C,H,W], iterations [M], extra dict of per-sample tensors [M,...]).
    def _run(self, model, x0, label, target, counter: Counter, index):  # pragma: no cover - abstract
        raise NotImplementedError

    def _clean_pass(self, model, x, y, target, counter: Counter) -> torch.Tensor:
        """Logits of the clean images ``[N,K]``. Attacks whose first step needs the same forward
        pass (FGSM) override this to take the gradient at once and leave it in ``counter.cache``."""
        logits = []
        with torch.no_grad():
            for i in range(0, len(x), 1000):
                logits.append(check_logits(model(x[i:i + 1000]), len(x[i:i + 1000])))
        return torch.cat(logits)

    def _check_call(self, x: torch.Tensor) -> None:
        """Per-call parameter checks that depend on the batch (override where needed)."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: Any = None, *, target: Any = None,
                 precision: Any = None) -> AttackResult:
        """Attack a batch.

        Args:
            model: ``nn.Module`` taking float ``[N,C,H,W]`` in [0,1], returning logits ``[N,K]``.
            x: images ``[N,C,H,W]``, float in [0,1], on the model's device. Never modified.
            y: true labels ``[N]`` (int64) or None (then the clean predictions are attacked).
            target: target classes ``[N]`` or an int, for a targeted attack; None: untargeted.
            precision: None/"float32", "bf16" or "fp16": autocast for the attack's own forward
                and backward passes (:mod:`foolkit.attacks.precision`); the clean pass and the
                verification stay in the model's dtype, so low-precision-only successes do not count.

        Returns:
            :class:`AttackResult`, success verified by a fresh forward pass.
        """
        from .precision import attack_precision, check_precision, full_precision

        start = time.perf_counter()
        precision = check_precision(precision)
        x = validate_images(x)
        check_model(model, x)
        self._check_call(x)
        if target is not None and not self.supports_target:
            raise InputError(f"{type(self).__name__} has no targeted mode")
        was_training = model.training
        model.eval()
        try:
            counter = Counter()
            with forward_errors_explained(model, x), full_precision(x.device):
                clean_logits = self._clean_pass(model, x, y, target, counter)
            clean_logits = wide_logits(check_logits(clean_logits, len(x)).detach())
            counter.cache["clean_logits"] = clean_logits
            counter.cache["owner"] = self  # inner attacks run by this one must not reuse it
            clean_label, clean_probs = clean_logits.argmax(1), clean_logits.softmax(1)
            num_classes = clean_probs.shape[1]
            label = clean_label.clone() if y is None else validate_labels(y, len(x), num_classes, "labels y", x.device)
            tgt = None if target is None else validate_labels(target, len(x), num_classes, "target", x.device)
            attacked = clean_label == label
            if tgt is not None:
                attacked &= tgt != label
            x_adv = x.clone()
            iterations = torch.zeros(len(x), dtype=torch.long, device=x.device)
            extra: dict[str, Any] = {}
            idx = attacked.nonzero().squeeze(1)
            if len(idx):
                with attack_precision(precision, x.device):
                    xa, it, ex = self._run(model, x[idx].detach().clone(), label[idx],
                                           None if tgt is None else tgt[idx], counter, idx)
                x_adv[idx] = xa.detach().to(x.dtype)
                iterations[idx] = it.to(torch.long)
                for key, value in ex.items():
                    if isinstance(value, torch.Tensor) and value.shape[:1] == (len(idx),):
                        full = torch.zeros((len(x),) + value.shape[1:], dtype=value.dtype, device=value.device)
                        full[idx] = value
                        extra[key] = full
                    else:
                        extra[key] = value
            if precision != "float32":
                extra["precision"] = precision
            with full_precision(x.device):  # verified in the model's dtype, whatever the attack ran in
                adv_label, adv_probs = predict(model, x_adv)
            adv_conf = adv_probs.gather(1, adv_label[:, None]).squeeze(1)
            if tgt is None:
                success = attacked & (adv_label != label)
            else:
                success = attacked & (adv_label == tgt)
        finally:
            model.train(was_training)
        return AttackResult(
            x=x, x_adv=x_adv, label=label, clean_label=clean_label, attacked=attacked, success=success,
            adv_label=adv_label, adv_confidence=adv_conf,
            clean_confidence=clean_probs.gather(1, clean_label[:, None]).squeeze(1),
            iterations=iterations, target=tgt, forward_count=counter.forward,
            gradient_count=counter.gradient, seconds=time.perf_counter() - start,
            attack_name=type(self).__name__, params=self.params(), extra=extra)


def input_gradient(model: nn.Module, x: torch.Tensor, objective, counter: Counter):
    """Gradient of ``objective(logits).sum()`` w.r.t. ``x`` without touching parameter grads.

    Returns ``(logits [N,K] detached, grad [N,C,H,W])``. Samples are independent in eval mode,
    so summing per-sample objectives gives every sample its own gradient.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logits = check_logits(model(xg), len(x))
        counter.forward += len(x)
        (grad,) = torch.autograd.grad(objective(logits).sum(), xg)
        counter.gradient += len(x)
    return logits.detach(), grad
