"""Attacks: one module per attack, one contract (``base.Attack`` -> ``AttackResult``)."""
from .base import Attack, AttackResult
from .deepfool import DeepFool
from .fgsm import FGSM, minimal_epsilon
from .lbfgs import LBFGS

__all__ = ["Attack", "AttackResult", "DeepFool", "FGSM", "LBFGS", "minimal_epsilon"]
from .onepixel import OnePixel  # noqa: E402
from .sparsefool import SparseFool  # noqa: E402
from .universal import UniversalPerturbation  # noqa: E402
from .superdeepfool import SuperDeepFool  # noqa: E402
from .fmn import FMN  # noqa: E402

__all__ += ["OnePixel", "SparseFool", "UniversalPerturbation", "SuperDeepFool", "FMN"]
