"""Part IV, adversarial training (thesis 13.2.2): every attack on each registered FGSM-trained
model against the model it was fine-tuned from, through the same engine and store as the rest
of ``part-iv`` (the base model's runs with ``part-iv``'s own parameters are shared with its
points), and the verdict on "FGSM adversarial training leaves the network vulnerable to other
attacks".

The claim's test. A minimal-perturbation attack (DeepFool, SparseFool) fools nearly every image
of any network, so its plain fooling rate says nothing; what the defense was trained for is the
L∞ ball of its FGSM budget ε. Per attack other than FGSM, the *budgeted fooling rate* on the
defended model: for DeepFool (L2, L∞) and SparseFool the share of its attacked images fooled
with ‖r‖∞ <= ε (inside the ball the training defends), for One Pixel its fooling rate (its own
budget: one pixel). The claim holds if at least one attack's budgeted rate is above
``VULNERABLE`` (50 %) beyond ``Z`` binomial standard errors, does not hold if every one is below
it beyond them, and is inconclusive otherwise. FGSM's rates and the change of ρ̂ are reported
beside it, not judged.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from .model_map import Choice, registered_cards
from .plan import Task, task_cost
from .specs_stronger_part4 import ADVTRAIN_RUNS, PART_IV_ID
from .stats import Z, binomial_se, combine, compare, fmt, margin_text, not_checkable, outcome_word, verdict
from .tasks import Context, measure_run

VULNERABLE = 0.5  # "vulnerable": the attack still fools more than half the attacked images within its budget
BALL_SLACK = 1e-6  # float rounding of ||r||_inf at the edge of the eps ball
# Judged attacks and their budget: "ball" (||r||_inf <= the training eps) or "own" (the attack's own budget)
JUDGED = {"DeepFool L2": "ball", "DeepFool L∞": "ball", "SparseFool": "ball", "One Pixel": "own"}
# The perturbation size reported per attack (centred ρ̂, as in the thesis's tables and Part IV's quantization table)
RHO = {"DeepFool L2": "rho_2_centered", "DeepFool L∞": "rho_inf_centered", "SparseFool": "rho_2_centered"}


def advtrained() -> dict[str, dict]:
    """Registered models whose card says they were adversarially trained -> {"base": the model
    they were fine-tuned from (read from the card's recipe; cifar10/resnet20 when it names none),
    "eps": the training FGSM step in [0,1] pixels (None when the card has none)}."""
    out = {}
    for name, card, extra in registered_cards():
        text = " ".join(str(v) for v in vars(card).values()).lower()
        if "adversarial training" not in text and "adversarially trained" not in text:
            continue
        found = re.search(r"from ([\w.-]+/[\w.-]+)", str((extra.get("training") or {}).get("recipe", ""))
                          + " " + card.architecture)
        eps = (extra.get("defense") or {}).get("eps")
        out[name] = {"base": found.group(1) if found else "cifar10/resnet20",
                     "eps": float(eps) if eps is not None else None}
    return out


def runs(tasks: list[Task]) -> list[tuple[str, str, dict]]:
    """(label, attack, params) of the comparison: ``ADVTRAIN_RUNS``, where params None take the
    parameters of ``part-iv``'s run of that attack in this plan (its size's settings)."""
    from . import get
    out = []
    for label, attack, own in ADVTRAIN_RUNS:
        params: Mapping[str, Any]
        if own is None:
            task = next((t for t in tasks if t.attack == attack), None)
            params = dict(task.params) if task is not None else next(
                r.params for r in get(PART_IV_ID).runs if r.attack == attack)
        else:
            params = own
        out.append((label, attack, dict(params)))
    return out


def estimate_ms(tasks: list[Task]) -> float:
    """Planned ms of the comparison's runs not already among ``tasks`` (the planner's costs; a
    fine-tuned model costs what its base does: the same architecture)."""
    if not tasks:
        return 0.0
    t0, total = tasks[0], 0.0
    planned = {(t.attack, t.choice.name, repr(sorted(t.params.items(), key=str))) for t in tasks}
    for name, info in advtrained().items():
        for _, attack, params in runs(tasks):
            for model in (name, info["base"]):
                if (attack, model, repr(sorted(params.items(), key=str))) not in planned:
                    total += task_cost(dataclasses.replace(t0, attack=attack, params=params, mode="sweep",
                                                           choice=Choice(info["base"])))
    return total


def _point(model: str, attack: str, params: dict, data: Any, ctx: Context, title: str, eps: float | None) -> dict:
    """One run through the engine and store -> run id, metrics, standard errors and the share of
    attacked images fooled inside the eps ball (``within``)."""
    point, records = measure_run(model, attack, params, data, ctx, title)
    attacked = [r for r in records if r["attacked"]]
    inside = sum(1 for r in attacked if r["success"] and r["verified"] and eps is not None
                 and r["linf"] is not None and float(r["linf"]) <= eps + BALL_SLACK)
    point["within"] = {"rate": inside / len(attacked) if attacked and eps is not None else None, "n": len(attacked)}
    return point


def measure(ctx: Context, tasks: list[Task], data: Any) -> dict:
    """Every run of ``runs(tasks)`` on each adversarially trained model and on its base; a model
    that fails (e.g. its checkpoint is missing) records its error instead of losing the section."""
    out = {}
    n = max((t.n for t in tasks), default=0)
    for name, info in advtrained().items():
        eps = info["eps"]
        entry: dict = {"base": info["base"], "eps": eps, "n": n, "runs": []}
        try:
            for label, attack, params in runs(tasks):
                entry["runs"].append({
                    "label": label, "attack": attack, "params": params,
                    "base": _point(info["base"], attack, params, data, ctx, f"{info['base']} {label}", eps),
                    "adv": _point(name, attack, params, data, ctx, f"{name} {label}", eps)})
        except Exception as exc:  # one model must not lose the rest of Part IV
            entry["error"] = f"{type(exc).__name__}: {exc}"
        out[name] = entry
    return out


# ------------------------------------------------------------------------------ verdict
def budgeted(point: dict, label: str) -> float | None:
    """The budgeted fooling rate of a point (see the module docstring)."""
    if JUDGED.get(label) == "own":
        return point["metrics"].get("fooling_rate")
    return (point.get("within") or {}).get("rate")


def _model_outcome(entry: dict) -> tuple[int | None, list[str]]:
    """+1 if some judged attack's budgeted rate is above VULNERABLE beyond the noise, -1 if every
    one is below it beyond the noise, 0 otherwise; None when nothing was measured."""
    outcomes, parts = [], []
    eps = entry.get("eps")
    for r in entry.get("runs", []):
        label, adv, base = r["label"], r["adv"], r["base"]
        if label not in JUDGED:
            continue
        rate, n = budgeted(adv, label), adv["within"]["n"]
        if rate is None or not n:
            continue
        se = binomial_se(rate, n)
        o = compare(rate, se, VULNERABLE, 0.0, "fooling_rate")
        outcomes.append(o)
        where = "fooled" if JUDGED[label] == "own" else f"fooled within ||r||inf <= {eps:.4g}"
        b = budgeted(base, label)
        text = (f"{label}: {fmt(rate, 'fooling_rate')}{margin_text(se, 'fooling_rate')} of {n} {where} "
                f"(base {fmt(b, 'fooling_rate')}; wanted >= {100 * VULNERABLE:.0f} %)")
        q = RHO.get(label)
        if q and base["metrics"].get(q) and adv["metrics"].get(q) is not None:
            rb, ra = base["metrics"][q], adv["metrics"][q]
            text += f", ρ̂ {fmt(rb)} -> {fmt(ra)} (x{ra / rb:.2f})"
        parts.append(text + outcome_word(o))
    for r in entry.get("runs", []):
        if r["attack"] == "fgsm":
            fb, fa = r["base"]["metrics"].get("fooling_rate"), r["adv"]["metrics"].get("fooling_rate")
            parts.append(f"context, {r['label']}: fooling rate base {fmt(fb, 'fooling_rate')}, "
                         f"adv-trained {fmt(fa, 'fooling_rate')}")
    if not outcomes:
        return None, parts
    if any(o > 0 for o in outcomes):
        return 1, parts
    return (-1 if all(o < 0 for o in outcomes) else 0), parts


def check(data: dict) -> dict:
    """The ``advtrain`` claim's verdict from ``entry["part4"]`` (models combine as everywhere)."""
    measured = data.get("advtrain") or {}
    if not data.get("advtrained"):
        return not_checkable("no adversarially trained model registered (foolkit train --adversarial fgsm "
                             "--init-from ... makes one)")
    if not measured:
        return not_checkable(f"adversarially trained models registered ({', '.join(data['advtrained'])}) but "
                             "not measured in this run")
    outcomes, parts, errors = [], [], []
    for name, entry in measured.items():
        if entry.get("error"):
            errors.append(f"{name}: {entry['error']}")
            continue
        o, p = _model_outcome(entry)
        if o is None:
            continue
        outcomes.append(o)
        parts.append(f"{name.split('/')[-1]} against {entry['base'].split('/')[-1]}: " + "; ".join(p))
    if not outcomes:
        return not_checkable("adversarial training not measured" + (f" ({'; '.join(errors)})" if errors else ""))
    return verdict(combine(outcomes), "; ".join(parts + errors))


# ------------------------------------------------------------------------------ report
def rows(data: dict) -> list[list]:
    """The report table's rows: attack x {base, adversarially trained}."""
    out = []
    for name, entry in (data.get("advtrain") or {}).items():
        if entry.get("error"):
            out.append([name, f"failed: {entry['error']}"] + [""] * 7)
            continue
        for r in entry["runs"]:
            b, a, q = r["base"], r["adv"], RHO.get(r["label"])
            rb, ra = (b["metrics"].get(q), a["metrics"].get(q)) if q else (None, None)
            out.append([name, r["label"], fmt(b["metrics"].get("fooling_rate"), "fooling_rate"),
                        fmt(a["metrics"].get("fooling_rate"), "fooling_rate"),
                        # FGSM's budget is its own eps: the column is for the judged attacks
                        fmt(budgeted(b, r["label"]), "fooling_rate") if r["label"] in JUDGED else "—",
                        fmt(budgeted(a, r["label"]), "fooling_rate") if r["label"] in JUDGED else "—",
                        fmt(rb) if q else "—", fmt(ra) if q else "—",
                        f"x{ra / rb:.2f}" if q and rb and ra is not None else "—"])
    return out


HEADER = ["adv-trained model", "attack", "fooling rate: base", "fooling rate: adv-trained",
          "within budget: base", "within budget: adv-trained", "ρ̂: base", "ρ̂: adv-trained", "ρ̂ change"]
NOTE = (f"Base: the model each was fine-tuned from, on the same images. Within budget: the share of attacked "
        f"images fooled with ||r||inf <= the training eps (One Pixel: its fooling rate, its budget is one pixel). "
        f"ρ̂: centred, ρ̂2 for DeepFool L2 and SparseFool, ρ̂∞ for DeepFool L∞. The claim holds if some attack other "
        f"than FGSM fools >= {100 * VULNERABLE:.0f} % of the defended model's images within budget beyond {Z:g} "
        f"standard errors.")
