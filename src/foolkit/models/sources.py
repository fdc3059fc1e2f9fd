"""Models from anywhere: one resolver for every command and for ``fk.evaluate``.

    resolve_model("cifar10/resnet20")                                 # a registered name
    resolve_model("cifar10/resnet50", checkpoint="w.pt")              # ... with your weights
    resolve_model("net.pt2")                                          # a torch.export archive
    resolve_model("nets.py:make_net", checkpoint="w.safetensors",     # a Python factory
                  mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))

Every source gives a :class:`ResolvedModel`: an ``nn.Module`` in eval mode taking float
``[N,C,H,W]`` in [0,1] and returning logits ``[N,K]``, and its **identity**, a content hash
(the ``.pt2`` bytes; the factory file's bytes and the weights; the registered card and
weights) under which runs are stored: two different files never share runs, a renamed file
resumes. A ``.pt2`` and a checkpoint are data (read without running code, see
:mod:`foolkit.models.pt2_safety`); a factory file is code, run because the user named it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import InputError, ModelError
from . import registry
from .exported import load_exported
from .factory import load_factory
from .logits import probe_logits
from ..runtime.hashing import sha256_file, state_dict_sha256
from .wrappers import Normalized

@dataclass
class ResolvedModel:
    """A model ready to attack, with what foolkit understood about it.

    Attributes:
        module: eval-mode ``nn.Module``, float ``[N,C,H,W]`` in [0,1] -> logits ``[N,num_classes]``.
        name: what the user named (registered name, file name), for titles.
        kind: "registered", "pt2", "factory", "hf" or "module".
        identity: content hash (hex) naming the model in a store.
        input_size: ``(C,H,W)`` when known (card, export, ``input_size=``), else None.
        num_classes: K, from the card or one forward pass.
        classes: class names (``classes=`` or the card's data set), else None.
        mean, std: the normalisation foolkit applies inside ``module`` (None: none, or the network's own).
        store_spec: the model part of a run's identity in a store.
    """

    module: nn.Module
    name: str
    kind: str
    identity: str
    num_classes: int
    input_size: tuple[int, int, int] | None = None
    classes: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    dataset: str | None = None
    store_spec: dict[str, Any] = field(default_factory=dict)

    def check_input(self, shape: Sequence[int]) -> None:
        """Refuse images ``[N,C,H,W]`` of another size than the model's known input size."""
        if self.input_size is not None and tuple(shape[1:]) != self.input_size:
            want = "x".join(map(str, self.input_size))
            raise ModelError(f"{self.name} takes {want} images (C x H x W), got {'x'.join(map(str, shape[1:]))}")

    def describe(self) -> list[str]:
        """What foolkit understood, one fact a line (``foolkit models --check``)."""
        size = "x".join(map(str, self.input_size)) if self.input_size else "unknown (any size the network takes)"
        if self.classes:
            shown = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
            classes = f"{self.num_classes} ({shown})"
        else:
            classes = f"{self.num_classes} (read from the output; no names)"
        if self.mean is not None:
            assert self.std is not None  # load() sets the two together
            norm = f"foolkit applies (x - mean) / std, mean {_fmt(self.mean)}, std {_fmt(self.std)}"
        elif self.kind == "registered":
            norm = "inside the registered model (its card's mean and std)"
        else:
            norm = "none added (the network takes [0,1] pixels as they are)"
        params = sum(p.numel() for p in self.module.parameters())
        return [f"model:          {self.name} ({self.kind})", f"input size:     {size}", f"classes:        {classes}",
                f"normalisation:  {norm}", f"parameters:     {params:,}", f"identity:       {self.identity}"]


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


# --- command-line values ---------------------------------------------------------------------
def parse_floats(text: str | Sequence[float] | None, flag: str) -> tuple[float, ...] | None:
    """``"0.5,0.5,0.5"`` -> ``(0.5, 0.5, 0.5)``; None stays None."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise InputError(f"{flag} must be numbers separated by commas such as 0.5,0.5,0.5, got {text!r}") from None
    if not values or not all(v == v and abs(v) != float("inf") for v in values):
        raise InputError(f"{flag} must be finite numbers, got {text!r}")
    return values


def parse_input_size(text: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"3,32,32"`` or ``"32,32"`` (3 channels) -> ``(C, H, W)``."""
    if text is None:
        return None
    try:
        values = [int(v) for v in (text.replace("x", ",").split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        raise InputError(f"--input-size must be C,H,W or H,W (integers), got {text!r}") from None
    if len(values) == 2:
        values = [3] + values
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"--input-size must be C,H,W or H,W with values >= 1, got {text!r}")
    return tuple(values)  # type: ignore[return-value]


def read_classes(classes: str | os.PathLike[str] | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class names from a file (one a line; blank lines ignored) or a sequence."""
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        path = Path(classes)
        if not path.is_file():
            raise ModelError(f"classes file not found: {path}")
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise ModelError(f"classes file {path} is not UTF-8 text (one class name a line)") from None
        if not names:
            raise ModelError(f"classes file {path} holds no class names (one a line)")
        return tuple(names)
    return tuple(str(c) for c in classes)


# --- the sources ---------------------------------------------------------------------------------
def _sha(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _registered_spec(name: str, net: nn.Module, checkpoint: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The model part of a run's identity for a registered name (unchanged since v0.1, so
    existing stores resume)."""

    card = registry.card(name)
    if checkpoint is not None:
        weights = "sha256:" + sha256_file(checkpoint)
    else:
        weights = "sha256:" + card.sha256 if card.sha256 else "state_dict:" + state_dict_sha256(net)
    return {"name": name, "card": {k: getattr(card, k) for k in card.__dataclass_fields__}, "weights": weights}


def model_kind(spec: str) -> str:
    """"registered", "pt2" or "factory" for a model string; ``ModelError`` otherwise."""
    if spec in registry.list_models():
        return "registered"
    if spec.startswith("hf:"):
        return "hf"
    if spec.lower().endswith(".pt2"):
        return "pt2"
    file, sep, func = spec.rpartition(":")
    if sep and file.lower().endswith(".py"):
        return "factory"
    if "/" in spec and not Path(spec).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        registry.card(spec)  # an unknown registered-looking name: the registry's message
    raise ModelError(f"unknown model {spec!r}: give a registered name (see `foolkit models`), a torch.export "
                     f"archive net.pt2, a factory path/to/file.py:function or a Hugging Face folder hf:DIR")


def resolve_model(spec: str | nn.Module, *, checkpoint: str | os.PathLike | None = None,
                  mean: Sequence[float] | str | None = None, std: Sequence[float] | str | None = None,
                  input_size: Sequence[int] | str | None = None, classes: str | os.PathLike | Sequence[str] | None = None,
                  device: str | torch.device = "cpu", normalization: str = "card") -> ResolvedModel:
    """Load a model from any source foolkit accepts.

    Args:
        spec: a registered name (``"cifar10/resnet20"``), a ``torch.export`` archive
            (``"net.pt2"``), a factory ``"path/to/file.py:function"`` returning an ``nn.Module``,
            or an ``nn.Module``.
        checkpoint: a state_dict (``.pt``, read ``weights_only``; or ``.safetensors``) for a
            registered name or a factory. A ``.pt2`` carries its own weights.
        mean, std: per-channel normalisation the network expects (``"0.5,0.5,0.5"`` or a
            sequence); foolkit wraps it in :class:`Normalized`, so it still takes [0,1] pixels.
        input_size: ``(C,H,W)`` or ``(H,W)``; default the card's or the export's when known.
        classes: class names (a file, one a line, or a sequence); must match the output.
        device: where the module goes.
        normalization: registered names only: ``"card"`` (the training mean/std) or
            ``"thesis"`` (the std the thesis's code fed its checkpoints; see
            :func:`foolkit.models.registry.load`). Part of the identity when not ``"card"``.

    Returns:
        :class:`ResolvedModel`. Raises :class:`ModelError` (one line) for unknown specs,
        missing or bad files, archives holding code, or outputs that are not logits.
    """
    from ..runtime.machine import parse_device

    device = parse_device(device)
    mean, std = parse_floats(mean, "--mean"), parse_floats(std, "--std")
    size = parse_input_size(input_size)
    names = read_classes(classes)
    if (mean is None) != (std is None):
        raise InputError("--mean and --std go together: give both, or neither")
    if mean is not None and std is not None:  # both or neither, checked just above
        if len(mean) != len(std):
            raise InputError(f"--mean has {len(mean)} values, --std {len(std)}: give one per channel")
        if min(std) <= 0:
            raise InputError(f"--std values must be > 0, got {','.join(f'{s:g}' for s in std)}")
        if size is not None and len(mean) not in (1, size[0]):
            raise InputError(f"--mean/--std have {len(mean)} values for {size[0]}-channel input")
    dataset = None
    if isinstance(spec, nn.Module):
        if normalization != "card":
            raise InputError(f"normalization={normalization!r} applies to registered names, not to a module")
        if checkpoint is not None:
            raise InputError("checkpoint= applies to registered names and factories; load the weights into your module")
        kind, name, net = "module", type(spec).__name__, spec
        cls = type(spec)
        identity = _sha("module", f"{cls.__module__}.{cls.__qualname__}", state_dict_sha256(spec))
    elif not isinstance(spec, str):
        raise InputError(f"model must be a registered name, a .pt2 file, file.py:function or an nn.Module, "
                         f"got {type(spec).__name__}")
    else:
        kind = model_kind(spec)
        name = spec if kind in ("registered", "hf") else Path(spec.rpartition(":")[0] if kind == "factory" else spec).name
        if normalization != "card" and kind != "registered":
            raise InputError(f"normalization={normalization!r} applies to registered names; {spec} is not one")
        if kind == "factory":
            name += ":" + spec.rpartition(":")[2]
        if kind == "registered":
            if mean is not None:
                raise InputError(f"{spec} normalises its input itself (its card's mean and std); drop --mean/--std")
            card = registry.card(spec)
            net = registry.load(spec, checkpoint=checkpoint, device=device, normalization=normalization)
            dataset = card.dataset
            card_size = (3, int(card.input_size), int(card.input_size))
            if size is not None and size != card_size and card.dataset == "cifar10":
                raise InputError(f"{spec} takes {'x'.join(map(str, card_size))} images, not --input-size "
                                 f"{'x'.join(map(str, size))}")
            size = size or card_size
            store_spec = _registered_spec(spec, net, checkpoint)
            if normalization != "card":  # another input pipeline gives other results
                store_spec["normalization"] = normalization
            identity = _sha(json.dumps(store_spec, sort_keys=True, default=str))
            if names is None:
                from ..data import class_names
                try:
                    names = tuple(class_names(card.dataset))
                except ValueError:
                    names = None
        elif kind == "pt2":
            if checkpoint is not None:
                raise InputError(f"{spec} is a torch.export archive: it carries its weights (drop --checkpoint)")
            net, size = load_exported(spec, size)
            identity = _sha("pt2", sha256_file(spec))
        elif kind == "hf":  # a transformers save_pretrained folder (models/huggingface.py)
            if checkpoint is not None:
                raise InputError(f"{spec} is a Hugging Face folder: it carries its weights (drop --checkpoint)")
            from .huggingface import load_hf
            hf = load_hf(spec[len("hf:"):], device)
            net, identity = hf.module, _sha("hf", hf.identity)
            size = size or hf.input_size
            names = names if names is not None else hf.classes
            if mean is None and hf.mean is not None:  # the image processor's normalisation, unless given
                mean, std = hf.mean, hf.std
        else:
            net, parts = load_factory(spec, checkpoint, name)
            identity = _sha("factory", *parts)
    if kind != "registered":
        try:
            net.eval()
        except NotImplementedError:  # an exported graph passed as a module: already in eval form
            pass
        net = net.to(device)
        if mean is not None:
            assert std is not None  # given together (checked above) or both from the image processor
            net = Normalized(net, mean, std).to(device)
            identity = _sha(identity, "normalized", repr(mean), repr(std))
    net, k = probe_logits(net, name, size, device)
    if names is not None and len(names) != k:
        raise ModelError(f"{name} outputs {k} classes but the class names list {len(names)}")
    if kind != "registered":
        store_spec = {"source": kind, "identity": identity}
    return ResolvedModel(module=net.eval(), name=name, kind=kind, identity=identity, num_classes=k, input_size=size,
                         classes=names, mean=mean, std=std, dataset=dataset, store_spec=store_spec)


# --- command line -----------------------------------------------------------------------------
def add_model_options(p: argparse.ArgumentParser, checkpoint: bool = False) -> None:
    """``--mean``, ``--std``, ``--input-size``, ``--classes`` (and ``--checkpoint`` when asked)."""
    if checkpoint:
        p.add_argument("--checkpoint", default=None, metavar="PATH",
                       help="state_dict (.pt, read weights-only; or .safetensors) for a registered model or a factory")
    p.add_argument("--mean", default=None, metavar="R,G,B",
                   help="per-channel mean the network expects (with --std): foolkit normalises, attacks see [0,1] pixels")
    p.add_argument("--std", default=None, metavar="R,G,B", help="per-channel std the network expects (with --mean)")
    p.add_argument("--input-size", default=None, metavar="C,H,W", help="input size (C,H,W or H,W) when it is not known")
    p.add_argument("--classes", default=None, metavar="FILE", help="class names, one a line")


def resolve_from_args(args: argparse.Namespace, spec: str | None = None,
                      device: str | torch.device = "cpu") -> ResolvedModel:
    """:func:`resolve_model` with a command's ``--checkpoint/--mean/--std/--input-size/--classes``."""
    return resolve_model(spec if spec is not None else args.model, checkpoint=getattr(args, "checkpoint", None),
                         mean=getattr(args, "mean", None), std=getattr(args, "std", None),
                         input_size=getattr(args, "input_size", None), classes=getattr(args, "classes", None),
                         device=device)


def prepare_model(model: Any, checkpoint: str | os.PathLike[str] | None, device: str | torch.device,
                  shape: Sequence[int], dataset: str | None) -> tuple[Any, str | os.PathLike[str] | None]:
    """For ``fk.evaluate``: check that images ``shape`` from ``dataset`` suit the model before a
    store is opened; a model string that is not a registered name is loaded here.
    -> ``(model, checkpoint)`` for :func:`foolkit.evaluation.runner._resolve_model`."""
    if isinstance(model, str) and model in registry.list_models():
        registry.check_input(model, shape, dataset)
        return model, checkpoint
    if isinstance(model, str):
        model, checkpoint = resolve_model(model, checkpoint=checkpoint, device=device), None
    if isinstance(model, ResolvedModel):
        if checkpoint is not None:
            raise InputError("checkpoint= applies to model names; pass it to resolve_model instead")
        if model.kind == "registered":
            registry.check_input(model.name, shape, dataset)
        else:
            model.check_input(shape)
    return model, checkpoint
