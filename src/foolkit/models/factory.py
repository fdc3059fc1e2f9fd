"""Models given as code: a Python factory ``path/to/file.py:function`` and its weights.

A factory file is code, run because the user named it; its weights (``.pt`` read
``weights_only``, or ``.safetensors``) are data. Its identity in a store is the file's bytes,
the function's name and the weights' hash, so an edited file or other weights are another model.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from torch import nn

from ..errors import ModelError
from ..runtime.hashing import sha256_file, state_dict_sha256
from .registry import load_into, load_state_dict


def load_weights(module: nn.Module, checkpoint: str | os.PathLike[str], name: str) -> str:
    """Load a state_dict (``.pt`` weights_only, or ``.safetensors``) into ``module`` (refused in one
    line when it does not fit ``name``); -> the file's sha256."""
    path = Path(checkpoint)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelError(f"checkpoint not found: {path}")
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ModelError(f"{path}: reading .safetensors needs the safetensors package (pip install safetensors)") from None
        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"cannot load checkpoint {path}: not a safetensors file ({str(exc).splitlines()[0][:120]})") from None
    else:
        state = load_state_dict(path)
    load_into(module, state, path, name)
    return sha256_file(path)


def load_factory(spec: str, checkpoint: str | os.PathLike[str] | None,
                 name: str) -> tuple[nn.Module, tuple[str, str, str]]:
    """Run ``file.py:function`` (the user named this code) and load ``checkpoint`` into what it
    returns -> ``(module, identity parts)``: the file's sha256, the function's name and the
    weights (the checkpoint's sha256, or ``"state_dict:<hash>"`` of the factory's own weights)."""

    file, _, func = spec.rpartition(":")
    path = Path(file)
    if not func.isidentifier():
        raise ModelError(f"{spec}: give a factory as path/to/file.py:function")
    if not path.is_file():
        raise ModelError(f"factory file not found: {path}")
    file_hash = sha256_file(path)
    module_name = f"foolkit_factory_{file_hash[:16]}"
    try:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"no Python module loader for {path.name}")
        code = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = code  # dataclasses and pickling look their module up
        loader_spec.loader.exec_module(code)
    except Exception as exc:  # noqa: BLE001 -- the user's file: one line
        sys.modules.pop(module_name, None)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"factory file {path} raised {type(exc).__name__} when imported: {first}") from None
    fn = getattr(code, func, None)
    if not callable(fn):
        raise ModelError(f"factory file {path} has no function {func!r}")
    try:
        net = fn()
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"factory {name} raised {type(exc).__name__}: {first}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"factory {name} returned a {type(net).__name__}, not a torch.nn.Module")
    weights = load_weights(net, checkpoint, name) if checkpoint is not None else "state_dict:" + state_dict_sha256(net)
    return net, (file_hash, func, weights)
