"""Issue #22 in the reproduction: "Part IV, measured". After the attacks of ``part-iv`` (DeepFool,
SparseFool, One Pixel, FGSM on each model, through the engine), ``analyse`` measures per model:

* the anatomy of instability (13.1.1): ``lipschitz_bounds`` per layer and their product L, and
  ``layer_growth`` of each attack's verified adversarial pairs against random perturbations of
  the same norm (plus universal-l2's perturbation when that experiment ran in the same call);
* image acquisition (13.2.1): the share of each attack's adversarial images that recover their
  label through ``fk.defenses.Acquisition`` (and the clean images' accuracy through it);
* quantization (13.2.3): DeepFool (L2) and FGSM on 8- and 4-bit fake-quantized copies
  (``fk.defenses.quantize``) against full precision, through the same engine and store;
* adversarial training (13.2.2): every attack on each registered adversarially trained model
  (cifar10/resnet20_advfgsm) against its base model, judged in ``part4_advtrain``.

Everything lands in ``entry["part4"]`` (JSON); ``check`` judges the claims with the statistics
of ``stats`` (``Z`` standard errors, ties inconclusive); ``blocks`` renders the section.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from .specs_stronger_part4 import FGSM_EPS, GROWTH_ATTACKS
from .stats import binomial_se, combine, compare, fmt, margin_text, not_checkable, outcome_word, se_of, verdict
from . import Claim, Experiment
from .plan import Task
from .tasks import Context, measure_run

RECOVERY_SHARE = 0.5  # "a large share": more than half
AMPLIFIED = 2.0  # the report names the first stage where the adversarial/random growth ratio reaches this
QUANT_BITS = (8, 4)
CALIBRATION = 100  # images that set the quantized activations' ranges (outside the attacked ones)


def _pairs(store: str, run_id: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(x, x_adv, labels) of a run's verified adversarial examples, from the store."""
    from ..evaluation.run import Run
    run = Run(store, run_id)
    fooled = [r for r in run.records() if r["attacked"] and r["success"] and r["verified"]]
    if not fooled:
        return None
    imgs = run.images([r["idx"] for r in fooled])
    keep = [r for r in fooled if r["idx"] in imgs]
    if not keep:
        return None
    x = torch.as_tensor(__import__("numpy").stack([imgs[r["idx"]]["x"] for r in keep])).float()
    x_adv = torch.as_tensor(__import__("numpy").stack([imgs[r["idx"]]["x_adv"] for r in keep])).float()
    return x, x_adv.clamp(0, 1), torch.tensor([int(r["label"]) for r in keep])


def growth_summary(table: Any) -> dict:
    """JSON summary of a ``GrowthTable``: per-stage medians and, at the first stage, the mean
    log ratio adversarial/random per image and its standard error (the claim's statistic)."""
    rows = table.rows()
    log_first = torch.log(table.adversarial[0] / table.random[0])
    n = int(log_first.numel())
    se = float(log_first.std() / math.sqrt(n)) if n >= 2 else math.inf
    return {"layers": [r[0].removeprefix("net.") for r in rows], "adversarial": [r[1] for r in rows],
            "random": [r[2] for r in rows], "ratio": [r[3] for r in rows], "n": n,
            "first_log_ratio": float(log_first.mean()), "first_log_se": se,
            "first_amplified": (table.first_amplified(AMPLIFIED) or "none").removeprefix("net.")}


def _advtrained() -> list[str]:
    """Registered models whose card says they were adversarially trained."""
    from .part4_advtrain import advtrained
    return list(advtrained())


def analyse(exp: Experiment, entry: dict, ctx: Context, tasks: list[Task], results: dict) -> None:
    """Fill ``entry["part4"]`` (see the module docstring)."""
    from ..analysis import layer_growth, lipschitz_bounds
    from ..attacks.base import predict
    from ..data import load
    from ..defenses import Acquisition, quantize
    from ..evaluation.store import Store
    from ..evaluation.store_format import decode

    out: dict = {"models": {}, "advtrained": _advtrained()}
    choices = {t.choice.label: (t.choice, t) for t in tasks}
    univ = {p["model"]: p for p in (results["experiments"].get("universal-l2") or {}).get("points", [])
            if p.get("run_id")}
    x_all, y_all = load("cifar10", "test", root=ctx.data_root)
    for label, (choice, task) in choices.items():
        model = ctx.model(choice)
        n = task.n
        m: dict = {"n": n}
        lb = lipschitz_bounds(model, (3, 32, 32))
        m["lipschitz"] = {"L": lb.L, "L_certified": lb.L_certified,
                          "layers": [[name.removeprefix("net."), kind, b] for name, kind, b in lb.rows()]}
        pairs = {p["attack"]: _pairs(ctx.store, p["run_id"]) for p in entry["points"] if p["model"] == label}
        blob = None
        if label in univ:  # universal-l2's perturbation, if its run is in this store (results.json may
            # keep points from an earlier invocation whose store is gone)
            with Store(ctx.store, readonly=True) as s:
                blob = s.artifact(univ[label]["run_id"], "universal_perturbation")
        if blob is not None:
            v = torch.as_tensor(decode(blob)).float()
            x, y = x_all[:n], y_all[:n]
            x_adv = (x + v.reshape(1, *x.shape[1:])).clamp(0, 1)
            pred, _ = predict(model, x_adv)
            clean, _ = predict(model, x)
            ok = (pred != y) & (clean == y)
            pairs["universal"] = (x[ok], x_adv[ok], y[ok]) if ok.any() else None
        m["growth"], m["recovery"] = {}, {}
        for attack in GROWTH_ATTACKS:
            pr = pairs.get(attack)
            if pr is None:
                continue
            x, x_adv, y = pr
            with torch.no_grad():  # the stored x + r re-checked once: borderline pairs may round back
                fooled = predict(model, x_adv)[0] != y
            if not fooled.any():
                continue
            x, x_adv, y = x[fooled], x_adv[fooled], y[fooled]
            m["growth"][attack] = growth_summary(layer_growth(model, x, x_adv))
            with torch.no_grad():  # recovery_rate's definition, on exactly these adversarial images
                back = predict(Acquisition(model, seed=0), x_adv)[0] == y
            m["recovery"][attack] = {"rate": float(back.float().mean()), "n": int(len(y))}
        x, y = x_all[:n], y_all[:n]
        clean = predict(model, x)[0] == y
        with torch.no_grad():
            through = predict(Acquisition(model, seed=0), x[clean])[0] == y[clean] if clean.any() else torch.zeros(0)
        m["acquisition_clean_accuracy"] = {"rate": float(through.float().mean()) if len(through) else None,
                                           "n": int(clean.sum())}
        data = ctx.cifar10_test(n)
        cal = x_all[-CALIBRATION:] if len(x_all) >= n + CALIBRATION else x_all[n:]
        m["quant"] = {}
        for bits in QUANT_BITS:
            qm = quantize(model, bits, bits, calibration=cal)
            acc = float((predict(qm, x)[0] == y).float().mean())
            m["quant"][str(bits)] = {
                "accuracy": acc,
                "deepfool": measure_run(qm, "deepfool", {"norm": 2}, data, ctx, f"{label} {bits}-bit deepfool")[0],
                "fgsm": measure_run(qm, "fgsm", {"eps": FGSM_EPS, "clip": True}, data, ctx,
                                    f"{label} {bits}-bit fgsm")[0]}
        full = {p["attack"]: p for p in entry["points"] if p["model"] == label}
        m["quant"]["full"] = {"accuracy": float(clean.float().mean()),
                              **{a: {k: full[a][k] for k in ("run_id", "metrics", "se")} for a in ("deepfool", "fgsm")
                                 if a in full}}
        out["models"][label] = m
    from .part4_ortho import measure as measure_ortho
    n = max((t.n for t in tasks), default=0)
    cal = x_all[-CALIBRATION:] if len(x_all) >= n + CALIBRATION else x_all[n:]
    out["ortho"] = measure_ortho(ctx, x_all[:n], y_all[:n], ctx.cifar10_test(n), cal, QUANT_BITS, FGSM_EPS)
    from .part4_advtrain import measure
    out["advtrain"] = measure(ctx, tasks, ctx.cifar10_test(max((t.n for t in tasks), default=0)))
    entry["part4"] = out


# ------------------------------------------------------------------------------ verdicts
def _rate_outcome(rate: float, n: int, threshold: float) -> int:
    return compare(rate, binomial_se(rate, n), threshold, 0.0, "fooling_rate")


def _quant_parts(q: dict, bits: str) -> tuple[list[int], list[str]]:
    """More vulnerable = smaller DeepFool ρ̂2 (centred) or a higher FGSM fooling rate, beyond the noise."""
    full, qq = q.get("full") or {}, q.get(bits) or {}
    outcomes, parts = [], []
    for attack, quantity, sign in (("deepfool", "rho_2_centered", -1), ("fgsm", "fooling_rate", 1)):
        a, b = full.get(attack), qq.get(attack)
        if not a or not b or a["metrics"].get(quantity) is None or b["metrics"].get(quantity) is None:
            continue
        va, vb = a["metrics"][quantity], b["metrics"][quantity]
        o = sign * compare(vb, se_of(quantity, b), va, se_of(quantity, a), quantity)
        outcomes.append(o)
        parts.append(f"{attack} {quantity}: full {fmt(va, quantity)}{margin_text(se_of(quantity, a), quantity)}, "
                     f"{bits}-bit {fmt(vb, quantity)}{margin_text(se_of(quantity, b), quantity)}"
                     + outcome_word(o))
    return outcomes, parts


def check(exp: Experiment, claim: Claim, entry: dict, results: dict) -> dict:
    """Verdicts on the Part IV claims (``claim.quantity``: ``first_layer:<attack>``,
    ``recovery:<attack>``, ``quant:8|4|ortho``, ``advtrain``). Parts over models combine as
    everywhere: any part against fails, all parts for hold, else inconclusive."""
    data = entry.get("part4")
    if not data:
        return not_checkable("Part IV analysis not run")
    kind, _, arg = claim.quantity.partition(":")
    models = data.get("models", {})
    outcomes, parts = [], []
    if kind == "first_layer":
        for model, m in models.items():
            g = m.get("growth", {}).get(arg)
            if not g:
                continue
            o = compare(g["first_log_ratio"], g["first_log_se"], 0.0, 0.0)
            outcomes.append(o)
            parts.append(f"{model.split('/')[-1]}: first stage ({g['layers'][0]}) adversarial/random growth "
                         f"{math.exp(g['first_log_ratio']):.3g} (geometric mean of {g['n']} images; log "
                         f"{g['first_log_ratio']:.3g}{margin_text(g['first_log_se'], '')}), first stage with ratio >= "
                         f"{AMPLIFIED:g}: {g['first_amplified']}" + outcome_word(o))
        if not outcomes:
            return not_checkable(f"no adversarial pairs of {arg} measured"
                                 + (" (universal-l2 did not run in this call)" if arg == "universal" else ""))
    elif kind == "recovery":
        for model, m in models.items():
            r = m.get("recovery", {}).get(arg)
            if not r or r["rate"] is None:
                continue
            o = _rate_outcome(r["rate"], r["n"], RECOVERY_SHARE)
            outcomes.append(o)
            parts.append(f"{model.split('/')[-1]}: {fmt(r['rate'], 'fooling_rate')}"
                         f"{margin_text(binomial_se(r['rate'], r['n']), 'fooling_rate')} of {r['n']} recovered (wanted > "
                         f"{100 * RECOVERY_SHARE:.0f} %)" + outcome_word(o))
        if not outcomes:
            return not_checkable(f"no adversarial images of {arg} measured"
                                 + (" (universal-l2 did not run in this call)" if arg == "universal" else ""))
    elif kind == "quant":
        if arg == "ortho":
            from .part4_ortho import check as check_ortho
            return check_ortho(data, QUANT_BITS)
        for model, m in models.items():
            q_outcomes, q_parts = _quant_parts(m.get("quant", {}), arg)
            if q_outcomes:
                outcomes.append({True: 1, None: 0, False: -1}[combine_any(q_outcomes)])
                parts.append(f"{model.split('/')[-1]} (clean accuracy full {fmt(m['quant']['full']['accuracy'], 'accuracy')}, "
                             f"{arg}-bit {fmt(m['quant'][arg]['accuracy'], 'accuracy')}): " + ", ".join(q_parts))
        if not outcomes:
            return not_checkable(f"{arg}-bit quantization not measured")
    elif kind == "advtrain":
        from .part4_advtrain import check as check_advtrain
        return check_advtrain(data)
    else:
        return {"verdict": "error", "measured": "", "reason": f"unknown Part IV quantity {claim.quantity}"}
    return verdict(combine(outcomes), "; ".join(parts))


def combine_any(outcomes: list[int]) -> bool | None:
    """"More vulnerable" by either measure: holds if one measure says so beyond the noise and none
    says the opposite; fails if one says the opposite and none says so; else inconclusive."""
    if any(o > 0 for o in outcomes) and not any(o < 0 for o in outcomes):
        return True
    if any(o < 0 for o in outcomes) and not any(o > 0 for o in outcomes):
        return False
    return None


# ------------------------------------------------------------------------------ report
def blocks(exp: Experiment, entry: dict, results: dict, store: str, out: Path) -> list[tuple]:
    data = entry.get("part4")
    if not data:
        return [("p", f"Ours: {entry.get('status', 'not run in this mode')}.")]
    b: list[tuple] = [("h3", "Lipschitz bounds per layer (eq. 13.1)", f"{exp.id}-lipschitz")]
    rows = []
    for model, m in data["models"].items():
        lb = m["lipschitz"]
        top = sorted(lb["layers"], key=lambda r: -r[2])[:3]
        rows.append([model, len(lb["layers"]), f"{lb['L']:.4g}", f"{lb['L_certified']:.4g}",
                     f"{lb['layers'][0][0]} ({lb['layers'][0][1]}) {lb['layers'][0][2]:.3g}",
                     "; ".join(f"{n} {v:.3g}" for n, _, v in top)])
    b.append(("table", ["model", "factors", "L (product)", "L certified", "first layer's bound", "largest bounds"], rows))
    b.append(("h3", "Layer growth: adversarial against random perturbations of the same norm", f"{exp.id}-growth"))
    rows = []
    for model, m in data["models"].items():
        for attack, g in m["growth"].items():
            rows.append([model, attack, g["n"], g["layers"][0], f"{g['ratio'][0]:.3g}", f"{g['ratio'][-1]:.3g}",
                         g["first_amplified"]])
    b.append(("table", ["model", "attack", "pairs", "first stage", "median ratio there", "median ratio at the logits",
                        f"first stage with ratio >= {AMPLIFIED:g}"], rows))
    for model, m in data["models"].items():
        if m["growth"]:
            try:
                b.append(("img", _growth_png(model, m["growth"], out), f"{exp.id}-growth-{model}"))
            except Exception as exc:  # a figure must not lose the report
                b.append(("p", f"Figure failed: {type(exc).__name__}: {exc}"))
    b.append(("h3", "Image acquisition (13.2.1): adversarial images recovered through the pipeline", f"{exp.id}-acq"))
    attacks = [a for a in GROWTH_ATTACKS if any(a in m["recovery"] for m in data["models"].values())]
    rows = []
    for model, m in data["models"].items():
        c = m["acquisition_clean_accuracy"]
        rows.append([model, fmt(c["rate"], "accuracy")] + [
            (f"{fmt(m['recovery'][a]['rate'], 'fooling_rate')} of {m['recovery'][a]['n']}" if a in m["recovery"] else "—")
            for a in attacks])
    b.append(("table", ["model", "clean accuracy through the pipeline"] + [f"recovered: {a}" for a in attacks], rows))
    b.append(("h3", "Quantization (13.2.3): full precision against 8 and 4 bits", f"{exp.id}-quant"))
    rows = []
    for model, m in data["models"].items():
        rows += _quant_rows(model, m["quant"])
    for model, e in (data.get("ortho") or {}).items():
        tag = f"{model} (orthogonality-regularised, β {e['beta']:g})"
        if e.get("error"):
            rows.append([tag, f"failed: {e['error']}", "", "", "", ""])
            continue
        rows += _quant_rows(tag, e["quant"])
    b.append(("table", ["model", "precision", "clean accuracy", "DeepFool ρ̂2", "DeepFool fooling rate",
                        f"FGSM (eps {FGSM_EPS}) fooling rate"], rows))
    b.append(("h3", "Adversarial training (13.2.2): every attack on the FGSM-trained model and its base",
              f"{exp.id}-advtrain"))
    from .part4_advtrain import HEADER, NOTE, rows as advtrain_rows
    if data.get("advtrain"):
        b.append(("table", HEADER, advtrain_rows(data)))
        b.append(("p", NOTE))
    else:
        b.append(("p", "Not measured: " + (f"{', '.join(data['advtrained'])} registered but not run in this call."
                                           if data.get("advtrained") else
                                           "no adversarially trained model is registered.")))
    return b


def _quant_rows(tag: str, quant: dict) -> list[list[str]]:
    """The quantization table's rows of one model: full precision, then each bit width."""
    rows = []
    for key in ("full", *map(str, QUANT_BITS)):
        q = quant.get(key) or {}
        df, fg = (q.get("deepfool") or {}).get("metrics", {}), (q.get("fgsm") or {}).get("metrics", {})
        rows.append([tag, key if key == "full" else f"{key}-bit", fmt(q.get("accuracy"), "accuracy"),
                     fmt(df.get("rho_2_centered")), fmt(df.get("fooling_rate"), "fooling_rate"),
                     fmt(fg.get("fooling_rate"), "fooling_rate")])
    return rows


def _growth_png(model: str, growth: dict, out: Path) -> str:
    from ..report.figures import new_figure
    from .report_figures import save_figure
    layers = next(iter(growth.values()))["layers"]
    fig = new_figure(max(6.0, 0.45 * len(layers)), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for attack, g in growth.items():
        ax.plot(range(len(g["ratio"])), g["ratio"], marker="o", label=f"{attack} ({g['n']} pairs)")
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("median growth ratio, adversarial / random")
    ax.set_title(f"{model}: where the adversarial perturbation is amplified", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, out / "figures" / f"part-iv-growth-{model.replace('/', '_')}.png")
