"""Training objectives of the thesis's defenses (13.2): FGSM adversarial training and the
orthogonality regulariser of Defensive Quantization; :func:`foolkit.models.training.train` adds
them with ``adversarial="fgsm"`` and ``ortho_beta``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def orthogonality_penalty(net: torch.nn.Module) -> torch.Tensor:
    """Σᵢ‖WᵢᵀWᵢ − I‖²_F over the weights of every ``Conv2d`` and ``Linear`` of ``net``, each
    reshaped to ``[out, in·kh·kw]`` (Lin et al. 2019, thesis 13.2.3; multiply by β/2).

    The Gram matrix is taken on the smaller side (``W Wᵀ`` when a layer has fewer outputs than
    inputs), so a layer with orthonormal rows or columns scores exactly zero: ``WᵀW = I`` cannot
    hold for a wide matrix. Returns a float32 scalar with gradients to the weights.
    """
    total = torch.zeros((), dtype=torch.float32)
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            w = module.weight.float().reshape(module.weight.shape[0], -1)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
            total = total.to(gram.device) + (gram - eye).pow(2).sum()
    return total


def adversarial_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, alpha: float, eps: float,
                     label_smoothing: float = 0.0, bf16: bool = False) -> torch.Tensor:
    """The FGSM training objective of Goodfellow et al. 2015 (thesis 13.2.2):
    α·L(x, y) + (1 − α)·L(x + ε·sign ∇ₓL(x, y), y), L the cross-entropy.

    x: ``[B,C,H,W]`` in [0,1]; y: ``[B]`` labels. The adversarial batch is clipped to [0,1] (the
    model's input domain) and treated as a constant (no gradient through the sign), as in the paper.
    Both batches pass through the model in its current mode (BatchNorm sees them separately).
    Returns the scalar loss, with gradients to the model's parameters.
    """
    x = x.detach().requires_grad_(True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):  # the batch's device: cpu or cuda
        logits = model(x)
    clean = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    (grad,) = torch.autograd.grad(clean, x, retain_graph=True)
    x_adv = (x.detach() + eps * grad.sign()).clamp_(0, 1)
    if bf16:
        x_adv = x_adv.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits_adv = model(x_adv)
    adv = F.cross_entropy(logits_adv.float(), y, label_smoothing=label_smoothing)
    return alpha * clean + (1 - alpha) * adv
