"""DenseNet-169 for CIFAR-10 (Huang et al. 2017, "Densely Connected Convolutional Networks").

DenseNet-BC: growth rate 32, bottleneck width 4x growth, dense blocks of 6/12/32/32 layers,
transitions halving the channels with a 1x1 convolution and 2x2 average pooling. Differences
from the ImageNet network, as in huyvnphan/PyTorch_CIFAR10: the stem is a 3x3 stride-1
convolution instead of 7x7 stride 2 (the 3x3/2 max-pool is kept), and the classifier has 10
outputs. ``state_dict()`` keys, order and shapes match that repository's ``densenet169.pt``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
import torch.nn.functional as F
from ..registry import register


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3; the output is concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int):
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_channels)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
            ("pool", nn.AvgPool2d(2, 2)),
        ]))


class DenseNetCifar(nn.Module):
    """Raw network: takes *normalised* 32x32 images, returns logits [N, num_classes]."""

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 32, 32),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 10,
                 stem_pool: bool = True):
        super().__init__()
        stem: list[tuple[str, nn.Module]] = [("conv0", nn.Conv2d(3, num_init_features, 3, 1, 1, bias=False))]  # ImageNet: 7x7/2
        if stem_pool:  # the huyvnphan DenseNets keep the ImageNet stem's BN-ReLU-maxpool
            stem += [("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
                     ("pool0", nn.MaxPool2d(3, 2, 1))]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = num_init_features
        for i, n_layers in enumerate(block_config):
            block = nn.Sequential(OrderedDict(
                (f"denselayer{j + 1}", DenseLayer(channels + j * growth_rate, growth_rate, bn_size))
                for j in range(n_layers)
            ))
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += n_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register("cifar10/densenet169", "cifar10-densenet169.json")
def densenet169(num_classes: int = 10) -> DenseNetCifar:
    return DenseNetCifar(32, (6, 12, 32, 32), 64, num_classes=num_classes)


@register("cifar10/densenet_bc40", "cifar10-densenet_bc40.json")
def densenet_bc40(num_classes: int = 10) -> DenseNetCifar:
    """DenseNet-BC with L = 40, k = 12 as in the paper's CIFAR experiments: a bare 3x3 stem
    convolution to 2k channels (no pooling), three dense blocks of 6 bottleneck layers at
    32x32, 16x16 and 8x8, compression 0.5. About 0.18 M parameters."""
    return DenseNetCifar(12, (6, 6, 6), 24, num_classes=num_classes, stem_pool=False)
