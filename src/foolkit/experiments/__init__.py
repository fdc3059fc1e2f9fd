"""Part III of the thesis as data: the printed numbers (``thesis_numbers.toml``) and one
declarative ``Experiment`` per table and figure (``specs``, ``specs_part2``), for
``foolkit reproduce`` to run and print beside the thesis's numbers."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from .specs import CHECKS, MODELS, Claim, Experiment, Images, Run, Show, thesis_name, thesis_xi
from .specs import PART_A
from .specs_part2 import PART_B
from .specs_part4 import PART_C

NUMBERS_PATH = Path(__file__).with_name("thesis_numbers.toml")

EXPERIMENTS: list[Experiment] = [*PART_A, *PART_B, *PART_C]


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with open(NUMBERS_PATH, "rb") as f:
        return tomllib.load(f)


def load_thesis_numbers() -> dict[str, Any]:
    """The parsed thesis_numbers.toml: ``meta``, ``tables`` (id -> table), ``figures``
    (id -> figure). A fresh copy each call, so callers may modify it."""
    import copy
    return copy.deepcopy(_load())


def get(experiment_id: str) -> Experiment:
    """The experiment with this id (KeyError with the known ids otherwise)."""
    for e in EXPERIMENTS:
        if e.id == experiment_id:
            return e
    raise KeyError(f"unknown experiment {experiment_id!r}; known: {[e.id for e in EXPERIMENTS]}")


__all__ = ["CHECKS", "EXPERIMENTS", "MODELS", "NUMBERS_PATH", "Claim", "Experiment", "Images", "Run", "Show",
           "get", "load_thesis_numbers", "thesis_name", "thesis_xi"]
