"""The command line's one parameter module (commands/_params.py) and the one attack factory
(attacks/registry.create): names, flags, text -> values."""
from __future__ import annotations

import argparse
import math

import pytest

from foolkit.attacks import registry
from foolkit.attacks.deepfool import DeepFool
from foolkit.attacks.fgsm import FGSM
from foolkit.commands import _params
from foolkit.errors import InputError


def test_flags_name_the_attack_parameters_and_avoid_runner_options():
    assert _params.flag_for("max_iter") == "--max-iter"
    assert _params.flag_for("lambda_") == "--lambda"
    assert _params.flag_for("seed") == "--attack-seed"  # --seed is the runner's


def test_attack_params_are_read_from_the_prefixed_args_only():
    args = argparse.Namespace(**{"param__norm": "inf", "param__overshoot": "0.02", "n": 5, "params": {"max_iter": 3}})
    assert _params.attack_params(args) == {"norm": "inf", "overshoot": "0.02", "max_iter": 3}


def test_a_flag_the_attack_does_not_take_is_named():
    _params.check_param_flags("deepfool", {"norm": "2"})
    with pytest.raises(InputError, match=r"--eps is not a parameter of deepfool \(its parameters: .*--norm"):
        _params.check_param_flags("deepfool", {"eps": "0.1"})


@pytest.mark.parametrize("text,value", [("0.04", 0.04), ("10/255", 10 / 255), (" 1 ", 1.0)])
def test_xi_reads_numbers_and_fractions(text, value):
    assert _params.parse_xi(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "1/0", "0", "-1", "inf", "nan"])
def test_xi_refuses_what_is_not_a_positive_finite_radius(text):
    with pytest.raises(InputError, match="--xi"):
        _params.parse_xi(text)


def test_minimums_and_model_options():
    _params.check_minimums(("--n", 1, 1), ("--batch-size", None, 1))
    with pytest.raises(InputError, match="--n must be >= 1, got 0"):
        _params.check_minimums(("--n", 0, 1))
    args = argparse.Namespace(checkpoint="w.pt", mean=None, std=None, input_size=32, classes=None)
    assert _params.model_options(args) == ["--checkpoint", "--input-size"]


def test_create_takes_a_name_a_class_or_an_instance():
    by_name = registry.create("DeepFool", norm=math.inf)
    by_class = registry.create(DeepFool, norm=math.inf)
    assert type(by_name) is type(by_class) is DeepFool and by_name.norm == by_class.norm == math.inf
    instance = FGSM(eps=0.1)
    assert registry.create(instance) is instance
    with pytest.raises(InputError, match="given with an attack instance"):
        registry.create(instance, eps=0.2)
    with pytest.raises(InputError, match=r"deepfool has no parameter eps \(its parameters: .*norm"):
        registry.create("deepfool", eps=0.1)
    with pytest.raises(InputError, match="unknown attack"):
        registry.create("nosuch")
    with pytest.raises(InputError, match="must be a name, an Attack class or instance"):
        registry.create(3)


def test_convert_params_reads_text_for_the_attack_parameters_only():
    out = registry.convert_params("deepfool", {"norm": "linf", "max_iter": "10", "other": "x", "overshoot": 0.5})
    assert out == {"norm": math.inf, "max_iter": 10, "other": "x", "overshoot": 0.5}
    assert registry.convert_params("deepfool", {"norm": "inf"})["norm"] == math.inf
