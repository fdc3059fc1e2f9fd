"""Resumable, seeded training of CIFAR-10 networks (``foolkit train``).

Recipe: SGD with Nesterov momentum, OneCycle learning rate, label smoothing, per-image
random crops (4-pixel zero padding) and horizontal flips. Optional bfloat16 autocast on
CPUs that support it (about 3x faster on AVX512-BF16 here; BatchNorm statistics and the
weights stay float32).

With ``swa_lr`` the run is a stochastic weight averaging phase (Izmailov et al. 2018),
usually after ``init_from``: a constant learning rate, the weights averaged at the end of
every epoch, and the BatchNorm statistics of the average recomputed on the training images;
``weights.pt`` and the logged test accuracy are then those of the average.

Defenses of the thesis's 13.2 (usually fine-tuning, with ``init_from``):
``adversarial="fgsm"`` trains on the objective of Goodfellow et al. (thesis 13.2.2),
α·L(x, y) + (1 − α)·L(x + ε·sign ∇ₓL(x, y), y), and ``ortho_beta`` adds the orthogonality
regulariser of Defensive Quantization (Lin et al. 2019; thesis 13.2.3), (β/2)·Σᵢ‖WᵢᵀWᵢ − I‖²
over every convolution and linear weight (see :func:`adversarial_loss`, :func:`orthogonality_penalty`).

The training state (weights, optimizer, scheduler, epoch, history) is written atomically to
``<out>/last.pt`` after every epoch; rerunning the same command resumes from it. Shuffling
and augmentation are seeded per epoch from ``seed``, so a resumed run follows the same
sequence of batches as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.safe_load import describe_load_error
from ..errors import InputError
from ..runtime.files import atomic_path, write_text
from .augmentation import cutout, random_crop_flip
from .objectives import adversarial_loss, orthogonality_penalty
from .predict import predict_labels
from .wrappers import Normalized


@dataclass
class TrainConfig:
    model: str = "cifar10/resnet20"
    epochs: int = 60
    batch_size: int = 128
    max_lr: float = 0.2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    seed: int = 0
    bf16: bool = False
    limit: int | None = None  # use only the first `limit` training images (smoke tests)
    max_steps: int | None = None  # stop after this many optimizer steps in total (smoke tests)
    reschedule: bool = False  # resume under a different --epochs: rebuild the schedule, fast-forwarded
    init_from: str | None = None  # start from these network weights (a second, fine-tuning phase)
    pct_start: float = 0.25  # OneCycle warm-up fraction
    swa_lr: float | None = None  # stochastic weight averaging: constant lr, weights averaged every epoch
    cutout: int = 0  # side of the square hole cut from every training image (0: off; DeVries & Taylor use 16)
    adversarial: str | None = None  # "fgsm": thesis 13.2.2's objective (alpha, eps below); None: clean training
    alpha: float = 0.5  # weight of the clean loss in the adversarial objective
    eps: float = 8 / 255  # FGSM step of the adversarial objective, in [0,1] pixel units
    ortho_beta: float = 0.0  # orthogonality regulariser (beta/2)*sum ||W^T W - I||^2 (thesis 13.2.3); 0: off

    def validate(self) -> None:
        """Refuse settings that cannot train, naming the option (``ValueError``)."""
        def integer(name: str, value: object, minimum: int, optional: bool = False) -> None:
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")

        def number(name: str, value: object, low: float, high: float, low_open: bool = False,
                   high_open: bool = False, optional: bool = False) -> None:
            if optional and value is None:
                return
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and (value > low if low_open else value >= low) and (value < high if high_open else value <= high))
            if not ok:
                raise InputError(f"{name} must lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, "
                                 f"got {value!r}")

        integer("epochs", self.epochs, 1)
        integer("batch_size", self.batch_size, 1)
        integer("seed", self.seed, 0)
        integer("limit", self.limit, 1, optional=True)
        integer("max_steps", self.max_steps, 1, optional=True)
        integer("cutout", self.cutout, 0)
        number("max_lr", self.max_lr, 0, math.inf, low_open=True, high_open=True)
        number("weight_decay", self.weight_decay, 0, math.inf, high_open=True)
        number("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        number("pct_start", self.pct_start, 0, 1, low_open=True, high_open=True)
        number("swa_lr", self.swa_lr, 0, math.inf, low_open=True, high_open=True, optional=True)
        if self.adversarial not in (None, "fgsm"):
            raise InputError(f"adversarial must be 'fgsm' or None (clean training), got {self.adversarial!r}")
        number("alpha", self.alpha, 0, 1)
        number("eps", self.eps, 0, 1, low_open=True)
        number("ortho_beta", self.ortho_beta, 0, math.inf, high_open=True)

# Settings a resumed run must share with the run it continues; states written before an option
# existed were trained with its default (so they resume under the default only).
RESUME_DEFAULTS = {"cutout": 0, "adversarial": None, "alpha": 0.5, "eps": 8 / 255, "ortho_beta": 0.0}
RESUME_CHECKED = ("model", "batch_size", "max_lr", "seed", "limit", "swa_lr", "cutout",
                  "adversarial", "alpha", "eps", "ortho_beta")


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 test accuracy for the history (the model's train/eval modes are restored)."""
    return (predict_labels(model, x) == y).sum().item() / len(x)


def _state_copy(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A contiguous CPU copy of ``net``'s state_dict that later in-place updates of the network do
    not change (``contiguous()`` of a contiguous tensor would share its storage); on the CPU, so
    checkpoints trained on a GPU load anywhere."""
    return {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
            for k, v in net.state_dict().items()}


@torch.no_grad()
def _swa_weights(model: Normalized, net_sd: dict[str, torch.Tensor], swa_sum: dict[str, torch.Tensor],
                 swa_count: int, xtr_u8: torch.Tensor,
                 config: TrainConfig, batch_size: int = 128) -> dict:
    """Load the average of the epoch-end weights into ``model.net``, recompute its BatchNorm
    running statistics on the training images, and return its state_dict."""
    net = model.net
    avg = {k: (swa_sum[k] / swa_count).to(v.dtype) if k in swa_sum else v for k, v in net_sd.items()}
    net.load_state_dict(avg)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    # Shuffled, because the training set may be sorted by class and one-class batches miss the
    # variance between classes; augmented as in training, because the layers after each
    # BatchNorm were fitted to augmented-image statistics (measured on the shipped ResNet-20:
    # statistics of unaugmented images cost 4.5 points of test accuracy, augmented ones 0.2).
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(xtr_u8), generator=generator)
    device = next(net.parameters()).device
    for i in range(0, len(xtr_u8), batch_size):
        xb = random_crop_flip(xtr_u8[order[i:i + batch_size]].float().div_(255), generator).to(device)
        if config.bf16:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            model(xb)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.eval()
    return _state_copy(net)


def _atomic_save(obj: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(config: TrainConfig, data_root: str | os.PathLike, out_dir: str | os.PathLike,
          progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """Train (or resume) ``config.model`` on CIFAR-10 at ``data_root``; returns the history.

    Writes ``out_dir/last.pt`` (full training state, every epoch), ``out_dir/weights.pt``
    (raw network state_dict after the last finished epoch, CPU tensors) and
    ``out_dir/history.json``. ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, where the network
    and its batches live (augmentation stays on the CPU with its seeded generator, so the batches
    are the same on every device); bf16 autocast runs on that device's type. The device is not
    part of the training state: a run may resume on another one.
    """
    from ..data.cifar10 import load_cifar10_uint8
    from ..runtime.machine import parse_device
    from .registry import build

    config.validate()
    device = parse_device(device)  # an absent GPU fails here, before anything is written
    out = Path(out_dir)
    state_path = out / "last.pt"

    torch.manual_seed(config.seed)
    model = build(config.model)  # Normalized(net) with fresh weights
    net = model.net
    if config.init_from and not state_path.exists():  # checked before anything is written
        from .registry import ModelError, load_state_dict
        try:
            net.load_state_dict(load_state_dict(config.init_from), strict=True)
        except RuntimeError as exc:
            raise ModelError(f"--init-from {config.init_from} does not fit {config.model}: "
                             f"{str(exc).splitlines()[0][:300]}") from exc
    model.to(device)  # before the optimizer exists: its state follows the parameters' device
    xtr_u8, ytr_np = load_cifar10_uint8("train", data_root)
    xte_u8, yte_np = load_cifar10_uint8("test", data_root)
    if config.limit:  # a fixed random subset, so every class is present
        keep_tr = np.random.RandomState(0).permutation(len(xtr_u8))[:config.limit]
        keep_te = np.random.RandomState(1).permutation(len(xte_u8))[:config.limit]
        xtr_u8, ytr_np = xtr_u8[keep_tr], ytr_np[keep_tr]
        xte_u8, yte_np = xte_u8[keep_te], yte_np[keep_te]
    xtr = torch.from_numpy(xtr_u8)
    ytr = torch.from_numpy(np.asarray(ytr_np, dtype=np.int64))
    xte = torch.from_numpy(xte_u8).float().div_(255)
    yte = torch.from_numpy(np.asarray(yte_np, dtype=np.int64))

    steps_per_epoch = math.ceil(len(xtr) / config.batch_size)
    if steps_per_epoch * config.epochs < 8:
        raise InputError(f"{steps_per_epoch * config.epochs} optimizer steps are too few for a OneCycle schedule; "
                         "use more epochs, more images or a smaller batch size")
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in net.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.max_lr, momentum=0.9, nesterov=True)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if config.swa_lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = config.swa_lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    else:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.max_lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=config.pct_start, div_factor=20, final_div_factor=200)
    swa_sum: dict[str, torch.Tensor] | None = None  # running sum of the epoch-end weights
    swa_count = 0

    history: list[dict] = []
    reschedules: list[dict] = []  # when --reschedule changed the number of epochs of a run
    start_epoch, steps_done = 0, 0
    if state_path.exists():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot resume: {state_path} is corrupt ({describe_load_error(exc)}); "
                             f"delete it to start over") from None
        saved = {**RESUME_DEFAULTS, **state["config"]}
        checked = RESUME_CHECKED + (() if config.reschedule else ("epochs",))
        for key in checked:
            if saved.get(key) != getattr(config, key):
                raise InputError(
                    f"cannot resume: {state_path} was trained with {key}={saved.get(key)!r}, "
                    f"now {key}={getattr(config, key)!r}; use another --out or the same settings")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])  # casts the saved state to the parameters' device
        start_epoch, steps_done = state["epoch"], state["steps_done"]
        history = json.loads(state["history"])
        reschedules = json.loads(state.get("reschedules", "[]"))
        swa_sum, swa_count = state.get("swa_sum"), state.get("swa_count", 0)
        if saved.get("epochs") == config.epochs:
            scheduler.load_state_dict(state["scheduler"])
        else:  # --reschedule: the new OneCycle schedule, advanced to the steps already taken
            with warnings.catch_warnings():  # stepping a fresh scheduler before its optimizer is intended here
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(steps_done):
                    scheduler.step()
            reschedules.append({"at_epoch": start_epoch, "from_epochs": saved.get("epochs"),
                                "to_epochs": config.epochs})

    if config.bf16:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted at run time; the stubs omit it
    if start_epoch >= config.epochs:
        model.eval()
        return {"config": asdict(config), "history": history}
    out.mkdir(parents=True, exist_ok=True)
    fill = model.mean.detach().cpu()  # cutout's fill, on the CPU where augmentation runs
    for epoch in range(start_epoch, config.epochs):
        if config.max_steps is not None and steps_done >= config.max_steps:
            break
        t0 = time.time()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(len(xtr), generator=generator)
        model.train()
        total_loss, seen = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not progress, leave=False)
        for step in bar:
            if config.max_steps is not None and steps_done >= config.max_steps:
                break
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb = random_crop_flip(xtr[idx].float().div_(255), generator)
            if config.cutout:
                xb = cutout(xb, config.cutout, generator, fill=fill)
            xb, yb = xb.to(device, non_blocking=True), ytr[idx].to(device, non_blocking=True)
            if config.bf16:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if config.adversarial == "fgsm":
                loss = adversarial_loss(model, xb, yb, alpha=config.alpha, eps=config.eps,
                                        label_smoothing=config.label_smoothing, bf16=config.bf16)
            else:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            if config.ortho_beta:
                loss = loss + config.ortho_beta / 2 * orthogonality_penalty(net)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            steps_done += 1
            total_loss += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        net_sd = _state_copy(net)
        if config.swa_lr is not None:
            swa_count += 1
            floats = {k: v.detach().double() for k, v in net_sd.items() if v.is_floating_point()}
            swa_sum = floats if swa_sum is None else {k: swa_sum[k] + floats[k] for k in swa_sum}
            out_sd = _swa_weights(model, net_sd, swa_sum, swa_count, xtr, config)
            test_acc = _accuracy(model, xte, yte)  # of the average, which _swa_weights left in `model`
            net.load_state_dict(net_sd)  # training goes on from the last weights, not the average
        else:
            out_sd = net_sd
            test_acc = _accuracy(model, xte, yte)
        record = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1), "test_acc": test_acc,
                  "seconds": time.time() - t0, "lr": scheduler.get_last_lr()[0]}
        if config.swa_lr is not None:
            record["swa_models"] = swa_count
        history.append(record)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}  loss {record['train_loss']:.4f}  "
                       f"test acc {test_acc:.4f}  {record['seconds']:.0f}s")
        _atomic_save({"model": net_sd, "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "steps_done": steps_done,
                      "config": asdict(config), "history": json.dumps(history),
                      "reschedules": json.dumps(reschedules), "swa_sum": swa_sum, "swa_count": swa_count},
                     state_path)
        _atomic_save(out_sd, out / "weights.pt")
        write_text(out / "history.json", json.dumps({"config": asdict(config), "history": history,
                                                     "reschedules": reschedules}, indent=1))
    model.eval()
    return {"config": asdict(config), "history": history}
