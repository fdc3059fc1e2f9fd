"""Models: a registry by name (``load``, ``list``), cards, architectures, wrappers."""
from .registry import ModelCard, ModelError, build, card, list_models, load, load_state_dict
from .sources import ResolvedModel, resolve_model
from .wrappers import Normalized

list = list_models  # noqa: A001  -- fk.models.list(), as documented

__all__ = ["ModelCard", "ModelError", "Normalized", "ResolvedModel", "build", "card", "list", "list_models", "load",
           "load_state_dict", "resolve_model"]
