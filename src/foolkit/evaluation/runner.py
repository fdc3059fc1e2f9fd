"""The resumable attack runner: ``evaluate(model, attack, data, store) -> Run``.

    run = fk.evaluate(model="cifar10/resnet20", attack=fk.attacks.DeepFool(norm=2),
                      data=("cifar10", "test", 1000), store="runs/x.db")
    run.metrics()    # the thesis's table row (foolkit.evaluation.metrics)
    run.samples()    # per-sample records: list of dicts, a DataFrame if pandas is installed

How it works:
- A run is identified by a hash of everything that changes its results, the batch size
  included (:mod:`foolkit.evaluation.identity`); another batch size is another run.
- Images are attacked in a fixed grid of batches ``[k*B, (k+1)*B)``. Each batch's records
  and images are committed in one SQLite transaction; a rerun skips the samples already
  stored, so ``kill -9`` or Ctrl-C loses at most the batch in flight. Each batch runs under
  its own seed (``seed``, batch start), in a forked RNG, so a resumed run computes the same
  batches as an uninterrupted one.
- Every claimed success is re-verified by fresh forward passes, in float and in 8 bits
  (:mod:`foolkit.evaluation.verify`).
- Universal perturbations: the perturbation is computed once on the first ``fit_size`` images
  (the set X), stored in the run, and added to every image; samples of X are marked
  ``in_fit`` so the metrics give the fooling rate on X and on the unseen images.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..attacks.base import Attack
from ..attacks.checks import check_model_output, validate_images, validate_labels
from ..errors import InputError
from ..runtime.machine import parse_device
from . import metrics as _metrics
from ..runtime.hashing import state_dict_sha256, tensor_sha256
from .identity import jsonable, run_config, run_hash
from .records import batch_artifacts, batch_records, channel_mean
from .run import Run
from .shards import check_shard, in_shard, shard_indices
from .store import Store
from .store_format import decode, encode_array

DEFAULT_BATCH_SIZE = 100


# --- resolving the inputs ---------------------------------------------------------------------
def _resolve_model(model: Any, checkpoint, device, normalization: str = "card") -> tuple[nn.Module, dict, str]:
    from ..models.sources import ResolvedModel, resolve_model

    if isinstance(model, str):  # a registered name, a .pt2 file or file.py:function
        model = resolve_model(model, checkpoint=checkpoint, device=device, normalization=normalization)
        checkpoint = None
    elif normalization != "card":
        raise InputError("normalization= applies to model names; pass it to resolve_model instead")
    if isinstance(model, ResolvedModel):  # identity: card + weights, or the file's content hash
        if checkpoint is not None:
            raise InputError("checkpoint= applies to model names; pass it to resolve_model instead")
        return model.module.to(device), model.store_spec, model.name
    if isinstance(model, nn.Module):
        if checkpoint is not None:
            raise InputError("checkpoint= applies to registered model names; load the weights into your module instead")
        cls = type(model)
        return model.to(device), {"class": f"{cls.__module__}.{cls.__qualname__}",
                                  "state_dict": state_dict_sha256(model)}, cls.__name__
    raise InputError(f"model must be a registered name (see `foolkit models`), a .pt2 file, file.py:function or an nn.Module, got {type(model).__name__}")


def _resolve_attack(attack: Any, attack_params: dict | None) -> Attack:
    from ..attacks import registry

    if isinstance(attack, str):
        return registry.create(attack, **(attack_params or {}))
    if attack_params:
        raise InputError("attack_params= applies when the attack is given by name")
    if isinstance(attack, type) and issubclass(attack, Attack):
        return attack()
    if isinstance(attack, Attack):
        return attack
    raise InputError(f"attack must be an Attack instance or a registered name, got {type(attack).__name__}")


def _resolve_data(data: Any) -> tuple[torch.Tensor, torch.Tensor | None, dict, tuple | None]:
    """-> (x, y or None, spec, class names or None)."""
    from ..data import class_names, load

    if isinstance(data, dict):
        data = (data.get("name", "cifar10"), data.get("split", "test"), data.get("n"), data.get("root"))
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], str):
        if len(data) > 4:
            raise InputError("data must be (name, split, n[, root])")
        name, split, n, root = list(data) + ["cifar10", "test", None, None][len(data):]
        x, y = load(name, split, n=n, root=root)
        source = str(Path(root).resolve()) if root else (os.environ.get("FOOLKIT_DATA") or "bundled")
        spec = {"dataset": name, "split": split, "n": n, "root": source}
        try:
            classes = class_names(name)
        except ValueError:
            classes = None
    elif isinstance(data, torch.Tensor):
        x, y, spec, classes = data, None, {"tensors": True}, None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        try:
            y = None if y is None else torch.as_tensor(y)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"labels y must be integer class indices [N], got {type(y).__name__}") from None
        spec, classes = {"tensors": True}, None
    else:
        raise InputError("data must be (name, split, n[, root]), a dict with those keys, a tensor x or a pair (x, y)")
    validate_images(x)
    spec["sha256"] = tensor_sha256(x, y)
    spec["shape"] = list(x.shape)
    return x, y, spec, classes


# --- universal perturbations ------------------------------------------------------------------
def is_universal(attack: Attack) -> bool:
    """Attacks fitted once on a set X (``fit(model, X)`` setting ``perturbation_``), then applied."""
    return callable(getattr(attack, "fit", None))


def _fit_universal(attack, model, x, y=None) -> tuple[torch.Tensor, dict]:
    """Compute the universal perturbation on X; returns (v [1,C,H,W] float32 on CPU, info)."""
    start = time.perf_counter()
    attack.fit(model, x, y)  # y: the thesis variant attacks only X's correctly classified images
    v = getattr(attack, "perturbation_", None)
    if not isinstance(v, torch.Tensor):
        raise InputError(f"{type(attack).__name__}.fit set no perturbation_ tensor")
    info = {k.rstrip("_"): jsonable(getattr(attack, k)) for k in ("passes_", "fooling_rate_", "history_")
            if hasattr(attack, k)}
    info["seconds"] = time.perf_counter() - start
    info["fit_size"] = len(x)
    return v.detach().float().cpu(), info


def _short_params(attack: Attack) -> str:
    """`` norm=2 overshoot=0.01``: the parameters that differ from the defaults (norm always)."""
    import inspect

    defaults = {p.name: p.default for p in inspect.signature(type(attack).__init__).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    parts = []
    for key, value in attack.params().items():
        if key in defaults and key != "norm":
            try:
                if value == defaults[key]:
                    continue
            except Exception:  # tensors
                pass
        if isinstance(value, float):
            value = "inf" if math.isinf(value) else f"{value:g}"
        elif isinstance(value, (list, tuple)) and len(value) > 4:
            value = f"[{len(value)} values]"
        parts.append(f"{key.rstrip('_')}={value}")
    return (" " + " ".join(parts)) if parts else ""


def _warn_unfinished_sibling(st, run_id: str, config: dict) -> None:
    """Warn when the store holds an unfinished run that differs from this new one only in its
    batch size: the user most likely meant to resume it (rerun with its batch size)."""
    import warnings

    strip = lambda c: {k: v for k, v in c.items() if k != "batch_size"}  # noqa: E731
    mine = json.dumps(jsonable(strip(config)), sort_keys=True)
    for r in st.runs():
        other = r["config"]
        if r["run_id"] == run_id or r["n_done"] >= r["n_total"] or "batch_size" not in other:
            continue
        if json.dumps(jsonable(strip({k: other.get(k) for k in config})), sort_keys=True) == mine:
            b = other["batch_size"]
            warnings.warn(f"{st.path} holds an unfinished run {r['run_id']} of the same attack at batch size {b}; "
                          f"this batch size starts a new run (batch_size={b}, --batch-size {b}, resumes that one)",
                          stacklevel=4)


def _progress_bar(total: int, initial: int, title: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=title if len(title) <= 48 else title[:47] + "…", unit="img",
                dynamic_ncols=True)


def evaluate(model: Any, attack: Any, data: Any = ("cifar10", "test", 1000), store: Any = None, *,
             batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, checkpoint=None, target: Any = None,
             attack_params: dict | None = None, fit_size: int | None = None, device: str | torch.device | None = None,
             progress: bool | Callable[[dict], None] = False, store_images: bool = True, title: str | None = None,
             shard: tuple[int, int] | None = None, normalization: str = "card", precision: str | None = None) -> Run:
    """Attack a data set batch by batch, storing every sample; resume what is already stored.

    Args:
        model: a registered name (``"cifar10/resnet20"``), a ``torch.export`` archive
            (``"net.pt2"``), a factory ``"file.py:function"``, a
            :class:`~foolkit.models.sources.ResolvedModel`, or any ``nn.Module`` meeting the model
            contract (float ``[N,C,H,W]`` in [0,1] -> logits). Files are identified by their
            content hash (a renamed file resumes), a module by a hash of its ``state_dict``.
        attack: an :class:`~foolkit.attacks.base.Attack` instance, or a registered name
            (``"deepfool"``) with ``attack_params``.
        data: ``(name, split, n)`` or ``(name, split, n, root)``, a dict with those keys, a
            tensor ``x`` (labels = clean predictions), or a pair ``(x, y)``.
        store: SQLite file (created when missing; other runs in it are kept), a
            :class:`~foolkit.evaluation.store.Store`, or None (in memory).
        batch_size: images per batch (= per transaction). Part of the run's identity: the
            batch composition changes the results, so resuming takes the same batch size.
        seed: base seed; each batch runs under ``seed`` and its start index.
        checkpoint: state_dict file for a registered model (instead of the shipped weights).
        normalization: for a registered name, ``"card"`` or ``"thesis"`` (the std the thesis's
            code fed its checkpoints); in the run's identity when not ``"card"``.
        target: None (untargeted), an int class or ``[N]`` classes.
        fit_size: universal perturbations (attacks with ``fit``): X = the first ``fit_size``
            images (default half of them); the rest are the unseen images.
        device: where the model and images go; None: the device of an ``nn.Module``'s (or a
            ``ResolvedModel``'s) parameters, else the CPU.
        progress: True for a tqdm bar, or a callable receiving a dict after each batch
            (``done``/``total``: images of this call's batches, all of them or the shard's).
        store_images: store the images and perturbations (needed by the report).
        shard: ``(K, N)``, ``1 <= K <= N``: run only the batches ``b`` with ``b % N == K - 1``
            (:mod:`foolkit.evaluation.shards`). Same run id in every shard; the run is complete
            once all its batches are stored (``foolkit merge`` combines the shards' stores).
            A universal perturbation is refitted in each shard from the same seed and fit set.
        precision: None/"float32", "bf16" or "fp16": autocast for the attack's own forward and
            backward passes (:mod:`foolkit.attacks.precision`); results are verified in float32.
            Part of the run's identity when not float32.

    On out-of-memory a batch is attacked in halves (quarters, ... one image) and one warning
    names the size that worked (:mod:`foolkit.evaluation.oom`); the run stays the same run.

    Returns:
        :class:`Run`. Raises ``ValueError`` (bad input), ``StoreError`` (unusable store file).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if device is None:  # the Python API takes the model's own device
        module = getattr(model, "module", model)
        device = next((p.device for p in module.parameters()), "cpu") if isinstance(module, nn.Module) else "cpu"
    device = parse_device(device)  # "cuda" without CUDA: the CLI's clear ValueError, not torch's assert
    from ..attacks.precision import attack_precision, check_precision
    precision = check_precision(precision)
    attack_precision(precision, device)  # a precision this device cannot autocast fails before any work
    shard = check_shard(shard)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    attack = _resolve_attack(attack, attack_params)
    if target is not None and not getattr(attack, "supports_target", True):  # before a fit or a store
        raise InputError(f"{type(attack).__name__} has no targeted mode; drop the target (--target)")
    # Everything is resolved and checked before the store is opened, so bad input leaves no
    # store file and no empty run behind.
    x, y, data_spec, classes = _resolve_data(data)
    from ..models.sources import prepare_model  # loads a .pt2 or a factory; checks the image size
    model, checkpoint = prepare_model(model, checkpoint, device, x.shape, data_spec.get("dataset"))
    net, model_spec, model_title = _resolve_model(model, checkpoint, device, normalization)
    n = len(x)
    num_classes = check_model_output(net, x[:1].to(device))
    if y is not None:
        y = validate_labels(y, n, num_classes, "labels y", "cpu")
    tgt = None if target is None else validate_labels(target, n, num_classes, "target", "cpu")
    universal = is_universal(attack)
    if universal:
        fit_size = max(1, n // 2) if fit_size is None else fit_size
        if isinstance(fit_size, bool) or not isinstance(fit_size, int) or not 1 <= fit_size <= n:
            raise InputError(f"fit_size must be an integer in [1, {n}], got {fit_size!r}")
    elif fit_size is not None:
        raise InputError("fit_size applies to universal perturbations only")
    st = store if isinstance(store, Store) else Store(":memory:" if store is None else store)
    owns = not isinstance(store, Store) and store is not None
    try:
        return _evaluate(st, owns, net, model_spec, model_title, attack, x, y, data_spec, classes, tgt,
                         batch_size=batch_size, seed=seed, fit_size=fit_size, device=device, progress=progress,
                         store_images=store_images, title=title, shard=shard, precision=precision)
    finally:
        if owns:
            st.close()


def _evaluate(st, owns, net, model_spec, model_title, attack, x, y, data_spec, classes, tgt, *, batch_size, seed,
              fit_size, device, progress, store_images, title, shard=None, precision="float32") -> Run:
    n = len(x)
    universal = is_universal(attack)
    from ..attacks.registry import name_of
    attack_name = name_of(attack)
    config = run_config(model_spec, attack, attack_name, data_spec, seed=seed, target=tgt,
                        fit_size=fit_size if universal else None, batch_size=batch_size, precision=precision)
    run_id = run_hash(config)
    # a non-default batch size is in the title too, so `foolkit show` tells such runs apart
    batch_note = "" if batch_size == DEFAULT_BATCH_SIZE else f" batch={batch_size}"
    title = title or f"{model_title} {attack_name}{_short_params(attack)}{batch_note}"
    config_stored = dict(config, classes=list(classes) if classes else None, title=title)

    bar = None
    try:
        if st.ensure_run(run_id, config_stored, n, title):
            _warn_unfinished_sibling(st, run_id, config)
        done = st.done_indices(run_id)
        x_dev = x.to(device)
        y_dev = None if y is None else y.to(device)
        mean = channel_mean(net, data_spec, x.shape[1])
        if universal:  # fitted once per run, stored, reloaded on resume
            blob = st.artifact(run_id, "universal_perturbation")
            if blob is None:
                from ..attacks.precision import attack_precision
                with torch.random.fork_rng(devices=[]), attack_precision(precision, device):
                    torch.manual_seed(seed)
                    v, info = _fit_universal(attack, net, x_dev[:fit_size], None if y_dev is None else y_dev[:fit_size])
                st.set_artifact(run_id, "universal_fit", json.dumps(jsonable(info)).encode())
                st.set_artifact(run_id, "universal_perturbation", encode_array(v.numpy()))
            else:
                v = torch.from_numpy(np.asarray(decode(blob)))
            attack.perturbation_ = v.to(device=device, dtype=x.dtype)
        # this call's images: the whole run, or the shard's batches (the shard is not in the run id)
        mine = set(range(n)) if shard is None else set(shard_indices(n, batch_size, shard))
        mine_done = len(mine & done)
        if progress is True:
            bar = _progress_bar(len(mine), mine_done, title)
        tally = _metrics.compute(st.samples(run_id)) if done else {}
        from .oom import OomSplitter, verify_in_parts
        splitter = OomSplitter()
        fooled, attacked_n = tally.get("n_fooled", 0), tally.get("n_attacked", 0)
        for start in range(0, n, batch_size):
            if not in_shard(start // batch_size, shard):
                continue
            todo = [i for i in range(start, min(start + batch_size, n)) if i not in done]
            if not todo:
                continue
            ix = torch.tensor(todo)
            xb = x_dev[ix]
            yb = None if y_dev is None else y_dev[ix]
            tb = None if tgt is None else tgt[ix].to(device)
            # each batch (each part, when out of memory splits it) under its own seed
            result, worked = splitter.attack(attack, net, xb, yb, target=tb, precision=precision,
                                             start=start, base_seed=seed)
            checks = verify_in_parts(net, result, worked)  # in parts that fit, after an out-of-memory split
            in_fit = (ix < fit_size) if universal else torch.zeros(len(ix), dtype=torch.bool)
            rows, blobs, run_level = batch_records(result, checks, todo, mean, start, in_fit, store_images)
            artifacts = batch_artifacts(run_level, start, worked, len(todo))
            if st.insert_batch(run_id, rows, blobs, artifacts):
                attacked_n += int(result.attacked.sum())
                fooled += int(checks["verified"].sum())
            done.update(todo)
            mine_done += len(todo)
            info = {"done": mine_done, "total": len(mine), "fooled": fooled, "attacked": attacked_n,
                    "fooling_rate": fooled / attacked_n if attacked_n else None}
            if bar is not None:
                bar.update(len(todo))
                bar.set_postfix_str(f"fooling rate {100 * info['fooling_rate']:.1f}%" if attacked_n else "")
            elif callable(progress):
                progress(info)
        if len(st.done_indices(run_id)) >= n:
            st.mark_complete(run_id)
    finally:
        if bar is not None:
            bar.close()
    return Run(st.path if owns else st, run_id)
