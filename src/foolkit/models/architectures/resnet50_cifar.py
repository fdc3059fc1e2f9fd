"""ResNet-50 for CIFAR-10 (He et al. 2016, "Deep Residual Learning for Image Recognition").

Bottleneck ResNet with stages of 3/4/6/3 blocks and widths 64/128/256/512 (x4 expansion),
the stride sitting on the 3x3 convolution of each bottleneck ("ResNet v1.5"). Differences
from the ImageNet network, as in huyvnphan/PyTorch_CIFAR10: the stem is a 3x3 stride-1
convolution instead of 7x7 stride 2 (the 3x3/2 max-pool is kept), and the classifier has 10
outputs. ``state_dict()`` keys, order and shapes match that repository's ``resnet50.pt``.
"""
from __future__ import annotations

import torch
from torch import nn
from ..registry import register


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNetBottleneckCifar(nn.Module):
    """Raw network: takes *normalised* 32x32 images, returns logits [N, num_classes]."""

    # added with add_module (the names come from a loop); declared so the type checker knows them
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # ImageNet: 7x7, stride 2
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes = 64
        for i, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            layer = []
            for j in range(n):
                layer.append(Bottleneck(in_planes, planes, 2 if (i > 0 and j == 0) else 1))
                in_planes = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@register("cifar10/resnet50", "cifar10-resnet50.json")
def resnet50(num_classes: int = 10) -> ResNetBottleneckCifar:
    return ResNetBottleneckCifar((3, 4, 6, 3), num_classes)
