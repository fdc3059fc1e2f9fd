"""Datasets and images: CIFAR-10 (official, ImageFolder, bundled subset), photos, class names."""
from .cifar10 import DataError, load
from .classes import CIFAR10_CLASSES, class_names, imagenet_classes
from .images import load_image, load_image_with_info

__all__ = ["CIFAR10_CLASSES", "DataError", "class_names", "imagenet_classes", "load", "load_image",
           "load_image_with_info"]
