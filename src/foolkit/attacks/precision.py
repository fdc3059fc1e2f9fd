"""Mixed precision for an attack's own model calls: ``attack(model, x, precision="bf16")``.

The attack's forward and backward passes (its ``_run``, and the attacks it runs inside) go
through :func:`torch.autocast` at the chosen precision; the clean pass that decides which
images are attacked and the pass that verifies every result run in the model's own dtype
(float32) with autocast switched off, even inside a caller's autocast. So a perturbation that
fools the network only in low precision is not counted as a success, and the attacked set
(D'test) is the same at every precision.

    result = fk.attacks.DeepFool()(model, x, precision="bf16")        # one batch
    fk.evaluate(model, attack, data, store, precision="bf16")         # a run: part of its identity

On CPU, bfloat16 is fast where the CPU has AVX512-BF16 or AMX; float16 autocast on CPU is
supported by torch >= 2.1 but is rarely faster. On CUDA both are.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from ..errors import InputError

#: name -> autocast dtype (None: no autocast)
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"fp32": "float32", "float": "float32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def check_precision(precision: Any) -> str:
    """Canonical precision name: ``"float32"`` (None too), ``"bf16"`` or ``"fp16"``."""
    if precision is None:
        return "float32"
    if isinstance(precision, torch.dtype):
        found = [k for k, v in PRECISIONS.items() if v == precision]
        if precision == torch.float32:
            return "float32"
        if found:
            return found[0]
    if isinstance(precision, str):
        name = _ALIASES.get(precision.lower(), precision.lower())
        if name in PRECISIONS:
            return name
    raise InputError(f"precision must be float32, bf16 or fp16, got {precision!r}")


def autocast_supported(precision: str, device_type: str) -> bool:
    """Whether ``torch.autocast(device_type, dtype)`` is available for this precision here."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return True
    try:
        return bool(torch.amp.is_autocast_available(device_type)) and (
            device_type != "cuda" or dtype != torch.bfloat16 or torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 -- an old torch without is_autocast_available
        return device_type in ("cpu", "cuda")


def attack_precision(precision: Any, device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """Context for the attack's own model calls: autocast at ``precision`` on ``device``'s type,
    nothing for float32. Refuses a precision this device cannot autocast (one line)."""
    name = check_precision(precision)
    dtype = PRECISIONS[name]
    device_type = torch.device(device).type
    if dtype is None:
        return contextlib.nullcontext()
    if not autocast_supported(name, device_type):
        raise InputError(f"precision {name}: torch cannot autocast to {dtype} on {device_type} here; "
                         f"use float32{' or fp16' if name == 'bf16' else ''}")
    return torch.autocast(device_type, dtype=dtype)


def full_precision(device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """Context with autocast off on ``device``'s type: verification in the model's own dtype,
    even inside a caller's (or an outer attack's) autocast."""
    device_type = torch.device(device).type
    try:
        return torch.autocast(device_type, enabled=False)
    except Exception:  # noqa: BLE001 -- a device type autocast does not know: nothing to switch off
        return contextlib.nullcontext()


__all__ = ["PRECISIONS", "attack_precision", "autocast_supported", "check_precision", "full_precision"]
