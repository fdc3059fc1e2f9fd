"""Benchmark SparseFool, One Pixel and universal perturbations against torchattacks and ART.

One run, the same model (cifar10/resnet20) and the same bundled images for every library, at
equal budgets where the peers allow it:
- SparseFool: lambda 3, 20 outer iterations, overshoot 0.02 (foolkit vs torchattacks 3.5.1).
- One Pixel: d pixels, population P, G generations (foolkit at both stopping rules, with and
  without its memo of evaluated candidates, interleaved with torchattacks OnePixel with
  popsize = P over chunks of images; ART PixelAttack with DE; ART fixes its population at ~400 candidates, so it
  gets more queries). Model queries are counted by a wrapper for every library; the floor is
  foolkit's queries x the per-image time of one large forward batch.
- Universal: L-inf, xi, delta 0.2, DeepFool (10 steps, 10 classes, overshoot 0.02) on X =
  the first ``--uap-n`` images, fooling rate also on the held-out rest of the 1,000 images
  (foolkit faithful and batched vs ART UniversalPerturbation).

    python benchmarks/bench_sparse_pixel_universal.py --n 50 --op-n 20 --uap-n 200 [--checkpoint PATH]
"""
from __future__ import annotations

import argparse
import random
import warnings

import numpy as np
import torch
from torch import nn

import foolkit as fk
from _common import machine, timed, warm_up

warnings.filterwarnings("ignore")


class Counted(nn.Module):
    """Counts the images passed forward (every library's model queries)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x):
        self.images += len(x)
        return self.model(x)


def predict(model, x, bs=500):
    with torch.no_grad():
        return torch.cat([model(x[i:i + bs]).argmax(1) for i in range(0, len(x), bs)])


def row(name, model, x, y, x_adv, seconds, queries=None):
    clean, adv = predict(model, x), predict(model, x_adv)
    correct = clean == y
    fooled = correct & (adv != y)
    pixels = fk.norms.pixels_changed(x_adv - x)[fooled]
    return {"library": name, "ms/img": 1000 * seconds / len(x), "seconds": seconds,
            "fooling": float(fooled.sum()) / max(int(correct.sum()), 1),
            "pixels": float(pixels.median()) if len(pixels) else float("nan"),
            "queries/img": None if queries is None else queries / len(x)}


def table(title, rows, cols):
    print(f"\n### {title}\n")
    base = rows[0]
    print("| library | " + " | ".join(cols) + " | time ratio to foolkit |")
    print("|---" * (len(cols) + 2) + "|")
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None:
                cells.append("-")
            elif c in ("fooling", "pixels", "fooling X", "fooling held-out"):
                cells.append(f"{100 * v:.1f}%")
            else:
                cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        print(f"| {r['library']} | " + " | ".join(cells) + f" | {r['seconds'] / base['seconds']:.2f}x |")


def art_classifier(model, device):
    from art.estimators.classification import PyTorchClassifier
    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(3, 32, 32), nb_classes=10,
                             clip_values=(0.0, 1.0), device_type="gpu" if device.startswith("cuda") else "cpu")


def forward_floor(model, x, device):
    """Best seconds per image of one large no-grad forward batch (128, 256 or 1024 images)."""
    best = float("inf")
    for b in (128, 256, 1024):
        xb = x.repeat((b + len(x) - 1) // len(x), 1, 1, 1)[:b]
        with torch.no_grad():
            model(xb)  # warm-up
            _, sec = timed(lambda: model(xb), device)
        best = min(best, sec / b)
    return best


def onepixel_section(args, skip, model, base, x, y):
    """foolkit (memo on: as shipped; off: before the memo) at both stopping rules, torchattacks,
    interleaved over chunks of ``--op-chunk`` images so that load changes on a shared machine
    hit every configuration alike; ART (optional) on its first images afterwards."""
    d, pop, gens = args.op_pixels, args.op_population, args.op_generations
    configs = [("foolkit, stop_on_success (torchattacks' rule)", True, True),
               ("foolkit, stop_on_success, memo off (before)", True, False),
               ("foolkit (paper's rule)", False, True),
               ("foolkit (paper's rule), memo off (before)", False, False)]
    if "before" in skip:
        configs = [c for c in configs if c[2]]
    names = [c[0] for c in configs] + ([] if "torchattacks" in skip else ["torchattacks 3.5.1"])
    acc = {k: {"sec": 0.0, "q": 0, "adv": [], "gens": []} for k in names}
    for s in range(0, len(x), args.op_chunk):
        xc, yc = x[s:s + args.op_chunk], y[s:s + args.op_chunk]
        for name, sos, memo in configs:
            fk.attacks.OnePixel._memoize = memo
            model.images = 0
            res, sec = timed(lambda: fk.attacks.OnePixel(pixels=d, population=pop, generations=gens,
                                                         stop_on_success=sos)(model, xc, yc), args.device)
            a = acc[name]
            a["sec"] += sec
            a["q"] += model.images
            a["adv"].append(res.x_adv)
            a["gens"].append(res.iterations[res.attacked])
        fk.attacks.OnePixel._memoize = True
        if "torchattacks" not in skip:
            import torchattacks
            np.random.seed(s)
            model.images = 0
            atk = torchattacks.OnePixel(model, pixels=d, steps=gens, popsize=pop, inf_batch=512)
            adv, sec = timed(lambda: atk(xc, yc), args.device)
            a = acc["torchattacks 3.5.1"]
            a["sec"] += sec
            a["q"] += model.images
            a["adv"].append(adv)
    per_query = forward_floor(base, x, args.device)
    rows = []
    for name in names:
        a = acc[name]
        r = row(name, model, x, y, torch.cat(a["adv"]), a["sec"], a["q"])
        if a["gens"]:
            r["avg gens"] = float(torch.cat(a["gens"]).float().mean())
            r["x floor"] = a["sec"] / (a["q"] * per_query)
        rows.append(r)
    if "art" not in skip:
        from art.attacks.evasion import PixelAttack
        np.random.seed(0)
        model.images = 0
        atk = PixelAttack(art_classifier(model, args.device), th=d, es=1, max_iter=gens, verbose=False)
        n_art = min(args.art_op_n or len(x), len(x))
        xa, ya = x[:n_art], y[:n_art]
        adv, sec = timed(lambda: atk.generate(xa.cpu().numpy(), ya.cpu().numpy()), "cpu")
        rows.append(row(f"ART 1.20.1 (DE, population ~400; first {n_art} images)", model, xa, ya,
                        torch.from_numpy(adv).to(x.device, x.dtype), sec, model.images))
    floor = acc[names[0]]["q"] * per_query
    rows.append({"library": "floor of the first row (its queries x large-batch forward time)", "seconds": floor,
                 "ms/img": 1000 * floor / len(x)})
    table(f"One Pixel, d = {d}, population {pop}, {gens} generations, n = {len(x)}, interleaved in chunks "
          f"of {args.op_chunk} (x floor: time / (queries x {1000 * per_query:.3f} ms))", rows,
          ["ms/img", "fooling", "queries/img", "avg gens", "x floor"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50, help="images for SparseFool")
    ap.add_argument("--op-n", type=int, default=20, help="images for One Pixel")
    ap.add_argument("--art-op-n", type=int, default=None,
                    help="images for ART's PixelAttack (the first of the One Pixel images; it takes ~1 min/image)")
    ap.add_argument("--op-pixels", type=int, default=1)
    ap.add_argument("--op-population", type=int, default=100)
    ap.add_argument("--op-generations", type=int, default=20)
    ap.add_argument("--op-chunk", type=int, default=5, help="One Pixel images per interleaved round")
    ap.add_argument("--uap-n", type=int, default=200, help="images X the universal perturbation is fitted on")
    ap.add_argument("--uap-xi", type=float, default=0.05)
    ap.add_argument("--uap-passes", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--skip", default="", help="comma list: torchattacks,art,sparsefool,onepixel,universal,faithful,before")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)
    base = fk.models.load("cifar10/resnet20", checkpoint=args.checkpoint, device=args.device)
    for p in base.parameters():
        p.requires_grad_(False)
    model = Counted(base).eval()
    x_all, y_all = fk.data.load("cifar10", "test")
    x_all, y_all = x_all.to(args.device), y_all.to(args.device)
    acc = float((predict(model, x_all) == y_all).float().mean())
    warm_up(base, x_all)
    print(f"machine: {machine()}; model cifar10/resnet20; clean accuracy {100 * acc:.1f}% on the 1,000 bundled images")

    if "sparsefool" not in skip:
        x, y = x_all[:args.n], y_all[:args.n]
        rows = []
        res, sec = timed(lambda: fk.attacks.SparseFool(lambda_=3.0, max_iter=20)(model, x, y), args.device)
        rows.append({**row("foolkit", model, x, y, res.x_adv, sec),
                     "avg iters": float(res.iterations[res.attacked].float().mean())})
        if "torchattacks" not in skip:
            import torchattacks
            atk = torchattacks.SparseFool(model, steps=20, lam=3, overshoot=0.02)
            adv, sec = timed(lambda: atk(x, y), args.device)
            rows.append(row("torchattacks 3.5.1", model, x, y, adv, sec))
        table(f"SparseFool, lambda 3, 20 iterations, overshoot 0.02, n = {args.n} "
              "(pixels: median fraction of pixels changed, fooled images)", rows,
              ["ms/img", "fooling", "pixels", "avg iters"])

    if "onepixel" not in skip:
        onepixel_section(args, skip, model, base, x_all[:args.op_n], y_all[:args.op_n])

    if "universal" not in skip:
        X, H = x_all[:args.uap_n], x_all[args.uap_n:]
        clean_x, clean_h = predict(model, X), predict(model, H)
        rows = []

        def uap_row(name, v, sec, passes):
            fx = float((predict(model, (X + v).clamp(0, 1)) != clean_x).float().mean())
            fh = float((predict(model, (H + v).clamp(0, 1)) != clean_h).float().mean())
            return {"library": name, "seconds": sec, "fooling X": fx, "fooling held-out": fh, "passes": passes,
                    "linf": float(v.abs().max())}

        modes = ["batched"] + ([] if "faithful" in skip else ["faithful"])
        for mode in modes:
            uap = fk.attacks.UniversalPerturbation(norm="inf", xi=args.uap_xi, mode=mode, max_passes=args.uap_passes,
                                                   batch_size=100, deepfool_max_iter=10)
            _, sec = timed(lambda: uap.fit(model, X), args.device)
            rows.append(uap_row(f"foolkit {mode}", uap.perturbation_, sec, uap.passes_))
        if "art" not in skip:
            from art.attacks.evasion import UniversalPerturbation as ArtUAP
            random.seed(0)
            atk = ArtUAP(art_classifier(model, args.device), attacker="deepfool",
                         attacker_params={"max_iter": 10, "epsilon": 0.02, "nb_grads": 10, "verbose": False},
                         delta=0.2, max_iter=args.uap_passes, eps=args.uap_xi, norm=np.inf, batch_size=100,
                         verbose=False)
            _, sec = timed(lambda: atk.generate(X.cpu().numpy()), "cpu")
            v = torch.from_numpy(atk.noise).to(X.device, X.dtype)
            rows.append(uap_row("ART 1.20.1", v, sec, "-"))
        table(f"Universal L-inf, xi = {args.uap_xi}, delta 0.2, at most {args.uap_passes} passes, "
              f"|X| = {len(X)}, held-out {len(H)}", rows,
              ["seconds", "fooling X", "fooling held-out", "passes", "linf"])


if __name__ == "__main__":
    main()
