"""CUDA out-of-memory: split the batch and retry, down to one image.

    splitter = OomSplitter()
    result, size = splitter.attack(attack, model, x, y, target=t, start=i, base_seed=seed)

When an attack call on ``B`` images raises :class:`torch.cuda.OutOfMemoryError`, the images are
attacked in consecutive chunks of ``B // 2`` (then ``B // 4`` ..., down to 1); the chunks'
results are concatenated into one :class:`~foolkit.attacks.base.AttackResult` for the batch, and
one line (a warning) says which batch size worked. Later batches start at that size, so a run
pays for the failed attempt once, not per batch. Only one image that does not fit is an error.

What "the same per-image results" means. The run keeps its identity (the requested batch size
names the grid of committed batches; the working size is stored beside each split batch as the
artifact ``oom/batch<start>``) and the split is deterministic:
- Each chunk runs under the seed the runner would give a batch starting at the chunk's first
  image, ``seed * 1_000_003 + chunk start``; the first chunk therefore draws exactly as the
  unsplit batch would.
- Attacks whose per-image result depends only on that image (DeepFool, SparseFool,
  SuperDeepFool, FMN, FGSM; the models in eval mode) give the same per-image results as the
  unsplit batch up to float rounding: CPU and CUDA kernels are chosen by batch shape, so the
  floats can differ in the last bits, and an image sitting on a decision boundary can take
  one more or one fewer step.
- Attacks that draw random numbers for the whole batch (One Pixel's populations) or solve it
  jointly (L-BFGS's line search) give results of the same distribution, not the same numbers:
  a chunk's draws depend on its start and size. Rerunning with the same working size
  reproduces them exactly.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

from ..attacks.base import AttackResult
from ..errors import OutOfMemory




def is_oom(exc: BaseException) -> bool:
    """A CUDA (or other accelerator) out-of-memory error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def concat_results(parts: list[AttackResult]) -> AttackResult:
    """One :class:`AttackResult` from the results of consecutive chunks of a batch (in order)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def cat(name):
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values)

    extra: dict[str, Any] = {}
    for key, value in first.extra.items():
        if isinstance(value, torch.Tensor) and value.shape[:1] == (len(first),) and all(
                isinstance(p.extra.get(key), torch.Tensor) for p in parts):
            extra[key] = torch.cat([p.extra[key] for p in parts])
        else:  # run-level values (a universal perturbation, a precision name): the chunks share them
            extra[key] = value
    fields = ("x", "x_adv", "label", "clean_label", "attacked", "success", "adv_label", "adv_confidence",
              "clean_confidence", "iterations", "target")
    return AttackResult(**{f: cat(f) for f in fields}, forward_count=sum(p.forward_count for p in parts),
                        gradient_count=sum(p.gradient_count for p in parts), seconds=sum(p.seconds for p in parts),
                        attack_name=first.attack_name, params=first.params, extra=extra)


def verify_in_parts(model, result: AttackResult, size: int) -> dict[str, torch.Tensor]:
    """:func:`foolkit.evaluation.verify.verify_result` on parts of ``size`` images (the size that
    fitted the attack), concatenated: ``[N]`` tensors as one call would give."""
    from .verify import verify_result

    n = len(result)
    if size >= n:
        return verify_result(model, result)
    fields = ("x", "x_adv", "label", "clean_label", "attacked", "success", "adv_label", "adv_confidence",
              "clean_confidence", "iterations", "target")
    checks = []
    for i in range(0, n, size):
        part: dict[str, Any] = {f: None if getattr(result, f) is None else getattr(result, f)[i:i + size] for f in fields}
        checks.append(verify_result(model, AttackResult(**part)))
    return {k: torch.cat([c[k] for c in checks]) for k in checks[0]}


def _part(labels, sl: slice, n: int):
    """The part of per-image labels (a sequence of ``n``); an int or None is every image's."""
    if labels is None or isinstance(labels, (int, bool)) or getattr(labels, "ndim", 1) == 0:
        return labels
    return labels[sl] if len(labels) == n else labels


class OomSplitter:
    """Runs attack calls, halving the batch on out-of-memory; remembers the size that worked.

    Attributes:
        size: the largest chunk size known to work (None until a split happened).
    """

    def __init__(self) -> None:
        self.size: int | None = None

    def attack(self, attack, model, x: torch.Tensor, y=None, *, target=None, precision=None,
               start: int = 0, base_seed: int | None = None) -> tuple[AttackResult, int]:
        """Attack ``x`` ``[B,C,H,W]`` (images ``start .. start+B-1`` of the run).

        Each chunk runs in a forked RNG seeded ``base_seed * 1_000_003 + chunk start`` (the
        runner's per-batch seed); with ``base_seed=None`` the caller's RNG state is used as it
        is for the unsplit batch, and each later chunk forks it too.

        Returns ``(result for all B images, chunk size used)``. Raises the out-of-memory
        error, with one line naming the problem, when a single image does not fit.
        """
        from ..attacks.precision import check_precision

        # precision= only when asked: an Attack subclass with its own older __call__ still runs in float32
        extra = {} if check_precision(precision) == "float32" else {"precision": precision}
        n = len(x)
        size = n if self.size is None else min(n, self.size)
        failed_at = None
        while True:
            parts: list[AttackResult] = []
            i = 0
            try:
                for i in range(0, n, size):
                    sl = slice(i, i + size)
                    with torch.random.fork_rng(devices=[]):
                        if base_seed is not None:
                            torch.manual_seed(base_seed * 1_000_003 + start + i)
                        parts.append(attack(model, x[sl], _part(y, sl, n), target=_part(target, sl, n), **extra))
                break
            except Exception as exc:  # noqa: BLE001 -- only out-of-memory is handled, the rest re-raised
                if not is_oom(exc):
                    raise
                parts.clear()  # free the finished chunks' tensors before retrying
                _free_memory()
                if size == 1:
                    raise OutOfMemory(
                        f"out of memory attacking one image (image {start + i}) with {type(attack).__name__}; "
                        f"try --precision bf16, a smaller model or --device cpu") from None
                failed_at = failed_at or size
                size = max(1, size // 2)
        if failed_at is not None:
            self.size = size
            warnings.warn(f"CUDA out of memory at batch size {failed_at}; batch size {size} worked "
                          f"(images {start}..{start + n - 1}; later batches start at {size})", stacklevel=3)
        return concat_results(parts), size


__all__ = ["OomSplitter", "OutOfMemory", "concat_results", "is_oom", "verify_in_parts"]
