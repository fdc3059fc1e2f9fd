"""``torch.export`` archives (``.pt2``) as models: read safely, checked to take one image batch.

The archive is data (its graph and weights are read without running code from it; see
:mod:`foolkit.models.pt2_safety`); the module it gives is already traced in eval mode.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import InputError, ModelError
from .pt2_safety import load_pt2


class ExportedModule(nn.Module):
    """An exported program's module: already traced in eval mode, so ``train()``/``eval()`` only
    set this wrapper's flag (the exported graph itself refuses them)."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True) -> "ExportedModule":
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x)


def load_exported(path: str | os.PathLike[str],
                  input_size: tuple[int, int, int] | None) -> tuple[ExportedModule, tuple[int, int, int] | None]:
    """The module of the ``.pt2`` archive ``path`` and its input size ``(C,H,W)``: the exported
    one when every dimension is static (``input_size``, if given, must equal it), else ``input_size``.
    :class:`ModelError` for an archive of several inputs or of a non-image ``[N,C,H,W]`` input."""
    spec = os.fspath(path)
    ep = load_pt2(spec)
    net = ExportedModule(ep.module())
    user = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    if len(user) != 1:
        raise ModelError(f"{spec} takes {len(user)} inputs; foolkit attacks models of one image batch")
    shape = getattr(user[0].meta.get("val"), "shape", None)
    if shape is None or len(shape) != 4:
        raise ModelError(f"{spec} takes input of shape {list(shape) if shape is not None else '?'}, not [N,C,H,W]")
    exported = tuple(int(d) if isinstance(d, int) else None for d in shape[1:])
    if None not in exported:
        if input_size is not None and input_size != exported:
            raise InputError(f"{spec} was exported for {'x'.join(map(str, exported))} input, not "
                             f"--input-size {'x'.join(map(str, input_size))}")
        input_size = exported  # type: ignore[assignment]
    return net, input_size
