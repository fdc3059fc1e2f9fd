"""Models: a registry by name (``load``, ``list``), cards, architectures, wrappers.

The registry imports no model; each model module registers its networks when imported here
(timm's layout), so ``registry`` and the model files form no import circle.
"""
from .registry import ModelCard, ModelError, build, card, list_models, load, load_state_dict
# Each of these registers its models on import (order: the order `foolkit models` was written in).
from .architectures import resnet_cifar, resnet50_cifar, densenet_cifar  # noqa: F401,I001
from .architectures import mobilenetv2_cifar, inception_cifar, inception_small_cifar  # noqa: F401
from . import imagenet  # noqa: F401  -- imagenet/efficientnet-lite0..2, weights from pip packages
from .sources import ResolvedModel, resolve_model
from .wrappers import Normalized

list = list_models  # noqa: A001  -- fk.models.list(), as documented

__all__ = ["ModelCard", "ModelError", "Normalized", "ResolvedModel", "build", "card", "list", "list_models", "load",
           "load_state_dict", "resolve_model"]
