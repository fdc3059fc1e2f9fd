"""Hugging Face ``transformers`` image classifiers saved with ``save_pretrained``: ``hf:path/to/dir``.

    resolve_model("hf:my-vit")      # foolkit attack --model hf:my-vit ...

Optional: needs ``pip install foolkit[hf]`` (``transformers``). Loaded with
``AutoModelForImageClassification.from_pretrained(dir, trust_remote_code=False,
local_files_only=True, use_safetensors=True)``: no download, no code from the folder, weights from
``.safetensors`` only (never a pickle). The image processor's ``image_mean``/``image_std`` and
size are read from ``preprocessor_config.json`` as JSON (the processor class is not run); the
class names from the config's ``id2label`` unless they are the placeholders ``LABEL_i``.
The model's identity is the hash of every file in the folder.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .registry import ModelError


@dataclass
class HFModel:
    module: nn.Module
    identity: str
    input_size: tuple[int, int, int] | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    classes: tuple[str, ...] | None


def folder_sha256(folder: Path) -> str:
    """Hash of every file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _preprocessing(folder: Path, channels: int) -> tuple[tuple[int, int, int] | None, tuple | None, tuple | None]:
    """(input size, mean, std) from ``preprocessor_config.json`` when present."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return None, None, None
    cfg = _json(path)
    size = cfg.get("crop_size") if cfg.get("do_center_crop") else None
    size = size or cfg.get("size")
    hw = None
    if isinstance(size, dict) and "height" in size and "width" in size:
        hw = (int(size["height"]), int(size["width"]))
    elif isinstance(size, dict) and "shortest_edge" in size and len(size) == 1:
        hw = (int(size["shortest_edge"]),) * 2
    elif isinstance(size, int):
        hw = (size, size)
    mean = std = None
    if cfg.get("do_normalize", True) and cfg.get("image_mean") is not None and cfg.get("image_std") is not None:
        mean = tuple(float(v) for v in cfg["image_mean"])
        std = tuple(float(v) for v in cfg["image_std"])
    return (None if hw is None else (channels, *hw)), mean, std


def load_hf(folder: str, device: str | torch.device) -> HFModel:
    """Load ``folder`` (a ``save_pretrained`` directory) as a logits-returning image classifier."""
    path = Path(folder)
    if not path.is_dir():
        raise ModelError(f"hf:{folder}: no such folder (give the directory written by save_pretrained)")
    if not (path / "config.json").is_file():
        raise ModelError(f"hf:{folder}: no config.json (is it a save_pretrained directory?)")
    if not any(path.glob("*.safetensors")):
        raise ModelError(f"hf:{folder}: no .safetensors weights; foolkit reads Hugging Face weights from "
                         f"safetensors only (save_pretrained writes them by default)")
    try:
        import transformers
    except ImportError:
        raise ModelError("hf: models need the transformers package (pip install 'foolkit[hf]')") from None
    try:
        transformers.logging.set_verbosity_error()  # its notes on newly initialised heads are not foolkit's output
        net = transformers.AutoModelForImageClassification.from_pretrained(
            str(path), trust_remote_code=False, local_files_only=True, use_safetensors=True)
    except Exception as exc:  # noqa: BLE001 -- a folder of any shape: one line
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"hf:{folder}: cannot load an image classifier: {type(exc).__name__}: {first}") from None
    config = net.config
    channels = int(getattr(config, "num_channels", 3) or 3)
    size, mean, std = _preprocessing(path, channels)
    if size is None and isinstance(getattr(config, "image_size", None), int):
        size = (channels, config.image_size, config.image_size)
    labels = getattr(config, "id2label", None) or {}
    names = None
    if labels and not all(str(v) == f"LABEL_{k}" for k, v in labels.items()):
        names = tuple(str(labels[k]) for k in sorted(labels, key=int))
    return HFModel(module=net.eval().to(device), identity=folder_sha256(path), input_size=size, mean=mean,
                   std=std, classes=names)


__all__ = ["HFModel", "folder_sha256", "load_hf"]
