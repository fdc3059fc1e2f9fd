"""foolkit.metrics: the thesis's definitions (sec. 11.3) on hand-made per-sample records."""
import math

import numpy as np
import pytest

from foolkit import metrics


def record(idx, label=0, pred=0, success=False, verified=None, verified_q=None, adv_label=None, q_label=None,
           adv_conf=0.5, l2=0.0, linf=0.0, x_l2=10.0, x_linf=1.0, pixels=0.0, iterations=1, seconds=0.01,
           in_fit=False, xc_l2=5.0, xc_linf=0.5):
    attacked = pred == label
    verified = success if verified is None else verified
    verified_q = verified if verified_q is None else verified_q
    if adv_label is None:
        adv_label = (label + 1) % 10 if (attacked and verified) else pred
    if q_label is None:
        q_label = adv_label if verified_q else pred
    return {"idx": idx, "label": label, "pred": pred, "attacked": attacked, "success": success and attacked,
            "verified": verified and attacked, "verified_q": verified_q and attacked, "adv_label": adv_label,
            "q_label": q_label, "adv_conf": adv_conf, "clean_conf": 0.9, "l0": 3 * pixels * 1024, "l2": l2,
            "linf": linf, "x_l2": x_l2, "x_linf": x_linf, "xc_l2": xc_l2, "xc_linf": xc_linf, "pixels": pixels,
            "iterations": iterations if attacked else 0, "seconds": seconds if attacked else 0.0, "in_fit": in_fit}


@pytest.fixture
def records():
    return [
        # four correctly classified (D'test): three fooled, one not
        record(0, success=True, adv_conf=0.6, l2=1.0, linf=0.1, x_l2=10, x_linf=0.5, pixels=0.01, iterations=2,
               seconds=0.2),
        record(1, success=True, adv_conf=0.8, l2=2.0, linf=0.2, x_l2=20, x_linf=1.0, pixels=0.03, iterations=3,
               seconds=0.2),
        record(2, success=True, verified_q=False, adv_conf=0.7, l2=0.5, linf=0.05, x_l2=10, x_linf=1.0,
               pixels=0.02, iterations=1, seconds=0.2),
        record(3, success=False, adv_conf=0.99, l2=4.0, linf=0.4, x_l2=40, x_linf=1.0, pixels=1.0, iterations=5,
               seconds=0.4),
        # misclassified: not attacked, must not count anywhere but accuracy
        record(4, label=1, pred=2, l2=0.0, linf=0.0),
    ]


def test_thesis_definitions(records):
    m = metrics.compute(records)
    assert m["n"] == 5 and m["n_attacked"] == 4 and m["n_fooled"] == 3
    assert m["accuracy"] == pytest.approx(4 / 5)
    # fooling rate over D'test (sec. 11.3)
    assert m["fooling_rate"] == pytest.approx(3 / 4)
    assert m["fooling_rate_8bit"] == pytest.approx(2 / 4)
    assert m["n_quant_lost"] == 1
    # accuracy under attack: the one not fooled stays correct, the misclassified one stays wrong
    assert m["accuracy_under_attack"] == pytest.approx(1 / 5)
    assert m["accuracy_under_attack_8bit"] == pytest.approx(2 / 5)
    # average confidence over the fooled adversarial images (the thesis code divides by #fooled)
    assert m["avg_confidence"] == pytest.approx((0.6 + 0.8 + 0.7) / 3)
    # Δ̂ and ρ̂ over all of D'test, failures included (formula of sec. 11.3, thesis attack_model)
    assert m["delta_2"] == pytest.approx((1 + 2 + 0.5 + 4) / 4)
    assert m["delta_inf"] == pytest.approx((0.1 + 0.2 + 0.05 + 0.4) / 4)
    assert m["rho_2"] == pytest.approx((1 / 10 + 2 / 20 + 0.5 / 10 + 4 / 40) / 4)
    assert m["rho_inf"] == pytest.approx((0.1 / 0.5 + 0.2 + 0.05 + 0.4) / 4)
    # the same over fooled samples only
    assert m["delta_2_fooled"] == pytest.approx(3.5 / 3)
    assert m["rho_2_fooled"] == pytest.approx((0.1 + 0.1 + 0.05) / 3)
    # with the thesis tables' ||x - mean|| (5.0 and 0.5 in every record)
    assert m["rho_2_centered"] == pytest.approx(7.5 / 4 / 5.0)
    assert m["rho_inf_centered"] == pytest.approx(0.75 / 4 / 0.5)
    # median % of pixels changed per fooling sample (Table 12.6)
    assert m["median_pixels_pct"] == pytest.approx(2.0)
    # time and iterations per attacked image
    assert m["ms_per_image"] == pytest.approx(1000 * 1.0 / 4)
    assert m["avg_iterations"] == pytest.approx((2 + 3 + 1 + 5) / 4)
    assert "fooling_rate_fit" not in m


def test_claimed_but_not_verified_is_not_fooled(records):
    records[1]["verified"] = False
    records[1]["verified_q"] = False
    m = metrics.compute(records)
    assert m["n_claimed"] == 3 and m["n_fooled"] == 2
    assert m["fooling_rate"] == pytest.approx(2 / 4)
    assert m["fooling_rate_claimed"] == pytest.approx(3 / 4)


def test_columns_input_equals_rows(records):
    cols = {k: [r[k] for r in records] for k in records[0]}
    a, b = metrics.compute(records), metrics.compute(cols)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], nan_ok=True)


def test_universal_fit_and_unseen():
    rows = [record(i, success=i % 2 == 0, in_fit=i < 4) for i in range(10)]
    m = metrics.compute(rows)
    # in X: 0, 2 fooled of 0..3; unseen: 4, 6, 8 fooled of 4..9
    assert m["fooling_rate_fit"] == pytest.approx(2 / 4)
    assert m["fooling_rate_unseen"] == pytest.approx(3 / 6)
    assert m["n_fit"] == 4 and m["n_unseen"] == 6


def test_empty_and_undefined():
    assert metrics.compute([])["n"] == 0
    rows = [record(0, label=1, pred=2), record(1, success=False, l2=1.0)]
    m = metrics.compute(rows)
    assert m["n_attacked"] == 1 and m["fooling_rate"] == 0
    assert math.isnan(m["avg_confidence"]) and math.isnan(m["median_pixels_pct"])
    only_wrong = metrics.compute([record(0, label=1, pred=2)])
    assert math.isnan(only_wrong["fooling_rate"]) and math.isnan(only_wrong["delta_2"])
    # NULL norms from SQLite (NaN is stored as NULL) are read as nan, not an error
    rows[1]["xc_l2"] = None
    assert math.isnan(metrics.compute(rows)["rho_2_centered"])


def test_missing_columns_raise():
    with pytest.raises(ValueError, match="lack the columns"):
        metrics.compute([{"label": 0, "pred": 0}])


def test_format_table(records):
    rows = [("run a", metrics.compute(records)), ("universal", metrics.compute(
        [record(i, success=i % 2 == 0, in_fit=i < 4) for i in range(10)]))]
    text = metrics.format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4
    assert "fool%" in lines[0] and "Δ̂2" in lines[0] and "ρ̂∞" in lines[0]
    assert " 75.0 " in lines[2]
    assert "[X 50.0% / unseen 50.0%]" in lines[3]
    assert "n/a" in metrics.format_table([("x", metrics.compute([record(0, label=1, pred=2)]))])
    assert "lost to 8-bit" in metrics.describe(rows[0][1])
    assert np.isfinite(rows[0][1]["delta_2"])
