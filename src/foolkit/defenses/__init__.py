"""Defenses of the thesis's 13.2: image acquisition (13.2.1) and defensive quantization (13.2.3).

Adversarial training (13.2.2) and the orthogonality regulariser of 13.2.3 are training
options: ``foolkit train --adversarial fgsm`` and ``--ortho-beta`` (:mod:`foolkit.models.training`).
"""
from .acquisition import TRANSFORMS, Acquisition, recovery_rate
from .quantization import QuantizedLayer, fake_quant, quantize, quantize_weight

__all__ = ["TRANSFORMS", "Acquisition", "QuantizedLayer", "fake_quant", "quantize", "quantize_weight",
           "recovery_rate"]
