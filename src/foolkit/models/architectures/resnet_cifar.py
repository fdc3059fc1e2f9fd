"""ResNet for CIFAR-10 (He et al. 2016, section 4.2): 6n+2 layers, widths 16/32/64.

ResNet-20 is n=3 (about 0.27 M parameters). Shortcuts that change shape use a 1x1
convolution + BatchNorm (option B), which trains a little better than zero padding.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from ...errors import InputError
from ..registry import register


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """Raw network: takes *normalised* images, returns logits [N, num_classes]."""

    def __init__(self, depth: int = 20, num_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise InputError(f"ResNet-CIFAR depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for stage, planes in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


@register("cifar10/resnet20", "cifar10-resnet20.json")
def resnet20(num_classes: int = 10) -> ResNetCifar:
    return ResNetCifar(20, num_classes)


# The same network fine-tuned with FGSM adversarial training (thesis 13.2.2), for Part IV
register("cifar10/resnet20_advfgsm", "cifar10-resnet20_advfgsm.json")(resnet20)
# ... and fine-tuned with the orthogonality regulariser of Defensive Quantization (thesis 13.2.3)
register("cifar10/resnet20_ortho", "cifar10-resnet20_ortho.json")(resnet20)
