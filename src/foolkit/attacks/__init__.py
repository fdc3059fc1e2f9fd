"""Attacks: one module per attack, one contract (``base.Attack`` -> ``AttackResult``)."""
from .base import Attack, AttackResult
from .deepfool import DeepFool
from .fgsm import FGSM, minimal_epsilon

__all__ = ["Attack", "AttackResult", "DeepFool", "FGSM", "minimal_epsilon"]
