"""Best-known norms, AttackBench optimality and security curves (foolkit.evaluation.optimality)."""
import math

import numpy as np
import pytest
import torch

import foolkit as fk
from conftest import make_affine
from foolkit.cli import main
from foolkit.evaluation import Store
from foolkit.evaluation import optimality as opt

torch.set_num_threads(1)
INF = math.inf


def record(idx, label, pred, l2, linf, fooled=True, x_l2=10.0, x_linf=1.0):
    """One synthetic per-sample record: misclassified when pred != label (then not attacked)."""
    attacked = pred == label
    ok = attacked and fooled
    return {"idx": idx, "label": label, "pred": pred, "clean_conf": 0.9, "attacked": attacked, "target": None,
            "adv_label": (label + 1) % 10 if ok else pred, "adv_conf": 0.6, "success": ok, "verified": ok,
            "q_label": (label + 1) % 10 if ok else pred, "q_conf": 0.6, "verified_q": ok, "quant_lost": False,
            "l0": 5.0 if attacked else 0.0, "pixels": 0.1, "l2": l2 if attacked else 0.0,
            "linf": linf if attacked else 0.0, "x_l2": x_l2, "x_linf": x_linf, "xc_l2": None, "xc_linf": None,
            "iterations": 1, "seconds": 0.01, "in_fit": False, "batch": 0}


def add_run(store, run_id, attack, params, rows, model="m1", title=None):
    config = {"model": {"identity": model}, "data": {"dataset": "toy", "n": 4}, "seed": 0,
              "attack": {"name": attack, "params": params}}
    store.ensure_run(run_id, config, len(rows), title or f"toy {attack}")
    assert store.insert_batch(run_id, rows)


@pytest.fixture
def toy(tmp_path):
    """Four images: #0 misclassified; a strong and a weak L2 attack; the weak one fails on #3;
    an FGSM run (fixed L∞ budget 0.1); and a run of another model that must not mix in."""
    path = tmp_path / "toy.db"
    with Store(path) as s:
        add_run(s, "strong", "deepfool", {"norm": 2.0},
                [record(0, 1, 2, 0, 0), record(1, 3, 3, 1.0, 0.2), record(2, 4, 4, 2.0, 0.3),
                 record(3, 5, 5, 3.0, 0.5)])
        add_run(s, "weak", "deepfool", {"norm": 2.0, "overshoot": 0.5},
                [record(0, 1, 2, 0, 0), record(1, 3, 3, 1.5, 0.1), record(2, 4, 4, 2.0, 0.3),
                 record(3, 5, 5, 0.5, 0.05, fooled=False)])
        add_run(s, "fgsm", "fgsm", {"eps": 0.1},
                [record(0, 1, 2, 0, 0), record(1, 3, 3, 4.0, 0.1), record(2, 4, 4, 4.0, 0.1, fooled=False),
                 record(3, 5, 5, 4.0, 0.1, fooled=False)])
        add_run(s, "other", "deepfool", {"norm": 2.0}, [record(1, 3, 3, 0.01, 0.001)], model="m2",
                title="other deepfool")
    return path


def test_distances_count_misclassified_as_zero_and_failures_as_infinity():
    recs = [record(0, 1, 2, 0, 0), record(1, 3, 3, 1.0, 0.2), record(2, 4, 4, 0.7, 0.1, fooled=False)]
    recs.append(dict(record(3, 5, 5, 0.4, 0.1), verified=False))  # claimed, refuted by the fresh pass
    idx, d = opt.run_distances(recs, "2")
    assert idx.tolist() == [0, 1, 2, 3]
    assert d.tolist() == [0.0, 1.0, INF, INF]


def test_best_known_is_the_per_image_minimum_over_runs():
    idx, best = opt.best_known([(np.array([0, 1, 2]), np.array([1.0, INF, 3.0])),
                                (np.array([1, 2, 5]), np.array([2.0, 0.5, INF]))])
    assert idx.tolist() == [0, 1, 2, 5]
    assert best.tolist() == [1.0, 2.0, 0.5, INF]


def test_optimality_hand_computed():
    best = np.array([0.0, 1.0, 2.0])
    # eps_max = 2; A(best) = (0+1+2)/3 = 1; clean acc 2/3, so the "nothing found" area is 4/3.
    # A(attack) = (0+1.5+2)/3 = 7/6: optimality = 1 - (7/6 - 1) / (4/3 - 1) = 0.5
    assert opt.optimality(np.array([0.0, 1.5, 2.0]), best) == pytest.approx(0.5, abs=1e-12)
    assert opt.optimality(best, best) == pytest.approx(1.0, abs=1e-12)
    assert opt.optimality(np.array([0.0, INF, INF]), best) == pytest.approx(0.0, abs=1e-12)
    # a failure counts as infinity, clipped to eps_max: worse than any finite norm below eps_max
    assert opt.optimality(np.array([0.0, INF, 2.0]), best) < opt.optimality(np.array([0.0, 1.9, 2.0]), best)
    assert opt.optimality(np.array([0.0, INF]), np.array([0.0, INF])) is None  # nothing fooled: undefined


def test_security_curve_starts_at_clean_accuracy_and_ends_at_zero():
    d = np.array([0.0, 0.3, 0.1, 0.3, 2.0])
    eps, acc = opt.curve_steps(d, 2.5)
    assert acc[0] == pytest.approx(0.8)  # 4 of 5 classified correctly
    assert np.all(np.diff(acc) <= 0) and np.all(np.diff(eps) > 0)
    assert acc[-1] == 0.0  # every image fooled at eps 2.5
    assert opt.robust_accuracy(d, [0.1, 0.29, 0.3]).tolist() == pytest.approx([0.6, 0.6, 0.2])
    assert opt.robust_accuracy(np.array([0.2, INF]), 100.0)[0] == 0.5  # a failure stays robust


def test_frontier_of_a_store(toy):
    groups = opt.frontier(toy)
    assert [g.model for g in groups] == ["toy", "other"]
    g = groups[0]
    assert g.idx.tolist() == [0, 1, 2, 3]
    assert g.best["2"].tolist() == [0.0, 1.0, 2.0, 3.0]  # m2's 0.01 on #1 does not mix in
    assert g.best["inf"].tolist() == pytest.approx([0.0, 0.1, 0.3, 0.5])  # the weak run's L∞ on #1 and FGSM's
    by = {r.run_id: r for r in g.runs}
    assert by["fgsm"].fixed and by["fgsm"].threat == "inf" and by["fgsm"].budget == pytest.approx(0.1)
    assert by["strong"].threat == "2" and not by["strong"].fixed
    rows = {r["run_id"]: r for s in opt.summarize(groups) if s["model"] == "toy" and s["norm"] == "2"
            for r in s["rows"]}
    assert rows["strong"]["optimality"] == pytest.approx(1.0)
    # weak: [0, 1.5, 2, inf] against [0, 1, 2, 3]: eps_max 3, A* = 6/4, worst 9/4, A = 6.5/4 -> 1 - 0.5/3
    assert rows["weak"]["optimality"] == pytest.approx(1 - 0.5 / 3)
    # rho gap on the images each attacked (#1-#3, ||x||_2 = 10): strong 0.2 vs 0.2; weak stores 0.5 on its failure
    assert rows["strong"]["rho"] == pytest.approx(0.2) and rows["strong"]["gap"] == pytest.approx(0.0)
    assert rows["weak"]["rho"] == pytest.approx(0.4 / 3 * 1.0) and rows["weak"]["best_rho"] == pytest.approx(0.2)
    assert rows["weak"]["gap"] == pytest.approx(0.2 / (0.4 / 3) - 1)


def test_show_best(toy, capsys):
    assert main(["show", str(toy), "--best"]) == 0
    out = capsys.readouterr().out
    assert "toy, L2: best-known ρ̂2 = 0.2000 over 3 images" in out
    assert "optimality 1.000; ρ̂2 = 0.2000, best known 0.2000 (+0 %)" in out
    assert "optimality 0.833" in out
    assert "toy, L∞: best-known ρ̂∞ = " in out
    assert "fgsm  optimality " in out.split("toy, L∞")[1] and "(fixed budget)" in out


def test_curves_for_the_report(toy):
    g = opt.frontier(toy)[0]
    lines, notes = opt.curves(g, "inf")
    assert [c["label"] for c in lines] == ["fgsm (fixed ε)", "best known"]
    assert lines[0]["point"] == pytest.approx((0.1, 0.5))  # #2, #3 not fooled at 0.1
    with Store(toy) as s:  # FGSM's float32 L∞ a rounding error above its eps: still fooled within the budget
        add_run(s, "fgsm32", "fgsm", {"eps": 0.1}, [record(1, 3, 3, 4.0, 0.1 + 1e-8), record(2, 4, 4, 4.0, 0.1)])
    g = opt.frontier(toy)[0]
    lines, _ = opt.curves(g, "inf")
    assert lines[1]["point"] == pytest.approx((0.1, 0.0))
    lines, _ = opt.curves(g, "2")
    assert lines[-1]["best"] and lines[-1]["acc"][0] == pytest.approx(0.75) and lines[-1]["acc"][-1] == 0


def test_on_real_attacks_deepfool_is_optimal_against_a_larger_overshoot(tmp_path, capsys):
    """An affine model: DeepFool's L2 step is exact, so overshoot 0.5 is about 1.5/1.02 times larger."""
    path = tmp_path / "real.db"
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = make_affine(shape=(3, 8, 8), seed=1, dtype=torch.float32)
    fk.evaluate(model, fk.attacks.DeepFool(norm=2, clip=False), x, path, batch_size=6)
    fk.evaluate(model, fk.attacks.DeepFool(norm=2, clip=False, overshoot=0.5), x, path, batch_size=6)
    [g] = opt.frontier(path)
    [s] = [s for s in opt.summarize([g]) if s["norm"] == "2"]
    strong, weak = s["rows"]
    assert strong["optimality"] == pytest.approx(1.0, abs=1e-9)
    assert 0 < weak["optimality"] < 0.9
    assert weak["gap"] == pytest.approx(1.02 / 1.5 - 1, abs=0.02)
