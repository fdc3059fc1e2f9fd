"""``foolkit reproduce``: model mapping, selection, verdicts, the report's completeness, and a
small end-to-end run (two experiments, a handful of images) that resumes from its store."""
from __future__ import annotations

import json
import re

import pytest

from foolkit.experiments import EXPERIMENTS, get
from foolkit.experiments.plan import estimate_seconds, task_cost
from foolkit.experiments.model_map import parse_models
from foolkit.experiments.plan import plan, select
from foolkit.experiments.report_figures import FIGURE_IDS
from foolkit.experiments.report_tables import TABLE_IDS
from foolkit.experiments.reproduce import reproduce
from foolkit.experiments.reproduction_report import attack_seconds, build, to_html, to_markdown
from foolkit.experiments.thesis_tables import our_value
from foolkit.experiments.verdicts import check_claim


# ------------------------------------------------------------------------------ models
def test_default_models_are_the_compact_family_members_and_the_imagenet_model():
    mm = parse_models(None)
    assert {t: c.name for t, c in mm.columns.items()} == {
        "ResNet-50": "cifar10/resnet20", "DenseNet-169": "cifar10/densenet_bc40",
        "MobileNetV2": "cifar10/mobilenet_v2_050", "InceptionV3": "cifar10/inception_small_050"}
    assert mm.dedicated == set(mm.columns)
    assert {kind for _, _, kind in mm.describe()[:4]} == {"compact member of the family, trained by foolkit"}
    assert mm.imagenet.name == "imagenet/efficientnet-lite0"


def test_one_model_stands_in_for_every_column():
    mm = parse_models(["cifar10/resnet20"])
    assert {c.name for c in mm.columns.values()} == {"cifar10/resnet20"}
    assert mm.dedicated == set() and mm.imagenet is None
    assert mm.describe()[0][2] == "stand-in (another family)"


def test_thesis_models_map_to_their_columns_and_the_rest_to_the_stand_in():
    mm = parse_models(["cifar10/resnet20", "cifar10/resnet50=r50.pt", "MobileNetV2:cifar10/densenet169=x.pt"],
                      ["cifar10/resnet20=w.pt"])
    assert mm.columns["ResNet-50"].checkpoint == "r50.pt"
    assert mm.columns["MobileNetV2"].name == "cifar10/densenet169"
    assert mm.columns["DenseNet-169"].name == mm.columns["InceptionV3"].name == "cifar10/resnet20"
    assert mm.columns["InceptionV3"].checkpoint == "w.pt"
    assert mm.dedicated == {"ResNet-50", "MobileNetV2"}
    assert mm.imagenet is None


def test_bad_model_options():
    with pytest.raises(ValueError, match="--checkpoint"):
        parse_models(["cifar10/resnet20"], ["resnet20"])
    with pytest.raises(ValueError, match="does not list"):
        parse_models(["cifar10/resnet20"], ["cifar10/resnet50=x.pt"])
    with pytest.raises(ValueError, match="which column"):
        parse_models(["cifar10/resnet20", "cifar10/other"])


def test_select_by_experiment_table_or_figure_id():
    assert [e.id for e in select(["table-12.3", "figure-12.2"])] == ["fgsm-eps", "deepfool-l2"]
    assert [e.id for e in select(["table-12.10"])] == ["universal-l2", "universal-transfer"]
    assert select(None) == EXPERIMENTS
    with pytest.raises(ValueError, match="unknown"):
        select(["table-99.1"])


def test_quick_plans_are_smaller_and_keep_the_claimed_grid_points():
    mm = parse_models(["cifar10/resnet20"])
    for exp in EXPERIMENTS:
        full, quick = plan(exp, mm, False, 10000, ""), plan(exp, mm, True, 1000, "")
        assert sum(t.n for t in quick.tasks) <= sum(t.n for t in full.tasks), exp.id
        assert all(t.choice.name in ("cifar10/resnet20", "imagenet/efficientnet-lite0") for t in quick.tasks)
        for claim in exp.claims:
            for key, want in claim.at.items():
                if key == "diagonal" or want == "max":
                    continue
                grid = {t.point.get(key) for t in quick.tasks}
                wanted = want if isinstance(want, tuple) else (want,)
                assert any(w in grid for w in wanted), (exp.id, claim.claim, key)
    assert plan(get("deepfool-hires"), mm, True, 1000, "no ImageNet model").skip.startswith("not run")


def test_cpu_sizes_cut_samples_not_experiments_and_say_so():
    mm = parse_models(None)
    for exp in EXPERIMENTS:
        full, cpu = plan(exp, mm, False, 10000, ""), plan(exp, mm, False, 10000, "", cpu=True)
        assert cpu.skip == full.skip, exp.id
        assert sum(t.n for t in cpu.tasks) <= sum(t.n for t in full.tasks), exp.id
        # every model still runs, and every grid point a claim names is still there
        assert {t.choice for t in cpu.tasks} == {t.choice for t in full.tasks}, exp.id
        for claim in exp.claims:
            for key, want in claim.at.items():
                if key == "diagonal" or want == "max":
                    continue
                wanted = want if isinstance(want, tuple) else (want,)
                assert any(w in {t.point.get(key) for t in cpu.tasks} for w in wanted), (exp.id, claim.claim)
        cut = sum(map(task_cost, cpu.tasks)) < sum(map(task_cost, full.tasks))
        assert cut == any(n.startswith("CPU sizes") for n in cpu.notes), exp.id
    dfl = plan(get("deepfool-l2"), mm, False, 10000, "", cpu=True)
    assert {t.n for t in dfl.tasks if t.role == "main"} == {1000} and "first 1000" in dfl.images
    assert {t.n for t in dfl.tasks if t.role == "foolkit"} == {250}  # foolkit's algorithm: a smaller sample
    assert any("foolkit's algorithm (the second rows): first 250" in note for note in dfl.notes)
    onepixel = plan(get("onepixel"), mm, False, 10000, "", cpu=True).tasks
    assert {t.n for t in onepixel if t.role == "main"} == {20}
    # the set-size sweep keeps |X| = 1000, the regime of the thesis's claim (Fig. 12.25)
    sizes = plan(get("universal-set-size"), mm, False, 10000, "", cpu=True).tasks
    assert max(t.fit_n for t in sizes) == 1000
    # the CPU plan fits a 2-core session: under two hours by the planner's own estimate
    cpu_plans = {e.id: plan(e, mm, False, 10000, "", cpu=True) for e in EXPERIMENTS}
    assert estimate_seconds(cpu_plans) < 2 * 3600
    with pytest.raises(ValueError, match="unknown sizes"):
        reproduce("unused", sizes="huge")


# ------------------------------------------------------------------------------ verdicts
def _results(points, models=("cifar10/resnet20",), dedicated=(), exp_id="fgsm-eps"):
    columns = {"ResNet-50": models[0], "DenseNet-169": models[-1], "MobileNetV2": models[-1],
               "InceptionV3": models[0]}
    return {"mode": "full", "columns": columns, "dedicated": list(dedicated),
            "experiments": {exp_id: {"status": "done", "points": points}}}


def _point(model, eps, fr, acc=0.9, conf=0.8, ms=5.0):
    return {"model": model, "params": {"eps": eps}, "metrics": {
        "fooling_rate": fr, "accuracy_under_attack": acc * (1 - fr), "avg_confidence": conf, "ms_per_image": ms,
        "accuracy": acc}}


def test_trends_thresholds_and_one_model_comparisons():
    exp = get("fgsm-eps")
    claims = {c.claim: c for c in exp.claims}
    pts = [_point("cifar10/resnet20", e, fr, conf=0.9 - e) for e, fr in ((0.01, 0.4), (0.05, 0.88), (0.1, 0.95))]
    res = _results(pts)
    assert check_claim(exp, claims["fooling rate increases with eps"], res, False)["verdict"] == "holds"
    assert check_claim(exp, claims["average confidence decreases with eps"], res, False)["verdict"] == "holds"
    near = check_claim(exp, claims["MobileNetV2's fooling rate is near 90 % at eps = 0.05"], res, False)
    assert near["verdict"] == "holds" and "standing in for MobileNetV2" in near["reason"]
    one = check_claim(exp, claims["MobileNetV2 has the highest fooling rate"], res, False)
    assert one["verdict"] == "not checkable" and "one model" in one["reason"]
    pts[1]["metrics"]["fooling_rate"] = 0.97  # a dip from 0.97 to 0.95: against the claim without sample sizes
    assert check_claim(exp, claims["fooling rate increases with eps"], res)["verdict"] == "does not hold"
    for p in pts:  # on 100 images each the dip is within the noise, and 0.40 -> 0.95 is a real rise
        p["metrics"]["n_attacked"] = 100
    assert check_claim(exp, claims["fooling rate increases with eps"], res)["verdict"] == "holds"


def test_model_comparison_with_two_models_of_their_own():
    exp = get("fgsm-eps")
    claim = next(c for c in exp.claims if c.claim == "MobileNetV2 has the highest fooling rate")
    a, b = "cifar10/resnet50", "cifar10/mobilenet_v2"
    pts = [_point(a, e, 0.5) for e in (0.01, 0.05, 0.1)] + [_point(b, e, 0.7) for e in (0.01, 0.05, 0.1)]
    res = _results(pts, (a, b), ("ResNet-50", "MobileNetV2"))
    assert check_claim(exp, claim, res, False)["verdict"] == "holds"
    for p in pts[3:]:
        p["metrics"]["fooling_rate"] = 0.1
    assert check_claim(exp, claim, res, False)["verdict"] == "does not hold"


def test_references_resolve_to_our_tables_and_unrun_experiments_are_not_checkable():
    exp = get("deepfool-l2")
    claim = next(c for c in exp.claims if c.claim == "slower than FGSM")
    res = _results([_point("cifar10/resnet20", 0.01, 0.5, ms=3.0)])
    res["experiments"]["deepfool-l2"] = {"status": "done", "points": [
        {"model": "cifar10/resnet20", "params": {}, "metrics": {"ms_per_image": 20.0}}]}
    assert our_value(res, "table-12.1", "time", "cifar10/resnet20", {"eps": 0.01}) == 3.0
    assert check_claim(exp, claim, res, False)["verdict"] == "holds"
    v = check_claim(get("sparsefool"), get("sparsefool").claims[0], res, False)
    assert v["verdict"] == "not checkable" and "not run" in v["reason"]


def test_every_checkable_claim_holds_on_the_thesis_numbers():
    """The checker run on the thesis's own tables agrees with the thesis (as its text says)."""
    from foolkit.experiments.thesis_tables import thesis_results
    thesis = thesis_results()
    verdicts = [(e.id, c.claim, check_claim(e, c, thesis, False)["verdict"])
                for e in EXPERIMENTS if e.id in thesis["experiments"] for c in e.claims]
    assert not [v for v in verdicts if v[2] == "does not hold"], verdicts
    assert sum(v[2] == "holds" for v in verdicts) >= 45


# ------------------------------------------------------------------------------ the report
def test_report_has_a_section_per_table_and_figure_even_when_nothing_ran(tmp_path):
    results = {"mode": "quick", "experiments": {}, "models": [["ResNet-50", "cifar10/resnet20", "stand-in"]]}
    blocks = build(results, str(tmp_path / "none.sqlite"), tmp_path)
    md, page = to_markdown(blocks), to_html(blocks)
    for ref in TABLE_IDS + FIGURE_IDS:
        number = ref.split("-", 1)[1]
        kind = ref.split("-")[0].capitalize()
        assert re.search(rf"^### {kind} {re.escape(number)}: ", md, re.M), ref
        assert f"{kind} {number}:" in page, ref
    assert md.count("not run in this mode") >= len(EXPERIMENTS)
    assert "thesis" in md and "92.12" in md  # the thesis's numbers are shown even when ours are missing


def test_quick_end_to_end_two_experiments_resume(tmp_path, one_thread):
    out = tmp_path / "thesis"
    md = reproduce(out, quick=True, only=["table-11.4", "table-12.1"], models=["cifar10/resnet20"],
                   progress=False, n_override=6)
    text = md.read_text()
    assert (out / "report.html").is_file() and (out / "runs.db").is_file()
    assert (out / "figures" / "figure-12.2.png").is_file()
    for ref in TABLE_IDS + FIGURE_IDS:
        assert ref.split("-", 1)[1] in text
    results = json.loads((out / "results.json").read_text())
    assert results["experiments"]["clean-accuracy"]["status"] == "done"
    assert results["experiments"]["fgsm-eps"]["status"] == "done"
    assert results["experiments"]["deepfool-l2"]["status"].startswith("not run in this mode")
    assert "accuracy decreases with eps" in text and "not checkable with one model" in text
    assert "Machine: " in text and "torch " in text and "CIFAR-10 data: the 1,000" in text
    first = {p["run_id"] for p in results["experiments"]["fgsm-eps"]["points"]}
    # Table 12.1: the thesis's FGSM (nll loss) in the table's rows, foolkit's (cross-entropy) beside it
    rows = results["experiments"]["fgsm-eps"]["foolkit_points"]
    assert {p["attack_params"]["variant"] for p in rows} == {"foolkit"} and len(rows) == 3
    assert {p["attack_params"]["variant"] for p in results["experiments"]["fgsm-eps"]["points"]} == {"thesis"}
    assert "cifar10/resnet20 (foolkit's algorithm) | 0.05 |" in text
    # rerun: every run is found in the store, nothing is recomputed
    from foolkit.evaluation.run import runs_in
    n_runs = len(runs_in(out / "runs.db"))
    reproduce(out, quick=True, only=["table-12.1"], models=["cifar10/resnet20"], progress=False, n_override=6)
    again = json.loads((out / "results.json").read_text())
    assert {p["run_id"] for p in again["experiments"]["fgsm-eps"]["points"]} == first
    assert len(runs_in(out / "runs.db")) == n_runs


def test_command_is_registered():
    from foolkit.cli import build_parser
    parser, handlers = build_parser()
    assert "reproduce" in handlers
    args = parser.parse_args(["reproduce", "--quick", "--only", "table-12.3", "--models", "a,b", "--out", "x"])
    assert args.quick and args.only == ["table-12.3"] and args.out == "x"
    assert parser.parse_args(["reproduce", "--sizes", "cpu"]).sizes == "cpu"
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "--sizes", "huge"])


def test_transfer_matrix_is_reused_while_its_perturbations_are_unchanged(tmp_path, one_thread, monkeypatch):
    from foolkit.experiments import reproduce as rp
    out = tmp_path / "thesis"
    kwargs = dict(quick=True, only=["universal-transfer"], models=["cifar10/resnet20"], progress=False,
                  n_override=4)
    reproduce(out, **kwargs)
    first = json.loads((out / "results.json").read_text())["experiments"]["universal-transfer"]
    assert first["status"] == "done" and first["transfer"]["matrix"]

    def must_not_run(*args, **kw):
        raise AssertionError("transfer matrix recomputed")
    monkeypatch.setattr(rp, "transfer", must_not_run)
    reproduce(out, **kwargs)
    again = json.loads((out / "results.json").read_text())["experiments"]["universal-transfer"]
    assert again["status"] == "done" and again["transfer"] == first["transfer"]
    # other perturbations (here: another image count) recompute it
    reproduce(out, **{**kwargs, "n_override": 3})
    third = json.loads((out / "results.json").read_text())["experiments"]["universal-transfer"]
    assert third["status"].startswith("failed") and "recomputed" in third["status"]


def test_attack_seconds_sums_each_stored_run_once_with_fit_times():
    point = lambda run_id, ms, attacked, fit=None: {"run_id": run_id, "fit": fit,  # noqa: E731
                                                   "metrics": {"ms_per_image": ms, "n_attacked": attacked}}
    results = {"experiments": {
        "a": {"points": [point("r1", 20.0, 100), point("r2", float("nan"), 0)]},
        "b": {"points": [point("r1", 20.0, 100),  # the same run reused by another experiment
                         point("u1", 1.0, 1000, fit={"seconds": 30.0})]},
        "c": {"points": []}}}
    assert attack_seconds(results) == pytest.approx(2.0 + 1.0 + 30.0)
    assert attack_seconds({}) == 0.0


# ------------------------------------------------------------------------------ failures, quick, report method
def test_failed_experiments_fail_the_command_and_the_report_says_why(tmp_path, one_thread, monkeypatch, capsys):
    from foolkit.cli import main
    from foolkit.experiments import reproduce as rp
    real = rp.run_task

    def broken(t, exp, ctx, on_batch):
        if exp.id == "fgsm-eps":
            raise RuntimeError("boom in fgsm-eps")
        return real(t, exp, ctx, on_batch)
    monkeypatch.setattr(rp, "run_task", broken)
    out = tmp_path / "r"
    code = main(["reproduce", "--quick", "--only", "table-11.4,table-12.1", "--models", "cifar10/resnet20",
                 "--max-images", "4", "--no-progress", "--out", str(out)])
    assert code == 1
    assert "fgsm-eps failed: RuntimeError: boom in fgsm-eps" in capsys.readouterr().err
    text = (out / "report.md").read_text()
    assert "## Failed experiments" in text and "boom in fgsm-eps" in text
    assert "| fgsm-eps | accuracy decreases with eps | i | error |" in text


def test_a_refused_checkpoint_is_bad_input_and_writes_nothing(tmp_path, capsys):
    from foolkit.cli import main
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "r"
    code = main(["reproduce", "--quick", "--only", "table-11.4", "--models", f"cifar10/resnet50={evil}",
                 "--no-progress", "--out", str(out)])
    assert code == 2 and "evil.pt" in capsys.readouterr().err
    assert not (out / "report.md").exists() and not (out / "runs.db").exists()


def test_targeted_one_pixel_on_one_image_runs(tmp_path, one_thread):
    """Fig. 12.17 crashed: an int target on one image became a stride-0 tensor that could not be hashed."""
    import torch

    from foolkit.runtime.hashing import tensor_sha256
    from foolkit.evaluation.runner import evaluate
    assert tensor_sha256(torch.tensor(3).expand(1)) == tensor_sha256(torch.tensor([3]))
    run = evaluate("cifar10/resnet20", "onepixel", ("cifar10", "test", 1), attack_params={
        "population": 8, "generations": 2}, target=3, store=str(tmp_path / "s.db"), progress=False)
    assert run.metrics()["n"] == 1


def test_quick_plan_fits_in_ten_minutes_and_the_estimate_is_printed(tmp_path):
    from foolkit.experiments.plan import estimate_seconds
    mm = parse_models(None)
    from foolkit.experiments.sizes import QUICK_ONLY_IF_SELECTED
    plans = {e.id: plan(e, mm, True, 1000, "") for e in EXPERIMENTS if e.id not in QUICK_ONLY_IF_SELECTED}
    assert estimate_seconds(plans) <= 8.5 * 60  # 10 minutes with a margin for a slower machine
    # the old quick plan (DenseNet-BC's cost ignored) was estimated at 9 min and ran for over 15
    full = {e.id: plan(e, mm, False, 10000, "") for e in EXPERIMENTS}
    assert estimate_seconds(full) > 10 * estimate_seconds(plans)


def test_report_states_its_method_and_sample_sizes(tmp_path):
    from foolkit.experiments.thesis_tables import thesis_results
    results = thesis_results()
    results["mode"] = "full"
    results["experiments"]["deepfool-l2"]["points"][0]["metrics"].update(n=10000, n_attacked=9212)
    md = to_markdown(build(results, str(tmp_path / "none.sqlite"), tmp_path))
    assert "## Input space and units" in md and "0.2023, 0.1994, 0.201" in md and "0.2471" in md
    assert "## Where foolkit differs from the thesis's code" in md
    for item in ("DeepFool", "nll_loss", "v_best", "resample", "92-96 %"):
        assert item in md, item
    assert re.search(r"### Table 12.3: .*\[ours: n = \d+", md)
    assert "(i) trend and ranking claims" in md and "(ii) claims about the thesis's specific networks" in md
    assert "(iii) illustrative figures" in md


# ------------------------------------------------------------------------------ the thesis's variants
COMPARED = ("fgsm-eps", "fgsm-clip", "deepfool-l2", "deepfool-clip", "deepfool-linf", "sparsefool", "onepixel",
            "universal-l2", "universal-linf")


@pytest.mark.parametrize("sizes", ["thesis", "cpu", "quick"])
def test_thesis_tables_run_the_thesis_variant_and_foolkits_algorithm_as_second_rows(sizes):
    mm = parse_models(None)
    quick, cpu = sizes == "quick", sizes == "cpu"
    for exp in EXPERIMENTS:
        if not exp.tables or exp.id == "table-12.3-stronger":  # no thesis table (issue #21 / #22)
            continue
        pl = plan(exp, mm, quick, 10000, "", cpu)
        main = [t for t in pl.tasks if t.role == "main"]
        rows = [t for t in pl.tasks if t.role == "foolkit"]
        if exp.id != "clean-accuracy":  # every attack of a table or figure: the thesis's algorithm
            assert main and {t.params.get("variant") for t in main} == {"thesis"}, exp.id
        assert {t.params.get("variant") for t in rows} <= {"foolkit"}, exp.id
        if exp.id in COMPARED and (sizes != "quick" or exp.id.startswith(("fgsm", "deepfool", "sparsefool"))):
            assert rows, (sizes, exp.id)
            # the same settings but the variant, on at most the main rows' images
            strip = lambda t: {k: v for k, v in t.params.items() if k != "variant"}  # noqa: E731
            assert all(strip(r) in [strip(t) for t in main] for r in rows), exp.id
            assert max(r.n for r in rows) <= max(t.n for t in main), exp.id
        elif exp.id not in COMPARED:
            assert not rows, exp.id
    # Table 12.1's foolkit rows: the table's eps only, not Fig. 12.2's whole grid
    fgsm = plan(get("fgsm-eps"), mm, False, 10000, "")
    assert {t.point["eps"] for t in fgsm.tasks if t.role == "foolkit"} == {0.01, 0.05, 0.1}


def test_universal_xi_goes_to_the_models_normalised_units_for_the_thesis_variant():
    import torch

    from foolkit.experiments.tasks import model_xi
    from foolkit.experiments.thesis_setup import THESIS_MEAN, THESIS_STD, thesis_xi
    from foolkit.models.wrappers import Normalized
    thesis_pipeline = Normalized(torch.nn.Identity(), THESIS_MEAN, THESIS_STD)
    # the thesis's own radii come back on a model fed as the thesis fed its networks
    assert model_xi(thesis_xi(15), thesis_pipeline) == pytest.approx(15, rel=2e-4)
    assert model_xi(thesis_xi(0.5), thesis_pipeline) == pytest.approx(0.5, rel=2e-4)
    card = Normalized(torch.nn.Identity(), THESIS_MEAN, (0.2471, 0.2435, 0.2616))
    assert model_xi(thesis_xi(15), card) == pytest.approx(3.0135 / 0.25073, rel=1e-3)  # same pixel radius
    assert model_xi(0.1, torch.nn.Identity()) == 0.1  # no normalisation: pixels


def _df_point(model, fr, delta, ms, variant, rho=0.02, iters=2.0):
    return {"model": model, "params": {}, "attack_params": {"norm": 2, "variant": variant}, "metrics": {
        "fooling_rate": fr, "delta_2": delta, "rho_2_centered": rho, "ms_per_image": ms, "avg_iterations": iters,
        "n": 100, "n_attacked": 90}}


def test_table_shows_foolkits_algorithm_as_a_second_row_and_claims_ignore_it(tmp_path):
    from foolkit.experiments.report_tables import table_blocks
    m = "cifar10/resnet20"
    res = _results([_df_point(m, 0.8123, 0.251, 120.0, "thesis")], exp_id="deepfool-l2")
    entry = res["experiments"]["deepfool-l2"]
    entry["foolkit_points"] = [_df_point(m, 1.0, 0.1987, 90.0, "foolkit")]
    blocks = table_blocks("table-12.3", res)
    header, rows = blocks[0][1], blocks[0][2]
    assert header[1:5] == ["Fool. rate (%) thesis", "ours", "Δ̂(x; f) thesis", "ours"] and header[8] == "ours"
    resnet = [r for r in rows if r[0].startswith("ResNet-50")]
    assert [r[0] for r in resnet] == [f"ResNet-50 → {m} (thesis's algorithm)",
                                      f"ResNet-50 → {m} (foolkit's algorithm)"]
    main, other = resnet
    assert (main[1], main[2], main[4], main[8]) == ("93.04", "81.23", "0.25", "0.12")  # fooling rate, Δ̂, time (s)
    assert (other[1], other[2], other[4], other[8]) == ("", "100.00", "0.20", "0.09")  # thesis's numbers once
    text = to_markdown(blocks)
    assert "foolkit's algorithm" in text and "n = 100 images, 90 attacked" in text
    # the verdicts read the thesis's variant's rows only: 81 % of 90 images is below 90 %
    claim = next(c for c in get("deepfool-l2").claims if c.claim == "fooling rate above 90 % for every model")
    assert check_claim(get("deepfool-l2"), claim, res)["verdict"] == "does not hold"
    entry["points"], entry["foolkit_points"] = entry["foolkit_points"], entry["points"]
    assert check_claim(get("deepfool-l2"), claim, res)["verdict"] == "holds"
    # the report's method section names the variant of each table and the second rows
    entry["points"], entry["foolkit_points"] = entry["foolkit_points"], entry["points"]
    md = to_markdown(build(res, str(tmp_path / "none.sqlite"), tmp_path))
    assert "deepfool-l2 (deepfool: thesis; foolkit's algorithm as second rows, n = 100 images" in md
    assert "no targeted mode" in md


def test_thesis_checkpoints_get_the_thesis_input_pipeline():
    """A checkpoint for one of the thesis's four architectures is fed what the thesis's code fed
    it (std 0.2023...); foolkit's own models and shipped weights keep their card's std."""
    from foolkit.experiments.model_map import Choice

    assert Choice("cifar10/resnet50", "w.pt").normalization == "thesis"
    assert Choice("cifar10/resnet50").normalization == "card"
    assert Choice("cifar10/resnet20", "w.pt").normalization == "card"


def test_normalization_is_part_of_a_runs_identity(tmp_path):
    import foolkit as fk

    data = ("cifar10", "test", 4)
    a = fk.evaluate("cifar10/resnet20", "fgsm", data, tmp_path / "s.db", attack_params={"eps": 0.01})
    b = fk.evaluate("cifar10/resnet20", "fgsm", data, tmp_path / "s.db", attack_params={"eps": 0.01},
                    normalization="thesis")
    assert a.run_id != b.run_id
    with pytest.raises(ValueError, match="applies to model names"):
        fk.evaluate(fk.models.load("cifar10/resnet20"), "fgsm", data, tmp_path / "t.db", normalization="thesis")
