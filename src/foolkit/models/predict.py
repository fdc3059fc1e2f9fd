"""Batched top-1 predictions: the one loop behind every "accuracy of a model on images".

:func:`foolkit.evaluation.clean.clean_accuracy` (the confusion matrix) and training's per-epoch
test accuracy both run through :func:`predict_labels`, which lives here, below evaluation/,
so that training (in models/) can use it without importing a higher layer.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..runtime.model_state import eval_mode


@torch.no_grad()
def predict_labels(model: nn.Module, x: torch.Tensor, batch_size: int = 500,
                   on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Top-1 labels of ``model`` (logits ``[B,K]``) on images ``x`` ``[N,C,H,W]`` in [0,1].

    Batches of ``batch_size`` move to the model's device (``x``'s when it has no parameters);
    the model runs in eval mode and gets its train/eval modes back afterwards. ``on_batch(n)``,
    if given, is called after each batch with its size (progress bars). Returns int64 ``[N]`` on the CPU.
    """
    device = next((t.device for t in model.parameters()), x.device)  # images go where the model is
    preds = []
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            preds.append(model(x[i:i + batch_size].to(device)).argmax(1).cpu())
            if on_batch is not None:
                on_batch(len(preds[-1]))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)

