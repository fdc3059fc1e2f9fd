"""Running one planned ``Task``: the ``Context`` the tasks share (the store ``<out>/runs.db``, the
loaded models and photos), the attack through :func:`foolkit.evaluation.evaluate` (resuming what
the store holds), and the task's point: its metrics, derived quantities and standard errors;
also the runs after the plan's (``measure_run``, Part IV) and Table 12.10's transfer matrix
(``transfer``)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import torch

from . import Experiment
from .derived import derive
from .model_map import Choice
from .plan import PHOTOS_DIR, Task
from .stats import sample_errors

class Context:
    """What the tasks share: the store, the loaded models and images, progress bars."""

    def __init__(self, out: Path, data_root: str | None, device: str, progress: bool) -> None:
        self.out, self.data_root, self.device, self.progress = out, data_root, device, progress
        self.store = str(out / "runs.db")
        self._models: dict[Choice, Any] = {}
        self._photos: dict[int, torch.Tensor] = {}

    def model(self, c: Choice) -> torch.nn.Module:
        """The model ``c`` names, loaded once (with its checkpoint and normalisation)."""
        if c not in self._models:
            from ..models import registry
            self._models[c] = registry.load(c.name, checkpoint=c.checkpoint, device=self.device,
                                            normalization=c.normalization)
        return self._models[c]

    def data(self, t: Task, exp: Experiment) -> tuple:
        """``t``'s images as ``evaluate`` takes them: (photos, None) resized to the model's input,
        or the CIFAR-10 test set's first ``t.n`` images as a dataset spec."""
        if exp.images.source == "natural-images":
            from ..data import load_image
            from ..models import registry
            size = registry.card(t.choice.name).input_size
            if size not in self._photos:
                self._photos[size] = torch.cat([load_image(p, size) for p in sorted(PHOTOS_DIR.glob("*"))])
            return (self._photos[size][:t.n], None)
        return self.cifar10_test(t.n)

    def cifar10_test(self, n: int) -> tuple:
        """The first ``n`` CIFAR-10 test images (from ``data_root`` when given) as ``evaluate`` takes them."""
        return ("cifar10", "test", n, self.data_root) if self.data_root else ("cifar10", "test", n)


def _fit_info(store: str, run_id: str) -> dict:
    from ..evaluation.store import Store
    with Store(store, readonly=True) as s:
        blob = s.artifact(run_id, "universal_fit")
    return json.loads(blob.decode()) if blob else {}


def model_xi(xi: float, model: torch.nn.Module) -> float:
    """A universal radius in [0,1] pixel units -> the units of ``variant="thesis"``, the model's
    normalised space: divided by the mean of a ``fk.models.Normalized`` model's std (the specs'
    pixel xi is the thesis's z-radius x 0.2009, so on a model normalised with the thesis's std
    this gives back the thesis's 15 and 0.5). Other models: unchanged (pixel space)."""
    from ..models.wrappers import Normalized
    if isinstance(model, Normalized):
        return round(float(xi) / float(model.std.mean()), 6)
    return float(xi)


def task_params(t: Task, ctx: Context) -> dict:
    """The attack parameters of ``t`` as ``evaluate`` gets them (the thesis's universal radius in
    the model's units)."""
    params = dict(t.params)
    if t.attack == "universal" and params.get("variant") == "thesis" and "xi" in params:
        params["xi"] = model_xi(params["xi"], ctx.model(t.choice))
    return params


def evaluate_task(t: Task, exp: Experiment, ctx: Context, on_batch: Callable[[dict], None] | None,
                  params: dict) -> tuple[Any, dict]:
    """Attack ``t``'s images into ``ctx.store`` (resuming what it holds). -> (the stored run, extra point fields)."""
    from ..evaluation import runner
    data = ctx.data(t, exp)
    kwargs: dict[str, Any] = dict(store=ctx.store, device=ctx.device, progress=on_batch,
                                  checkpoint=t.choice.checkpoint, normalization=t.choice.normalization)
    variant = params.get("variant", "foolkit")
    extra = {}
    if t.attack == "clean":  # FGSM with eps = 0 gives the clean accuracy (and stores the images)
        run = runner.evaluate(t.choice.name, "fgsm", data, attack_params={"eps": 0.0}, **kwargs)
    elif t.mode == "minimal":
        from ..attacks.fgsm import minimal_epsilon
        x, y, _, _ = runner._resolve_data(data)
        grid = [float(e) for e in exp.runs[t.run_index].grid["eps"]]
        y = None if y is None else y.to(ctx.device)
        eps = minimal_epsilon(ctx.model(t.choice), x.to(ctx.device), y, grid=grid,
                              clip=bool(t.params.get("clip", True)), variant=variant).cpu()
        per = torch.where(torch.isnan(eps), torch.full_like(eps, grid[-1]), eps)
        clip = bool(t.params.get("clip", True))
        run = runner.evaluate(t.choice.name, "fgsm", data, attack_params={"eps": per, "clip": clip, "variant": variant},
                              batch_size=max(1, len(x)), **kwargs)
        extra["min_eps"] = [None if math.isnan(v) else v for v in eps.tolist()]
    elif t.mode == "fit":
        run = runner.evaluate(t.choice.name, "universal", data, attack_params=params, fit_size=t.fit_n, **kwargs)
    else:
        run = runner.evaluate(t.choice.name, t.attack, data, attack_params=params, target=t.target, **kwargs)
    return run, extra


def run_task(t: Task, exp: Experiment, ctx: Context, on_batch: Callable[[dict], None] | None) -> dict:
    """Attack ``t`` (see ``evaluate_task``) -> its point: the run id, parameters, metrics with the
    derived quantities, and their standard errors (what ``results.json`` stores)."""
    from ..evaluation.identity import jsonable
    params = task_params(t, ctx)
    variant = params.get("variant", "foolkit")
    point = {"experiment": t.experiment, "run": t.run_index, "attack": t.attack, "model": t.choice.label,
             "params": t.point, "attack_params": jsonable(params), "n": t.n, "role": t.role,
             "variant": variant}
    run, extra = evaluate_task(t, exp, ctx, on_batch, params)
    point.update(extra)
    if t.mode == "fit":
        point["fit"] = _fit_info(ctx.store, run.run_id)
    point["run_id"] = run.run_id
    point["shape"] = list(run.config["data"].get("shape", []))
    records = run.records()
    from ..evaluation import metrics as _metrics
    point["metrics"] = derive(point, _metrics.compute(records))
    point["se"] = sample_errors(records, point["shape"])
    return point


def measure_run(model: str | torch.nn.Module, attack: str, params: dict, data: Any, ctx: Context,
                title: str) -> tuple[dict, list[dict]]:
    """One attack run outside the plan (Part IV's extra runs), through the engine into
    ``ctx.store`` -> ({"run_id", "metrics" (with the derived quantities), "se"}, its per-image records)."""
    from ..evaluation import metrics as _metrics
    from ..evaluation import runner
    run = runner.evaluate(model, attack, data, store=ctx.store, device=ctx.device, attack_params=params, title=title)
    records = run.records()
    return ({"run_id": run.run_id, "metrics": derive({}, _metrics.compute(records)),
             "se": sample_errors(records, list(run.config["data"].get("shape", [])))}, records)


def transfer(exp: Experiment, points: list[dict], ctx: Context, tasks: list[Task]) -> dict:
    """Table 12.10: each model's universal perturbation (its universal-l2 point) on every model;
    fooling rate over the images each target model classifies correctly (as ``fooling_rate``);
    ``n``: those images' count per target model (for the rates' standard errors). x + v is
    clipped to [0,1] unless v came from the thesis's variant (its code never clips)."""
    from ..attacks.base import predict
    from ..evaluation.store import Store
    from ..evaluation.store_format import decode
    from ..data import load
    x, y = load("cifar10", "test", tasks[0].n, root=ctx.data_root)
    choices = {t.choice.label: t.choice for t in tasks}
    names, vs, clip = [], {}, {}
    with Store(ctx.store, readonly=True) as s:
        for p in points:
            vs[p["model"]] = torch.as_tensor(decode(s.artifact(p["run_id"], "universal_perturbation"))).float()
            clip[p["model"]] = (p.get("attack_params") or {}).get("variant") != "thesis"
            names.append(p["model"])
    models = {name: ctx.model(choices[name]) for name in names}
    matrix: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for target in names:
        clean, _ = predict(models[target], x)
        ok = clean == y
        counts[target] = int(ok.sum())
        for source in names:
            x_adv = x + vs[source].reshape(1, *x.shape[1:])
            pred, _ = predict(models[target], x_adv.clamp(0, 1) if clip[source] else x_adv)
            matrix.setdefault(source, {})[target] = float(((pred != y) & ok).sum()) / max(1, int(ok.sum()))
    return {"models": names, "matrix": matrix, "n": counts}
