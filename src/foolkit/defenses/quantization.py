"""Post-training fake quantization (thesis 13.2.3; Lin et al. 2019, the thesis's [26]).

:func:`quantize` returns a copy of a model whose convolutions and linear layers compute with
low-bit weights and low-bit input activations, simulated in floating point ("fake quant"):
weights rounded per output channel on a symmetric grid, activations per tensor on an affine
grid calibrated on a few batches. Rounding has no gradient; the backward pass uses the
identity (straight-through estimator), so every attack runs on the quantized model.

BatchNorm is left in float. Folding it into the preceding convolution would not change the
quantized weights: per-channel symmetric rounding commutes with the per-channel BatchNorm scale.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from ..errors import InputError


def _check_bits(name: str, bits: int | None, optional: bool) -> None:
    if optional and bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise InputError(f"quantize: {name} must be an integer in 2..16{' or None' if optional else ''}, got {bits!r}")


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel symmetric rounding of ``w`` ``[out, ...]`` to ``2^(bits-1) - 1`` levels
    each side of zero (scale = max |w| of the channel / levels); returns a tensor of ``w``'s shape."""
    levels = 2 ** (bits - 1) - 1
    scale = w.detach().abs().flatten(1).amax(1).clamp_min(torch.finfo(w.dtype).tiny) / levels
    scale = scale.view(-1, *([1] * (w.dim() - 1)))
    return (w / scale).round().clamp(-levels, levels) * scale


def fake_quant(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    """Round ``x`` to the ``2^bits`` levels of ``[lo, hi]`` (values outside are clipped), with a
    straight-through (identity) gradient. Any shape; returns ``x``'s shape and dtype."""
    step = (hi - lo).clamp_min(1e-12) / (2 ** bits - 1)
    q = ((x.clamp(lo, hi) - lo) / step).round() * step + lo
    return x + (q - x).detach()


class QuantizedLayer(nn.Module):
    """A ``Conv2d`` or ``Linear`` with fake-quantized weights and a fake-quantized input.

    ``lo``/``hi`` are the calibrated range of the input (per tensor); while ``calibrating`` the
    layer runs in float and widens that range to the inputs it sees.
    """

    lo: torch.Tensor  # buffers (scalars), declared so that type checkers see tensors
    hi: torch.Tensor

    def __init__(self, layer: nn.Conv2d | nn.Linear, weight_bits: int, activation_bits: int | None, quantize_input: bool):
        super().__init__()
        self.layer = copy.deepcopy(layer)
        with torch.no_grad():
            self.layer.weight.copy_(quantize_weight(self.layer.weight, weight_bits))
        self.activation_bits = activation_bits if quantize_input else None
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))
        self.calibrating = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation_bits is not None:
            if self.calibrating:
                self.lo = torch.minimum(self.lo, x.detach().min().to(self.lo))
                self.hi = torch.maximum(self.hi, x.detach().max().to(self.hi))
            else:
                x = fake_quant(x, self.lo.to(x), self.hi.to(x), self.activation_bits)
        return self.layer(x)


@torch.no_grad()
def quantize(model: nn.Module, weight_bits: int = 8, activation_bits: int | None = 8, *,
             calibration: torch.Tensor | None = None, batch_size: int = 100) -> nn.Module:
    """A fake-quantized copy of ``model`` (post-training quantization; ``model`` is not changed).

    Args:
        model: float ``[N,C,H,W]`` images in [0,1] -> logits.
        weight_bits: bits of every ``Conv2d``/``Linear`` weight (per-channel symmetric), 2..16.
        activation_bits: bits of the input of every ``Conv2d``/``Linear`` except the first one
            (per-tensor affine, range calibrated), 2..16; None keeps activations in float. The
            first layer's input is the (normalised) image, already 8-bit; quantizing it coarser
            would be bit-depth reduction, another defense.
        calibration: float ``[M,C,H,W]`` images in [0,1] whose activations set the ranges (a few
            batches of training or held-out images); required when ``activation_bits`` is set.
    Returns:
        The quantized copy, in eval mode: ``[N,C,H,W]`` in [0,1] -> logits, differentiable
        (straight-through rounding). Example:
        >>> q8 = fk.defenses.quantize(model, 8, 8, calibration=x[:200])
    """
    _check_bits("weight_bits", weight_bits, optional=False)
    _check_bits("activation_bits", activation_bits, optional=True)
    if activation_bits is not None and (calibration is None or calibration.dim() != 4 or len(calibration) == 0):
        raise InputError("quantize: activation_bits needs calibration images [M,C,H,W] to set the activation ranges")
    quantized = copy.deepcopy(model).eval()
    targets = [(name, m) for name, m in quantized.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not targets:
        raise InputError(f"quantize: {type(model).__name__} has no Conv2d or Linear layer")
    layers = []
    for i, (name, module) in enumerate(targets):
        parent_name, _, child = name.rpartition(".")
        parent = quantized.get_submodule(parent_name) if parent_name else quantized
        q = QuantizedLayer(module, weight_bits, activation_bits, quantize_input=i > 0)
        setattr(parent, child, q)
        layers.append(q)
    if activation_bits is not None and calibration is not None:  # both or neither: checked above
        for q in layers:
            q.calibrating = True
        try:
            for i in range(0, len(calibration), batch_size):
                quantized(calibration[i:i + batch_size])
        finally:
            for q in layers:
                q.calibrating = False
    for p in quantized.parameters():
        p.requires_grad_(False)  # a post-training copy: attacks need input gradients only
    return quantized
