"""The small Inception network for CIFAR-10 of Zhang et al. 2017 ("Understanding deep learning
requires rethinking generalization", appendix A), a compact member of the Inception family.

Building blocks (every convolution is conv + BatchNorm + ReLU):
- Inception(c1, c3): a 1x1 branch with c1 channels and a 3x3 branch with c3 channels, concatenated;
- Downsample(c3): a 3x3 stride-2 convolution with c3 channels, concatenated with a 3x3
  stride-2 max-pool of the input.

Layout: conv 3x3 (96) -> Inception(32,32), Inception(32,48) -> Downsample(80) ->
Inception(112,48), (96,64), (80,80), (48,96) -> Downsample(96) -> Inception(176,160) x 2 ->
global average pool -> linear. ``width`` scales every channel count (``width=1`` is the
paper's 1.65 M-parameter network). Differences from the paper: 32x32 inputs instead of
28x28 crops, and padding 1 in the downsampling branches so 32 -> 16 -> 8.
"""
from __future__ import annotations

import torch
from torch import nn
from ..registry import register

# (kind, channels): "I" = Inception(c1, c3), "D" = Downsample(c3)
SMALL_INCEPTION_LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("I", (32, 32)), ("I", (32, 48)), ("D", (80,)),
    ("I", (112, 48)), ("I", (96, 64)), ("I", (80, 80)), ("I", (48, 96)), ("D", (96,)),
    ("I", (176, 160)), ("I", (176, 160)),
)


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class InceptionModule(nn.Module):
    def __init__(self, in_ch: int, ch1x1: int, ch3x3: int):
        super().__init__()
        self.branch1x1 = conv_bn_relu(in_ch, ch1x1, 1)
        self.branch3x3 = conv_bn_relu(in_ch, ch3x3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x)], 1)


class DownsampleModule(nn.Module):
    def __init__(self, in_ch: int, ch3x3: int):
        super().__init__()
        self.branch3x3 = conv_bn_relu(in_ch, ch3x3, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.pool(x)], 1)


class SmallInceptionCifar(nn.Module):
    """Raw network: takes *normalised* 32x32 images, returns logits [N, num_classes]."""

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__()

        def scaled(c: int) -> int:
            return max(8, int(round(c * width)))

        in_ch = scaled(96)
        layers: list[nn.Module] = [conv_bn_relu(3, in_ch, 3)]
        for kind, channels in SMALL_INCEPTION_LAYOUT:
            if kind == "I":
                c1, c3 = scaled(channels[0]), scaled(channels[1])
                layers.append(InceptionModule(in_ch, c1, c3))
                in_ch = c1 + c3
            else:
                c3 = scaled(channels[0])
                layers.append(DownsampleModule(in_ch, c3))
                in_ch = in_ch + c3
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def inception_small(num_classes: int = 10) -> SmallInceptionCifar:
    """The paper's widths (about 1.65 M parameters)."""
    return SmallInceptionCifar(num_classes, width=1.0)


@register("cifar10/inception_small_050", "cifar10-inception_small_050.json")
def inception_small_050(num_classes: int = 10) -> SmallInceptionCifar:
    """Half the paper's widths (about 0.4 M parameters, about a quarter of the compute)."""
    return SmallInceptionCifar(num_classes, width=0.5)
