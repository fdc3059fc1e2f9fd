"""Seeded, batched data augmentation for CIFAR-10 training: random crop + flip, and Cutout.

Every function draws from the ``torch.Generator`` it is given, so a resumed training run
sees the same augmented batches as an uninterrupted one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-image random crop (zero padding ``pad``) and horizontal flip. x: [B,C,H,W]."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = oy[:, None] + torch.arange(h)[None, :]
    cols = ox[:, None] + torch.arange(w)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def cutout(x: torch.Tensor, size: int, generator: torch.Generator, fill: torch.Tensor | float = 0.5) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): per image, a ``size`` x ``size`` square centred on a random
    pixel (clipped at the borders) is set to ``fill`` (``[1,C,1,1]`` or a float: the data mean,
    which is zero after the model's normalisation). x: ``[B,C,H,W]``; returns a new tensor."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=generator)
    cx = torch.randint(0, w, (b,), generator=generator)
    rows, cols = torch.arange(h), torch.arange(w)
    inside_y = (rows[None] >= (cy - size // 2)[:, None]) & (rows[None] < (cy - size // 2 + size)[:, None])
    inside_x = (cols[None] >= (cx - size // 2)[:, None]) & (cols[None] < (cx - size // 2 + size)[:, None])
    hole = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]  # [B,1,H,W]
    return torch.where(hole, torch.as_tensor(fill, dtype=x.dtype), x)
