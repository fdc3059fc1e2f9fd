"""Command-line text -> library values: the one home of how commands name and read parameters.

Attack parameters are flags of ``foolkit attack`` (``--norm``, ``--max-iter``, ...) stored on
``args`` as ``param__<name>`` text; :func:`attack_params` collects them, the library converts
them (:func:`foolkit.attacks.registry.convert_params`, norms by :func:`foolkit.norms.parse_norm`).
"""
from __future__ import annotations

import argparse
import math
from typing import Any

from ..errors import InputError

PARAM_PREFIX = "param__"  # where an attack parameter's flag stores its text on args

# Runner options; an attack parameter with one of these names gets the flag --attack-NAME.
RUNNER_OPTIONS = {"model", "attack", "n", "data", "split", "batch_size", "seed", "checkpoint", "out", "target",
                  "fit_size", "quiet", "debug", "help", "image", "cifar_index", "perturbation", "device", "force",
                  "shard", "mean", "std", "input_size", "classes", "precision"}


def flag_for(param_name: str) -> str:
    """The flag of an attack parameter: ``max_iter`` -> ``--max-iter``, ``lambda_`` -> ``--lambda``,
    ``seed`` -> ``--attack-seed`` (a runner option has that name)."""
    name = param_name.rstrip("_")
    if name in RUNNER_OPTIONS:
        name = "attack_" + name
    return "--" + name.replace("_", "-")


def attack_params(args: argparse.Namespace) -> dict[str, Any]:
    """The attack parameters given on ``args``: ``{name: text}`` from the ``param__<name>`` flags,
    plus a ``params`` dict when a script sets one."""
    params = {k[len(PARAM_PREFIX):]: v for k, v in vars(args).items() if k.startswith(PARAM_PREFIX)}
    extra = getattr(args, "params", None)
    if isinstance(extra, dict):
        params.update(extra)
    return params


def check_param_flags(attack: str, given: dict[str, Any]) -> None:
    """Refuse, naming flags, the parameter flags the attack does not take."""
    from ..attacks import registry

    known = [p.name for p in registry.parameters(registry.get(attack))]
    wrong = [flag_for(k) for k in given if k not in known]
    if wrong:
        accepted = " ".join(flag_for(k) for k in known) or "none"
        raise InputError(f"{' '.join(sorted(wrong))} is not a parameter of {attack} (its parameters: {accepted})")


def parse_xi(text: str) -> float:
    """``"0.04"``, ``"10/255"`` -> float > 0 (finite)."""
    t = str(text).strip()
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--xi must be a number such as 0.04 or 10/255, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"--xi must be finite and > 0, got {text!r}")
    return value


MODEL_OPTIONS = ("checkpoint", "mean", "std", "input_size", "classes")  # models.sources.add_model_options


def model_options(args: argparse.Namespace) -> list[str]:
    """The model options given on ``args`` (``--checkpoint --mean --std --input-size --classes``), as flags."""
    return ["--" + f.replace("_", "-") for f in MODEL_OPTIONS if getattr(args, f, None)]


def check_minimums(*checks: tuple[str, int | None, int]) -> None:
    """``(flag, value, minimum)`` each: refuse a given value below its minimum, in order."""
    for flag, value, minimum in checks:
        if value is not None and value < minimum:
            raise InputError(f"{flag} must be >= {minimum}, got {value}")
