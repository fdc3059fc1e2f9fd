"""foolkit.evaluation.metrics: the thesis's definitions (sec. 11.3) on hand-made per-sample records."""
import math

import numpy as np
import pytest

from foolkit.evaluation import metrics


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
    # one attacked, none fooled: the fooling rate is a defined 0; means over the fooled are not
    assert m["n_attacked"] == 1 and m["fooling_rate"] == 0
    assert m["avg_confidence"] is None and m["median_pixels_pct"] is None and m["median_l0"] is None
    # every image misclassified: nothing attacked, every rate over D'test is undefined -> None
    only_wrong = metrics.compute([record(0, label=1, pred=2)])
    for key in ("fooling_rate", "fooling_rate_8bit", "fooling_rate_claimed", "delta_2", "rho_inf",
                "ms_per_image", "avg_iterations"):
        assert only_wrong[key] is None, key
    assert only_wrong["accuracy"] == 0 and only_wrong["n_attacked"] == 0
    # universal: an empty unseen part gives None for its rate, the fit part stays a number
    uni = metrics.compute([record(i, success=True, in_fit=True) for i in range(3)] + [record(3, label=1, pred=2)])
    assert uni["fooling_rate_fit"] == 1 and uni["fooling_rate_unseen"] is None
    # NULL norms from SQLite (NaN is stored as NULL) are read as nan, not an error; the mean is None
    rows[1]["xc_l2"] = None
    assert metrics.compute(rows)["rho_2_centered"] is None
    # no nan anywhere: every value is a number or None (JSON-safe)
    for result in (m, only_wrong, uni, metrics.compute(rows)):
        assert not any(isinstance(v, float) and math.isnan(v) for v in result.values())


def test_undefined_shown_as_na_in_tables():
    only_wrong = metrics.compute([record(0, label=1, pred=2), record(1, label=3, pred=4)])
    table = metrics.format_table([("all misclassified", only_wrong)])
    row = table.splitlines()[2].split()
    assert row[:3] == ["all", "misclassified", "0"] and row[3:6] == ["n/a", "n/a", "n/a"]
    assert "nan" not in table
    assert "nan" not in metrics.describe(only_wrong)
    # a run with no image done yet (killed in its first batch): "n/a", never "n/a%"
    empty = metrics.describe(metrics.compute([]))
    assert "n/a%" not in empty and empty.startswith("accuracy n/a -> n/a under attack (n/a after"), empty
    assert metrics.describe(metrics.compute([record(0)])).startswith("accuracy 100.00% -> ")


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


def test_no_attacked_image_through_store_show_and_report(tmp_path, capsys):
    """Every image misclassified: fooling rate None in AttackResult, the store's metrics,
    `foolkit show` and the HTML report ("n/a"), never nan and never a crash."""
    import torch

    import foolkit as fk
    from conftest import make_affine
    from foolkit.cli import main
    from foolkit.report import write_report

    model = make_affine(dtype=torch.float32)
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        wrong = (model(x).argmax(1) + 1) % 10  # labels the model never predicts
    attack = fk.attacks.FGSM(eps=0.05)
    direct = attack(model, x, wrong)
    assert not direct.attacked.any() and direct.fooling_rate is None
    assert "n/a" in direct.summary()
    db = tmp_path / "none.db"
    run = fk.evaluate(model, attack, (x, wrong), store=db)
    m = run.metrics()
    assert m["n"] == 6 and m["n_attacked"] == 0 and m["fooling_rate"] is None and m["delta_2"] is None
    assert main(["show", str(db), "--details"]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "nan" not in out.lower().replace("nano", "")
    html = tmp_path / "r.html"
    write_report(db, html)
    text = html.read_text()
    assert "n/a" in text and ">nan<" not in text.lower() and "nan%" not in text.lower()
