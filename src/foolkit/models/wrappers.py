"""Wrappers that make a raw network meet the model contract."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
# What the thesis's code fed its CIFAR-10 networks (utils.py): the same mean, but a std that is
# not the one those networks were trained with (CIFAR10_STD, huyvnphan/PyTorch_CIFAR10).
THESIS_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
THESIS_CIFAR10_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalized(nn.Module):
    """``net((x - mean) / std)``: takes float ``[N,C,H,W]`` in [0,1], returns logits.

    ``mean``/``std`` are non-persistent buffers, so ``self.net.state_dict()`` is exactly the
    raw network's checkpoint format.
    """

    mean: torch.Tensor  # [1,C,1,1] buffers: declared so that type checkers see tensors
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
