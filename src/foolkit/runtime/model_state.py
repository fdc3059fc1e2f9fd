"""The one way to put models in evaluation mode for a while: :func:`eval_mode`."""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put each of ``models`` in eval mode (dropout off, batch-norm running statistics) inside
    the block, and give each back the train/eval mode of every submodule it had, even when the
    block raises. Attacks, evaluations and checks all run through here, so a model in training
    mode leaves in training mode."""
    saved = [[(m, m.training) for m in model.modules()] for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for modes in saved:
            for module, training in modes:
                module.training = training
