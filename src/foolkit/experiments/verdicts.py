"""The verdict on each claim of the specs, on our numbers and on the thesis's own.

Verdicts: "holds", "does not hold", "inconclusive" (the measurement cannot tell: ties within the
sample's noise), "not checkable" (not run, one model only, or outside the claim's regime, e.g.
"not checkable at this size") and "error" (the experiment crashed; the command then fails).
The statistical rule behind them: ``stats`` (``TOLERANCES``); the checkers per kind of check:
``claim_checks``; this module picks the points a claim is judged on and the checker
(``check_claim``), and judges every claim (``all_verdicts``).
"""
from __future__ import annotations

from . import EXPERIMENTS, Claim, Experiment
from .claim_checks import flat_verdict, matrix_verdict, ranking_verdict, threshold_verdict, trend_verdict
from .stats import exact_values, not_checkable
from .thesis_tables import matches, thesis_results

COMPARES_MODELS = ("argmax", "argmin", "top", "order", "same_order", "diagonal_dominates")


def check_claim(exp: Experiment, claim: Claim, results: dict, quick: bool = False) -> dict:
    """The verdict on one claim: {"verdict", "measured", "reason"}. ``quick`` is accepted for
    older callers; the rules are the same in every mode (see ``TOLERANCES``). Results with
    ``"exact": True`` (the thesis's numbers) are compared without any slack."""
    with exact_values(bool(results.get("exact"))):
        return _check_claim(exp, claim, results)


def _check_claim(exp: Experiment, claim: Claim, results: dict) -> dict:
    entry = results["experiments"].get(exp.id) or {}
    status = entry.get("status", "not run in this mode")
    if status.startswith("failed"):
        return {"verdict": "error", "measured": "", "reason": status}
    if status != "done":
        return not_checkable(status)
    if claim.check == "visual":
        return not_checkable("illustrative figure: see " + ", ".join(exp.figures))
    if claim.check == "custom":  # issues #21 / #22: the experiment's own rule, same statistics
        from . import part4, stronger
        return (stronger if exp.id == "table-12.3-stronger" else part4).check(exp, claim, entry, results)
    columns = results.get("columns", {})
    dedicated = set(results.get("dedicated", []))
    points = entry["points"]
    if "transfer" in entry:
        return matrix_verdict(exp, claim, entry, results)
    at = {k: v for k, v in claim.at.items() if v != "max"}
    pts = [p for p in points if matches(p["params"], at) and p["metrics"].get(claim.quantity) is not None]
    for k in [k for k, v in claim.at.items() if v == "max"]:  # the largest value of each series
        def rest(p: dict, k: str = k) -> tuple:
            return (p["model"], sorted((a, str(b)) for a, b in p["params"].items() if a != k))
        pts = [p for p in pts if k in p["params"] and
               p["params"][k] == max(q["params"][k] for q in pts if k in q["params"] and rest(q) == rest(p))]
    if not pts:
        return not_checkable(f"no measured {claim.quantity} at {at or 'any point'} in this mode")
    if claim.min_fit:
        small = sorted({p["metrics"].get("n_fit") or 0 for p in pts})
        if small[0] < claim.min_fit:
            return not_checkable(
                f"not checkable at this size: |X| = {', '.join(map(str, small))} images (attacked ones) < "
                f"{claim.min_fit}; the thesis's own Fig. 12.25 shows the fooling rates on X and on unseen "
                f"images differ for |X| below about {claim.min_fit}")
    if claim.check in COMPARES_MODELS:
        return ranking_verdict(exp, claim, pts, results, dedicated, columns)
    if claim.models:
        ours = {columns.get(t) for t in claim.models}
        pts = [p for p in pts if p["model"] in ours]
        standin = [t for t in claim.models if t not in dedicated and columns.get(t)]
        note = f"on {', '.join(sorted(ours - {None}))} standing in for {', '.join(standin)}" if standin else ""
        if not pts:
            return not_checkable("no model for " + ", ".join(claim.models))
    else:
        note = ""
    if claim.check in ("increasing", "decreasing"):
        return trend_verdict(claim, pts, note)
    if claim.check == "flat_after":
        return flat_verdict(claim, pts, note)
    return threshold_verdict(claim, pts, results, note)


def claim_group(claim: Claim, results: dict) -> str:
    """Where a claim goes in the headline: "trend" (trends, rankings, the methods' own
    properties), "networks" (a level of the thesis's specific trained networks, which stand-in
    models cannot test), "figure" (illustrative)."""
    if claim.check == "visual":
        return "figure"
    if claim.scope != "networks":
        return "trend"
    kinds = {row[0]: row[2] for row in results.get("models", []) if len(row) >= 3}
    named = claim.models or tuple(results.get("columns", {}))
    if named and all(str(kinds.get(t, "")).startswith("the thesis's architecture") for t in named):
        return "trend"  # the thesis's own architectures play these columns: testable
    return "networks"


GROUPS = {"trend": "trend and ranking claims (and the methods' own properties)",
          "networks": "claims about the thesis's specific networks, which stand-in models cannot test",
          "figure": "illustrative figures"}


def all_verdicts(results: dict, quick: bool = False) -> list[dict]:
    """Every claim's verdict on ``results`` and on the thesis's own numbers, with its group."""
    out = []
    thesis = thesis_results()
    for exp in EXPERIMENTS:
        for claim in exp.claims:
            v = check_claim(exp, claim, results)
            on_thesis = check_claim(exp, claim, thesis) if exp.id in thesis["experiments"] else None
            group = claim_group(claim, results)
            if group == "networks" and v["verdict"] in ("holds", "does not hold", "inconclusive"):
                v["reason"] = ("; ".join(x for x in (v["reason"], "a level of the thesis's own networks: our "
                                                     "stand-ins cannot test it, the verdict is about them") if x))
            out.append({"experiment": exp.id, "refs": list(exp.thesis_refs), "claim": claim.claim,
                        "claim_text": claim.claim_text, "check": claim.check, "group": group, **v,
                        "thesis": on_thesis["verdict"] if on_thesis else "no table"})
    return out
