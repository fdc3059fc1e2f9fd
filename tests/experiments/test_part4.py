"""Issues #21 / #22 in ``foolkit reproduce``: the stronger-attack table beside 12.3/12.5 and
"Part IV, measured" — plans in every size, the planner's budget, verdicts that can fail, render
on tiny fake results, and a tiny end-to-end run."""
from __future__ import annotations

import math

import numpy as np
import pytest

from foolkit.experiments import EXPERIMENTS, get
from foolkit.experiments.plan import estimate_seconds
from foolkit.experiments.model_map import parse_models
from foolkit.experiments.plan import plan
from foolkit.experiments.sizes import QUICK_ONLY_IF_SELECTED
from foolkit.experiments.verdicts import check_claim

STRONGER, PART4 = "table-12.3-stronger", "part-iv"


# ------------------------------------------------------------------------------ plans
@pytest.mark.parametrize("sizes", ["quick", "cpu", "thesis"])
def test_new_experiments_plan_their_attacks_in_every_size(sizes):
    mm = parse_models(None)
    quick, cpu = sizes == "quick", sizes == "cpu"
    st = plan(get(STRONGER), mm, quick, 1000, "", cpu)
    attacks = {(t.attack, str(t.params.get("norm"))) for t in st.tasks}
    assert attacks == {("deepfool", "2"), ("deepfool", "inf"), ("superdeepfool", "2"), ("fmn", "2"), ("fmn", "inf")}
    assert len({t.choice for t in st.tasks}) == 4
    # DeepFool on the images of Table 12.3 (same n, same parameters: the store shares the runs)
    df_n = max(t.n for t in plan(get("deepfool-l2"), mm, quick, 1000, "", cpu).tasks if t.role == "main")
    assert {t.n for t in st.tasks if t.attack == "deepfool"} == {df_n}
    assert all(t.n <= df_n for t in st.tasks)
    p4 = plan(get(PART4), mm, quick, 1000, "", cpu)
    assert {t.attack for t in p4.tasks} == {"deepfool", "sparsefool", "onepixel", "fgsm"}
    assert p4.extra_ms > 0
    if quick:
        assert {t.n for t in st.tasks if t.attack != "deepfool"} == {16}
        assert {t.params["steps"] for t in st.tasks if t.attack == "fmn"} == {50}


def test_quick_plan_stays_within_budget_and_part_iv_only_when_selected():
    mm = parse_models(None)
    plans = {e.id: plan(e, mm, True, 1000, "") for e in EXPERIMENTS}
    for key in QUICK_ONLY_IF_SELECTED:
        plans[key].tasks, plans[key].extra_ms = [], 0.0
    assert estimate_seconds(plans) <= 8.5 * 60
    p4 = plan(get(PART4), mm, True, 1000, "")
    assert estimate_seconds({PART4: p4}) <= 3 * 60  # `--quick --only part-iv`, adversarial training included
    # the adversarially trained model's runs are in the estimate (costed as its base, a ResNet-20)
    from foolkit.experiments.part4_advtrain import estimate_ms
    assert 0 < estimate_ms(p4.tasks) < p4.extra_ms


# ------------------------------------------------------------------------------ verdicts
def _stronger_results(df: dict, best: dict, se: float = 0.001, models=("a", "b", "c")) -> dict:
    frontier = {m: {"n": 50, "norms": {"2": {"best": [best[m], se], "n_rho": 50, "d_best": [0.1, None],
                                             "runs": {"deepfool": {"rho": df[m], "se": se, "optimality": 0.7}}}}}
                for m in models}
    cols = dict(zip(("ResNet-50", "DenseNet-169", "MobileNetV2"), models))
    return {"columns": cols, "dedicated": list(cols), "experiments": {
        STRONGER: {"status": "done", "points": [], "frontier": frontier}}}


def _claim(exp_id: str, quantity: str):
    return next(c for c in get(exp_id).claims if c.quantity == quantity)


def test_ranking_claim_holds_fails_and_ties_are_inconclusive():
    exp, claim = get(STRONGER), _claim(STRONGER, "rank:2")
    same = _stronger_results({"a": 0.03, "b": 0.02, "c": 0.01}, {"a": 0.02, "b": 0.014, "c": 0.007})
    assert check_claim(exp, claim, same)["verdict"] == "holds"
    swapped = _stronger_results({"a": 0.03, "b": 0.02, "c": 0.01}, {"a": 0.007, "b": 0.014, "c": 0.02})
    assert check_claim(exp, claim, swapped)["verdict"] == "does not hold"
    noisy = _stronger_results({"a": 0.03, "b": 0.02, "c": 0.01}, {"a": 0.007, "b": 0.014, "c": 0.02}, se=0.02)
    assert check_claim(exp, claim, noisy)["verdict"] == "inconclusive"
    one = _stronger_results({"a": 0.03}, {"a": 0.02}, models=("a",))
    assert check_claim(exp, claim, one)["verdict"] == "not checkable"


def _growth(log_ratio: float, se: float) -> dict:
    return {"layers": ["conv1", "logits"], "adversarial": [1, 2], "random": [1, 1], "ratio": [math.exp(log_ratio), 3],
            "n": 20, "first_log_ratio": log_ratio, "first_log_se": se, "first_amplified": "logits"}


def _part4_results(growth: dict | None = None, recovery: dict | None = None, quant: dict | None = None) -> dict:
    m = {"n": 20, "growth": {"deepfool": growth} if growth else {}, "recovery": {"fgsm": recovery} if recovery else {},
         "quant": quant or {}, "lipschitz": {"L": 1.0, "L_certified": 2.0, "layers": [["conv1", "conv", 2.0]]},
         "acquisition_clean_accuracy": {"rate": 0.8, "n": 18}}
    return {"columns": {}, "dedicated": [], "experiments": {
        PART4: {"status": "done", "points": [], "part4": {"models": {"cifar10/resnet20": m}, "advtrained": []}}}}


def test_first_layer_claim_can_fail_and_ties_are_inconclusive():
    exp, claim = get(PART4), _claim(PART4, "first_layer:deepfool")
    assert check_claim(exp, claim, _part4_results(_growth(0.5, 0.05)))["verdict"] == "holds"
    assert check_claim(exp, claim, _part4_results(_growth(-0.5, 0.05)))["verdict"] == "does not hold"
    assert check_claim(exp, claim, _part4_results(_growth(0.05, 0.05)))["verdict"] == "inconclusive"
    assert check_claim(exp, claim, _part4_results())["verdict"] == "not checkable"


def test_recovery_claim_uses_the_binomial_margin():
    exp, claim = get(PART4), _claim(PART4, "recovery:fgsm")
    assert check_claim(exp, claim, _part4_results(recovery={"rate": 0.9, "n": 200}))["verdict"] == "holds"
    assert check_claim(exp, claim, _part4_results(recovery={"rate": 0.1, "n": 200}))["verdict"] == "does not hold"
    assert check_claim(exp, claim, _part4_results(recovery={"rate": 0.6, "n": 10}))["verdict"] == "inconclusive"


def _q(rho: float, fr: float, n: int = 200) -> dict:
    se = {"rho_2_centered": 0.0005}
    return {"deepfool": {"metrics": {"rho_2_centered": rho, "n_attacked": n}, "se": se},
            "fgsm": {"metrics": {"fooling_rate": fr, "n_attacked": n}, "se": {}}}


def test_quantization_claim_can_fail():
    exp, claim = get(PART4), _claim(PART4, "quant:8")
    worse = {"full": {"accuracy": 0.9, **_q(0.02, 0.5)}, "8": {"accuracy": 0.9, **_q(0.01, 0.8)}}
    better = {"full": {"accuracy": 0.9, **_q(0.01, 0.8)}, "8": {"accuracy": 0.9, **_q(0.02, 0.5)}}
    same = {"full": {"accuracy": 0.9, **_q(0.02, 0.5)}, "8": {"accuracy": 0.9, **_q(0.0201, 0.51)}}
    assert check_claim(exp, claim, _part4_results(quant=worse))["verdict"] == "holds"
    assert check_claim(exp, claim, _part4_results(quant=better))["verdict"] == "does not hold"
    assert check_claim(exp, claim, _part4_results(quant=same))["verdict"] == "inconclusive"
    for q in ("quant:ortho", "advtrain"):
        assert check_claim(exp, _claim(PART4, q), _part4_results(quant=worse))["verdict"] == "not checkable"


def test_orthogonality_regularised_quantization_claim_can_fail():
    """"Orthogonality-regularised quantization does not make networks more vulnerable": judged on
    the regularised models' own full-precision vs 8/4-bit runs (``part4["ortho"]``)."""
    exp, claim = get(PART4), _claim(PART4, "quant:ortho")

    def with_ortho(four: dict, eight: dict | None = None) -> dict:
        res = _part4_results()
        quant = {"full": {"accuracy": 0.9, **_q(0.02, 0.5)}, "8": {"accuracy": 0.9, **(eight or _q(0.0201, 0.51))},
                 "4": {"accuracy": 0.85, **four}}
        res["experiments"][PART4]["part4"]["ortho"] = {"cifar10/resnet20_ortho": {
            "beta": 1e-3, "base": "cifar10/resnet20", "n": 200, "quant": quant}}
        return res

    # 4-bit: a higher FGSM fooling rate and a smaller rho beyond the noise -> more vulnerable
    assert check_claim(exp, claim, with_ortho(_q(0.01, 0.8)))["verdict"] == "does not hold"
    # both bit widths less vulnerable beyond the noise -> holds
    assert check_claim(exp, claim, with_ortho(_q(0.03, 0.2), _q(0.03, 0.2)))["verdict"] == "holds"
    # everything within the noise -> inconclusive, not "holds"
    assert check_claim(exp, claim, with_ortho(_q(0.0201, 0.51)))["verdict"] == "inconclusive"
    failed = _part4_results()
    failed["experiments"][PART4]["part4"]["ortho"] = {"cifar10/resnet20_ortho": {"error": "ModelError: gone"}}
    assert check_claim(exp, claim, failed)["verdict"] == "not checkable"


def test_the_shipped_orthogonality_regularised_model_is_found_by_its_card():
    from foolkit.experiments.part4_ortho import ortho_models
    found = ortho_models()
    assert found["cifar10/resnet20_ortho"] == {"beta": 1e-3, "base": "cifar10/resnet20"}
    assert "cifar10/resnet20" not in found and "cifar10/resnet20_advfgsm" not in found


def _adv_point(fr: float, within: float | None, rho: float | None = None, n: int = 200) -> dict:
    return {"run_id": "r", "metrics": {"fooling_rate": fr, "n_attacked": n, "rho_2_centered": rho,
                                       "rho_inf_centered": rho}, "se": {}, "within": {"rate": within, "n": n}}


def _advtrain(df: float, op: float, n: int = 200) -> dict:
    """Base fooled everywhere; the defended model's DeepFool L2 / L-inf and SparseFool fool ``df``
    of the images inside the eps ball, One Pixel ``op``."""
    runs = [("FGSM eps 0.0314 (training eps)", "fgsm", _adv_point(0.9, 0.9), _adv_point(0.3, 0.3)),
            ("DeepFool L2", "deepfool", _adv_point(1.0, 0.95, 0.01), _adv_point(1.0, df, 0.02)),
            ("DeepFool L∞", "deepfool", _adv_point(1.0, 0.98, 0.01), _adv_point(1.0, df, 0.03)),
            ("SparseFool", "sparsefool", _adv_point(1.0, 0.0, 0.05), _adv_point(1.0, 0.0, 0.06)),
            ("One Pixel", "onepixel", _adv_point(0.3, 0.0), _adv_point(op, 0.0))]
    return {"cifar10/resnet20_advfgsm": {
        "base": "cifar10/resnet20", "eps": 8 / 255, "n": n,
        "runs": [{"label": label, "attack": a, "params": {}, "base": b, "adv": d} for label, a, b, d in runs]}}


def _with_advtrain(adv: dict) -> dict:
    res = _part4_results()
    res["experiments"][PART4]["part4"].update(advtrained=list(adv), advtrain=adv)
    return res


def test_advtrain_claim_holds_fails_and_ties_are_inconclusive():
    exp, claim = get(PART4), _claim(PART4, "advtrain")
    held = check_claim(exp, claim, _with_advtrain(_advtrain(0.8, 0.1)))
    assert held["verdict"] == "holds" and "DeepFool L∞: 80.0 %" in held["measured"] and "x3.00" in held["measured"]
    # every other attack fails to fool half the defended images within budget, beyond the noise
    assert check_claim(exp, claim, _with_advtrain(_advtrain(0.1, 0.2)))["verdict"] == "does not hold"
    # One Pixel's rate alone (its own budget) is enough to hold
    assert check_claim(exp, claim, _with_advtrain(_advtrain(0.1, 0.9)))["verdict"] == "holds"
    # 55 % of 20 images is within 2 binomial standard errors of 50 %
    assert check_claim(exp, claim, _with_advtrain(_advtrain(0.55, 0.1, n=20)))["verdict"] == "inconclusive"
    failed = _with_advtrain({"cifar10/resnet20_advfgsm": {"base": "cifar10/resnet20", "eps": 0.03, "n": 20,
                                                          "runs": [], "error": "OSError: no checkpoint"}})
    v = check_claim(exp, claim, failed)
    assert v["verdict"] == "not checkable" and "no checkpoint" in v["reason"]


def test_advtrained_models_are_read_from_their_cards():
    from foolkit.experiments.part4_advtrain import advtrained, runs
    found = advtrained()
    assert found["cifar10/resnet20_advfgsm"]["base"] == "cifar10/resnet20"
    assert found["cifar10/resnet20_advfgsm"]["eps"] == pytest.approx(8 / 255)
    assert "cifar10/resnet20" not in found
    # part-iv's own parameters where the spec says so (quick One Pixel), the spec's otherwise
    p4 = plan(get(PART4), parse_models(None), True, 1000, "")
    r = {label: (attack, params) for label, attack, params in runs(p4.tasks)}
    assert r["One Pixel"][1]["population"] == 20 and r["DeepFool L∞"][1] == {"norm": "inf"}
    assert r["FGSM eps 0.01"][1]["eps"] == 0.01 and r["DeepFool L2"][1] == {"norm": 2}


# ------------------------------------------------------------------------------ render
def test_render_blocks_on_tiny_fake_results(tmp_path):
    from foolkit.experiments import part4, stronger
    res = _stronger_results({"a": 0.03, "b": 0.02, "c": 0.01}, {"a": 0.02, "b": 0.014, "c": 0.007})
    b = stronger.blocks(get(STRONGER), res["experiments"][STRONGER], res, "", tmp_path)
    tables = [blk for blk in b if blk[0] == "table"]
    assert tables and tables[0][2][0][0] == "a" and "0.0300" in tables[0][2][0][2]
    assert [blk for blk in b if blk[0] == "img"] and (tmp_path / "figures" / "stronger-security-curves-2.png").is_file()
    quant = {"full": {"accuracy": 0.9, **_q(0.02, 0.5)}, "8": {"accuracy": 0.9, **_q(0.01, 0.8)}}
    res = _part4_results(_growth(0.5, 0.05), {"rate": 0.9, "n": 20}, quant)
    b = part4.blocks(get(PART4), res["experiments"][PART4], res, "", tmp_path)
    text = repr(b)
    assert "conv1" in text and "90.0 % of 20" in text and "8-bit" in text
    assert (tmp_path / "figures" / "part-iv-growth-cifar10_resnet20.png").is_file()
    assert "Not measured: no adversarially trained model" in text
    res = _with_advtrain(_advtrain(0.8, 0.1))
    b = part4.blocks(get(PART4), res["experiments"][PART4], res, "", tmp_path)
    table = next(blk for blk in b if blk[0] == "table" and "attack" in blk[1] and "ρ̂ change" in blk[1])
    row = {r[1]: r for r in table[2]}
    assert set(row) == {"FGSM eps 0.0314 (training eps)", "DeepFool L2", "DeepFool L∞", "SparseFool", "One Pixel"}
    assert row["DeepFool L∞"][2:] == ["100.0 %", "100.0 %", "98.0 %", "80.0 %", "0.01", "0.03", "x3.00"]
    assert row["One Pixel"][4:7] == ["30.0 %", "10.0 %", "—"]
    assert row["FGSM eps 0.0314 (training eps)"][2:] == ["90.0 %", "30.0 %", "—", "—", "—", "—", "—"]


def test_model_frontier_takes_the_smallest_verified_norm_per_image():
    from foolkit.experiments.stronger import model_frontier

    def recs(l2):
        return [{"idx": i, "label": 0, "pred": 0, "attacked": 1, "success": v is not None, "verified": v is not None,
                 "l2": v if v is not None else 9.0, "linf": 0.1, "xc_l2": 10.0, "xc_linf": 0.5}
                for i, v in enumerate(l2)]
    f = model_frontier([("deepfool", "2", recs([0.4, 0.6, None])), ("fmn", "2", recs([0.2, 0.8, 0.5]))])
    e = f["norms"]["2"]
    assert e["d_best"] == [0.2, 0.6, 0.5]
    assert e["best"][0] == pytest.approx(np.mean([0.02, 0.06, 0.05]))
    # AttackBench clips at eps_max = the largest finite best known (0.6): FMN's 0.8 counts as 0.6
    assert e["runs"]["fmn"]["optimality"] == pytest.approx(1.0)
    assert e["runs"]["deepfool"]["optimality"] < 0.9


# ------------------------------------------------------------------------------ end to end
def test_tiny_end_to_end_run(tmp_path):
    from foolkit.experiments.reproduce import reproduce
    md = reproduce(tmp_path / "r", quick=True, only=[STRONGER], models=["cifar10/resnet20"], progress=False,
                   n_override=2, log=lambda *a, **k: None)
    text = md.read_text()
    assert "ρ̂2 SuperDeepFool" in text and "stronger-security-curves-2.png" in text
    assert "the model ranking by ρ̂2 under DeepFool" in text


def test_part_iv_survives_universal_points_whose_store_is_gone(tmp_path):
    """results.json keeps universal-l2's points from an earlier invocation; when their runs are not
    in this store, Part IV measures without universal pairs instead of failing."""
    import json

    from foolkit.experiments.reproduce import reproduce
    out = tmp_path / "r"
    kwargs = dict(quick=True, only=[PART4], models=["cifar10/resnet20"], progress=False, n_override=2,
                  log=lambda *a, **k: None)
    reproduce(out, **kwargs)
    results = json.loads((out / "results.json").read_text())
    results["experiments"]["universal-l2"] = {"status": "done", "points": [
        {"model": "cifar10/resnet20", "attack": "universal", "run_id": "0123456789abcdef", "attack_params": {},
         "params": {}, "metrics": {}}]}
    (out / "results.json").write_text(json.dumps(results))
    reproduce(out, **kwargs)
    entry = json.loads((out / "results.json").read_text())["experiments"][PART4]
    assert entry["status"] == "done", entry.get("traceback")
    assert "universal" not in entry["part4"]["models"]["cifar10/resnet20"]["growth"]
