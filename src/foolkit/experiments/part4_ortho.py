"""Part IV, defensive quantization with the orthogonality regulariser (thesis 13.2.3): Lin et al.'s
claim, as the thesis words it, that common quantization makes networks more vulnerable and that
quantization with the regulariser (β/2)·Σ‖WᵢᵀWᵢ − I‖² does not.

The first half is judged in ``part4`` on every model (``quant:8``, ``quant:4``). This module
measures the second on each registered model whose card names the regulariser
(``defense.ortho_beta``, e.g. ``cifar10/resnet20_ortho``, fine-tuned with ``foolkit train
--ortho-beta``): DeepFool (L2) and FGSM on the model at full precision and fake-quantized to 8 and
4 bits (the same calibration images as ``part4``), on part-iv's images, through the engine and
store.

The verdict (``quant:ortho``) uses ``part4``'s measures (a smaller centred DeepFool ρ̂2 or a higher
FGSM fooling rate, beyond the noise, is "more vulnerable") per model and bit width, combined as
everywhere: it does not hold if some bit width makes a regularised model more vulnerable (by one
measure, the other not saying less), holds if every bit width makes it less vulnerable, and is
inconclusive otherwise (e.g. everything within the noise).
"""
from __future__ import annotations

from typing import Any

from .model_map import Choice, registered_cards
from .stats import combine, not_checkable, verdict
from .tasks import Context, measure_run


def ortho_models() -> dict[str, dict]:
    """Registered models whose card says they were trained with the orthogonality regulariser ->
    {"beta": its β, "base": the model it was fine-tuned from (cifar10/resnet20 when the card
    names none)}."""
    out = {}
    for name, _, extra in registered_cards():
        beta = (extra.get("defense") or {}).get("ortho_beta")
        if beta:
            out[name] = {"beta": float(beta), "base": (extra.get("defense") or {}).get("base", "cifar10/resnet20")}
    return out


def measure(ctx: Context, x: Any, y: Any, data: Any, calibration: Any, bits: tuple[int, ...],
            fgsm_eps: float) -> dict:
    """Each regularised model at full precision and at each of ``bits`` (weights and activations):
    clean accuracy on ``x`` [N,3,32,32] in [0,1] with labels ``y`` [N], and the DeepFool (L2) and
    FGSM (``fgsm_eps``) runs on ``data`` -> {name: {"beta", "base", "n", "quant": {"full"|"8"|"4":
    {"accuracy", "deepfool", "fgsm"}}}}; a model that fails records its error instead."""
    from ..attacks.base import predict
    from ..defenses import quantize
    out: dict = {}
    for name, info in ortho_models().items():
        entry: dict = {**info, "n": int(len(x)), "quant": {}}
        try:
            model = ctx.model(Choice(name))
            variants = [("full", model)] + [(str(b), quantize(model, b, b, calibration=calibration)) for b in bits]
            for key, net in variants:
                tag = "full precision" if key == "full" else f"{key}-bit"
                entry["quant"][key] = {
                    "accuracy": float((predict(net, x)[0] == y).float().mean()),
                    "deepfool": measure_run(net, "deepfool", {"norm": 2}, data, ctx, f"{name} {tag} deepfool")[0],
                    "fgsm": measure_run(net, "fgsm", {"eps": fgsm_eps, "clip": True}, data, ctx,
                                        f"{name} {tag} fgsm")[0]}
        except Exception as exc:  # one model must not lose the rest of Part IV
            entry["error"] = f"{type(exc).__name__}: {exc}"
        out[name] = entry
    return out


def check(data: dict, bits: tuple[int, ...]) -> dict:
    """The ``quant:ortho`` verdict from ``entry["part4"]`` (see the module docstring)."""
    from .part4 import _quant_parts, combine_any
    measured = data.get("ortho") or {}
    if not measured:
        return not_checkable("no orthogonality-regularised model registered (foolkit train --ortho-beta B "
                             "--init-from ... makes one)")
    outcomes, parts, errors = [], [], []
    for name, entry in measured.items():
        if entry.get("error"):
            errors.append(f"{name}: {entry['error']}")
            continue
        q = entry["quant"]
        for b in map(str, bits):
            o, p = _quant_parts(q, b)
            if not o:
                continue
            more = combine_any(o)  # True: more vulnerable
            outcomes.append({True: -1, None: 0, False: 1}[more])
            parts.append(f"{name.split('/')[-1]} (β {entry['beta']:g}; clean accuracy full "
                         f"{100 * q['full']['accuracy']:.1f} %, {b}-bit {100 * q[b]['accuracy']:.1f} %): " + ", ".join(p))
    if not outcomes:
        return not_checkable("quantization of the regularised models not measured"
                             + (f" ({'; '.join(errors)})" if errors else ""))
    return verdict(combine(outcomes), "; ".join(parts + errors))
