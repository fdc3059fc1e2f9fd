"""Universal perturbations as files: the tensor v plus its card, loadable with ``weights_only=True``.

A file is ``torch.save`` of a plain dict (tensors and plain Python types only, so
``torch.load(path, weights_only=True)`` reads it and no code runs on load)::

    {"format": "foolkit.universal", "version": 1,
     "perturbation": float32 [1,C,H,W],
     "card": {"model": "cifar10/resnet20", "norm": "inf" | "2", "xi": 0.0314, "input_size": 32,
              "fooling_rates": {"fit": 0.83, "test": 0.79}, "n_fit": 500, "n_test": 500,
              "date": "2025-01-31T12:00:00+00:00", "foolkit_version": "0.1.0", "params": {...}, ...}}

Example:
    >>> uap = fk.attacks.UniversalPerturbation(norm="inf", xi=8 / 255).fit(model, x)
    >>> save_universal("v.pt", uap.perturbation_, model="cifar10/resnet20", norm=uap.norm, xi=uap.xi,
    ...                fooling_rates={"fit": uap.fooling_rate_})
    >>> u = load_universal("v.pt"); u.perturbation.shape, u.card["xi"]
"""
from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..runtime.files import atomic_path
from ..data.safe_load import describe_load_error, load_weights_only
from ..errors import InputError, UniversalFileError
from ..norms import parse_norm

FORMAT = "foolkit.universal"
VERSION = 1


@dataclass
class UniversalFile:
    """A loaded perturbation: ``perturbation`` float32 ``[1,C,H,W]`` and its ``card`` (dict).

    ``card["norm"]`` is returned as a float (2.0 or ``math.inf``)."""

    perturbation: torch.Tensor
    card: dict
    path: str = ""

    @property
    def model(self) -> str | None:
        return self.card.get("model")

    def describe(self) -> str:
        """One line: model, norm, radius, fooling rates, date."""
        c = self.card
        p = c.get("norm")
        norm = norm_text(p) if p in (2.0, math.inf) else str(p)
        xi = c.get("xi")
        xi_txt = f"{xi:.4g} ({255 * xi:.3g}/255)" if isinstance(xi, (int, float)) else "?"
        rates = c.get("fooling_rates") or {}
        rate_txt = ", ".join(f"{k} {100 * v:.1f}%" for k, v in rates.items() if isinstance(v, (int, float)))
        return (f"universal perturbation for {c.get('model', '?')}: L{norm} <= {xi_txt}"
                f"{'; fooling rate ' + rate_txt if rate_txt else ''}; made {c.get('date', '?')}")


def _plain(value: Any) -> Any:
    """Check that a card value is made of plain Python types (what weights_only can read)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise InputError(f"card values must be plain Python types (str, int, float, bool, None, list, dict), "
                     f"got {type(value).__name__}")


# A file's perturbation may exceed its card's radius by this fraction of xi, no more. The
# projection onto the ball runs in float32: L-inf clamping is exact, and an L2 norm over at most
# 224*224*3 float32 values is off by ~1e-6 relative (pairwise summation), so 1e-4 never refuses
# an honest file and still refuses any excess that matters (the was 100x).
NORM_RTOL = 1e-4


def perturbation_norm(v: torch.Tensor, norm: float) -> float:
    """The L2 or L-inf norm of the whole perturbation ``v`` (all entries), in float64."""
    flat = v.detach().to("cpu", torch.float64).flatten()
    return float(flat.abs().max()) if math.isinf(norm) else float(flat.norm(2))


def check_within_radius(v: torch.Tensor, norm: float, xi: float, where: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` when ``||v||_norm > xi * (1 + NORM_RTOL)`` (see :data:`NORM_RTOL`)."""
    if not (isinstance(xi, (int, float)) and not isinstance(xi, bool) and math.isfinite(xi) and xi > 0):
        raise error(f"{where}: xi must be a positive finite number, got {xi!r}")
    size = perturbation_norm(v, norm)
    if size > xi * (1 + NORM_RTOL):
        name = "Linf" if math.isinf(norm) else "L2"
        raise error(f"{where}: the perturbation's {name} norm {size:.6g} exceeds the radius xi = {xi:.6g} "
                    f"its card states ({name} <= {xi:.6g}); refusing to use it")


def norm_text(norm: Any) -> str:
    """A universal perturbation's norm as its card writes it: ``"2"`` or ``"inf"`` (2 or inf, as a
    number or text that :func:`foolkit.norms.parse_norm` reads; any other raises ``InputError``)."""
    return "inf" if math.isinf(parse_norm(norm, allowed=(2.0, math.inf))) else "2"


def save_universal(path: str | os.PathLike, perturbation: torch.Tensor, *, model: str, norm: Any, xi: float,
                   fooling_rates: dict | None = None, **card: Any) -> Path:
    """Write ``perturbation`` (``[1,C,H,W]`` or ``[C,H,W]``) and its card to ``path``.

    Args:
        model: the registered model name it was fitted on.
        norm: 2 or inf (``"inf"`` accepted); xi: the radius in [0,1] pixel units.
        fooling_rates: e.g. ``{"fit": 0.83, "test": 0.79}`` (fractions).
        **card: anything else worth keeping (plain Python types): n_fit, params, history...

    Returns the path. The date (UTC, ISO 8601) and foolkit's version are added.
    """
    from .._version import __version__

    v = perturbation.detach().to("cpu", torch.float32)
    if v.ndim == 3:
        v = v.unsqueeze(0)
    if v.ndim != 4 or v.shape[0] != 1:
        raise InputError(f"perturbation must have shape [1,C,H,W] or [C,H,W], got {tuple(perturbation.shape)}")
    if not torch.isfinite(v).all():
        raise InputError("perturbation contains NaN or Inf values")
    check_within_radius(v, math.inf if norm_text(norm) == "inf" else 2.0, xi, f"cannot save {path}")
    info = {"model": str(model), "norm": norm_text(norm), "xi": float(xi),
            "input_size": int(v.shape[-1]), "shape": list(v.shape),
            "fooling_rates": _plain(dict(fooling_rates or {})),
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "foolkit_version": __version__}
    info.update({k: _plain(val) for k, val in card.items()})
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, "perturbation": v.contiguous(), "card": info}, tmp)
    return path


def load_universal(path: str | os.PathLike) -> UniversalFile:
    """Read a file written by :func:`save_universal` (``torch.load(weights_only=True)``).

    The file is checked against its card: the card must name the model, the norm (2 or inf)
    and the radius xi; the perturbation's norm must not exceed xi (up to :data:`NORM_RTOL`
    relative), and its shape must match the card's ``shape`` / ``input_size`` when given.

    Raises:
        UniversalFileError (a ``ValueError``): missing path (or a symlink loop), a directory, a
        corrupt or pickled file, a bare tensor without a card, a file without a finite
        ``[1,C,H,W]`` perturbation, or one that breaks its card (norm above xi, other shape).
    """
    path = Path(path)
    if not path.exists():
        from ..data.cifar10 import missing_path_error
        raise missing_path_error(path, "universal perturbation file", error=UniversalFileError)
    if path.is_dir():
        raise UniversalFileError(f"{path} is a directory, not a universal perturbation file")
    try:
        data = load_weights_only(path)
    except Exception as exc:
        raise UniversalFileError(f"cannot read universal perturbation {path}: not a weights-only PyTorch file "
                                 f"(corrupt, truncated or pickled objects): {describe_load_error(exc)}") from None
    if isinstance(data, torch.Tensor):  # nothing says which model, norm or radius it is for
        raise UniversalFileError(f"{path} is a bare tensor without a card (model, norm, xi); write perturbation "
                                 f"files with `foolkit fit-universal` or foolkit.evaluation.universal_io.save_universal")
    if not isinstance(data, dict) or "perturbation" not in data:
        raise UniversalFileError(f"{path} is not a foolkit universal perturbation file (no 'perturbation' entry); "
                                 f"write one with `foolkit fit-universal`")
    v = data["perturbation"]
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise UniversalFileError(f"{path}: 'perturbation' must be a float tensor")
    if v.ndim == 3:
        v = v.unsqueeze(0)
    if v.ndim != 4 or v.shape[0] != 1:
        raise UniversalFileError(f"{path}: perturbation must have shape [1,C,H,W], got {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise UniversalFileError(f"{path}: perturbation contains NaN or Inf values")
    card = data.get("card") or {}
    if not isinstance(card, dict):
        raise UniversalFileError(f"{path}: 'card' must be a dict")
    card = dict(card)
    # The fields foolkit reads back; anything else in the card is kept as it is.
    for key, kind, what in (("model", str, "a registered model name"), ("fooling_rates", dict, "a dict"),
                            ("xi", (int, float), "a number"), ("date", str, "a string")):
        if card.get(key) is not None and (not isinstance(card[key], kind) or isinstance(card[key], bool)):
            raise UniversalFileError(f"{path}: card {key} must be {what}, got {type(card[key]).__name__}")
    absent = [key for key in ("model", "norm", "xi") if card.get(key) is None]
    if absent:
        raise UniversalFileError(f"{path}: the card lacks {', '.join(absent)}; a perturbation is applied only "
                                 f"with the model, norm and radius it was made for")
    try:
        card["norm"] = math.inf if str(card["norm"]).lower() in ("inf", "linf") else float(card["norm"])
    except ValueError:
        card["norm"] = None
    if card["norm"] not in (2.0, math.inf):
        raise UniversalFileError(f"{path}: card norm must be 2 or inf, got {data['card']['norm']!r}")
    shape = card.get("shape")
    if shape is not None and (not isinstance(shape, (list, tuple)) or list(shape) != list(v.shape)):
        raise UniversalFileError(f"{path}: the perturbation has shape {list(v.shape)} but its card says {shape!r}")
    size = card.get("input_size")
    if size is not None and (isinstance(size, bool) or size != v.shape[-1] or size != v.shape[-2]):
        raise UniversalFileError(f"{path}: the perturbation is {v.shape[-2]}x{v.shape[-1]} but its card says "
                                 f"input_size {size!r}")
    check_within_radius(v, card["norm"], card["xi"], str(path), UniversalFileError)
    return UniversalFile(perturbation=v.to(torch.float32), card=card, path=str(path))
