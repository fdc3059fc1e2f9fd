"""The contract shared by every attack: bookkeeping, verification, ``AttackResult``.

Input checks live in :mod:`foolkit.attacks.checks`, query counting in :mod:`foolkit.attacks.queries`.

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

import time
from dataclasses import dataclass, field
from typing import Any, Callable, final

import torch
from torch import nn

from .. import norms as _norms
from ..errors import InputError
from ..runtime.model_state import eval_mode
from .checks import check_logits, check_model, forward_errors_explained, validate_images, validate_labels
from .queries import Counter



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
    params: dict[str, Any] = field(default_factory=dict)
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
    #: whether ``target`` is accepted (DeepFool: a property, as it depends on the variant)
    supports_target: bool = True
    #: Parameters added after runs were stored, each with the value that keeps the earlier
    #: behaviour. At that value they stay out of a stored run's identity, so results computed
    #: before the parameter existed are still found; any other value enters it.
    added_params: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        """The constructor parameters, as given (after validation)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def identity_params(self) -> dict[str, Any]:
        """:meth:`params` less the ``added_params`` still at their earlier-behaviour value."""
        return {k: v for k, v in self.params().items()
                if not (k in self.added_params and v == self.added_params[k])}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # The algorithm: x0 [M,C,H,W] (only the samples to attack), label [M], target [M] or None,
    # counter: this call's state (``counter.cache`` holds the clean pass's logits; queries are
    # counted by hooks, never here), index [M]: their positions in the caller's batch (for
    # per-sample parameters). Returns (x_adv [M,C,H,W], iterations [M], extra dict of
    # per-sample tensors [M,...]).
    def _run(self, model: nn.Module, x0: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None,
             counter: Counter, index: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _clean_pass(self, model: nn.Module, x: torch.Tensor, y: Any, target: Any, counter: Counter) -> torch.Tensor:
        """Logits of the clean images ``[N,K]``, not counted as queries (every attack needs them).
        Attacks whose first step needs the same forward pass (FGSM) override this to take the
        gradient at once (counted) and leave it in ``counter.cache``."""
        logits = []
        with torch.no_grad(), counter.paused():
            for i in range(0, len(x), 1000):
                logits.append(check_logits(model(x[i:i + 1000]), len(x[i:i + 1000])))
        return torch.cat(logits)

    def _check_call(self, x: torch.Tensor) -> None:
        """Per-call parameter checks that depend on the batch (override where needed)."""

    @final
    def __call__(self, model: nn.Module, x: torch.Tensor, y: Any = None, *, target: Any = None,
                 precision: Any = None) -> AttackResult:
        """Attack a batch (subclasses write ``_run``, not this).

        Args:
            model: ``nn.Module`` taking float ``[N,C,H,W]`` in [0,1], returning logits ``[N,K]``.
                Run in eval mode; every submodule's train/eval mode is restored afterwards.
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
        counter = Counter()
        with eval_mode(model):
            with counter.watch(model):
                with forward_errors_explained(model, x), full_precision(x.device):
                    clean_logits = self._clean_pass(model, x, y, target, counter)
                clean_logits = wide_logits(check_logits(clean_logits, len(x)).detach())
                counter.cache["clean_logits"] = clean_logits
                clean_label, clean_probs = clean_logits.argmax(1), clean_logits.softmax(1)
                num_classes = clean_probs.shape[1]
                label = clean_label.clone() if y is None else validate_labels(y, len(x), num_classes, "labels y",
                                                                              x.device)
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
                    extra = _scatter(ex, idx, len(x))
            if precision != "float32":
                extra["precision"] = precision
            with full_precision(x.device):  # verified in the model's dtype, whatever the attack ran in
                adv_label, adv_probs = predict(model, x_adv)
        adv_conf = adv_probs.gather(1, adv_label[:, None]).squeeze(1)
        success = attacked & ((adv_label != label) if tgt is None else (adv_label == tgt))
        return AttackResult(
            x=x, x_adv=x_adv, label=label, clean_label=clean_label, attacked=attacked, success=success,
            adv_label=adv_label, adv_confidence=adv_conf,
            clean_confidence=clean_probs.gather(1, clean_label[:, None]).squeeze(1),
            iterations=iterations, target=tgt, forward_count=counter.forward,
            gradient_count=counter.gradient, seconds=time.perf_counter() - start,
            attack_name=type(self).__name__, params=self.params(), extra=extra)


def _scatter(ex: dict[str, Any], idx: torch.Tensor, n: int) -> dict[str, Any]:
    """The ``_run`` extras of the attacked samples ``idx`` ``[M]`` spread over the whole batch of
    ``n``: per-sample tensors ``[M,...]`` become ``[n,...]`` (zeros elsewhere), the rest is kept."""
    extra: dict[str, Any] = {}
    for key, value in ex.items():
        if isinstance(value, torch.Tensor) and value.shape[:1] == (len(idx),):
            full = torch.zeros((n,) + value.shape[1:], dtype=value.dtype, device=value.device)
            full[idx] = value
            extra[key] = full
        else:
            extra[key] = value
    return extra


def input_gradient(model: nn.Module, x: torch.Tensor,
                   objective: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of ``objective(logits).sum()`` w.r.t. ``x`` without touching parameter grads.

    Returns ``(logits [N,K] detached, grad [N,C,H,W])``. Samples are independent in eval mode,
    so summing per-sample objectives gives every sample its own gradient.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logits = check_logits(model(xg), len(x))
        (grad,) = torch.autograd.grad(objective(logits).sum(), xg)
    return logits.detach(), grad
