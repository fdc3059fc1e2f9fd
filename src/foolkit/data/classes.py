"""Class names for CIFAR-10 and ImageNet-1k."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from ..errors import InputError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, index i = class i."""
    path = Path(__file__).with_name("bundled") / "imagenet-classes.txt"
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def class_names(dataset: str) -> tuple[str, ...]:
    if dataset == "cifar10":
        return CIFAR10_CLASSES
    if dataset == "imagenet":
        return imagenet_classes()
    raise InputError(f"unknown dataset {dataset!r}; known: ['cifar10', 'imagenet']")
