"""What ``foolkit reproduce`` runs: each experiment's ``Plan``, a list of ``Task`` (one attack
run on one model: parameters, images, role), at the size of the chosen mode (``sizes``), on the
models of the ``ModelMap``; ``select`` (the experiments ``--only`` names); and the planner's cost
model: the expected wall time on this project's 2-core machine, from per-image costs measured on
it (``task_cost`` per run, ``estimate_seconds`` per plan)."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from . import EXPERIMENTS, Experiment
from .model_map import Choice, ModelMap
from .sizes import CPU, QUICK

PHOTOS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "natural-images"


# Cost of one image, in ms of wall time on this project's 2-core machine (2 torch threads) for
# cifar10/resnet20, calibrated on the quick report of 2026-11-27 (its stored per-image times);
# other models scale by MODEL_FACTOR (DenseNet-BC-40 is 6-9x slower per image; a model not
# listed counts as 5, the ImageNet model as 40). Universal: ms per image of X per pass (a
# pass runs DeepFool on each image v does not yet fool), scaled by the square root of the
# model's factor (measured: fooled images skip DeepFool), plus the evaluation passes.
COST = {"clean": 1.5, "fgsm": 1.5, "deepfool": 11, "sparsefool": 50, "minimal": 20,
         "onepixel_per_eval": 0.28, "universal_per_pass": 27, "universal_eval": 3,
         # issue #21's attacks, measured against DeepFool on resnet20: SDF 2.3x, FMN 100 steps 10x
         "superdeepfool": 25, "fmn_per_step": 1.1,
         # Part IV's analysis per image and model (quantized DeepFool + FGSM at 2 widths, growth,
         # acquisition) and per model (Lipschitz bounds, quantization, calibration), in ms
         "part4_per_image": 45, "part4_per_model": 4000}
MODEL_FACTOR = {"cifar10/resnet20": 1.0, "cifar10/densenet_bc40": 6.5, "cifar10/mobilenet_v2_050": 1.1,
                "cifar10/inception_small_050": 3.0}
# The thesis's variants against foolkit's algorithms, same settings (cifar10/resnet20, 60 test
# images, 2 threads, the two timed back to back): DeepFool L2 1.16 and L-inf 1.6 (all nine
# candidate classes every step, not the 3 closest after the first), SparseFool 1.36; FGSM and the
# universal perturbation within the noise (0.74-0.96: counted as 1).
VARIANT_FACTOR = {("deepfool", "2"): 1.2, ("deepfool", "inf"): 1.6, ("sparsefool", None): 1.4}
OVERHEAD = 1.25  # verification passes, store writes, model loading (measured: wall / stored times)
FIXED_SECONDS = 30  # imports, data, figures and report


def model_scale(name: str) -> float:
    """Cost of a model's image relative to cifar10/resnet20 (``MODEL_FACTOR``)."""
    return 40.0 if name.startswith("imagenet/") else MODEL_FACTOR.get(name, 5.0)


def task_cost(t: Task) -> float:
    """Estimated ms of wall time of one task on 2 CPU cores (see ``COST``)."""
    scale = model_scale(t.choice.name)
    if t.attack == "onepixel":
        per = COST["onepixel_per_eval"] * t.params.get("population", 100) * t.params.get("generations", 50)
    elif t.attack == "universal":
        passes = t.params.get("max_passes", 10)
        return ((t.fit_n or 0) * passes * COST["universal_per_pass"] * math.sqrt(scale)
                + t.n * COST["universal_eval"] * scale)
    elif t.attack == "fmn":
        per = COST["fmn_per_step"] * t.params.get("steps", 100)
    elif t.mode == "minimal":
        per = COST["minimal"]
    else:
        per = COST.get(t.attack, 25)
    if t.params.get("variant") == "thesis":
        norm = str(t.params["norm"]) if t.attack == "deepfool" and "norm" in t.params else None
        per *= VARIANT_FACTOR.get((t.attack, norm), 1.0)
    return scale * per * t.n


def estimate_seconds(plans: dict[str, Plan]) -> float:
    """Expected wall seconds of the plans from an empty store: each distinct run once (several
    experiments share runs: deepfool-l2 and deepfool-clip, universal-l2 and -transfer)."""
    seen, total = set(), 0.0
    for pl in plans.values():
        for t in pl.tasks:
            key = (t.attack, t.choice, repr(sorted(t.params.items(), key=str)), t.n, t.fit_n, t.target, t.mode)
            if key not in seen:
                seen.add(key)
                total += task_cost(t)
        total += pl.extra_ms
    return OVERHEAD * total / 1000 + FIXED_SECONDS


@dataclass
class Task:
    """One evaluation: an attack configuration on one model."""
    experiment: str
    run_index: int
    attack: str
    mode: str
    choice: Choice
    params: dict  # attack parameters (ours)
    point: dict  # what identifies the point in tables and claims (grid values, distinguishing fixed params)
    n: int
    fit_n: int | None = None
    target: int | None = None
    role: str = "main"  # "main" (the table's row, judged by the claims) or "foolkit" (the comparison row)


@dataclass
class Plan:
    """An experiment's tasks in this mode, or why it is skipped, with the notes for the report."""
    experiment: Experiment
    tasks: list[Task] = field(default_factory=list)
    skip: str = ""
    notes: list[str] = field(default_factory=list)
    images: str = ""
    extra_ms: float = 0.0  # estimated work after the attacks (Part IV's analysis), ms


def plan(exp: Experiment, mm: ModelMap, quick: bool, n_available: int, imagenet_problem: str,
         cpu: bool = False) -> Plan:
    """The runs of ``exp``: quick sizes, CPU sizes (``cpu``) or the thesis's sizes."""
    q = QUICK.get(exp.id, {}) if quick else CPU.get(exp.id, {}) if cpu else {}
    p = Plan(exp)
    im = exp.images
    n: int | None
    if im.source == "natural-images":
        if imagenet_problem:
            p.skip = f"not run: {imagenet_problem}"
            return p
        photos = sorted(PHOTOS_DIR.glob("*")) if PHOTOS_DIR.is_dir() else []
        if not photos:
            p.skip = f"not run: no photos in {PHOTOS_DIR}"
            return p
        n = min(len(photos), (im.quick_n if quick else im.n) or len(photos))
        p.images = f"{n} photos of {PHOTOS_DIR.name}/ ({', '.join(x.name for x in photos[:n])})"
    else:
        n = q.get("n", im.quick_n if quick else im.n)
        assert n is not None  # only the photos (natural-images) leave n None: "all of them"
        if not mm.columns:
            p.skip = "not run: no CIFAR-10 model given"
            return p
        p.images = f"first {n} CIFAR-10 test images"
    eval_n = q.get("eval_n", im.quick_eval_n if quick else im.eval_n)
    if eval_n and eval_n > n_available:
        p.notes.append(f"evaluation set cut from {eval_n} to the {n_available} test images available "
                       f"(set FOOLKIT_DATA or --data for the full CIFAR-10 test set)")
        eval_n = n_available
    if im.source == "cifar10-test" and n > n_available:
        p.notes.append(f"{n} images asked, {n_available} available: using {n_available}")
        n = n_available
    if eval_n:
        p.images = f"X = first {n} CIFAR-10 test images, fooling rate over the first {eval_n}"
    choices = []
    for m in exp.models:
        c = mm.choice(m)
        if c is not None and c not in choices:
            choices.append(c)
    if not choices:
        p.skip = "not run: no model for this experiment"
        return p
    differing = {k for r in exp.runs for k in r.params if len({repr(x.params.get(k)) for x in exp.runs}) > 1}
    # foolkit's algorithm as a second row (AttackConfig.compare): q["compare"] sizes it ("n", "eval_n"),
    # None leaves it out in this mode
    cmp = q.get("compare", {})
    for ri, config in enumerate(exp.runs):
        grid = dict(config.grid)
        if "grid" in q and ri < len(q["grid"]):
            grid.update(q["grid"][ri])
        params = {**config.params, **q.get("params", {}).get(config.attack, {})}
        if config.mode == "minimal":
            grid = {}
        fixed = {k: params[k] for k in sorted(differing) if k in params}
        if exp.id == "overall-hires":
            fixed = {"attack": config.attack + (f" (p = {params['norm']})" if "norm" in params else "")}
        sizes = q.get("n_grid", im.n_grid) if im.n_grid else (None,)
        rows = [("main", grid, params, n, eval_n)]
        if config.compare is not None and cmp is None:
            p.notes.append("foolkit's algorithm (the second rows of the table) not run in this mode, to keep "
                           "its cost down")
        if config.compare is not None and cmp is not None and params.get("variant") == "thesis":
            c_grid = {k: tuple(config.compare.get(k, v)) for k, v in grid.items()}
            c_n = min(n, cmp.get("n", n))
            c_eval = min(eval_n, cmp.get("eval_n", eval_n)) if eval_n else eval_n
            rows.append(("foolkit", c_grid, {**params, "variant": "foolkit"}, c_n, c_eval))
            if (c_n, c_eval) != (n, eval_n):  # say so: the two rows' samples differ
                p.notes.append(f"foolkit's algorithm (the second rows): first {c_n} images"
                               + (f", fooling rate over the first {c_eval}" if c_eval else "")
                               + " (a smaller sample than the thesis's algorithm's rows, to keep the cost down)")
        for role, r_grid, r_params, r_n, r_eval in rows:
            keys = list(r_grid)
            for choice in choices:
                for combo in itertools.product(*(r_grid[k] for k in keys)):
                    values = dict(zip(keys, combo))
                    target = values.pop("target", None)
                    seen = set()
                    for size in sizes:
                        point = {**fixed, **dict(zip(keys, combo))}
                        fit_n = None
                        if config.mode == "fit":
                            fit_n = min(size or r_n, r_eval or r_n)
                            if fit_n in seen:  # |X| grid values beyond the images available
                                continue
                            seen.add(fit_n)
                            if size:
                                point["n"] = fit_n
                        p.tasks.append(Task(exp.id, ri, config.attack, config.mode, choice, {**r_params, **values},
                                            point, r_eval or r_n if config.mode == "fit" else r_n, fit_n, target,
                                            role))
    if exp.shares:  # e.g. DeepFool on the same images as Table 12.3 (the store shares the runs)
        ref = plan(next(e for e in EXPERIMENTS if e.id == exp.shares), mm, quick, n_available, imagenet_problem, cpu)
        ref_n = max((t.n for t in ref.tasks if t.role == "main"), default=None)
        shared = next((r.attack for r in ref.experiment.runs), None)
        for t in p.tasks:
            if ref_n and t.attack == shared:
                t.n = ref_n
        p.notes.append(f"{shared} on the images of {exp.shares} ({ref_n}); the other attacks on the first {n}, "
                       f"where every run is compared")
    if exp.id == "part-iv":  # + the adversarially trained models' runs (issue #22)
        from .part4_advtrain import estimate_ms as _advtrain_ms
        p.extra_ms = sum(math.sqrt(model_scale(c.name)) * COST["part4_per_model"] + model_scale(c.name) * n *
                         COST["part4_per_image"] for c in choices) + _advtrain_ms(p.tasks)
    if q:
        p.notes.append(("quick mode: " if quick else "CPU sizes (thesis sizes cut): ")
                       + ", ".join(f"{k} {v}" for k, v in q.items()))
    return p


def select(only: list[str] | None) -> list[Experiment]:
    """The experiments ``only`` names (experiment, table or figure ids; all when empty), with the
    experiments they reuse put first (universal-transfer needs universal-l2's perturbations)."""
    if not only:
        return list(EXPERIMENTS)
    wanted = {o.strip() for o in only if o.strip()}
    chosen = [e for e in EXPERIMENTS if e.id in wanted or wanted & set(e.thesis_refs)]
    known = {e.id for e in EXPERIMENTS} | {r for e in EXPERIMENTS for r in e.thesis_refs}
    unknown = wanted - known
    if unknown:
        raise InputError(f"unknown experiment, table or figure {sorted(unknown)}; e.g. table-12.3, figure-12.2, "
                         f"deepfool-l2")
    for e in list(chosen):  # universal-transfer needs universal-l2's perturbations
        if e.reuses and all(c.id != e.reuses for c in chosen):
            chosen.insert(0, next(x for x in EXPERIMENTS if x.id == e.reuses))
    return chosen
