"""MobileNetV2 for CIFAR-10 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks").

Inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 project; ReLU6) with the
paper's (t, c, n, s) table and a 1280-channel head. Differences from the ImageNet network,
as in huyvnphan/PyTorch_CIFAR10: the stem convolution has stride 1 instead of 2, the
second stage (24 channels) has stride 1 instead of 2 (total downsampling 8x instead of
32x), and the classifier has 10 outputs. ``state_dict()`` keys, order and shapes match that
repository's ``mobilenet_v2.pt``.
"""
from __future__ import annotations

import torch
from torch import nn
from ..registry import register

# t (expansion), c (output channels), n (repeats), s (stride of the first repeat)
CIFAR_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # ImageNet: stride 2
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# The compact variant keeps the stride-1 stem but restores the ImageNet stride 2 of the second
# stage (16x total downsampling): a quarter of the compute from there on.
COMPACT_SETTING = tuple((t, c, n, 2 if c == 24 else s) for t, c, n, s in CIFAR_SETTING)


def _make_divisible(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8, never below 90% of it (the paper's rule)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = [conv_bn_relu6(in_ch, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, out_ch, 1, bias=False),  # linear projection
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2Cifar(nn.Module):
    """Raw network: takes *normalised* 32x32 images, returns logits [N, num_classes]."""

    def __init__(self, num_classes: int = 10, last_channel: int = 1280, width_mult: float = 1.0,
                 setting: tuple = CIFAR_SETTING):
        super().__init__()
        in_ch = _make_divisible(32 * width_mult)
        features: list[nn.Module] = [conv_bn_relu6(3, in_ch, 3, stride=1)]  # ImageNet: stride 2
        for t, c, n, s in setting:
            c = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        features.append(conv_bn_relu6(in_ch, last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean((2, 3))
        return self.classifier(x)


@register("cifar10/mobilenet_v2", "cifar10-mobilenet_v2.json")
def mobilenet_v2(num_classes: int = 10) -> MobileNetV2Cifar:
    return MobileNetV2Cifar(num_classes)


@register("cifar10/mobilenet_v2_050", "cifar10-mobilenet_v2_050.json")
def mobilenet_v2_050(num_classes: int = 10) -> MobileNetV2Cifar:
    """Compact MobileNetV2: width multiplier 0.5 (channels halved, rounded to multiples of 8;
    the 1280-channel head is kept, as the paper does for multipliers below 1), the stride-1
    CIFAR stem, and stride 2 in the second stage (:data:`COMPACT_SETTING`). About 0.7 M
    parameters and a quarter of the full CIFAR network's compute."""
    return MobileNetV2Cifar(num_classes, width_mult=0.5, setting=COMPACT_SETTING)
