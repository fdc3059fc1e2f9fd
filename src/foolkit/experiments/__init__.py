"""Part III of the thesis as data: the printed numbers (``thesis_numbers.toml``) and one
declarative ``Experiment`` per table and figure (``specs_part3_fgsm_deepfool``,
``specs_part3_sparsefool_onepixel_universal``; beyond the thesis's tables:
``specs_stronger_part4``), for ``foolkit reproduce`` to run and print beside the thesis's
numbers. Module map: ``spec_types`` and ``thesis_setup`` (the specs' types and units);
``sizes``, ``model_map``, ``plan`` (what runs, and how long it takes);
``tasks``, ``ray_runs``, ``reproduce`` (running it); ``stats``, ``derived``, ``thesis_tables``,
``verdicts``, ``claim_checks`` (numbers and verdicts); ``report_tables``, ``report_figures``,
``report_prose``, ``reproduction_report`` (the report); ``stronger``, ``part4``,
``part4_advtrain`` (the experiments beyond Part III)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .spec_types import CHECKS, AttackConfig, Claim, Experiment, Images, Show
from .specs_part3_fgsm_deepfool import CLEAN_FGSM_DEEPFOOL
from .specs_part3_sparsefool_onepixel_universal import SPARSEFOOL_ONEPIXEL_UNIVERSAL
from .specs_stronger_part4 import STRONGER_AND_PART_IV
from .thesis_setup import MODELS, thesis_name, thesis_xi

NUMBERS_PATH = Path(__file__).with_name("thesis_numbers.toml")

EXPERIMENTS: list[Experiment] = [*CLEAN_FGSM_DEEPFOOL, *SPARSEFOOL_ONEPIXEL_UNIVERSAL, *STRONGER_AND_PART_IV]


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


__all__ = ["CHECKS", "EXPERIMENTS", "MODELS", "NUMBERS_PATH", "AttackConfig", "Claim", "Experiment", "Images", "Show",
           "get", "load_thesis_numbers", "thesis_name", "thesis_xi"]
