"""Independent checks of an attack's claimed successes.

Every claimed success is checked twice, each time by a fresh forward pass in eval mode:
1. on ``x_adv`` as the attack returned it (float);
2. on ``quantize_8bit(x_adv) = round(255 * clip(x_adv, 0, 1)) / 255``, what an 8-bit PNG holds.
A sample that fools in float but not once quantised is flagged ``quant_lost``.

Example:
    >>> checks = verify_result(model, result)
    >>> checks["verified"].float().mean(), checks["quant_lost"].sum()
"""
from __future__ import annotations

import torch
from torch import nn

from ..attacks.base import AttackResult, predict
from ..runtime.model_state import eval_mode


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """``round(255 * clip(x, 0, 1)) / 255`` in the dtype of ``x``."""
    return torch.round(x.clamp(0, 1) * 255) / 255


@torch.no_grad()
def classify(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh forward pass in eval mode: ``(prediction [N], top softmax probability [N])``."""
    with eval_mode(model):
        pred, probs = predict(model, x, batch_size)
    return pred, probs.gather(1, pred[:, None]).squeeze(1)


def fools(pred: torch.Tensor, label: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Untargeted: ``pred != label``; targeted: ``pred == target``."""
    return pred != label if target is None else pred == target


def verify_result(model: nn.Module, result: AttackResult) -> dict[str, torch.Tensor]:
    """Re-check ``result`` by fresh forward passes (float and 8-bit).

    Returns a dict of ``[N]`` tensors: ``adv_label``/``adv_conf`` (fresh pass on x_adv),
    ``verified`` (claimed success confirmed), ``q_label``/``q_conf`` (on the 8-bit image),
    ``verified_q`` (confirmed and still fooling once quantised), ``quant_lost`` (confirmed in
    float, lost once quantised).
    """
    adv_label, adv_conf = classify(model, result.x_adv)
    q_label, q_conf = classify(model, quantize_8bit(result.x_adv))
    claimed = result.attacked & result.success
    verified = claimed & fools(adv_label, result.label, result.target)
    verified_q = verified & fools(q_label, result.label, result.target)
    return {"adv_label": adv_label, "adv_conf": adv_conf, "verified": verified,
            "q_label": q_label, "q_conf": q_conf, "verified_q": verified_q,
            "quant_lost": verified & ~verified_q}
