"""Model registry: every model is a name, an architecture builder and a card (data).

``load(name)`` returns an ``nn.Module`` in eval mode that takes float ``[N,3,H,W]`` in
[0,1] and returns logits (normalisation inside). Shipped checkpoints are verified against
the sha256 in the card and read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from torch import nn

from ..data.cifar10 import missing_path_error
from ..data.safe_load import describe_load_error, load_weights_only
from ..errors import ModelError
from ..runtime.machine import parse_device
from .wrappers import THESIS_CIFAR10_MEAN, THESIS_CIFAR10_STD, Normalized
from ..runtime.hashing import sha256_file

CARDS_DIR = Path(__file__).with_name("cards")
CHECKPOINTS_DIR = Path(__file__).with_name("checkpoints")

Builder = Callable[[], nn.Module]  # makes the raw network (no normalisation), fresh weights
WeightsHook = Callable[[], "str | os.PathLike[str]"]  # the default weights file, outside checkpoints/
B = TypeVar("B", bound=Builder)


@dataclass
class ModelCard:
    """A registered model's facts, read from its JSON card in ``models/cards/`` (data, not code)."""

    name: str
    architecture: str
    dataset: str
    input_size: int
    num_params: int
    mean: Sequence[float]  # per-channel normalisation the network was trained with
    std: Sequence[float]
    checkpoint: str | None = None  # file name in models/checkpoints/ (None: user must supply)
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recipe, accuracy, timing, machine, date...

    @classmethod
    def from_json(cls, path: Path) -> "ModelCard":
        """The card in ``path``; keys that are not fields go to ``extra``."""
        data = json.loads(path.read_text())
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__ and k != "extra"}
        return cls(**known, extra=data)


_BUILDERS: dict[str, Builder] = {}
_CARD_FILES: dict[str, str] = {}
_WEIGHTS: dict[str, WeightsHook] = {}


def register(name: str, card_file: str, weights: WeightsHook | None = None) -> Callable[[B], B]:
    """Decorator: register a builder of the *raw* network under ``name``.

    The registry imports no model: each model module registers its own networks when
    :mod:`foolkit.models` imports it (``@register("cifar10/resnet20", "cifar10-resnet20.json")``
    above the builder, or ``register(...)(builder)`` for a second name of the same network).
    ``card_file``: the card's file name in ``models/cards/``.

    ``weights``, if given, returns the path of the default state_dict when it lives outside
    ``models/checkpoints/`` (e.g. inside a pip package); it is called only by :func:`load`
    and may raise :class:`ModelError`. The card's ``sha256`` (if any) still applies to it.
    """
    def deco(fn: B) -> B:
        _BUILDERS[name] = fn
        _CARD_FILES[name] = card_file
        if weights is not None:
            _WEIGHTS[name] = weights
        return fn
    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_BUILDERS)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def card(name: str) -> ModelCard:
    """The card (data) of the registered model ``name``; :class:`ModelError` for unknown names."""
    _check_name(name)
    return ModelCard.from_json(CARDS_DIR / _CARD_FILES[name])


def weights_status(name: str) -> tuple[bool, str]:
    """Whether :func:`load` finds default weights for ``name`` (without ``checkpoint=``), and a
    short phrase saying so: ``(True, "shipped")``, ``(True, "installed (package P)")``,
    ``(False, "not installed (package P missing)")``, ``(False, "no shipped weights")``."""
    c = card(name)
    if name in _WEIGHTS:
        package = c.extra.get("weights_package", "its weights package")
        try:
            path = Path(_WEIGHTS[name]())
        except ModelError:
            return False, f"not installed (package {package} missing)"
        if not path.is_file():
            return False, f"not installed (package {package} has no weights file)"
        return True, f"installed (package {package})"
    if c.checkpoint is None:
        return False, "no shipped weights"
    if not (CHECKPOINTS_DIR / c.checkpoint).is_file():
        return False, f"shipped weights missing ({c.checkpoint})"
    return True, "shipped"


def build(name: str) -> Normalized:
    """The wrapped network with freshly initialised weights (for training)."""
    c = card(name)
    return Normalized(_BUILDERS[name](), c.mean, c.std)


def load_state_dict(path: str | os.PathLike[str], expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a plain state_dict with ``weights_only=True``; refuse corrupt or pickled files."""
    path = Path(path)
    if not path.exists():
        raise missing_path_error(path, "checkpoint", error=ModelError)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} is not a file")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelError(f"checkpoint {path} does not match its card: sha256 {actual[:12]}..., "
                             f"expected {expected_sha256[:12]}... (corrupt or replaced file)")
    try:
        state = load_weights_only(path)
    except Exception as exc:
        raise ModelError(f"cannot load checkpoint {path}: not a weights-only PyTorch state_dict "
                         f"(corrupt, truncated or pickled objects): {describe_load_error(exc)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"checkpoint {path} is not a state_dict (a dict of tensors)")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"checkpoint {path} has NaN or Inf values in {len(bad)} tensor(s), e.g. {bad[0]!r} "
                         f"(a diverged training run or a corrupt file)")
    return state


NORMALIZATIONS = ("card", "thesis")


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike[str], name: str) -> None:
    """``module.load_state_dict(state)``, refused in one line (first size mismatch, or the
    counts of missing and unexpected keys) when the checkpoint ``path`` does not fit ``name``."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches; name the first rather than print them all
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise ModelError(f"checkpoint {path} does not fit {name}: "
                         f"{lines[0] if lines else str(exc).splitlines()[0][:300]}"
                         f"{f' (and {len(lines) - 1} more)' if len(lines) > 1 else ''}") from None
    if missing or unexpected:
        raise ModelError(f"checkpoint {path} does not fit {name}: {len(missing)} missing key(s) "
                         f"(e.g. {', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected key(s) "
                         f"(e.g. {', '.join(unexpected[:3]) or '-'})")


def load(name: str, checkpoint: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu",
         normalization: str = "card") -> nn.Module:
    """Load a registered model, ready to attack.

    Args:
        name: a name from :func:`list_models`, e.g. ``"cifar10/resnet20"``.
        checkpoint: a state_dict file for the raw network; default the card's shipped file
            (or, for models registered with ``weights=``, the file that hook names).
        device: where to put the model.
        normalization: "card" (default): the mean and std the network was trained with;
            "thesis" (CIFAR-10 models only): what the thesis's code fed its networks,
            z = (x - mean) / std with std (0.2023, 0.1994, 0.2010) instead of the training
            std (0.2471, 0.2435, 0.2616), to reproduce its numbers with the original checkpoints.

    Returns:
        ``nn.Module`` in eval mode: float ``[N,3,H,W]`` in [0,1] -> logits ``[N,classes]``.
    """
    device = parse_device(device)  # "cuda" without CUDA: a clear ValueError, before any file is read
    c = card(name)
    if normalization not in NORMALIZATIONS:
        raise ModelError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if normalization == "thesis" and c.dataset != "cifar10":
        raise ModelError(f"normalization='thesis' is the thesis's CIFAR-10 input pipeline; {name} is a "
                         f"{c.dataset} model")
    if checkpoint is None:
        if name in _WEIGHTS:
            path, expected = Path(_WEIGHTS[name]()), c.sha256
        elif c.checkpoint is None:
            example = c.extra.get("checkpoint_file") or f"the original {c.architecture} file"
            raise ModelError(
                f"{name} ships no weights; pass checkpoint=PATH (a state_dict saved with torch.save, "
                f"e.g. {example}) or --checkpoint PATH on the command line")
        else:
            path, expected = CHECKPOINTS_DIR / c.checkpoint, c.sha256
    else:
        path, expected = Path(checkpoint), None
    state = load_state_dict(path, expected)
    model = build(name)
    load_into(model.net, state, path, name)
    if normalization == "thesis":
        model = Normalized(model.net, THESIS_CIFAR10_MEAN, THESIS_CIFAR10_STD)
    return model.eval().to(device)


def check_input(name: str, shape: Sequence[int], dataset: str | None = None) -> None:
    """Refuse images a registered model was not made for: another data set (``dataset`` when
    the images come from a named data set) or, for CIFAR-10 models, another image size."""
    c = card(name)
    if dataset is not None and dataset != c.dataset:
        raise ModelError(f"{name} is a {c.dataset} model; it cannot be evaluated on {dataset} images")
    if c.dataset == "cifar10" and tuple(shape[-2:]) != (c.input_size, c.input_size):
        raise ModelError(f"{name} takes {c.input_size}x{c.input_size} images, got {shape[-2]}x{shape[-1]}")

