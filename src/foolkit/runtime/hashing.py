"""sha256 fingerprints of files, tensors and modules: what a run's identity, a model card and a
checkpoint check are built on. The bytes hashed here are pinned by stored run ids and cards:
changing them orphans every existing store."""
from __future__ import annotations

import hashlib
import os

import torch
from torch import nn


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_sha256(*tensors: torch.Tensor | None) -> str:
    """sha256 (hex) of the tensors' dtypes, shapes and bytes, in order (None hashes as "none")."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        # a fresh contiguous copy: contiguous() keeps stride 0 on a size-1 expanded tensor (one
        # image with an int target), which view(torch.uint8) refuses
        t = t.detach().cpu().clone(memory_format=torch.contiguous_format)
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        # reshape first: a 0-dim tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 (hex) of a module's ``state_dict``: keys in sorted order, each value's tensor hash."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor_sha256(value).encode() if isinstance(value, torch.Tensor) else repr(value).encode())
    return h.hexdigest()
