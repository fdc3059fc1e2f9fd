"""Which of our models plays each of the thesis's four CIFAR-10 columns (``parse_models``: the
``--models`` / ``--checkpoint`` arguments -> ``ModelMap``), and the ImageNet model of the hi-res
figures. By default each column is played by the compact member of its family that foolkit
ships (``thesis_setup.COMPACT_MODELS``); see ``reproduce``'s docstring for the rules."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .thesis_setup import COMPACT_MODELS, IMAGENET_MODEL, MODELS, thesis_name

if TYPE_CHECKING:
    from ..models.registry import ModelCard

DEFAULT_MODELS = (*(f"{thesis}:{name}" for thesis, name in COMPACT_MODELS.items()), IMAGENET_MODEL)


@dataclass(frozen=True)
class Choice:
    name: str
    checkpoint: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.checkpoint is None else f"{self.name} ({Path(self.checkpoint).name})"

    @property
    def normalization(self) -> str:
        """"thesis" for the thesis's own architectures given a checkpoint: its code fed them
        z = (x - mean) / (0.2023, 0.1994, 0.2010), not the training std; else "card"."""
        return "thesis" if self.checkpoint is not None and self.name in MODELS.values() else "card"


@dataclass
class ModelMap:
    """Thesis column -> our model; ``dedicated``: the columns with a model of their own."""
    columns: dict[str, Choice]
    dedicated: set[str]
    imagenet: Choice | None
    cifar: list[Choice]

    def choice(self, registry_name: str) -> Choice | None:
        if registry_name == IMAGENET_MODEL:
            return self.imagenet
        return self.columns.get(thesis_name(registry_name))

    def kind(self, thesis: str, choice: Choice) -> str:
        if thesis not in self.dedicated:
            return "stand-in (another family)"
        if choice.name == MODELS[thesis]:
            return "the thesis's architecture" + (" (given checkpoint)" if choice.checkpoint else "")
        if choice.name == COMPACT_MODELS[thesis]:
            return "compact member of the family, trained by foolkit"
        return "own model"

    def describe(self) -> list[tuple[str, str, str]]:
        rows = [(t, c.label, self.kind(t, c)) for t, c in self.columns.items()]
        rows.append(("ImageNet models (hi-res figures)", self.imagenet.label if self.imagenet else "none",
                     "stand-in for the thesis's four ImageNet models" if self.imagenet else "hi-res figures not run"))
        return rows


def parse_models(models: list[str] | None, checkpoints: list[str] | None = None) -> ModelMap:
    """``["cifar10/resnet20", "MobileNetV2:cifar10/x=path", "cifar10/resnet50=path"]`` -> ModelMap.
    ``checkpoints``: ``["name=path"]`` (``--checkpoint``) for models named without a path."""
    ckpt = {}
    for item in checkpoints or []:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise InputError(f"--checkpoint takes NAME=PATH, got {item!r}")
        ckpt[name.strip()] = path.strip()
    columns: dict[str, Choice] = {}
    dedicated: set[str] = set()
    imagenet: Choice | None = None
    cifar: list[Choice] = []
    standins: list[Choice] = []
    for item in models or list(DEFAULT_MODELS):
        item = item.strip()
        if not item:
            continue
        explicit: str | None
        explicit, sep, rest = item.partition(":")
        if not sep or explicit not in MODELS:
            explicit, rest = None, item
        name, _, path = rest.partition("=")
        name = name.strip()
        choice = Choice(name, path.strip() or ckpt.get(name))
        if name.startswith("imagenet/"):
            imagenet = imagenet or choice
            continue
        cifar.append(choice)
        target = explicit or (thesis_name(name) if name in MODELS.values() else None)
        if target:
            columns[target] = choice
            dedicated.add(target)
        else:
            standins.append(choice)
    missing = set(ckpt) - {c.name for c in cifar} - ({imagenet.name} if imagenet else set())
    if missing:
        raise InputError(f"--checkpoint names {sorted(missing)}, which --models does not list")
    fill = standins[0] if standins else None
    for t in MODELS:
        if t not in columns and fill is not None:
            columns[t] = fill
    for c in standins[1:]:
        if c not in columns.values():
            raise InputError(f"{c.name}: with several non-thesis models, say which column each plays "
                             f"(e.g. MobileNetV2:{c.name})")
    return ModelMap(dict(sorted(columns.items(), key=lambda kv: list(MODELS).index(kv[0]))), dedicated,
                    imagenet, cifar)


def imagenet_problem(choice: Choice | None) -> str:
    """Why the hi-res figures cannot run with ``choice`` ("" when its model loads)."""
    if choice is None:
        return "no ImageNet model given"
    try:
        from ..models import registry
        registry.load(choice.name, checkpoint=choice.checkpoint)
        return ""
    except Exception as exc:  # missing pip package or weights
        return f"{choice.name} unavailable: {str(exc).splitlines()[0]}"


def registered_cards() -> list[tuple[str, ModelCard, dict]]:
    """``(name, card, card extras)`` of every registered model whose card loads (Part IV finds its
    defended models by what their cards say)."""
    from ..models import registry
    out: list[tuple[str, ModelCard, dict]] = []
    for name in registry.list_models():
        try:
            card = registry.card(name)
        except Exception:  # a broken card must not hide the other models
            continue
        out.append((name, card, getattr(card, "extra", {}) or {}))
    return out
