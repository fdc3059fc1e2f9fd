"""Shared set-up for the peer benchmarks: model, images, peer imports, timing."""
from __future__ import annotations

import sys
import time
import types
from datetime import date

import torch

import foolkit as fk


def machine() -> str:
    from foolkit.runtime.machine import describe
    device = "cuda" if torch.cuda.is_available() else None
    return f"{describe(device)}; {date.today().isoformat()}"


def load_model_and_data(n: int, device: str, checkpoint: str | None = None):
    model = fk.models.load("cifar10/resnet20", checkpoint=checkpoint, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = fk.data.load("cifar10", "test", n=n)
    return model, x.to(device), y.to(device)


def warm_up(model, x, rounds: int = 3) -> None:
    """Run forward+backward passes first so that no library pays for one-off set-up
    (oneDNN primitive caches, allocator growth) inside its timing."""
    for _ in range(rounds):
        xg = x[:256].clone().requires_grad_(True)
        torch.autograd.grad(model(xg).sum(), xg)


def import_adv_lib():
    """adv-lib imports torchvision and visdom at import time: stub them (not used by df)."""
    for name in ("torchvision", "torchvision.models", "torchvision.transforms", "visdom"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["visdom"].Visdom = object
    from adv_lib.attacks import df
    return df


def timed(fn, device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def summarise(model, x, y, x_adv, seconds, p_norms=(2, float("inf"))):
    """Fooling rate over correctly classified images, median/mean norms over the fooled ones."""
    with torch.no_grad():
        clean = model(x).argmax(1)
        adv = torch.cat([model(x_adv[i:i + 500]).argmax(1) for i in range(0, len(x_adv), 500)])
    correct = clean == y
    fooled = correct & (adv != y)
    r = (x_adv - x).flatten(1)
    row = {"seconds": seconds, "ms_per_image": 1000 * seconds / len(x),
           "fooling_rate": float(fooled.sum()) / max(int(correct.sum()), 1)}
    for p in p_norms:
        norms = r.norm(p=p, dim=1)[fooled]
        key = "inf" if p == float("inf") else str(p)
        row[f"median_l{key}"] = float(norms.median()) if len(norms) else float("nan")
        row[f"mean_l{key}"] = float(norms.mean()) if len(norms) else float("nan")
    return row


def print_table(title: str, rows: list[dict], ref: str, cols: list[str]):
    print(f"\n### {title}\n")
    print("| library | " + " | ".join(cols) + " | time ratio to foolkit | ‖r‖ median ratio |")
    print("|---" * (len(cols) + 3) + "|")
    base = next(r for r in rows if r["library"] == ref)
    norm_key = next(c for c in cols if c.startswith("median_l"))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, float("nan"))
            cells.append(f"{100 * v:.1f}%" if c == "fooling_rate" else f"{v:.4g}" if isinstance(v, float) else str(v))
        t_ratio = r["seconds"] / base["seconds"]
        n_ratio = r.get(norm_key, float("nan")) / base[norm_key]
        print(f"| {r['library']} | " + " | ".join(cells) + f" | {t_ratio:.2f}x | {n_ratio:.3f} |")
