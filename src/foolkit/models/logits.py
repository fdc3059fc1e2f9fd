"""Networks whose output is not a bare logits tensor: find the logits by one forward pass.

A user's network may return ``[N,K]`` logits, or an object with ``.logits``, a dict with
``"logits"``, or a tuple whose first element is the logits (Hugging Face, torchvision aux
heads). :func:`probe_logits` runs it once on grey images and wraps it so that it returns
``[N,K]``, or names in one line what it returned instead.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ModelError

PROBE_SIZE = (3, 32, 32)  # input of the one forward pass when the input size is unknown


class LogitsOutput(nn.Module):
    """Takes the logits out of a network's richer output: ``.logits``, ``out["logits"]`` or ``out[0]``."""

    def __init__(self, net: nn.Module, how: str) -> None:
        super().__init__()
        self.net, self.how = net, how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.how == "attribute":
            return out.logits
        if self.how == "key":
            return out["logits"]
        return out[0]


def describe_output(out: Any) -> str:
    """A network's output in a few words, for error messages."""
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {list(out.shape)}"
    if isinstance(out, dict):
        return f"a dict with keys {', '.join(map(str, list(out)[:5]))}"
    return f"a {type(out).__name__}"


def logits_mode(out: Any, n: int) -> str | None:
    """Where the logits ``[n, K]`` sit in ``out``: "tensor", "attribute" (``.logits``), "key"
    (``out["logits"]``), "first" (``out[0]``), or None when nowhere."""
    def is_logits(t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[0] == n and t.is_floating_point()

    if is_logits(out):
        return "tensor"
    if not isinstance(out, torch.Tensor) and is_logits(getattr(out, "logits", None)):
        return "attribute"
    if isinstance(out, dict) and is_logits(out.get("logits")):
        return "key"
    if isinstance(out, (tuple, list)) and out and is_logits(out[0]):
        return "first"
    return None


def probe_logits(module: nn.Module, name: str, input_size: tuple[int, int, int] | None,
                 device: torch.device) -> tuple[nn.Module, int]:
    """One forward pass on two grey images ``[2,*input_size]`` (``PROBE_SIZE`` when unknown):
    wrap ``module`` in :class:`LogitsOutput` when its logits sit inside a richer output;
    -> ``(module, K)``. :class:`ModelError` (one line) when it fails or returns no logits."""
    size = input_size or PROBE_SIZE
    try:
        with torch.no_grad():
            out = module(torch.full((2, *size), 0.5, device=device))
    except Exception as exc:  # noqa: BLE001 -- any failure of the user's network: one line
        hint = "" if input_size else f" (tried {'x'.join(map(str, size))}; pass --input-size C,H,W)"
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"{name} fails on a {'x'.join(map(str, size))} input{hint}: {type(exc).__name__}: {first}") from None
    how = logits_mode(out, 2)
    if how is None:
        raise ModelError(f"{name} returns {describe_output(out)}, not logits [N, classes] (nor .logits, a dict with "
                         f"'logits', or a tuple whose first element is [N, classes])")
    if how != "tensor":
        module = LogitsOutput(module, how)
        with torch.no_grad():
            out = module(torch.full((2, *size), 0.5, device=device))
    return module, int(out.shape[1])
