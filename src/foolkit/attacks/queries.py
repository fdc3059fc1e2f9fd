"""Counting model queries, one way for every attack: hooks on the model, never sums by hand.

``Attack.__call__`` (and ``UniversalPerturbation.fit``) run the algorithm inside
``counter.watch(model)``; every forward pass of the model then adds its batch size to
``counter.forward``, and every backward pass that reaches a forward pass made with an input
that requires grad adds that batch size to ``counter.gradient`` (an input-gradient evaluation
per image, per backward pass). An attack's ``_run`` only calls the model.

For a :class:`foolkit.models.Normalized` model the hooks sit on its ``net``: every call of the
model passes through it once, and the thesis variants, which work in the normalised space,
call ``net`` directly.

Example:
    >>> counter = Counter()
    >>> with counter.watch(model):
    ...     model(x)                      # counter.forward == len(x)
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


def queried_module(model: nn.Module) -> nn.Module:
    """The module every query of ``model`` passes through once: ``model.net`` for foolkit's
    ``Normalized`` wrapper (which the thesis variants call directly), else ``model``."""
    from ..models.wrappers import Normalized  # foolkit's own wrapper; the models package imports attacks lazily

    return model.net if isinstance(model, Normalized) else model


class Counter:
    """Per-call state of an attack: its model queries, and a cache the clean pass may fill.

    Attributes:
        forward: images passed forward while watched (and not paused).
        gradient: input-gradient evaluations, per image and per backward pass.
        cache: what the clean pass leaves for ``_run`` (``"clean_logits"`` ``[N,K]``, FGSM's ``"grad"``).
    """

    def __init__(self) -> None:
        self.forward = 0
        self.gradient = 0
        self.cache: dict[str, Any] = {}
        self._paused = 0

    @contextlib.contextmanager
    def watch(self, model: nn.Module) -> Iterator[Counter]:
        """Count the queries of ``model`` inside the block (hooks removed after, even on error)."""
        handle = queried_module(model).register_forward_hook(self._hook)
        try:
            yield self
        finally:
            handle.remove()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Queries inside the block are not counted (bookkeeping passes, not the algorithm's)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def _hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        x = args[0] if args else None
        if self._paused or not isinstance(x, torch.Tensor):
            return
        n = len(x)
        self.forward += n
        if x.requires_grad and isinstance(output, torch.Tensor) and output.requires_grad:
            # fires once per backward pass through this forward pass (autograd.grad or backward)
            output.register_hook(lambda grad: self._add_gradient(n))  # type: ignore[no-untyped-call]

    def _add_gradient(self, n: int) -> None:
        if not self._paused:
            self.gradient += n
