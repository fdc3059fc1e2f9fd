"""Benchmark FGSM and DeepFool (L2, Linf) against torchattacks, Foolbox, ART and adv-lib.

One run, same model (cifar10/resnet20) and the same bundled images for every library.
Prints Markdown tables: time, fooling rate, median/mean ‖r‖, ratios to foolkit, and the
DeepFool floor (1 forward + (K-1) backward passes per step on the images still active).

    python benchmarks/bench_gradient_attacks.py --n 1000
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

import foolkit as fk
from _common import import_adv_lib, load_model_and_data, machine, print_table, summarise, timed, warm_up

warnings.filterwarnings("ignore")


def deepfool_floor(model, x, iterations: torch.Tensor, k: int, device: str) -> float:
    """Seconds for 1 forward + (K-1) backward passes per step, on the images active at each step."""
    total = 0.0
    steps = int(iterations.max())
    for s in range(1, steps + 1):
        n_active = int((iterations >= s).sum())
        if n_active == 0:
            break
        xa = x[:n_active].clone().requires_grad_(True)

        def run():
            logits = model(xa)
            for j in range(1, k):
                torch.autograd.grad(logits[:, j].sum() - logits[:, 0].sum(), xa, retain_graph=j + 1 < k)
        _, sec = timed(run, device)
        total += sec
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--skip", default="", help="comma list of peers to skip: torchattacks,foolbox,art,adv-lib")
    ap.add_argument("--overshoot", type=float, default=0.02)
    ap.add_argument("--art-n", type=int, default=None, help="images for ART (the first of the n; it is slow)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)
    model, x, y = load_model_and_data(args.n, args.device, args.checkpoint)
    print(f"machine: {machine()}; model cifar10/resnet20; {args.n} bundled CIFAR-10 test images")
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    print(f"clean accuracy {100 * acc:.1f}%")
    warm_up(model, x)

    # ---------------- FGSM ----------------
    eps = 8 / 255
    rows = []
    res, sec = timed(lambda: fk.attacks.FGSM(eps=eps)(model, x, y), args.device)
    rows.append({"library": "foolkit", **summarise(model, x, y, res.x_adv, sec)})
    fk_adv = res.x_adv
    if "torchattacks" not in skip:
        import torchattacks
        atk = torchattacks.FGSM(model, eps=eps)
        adv, sec = timed(lambda: atk(x, y), args.device)
        # foolkit leaves misclassified images untouched (D'test rule): compare the attacked ones
        att = res.attacked
        rows.append({"library": "torchattacks 3.5.1", **summarise(model, x, y, adv, sec),
                     "max_abs_diff": float((adv[att] - fk_adv[att]).abs().max())})
    print_table(f"FGSM, eps = 8/255, n = {args.n}", rows, "foolkit",
                ["ms_per_image", "fooling_rate", "median_l2", "median_linf"])
    for r in rows:
        if "max_abs_diff" in r:
            print(f"\nmax |x_adv(torchattacks) - x_adv(foolkit)| over the correctly classified images = {r['max_abs_diff']:.2e}")
    print("foolkit's time includes its clean forward pass and the verification forward pass of x_adv.")

    # ---------------- DeepFool ----------------
    for norm in (2, math.inf):
        rows = []
        name = "L2" if norm == 2 else "Linf"
        for label, kw in (("foolkit", {}), ("foolkit (keep_closest=None: paper, all candidates)", {"keep_closest": None})):
            attack = fk.attacks.DeepFool(norm=norm, overshoot=args.overshoot, max_iter=50, candidates=10, **kw)
            res, sec = timed(lambda: attack(model, x, y), args.device)
            row = {"library": label, **summarise(model, x, y, res.x_adv, sec),
                   "avg_iters": float(res.iterations[res.attacked].float().mean())}
            rows.append(row)
            if label == "foolkit":
                floor = deepfool_floor(model, x[res.attacked], res.iterations[res.attacked], 10, args.device)
        if "adv-lib" not in skip:
            df = import_adv_lib()
            adv, sec = timed(lambda: df(model, x, y, steps=50, overshoot=args.overshoot, norm=norm), args.device)
            rows.append({"library": "adv-lib 0.2.8 df", **summarise(model, x, y, adv, sec)})
        if "foolbox" not in skip:
            import foolbox as fb
            fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=args.device)
            cls = fb.attacks.L2DeepFoolAttack if norm == 2 else fb.attacks.LinfDeepFoolAttack
            atk = cls(steps=50, candidates=10, overshoot=args.overshoot, loss="logits")
            (raw, clipped, ok), sec = timed(lambda: atk(fmodel, x, y, epsilons=None), args.device)
            rows.append({"library": "foolbox 3.3.4", **summarise(model, x, y, clipped, sec)})
        if "torchattacks" not in skip:
            import torchattacks
            if norm == 2:
                atk = torchattacks.DeepFool(model, steps=50, overshoot=args.overshoot)
                adv, sec = timed(lambda: atk(x, y), args.device)
                rows.append({"library": "torchattacks 3.5.1", **summarise(model, x, y, adv, sec)})
        if "art" not in skip and norm == 2:
            import numpy as np
            from art.attacks.evasion import DeepFool as ArtDeepFool
            from art.estimators.classification import PyTorchClassifier
            clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, 32, 32),
                                    nb_classes=10, clip_values=(0.0, 1.0), device_type="gpu" if args.device.startswith("cuda") else "cpu")
            atk = ArtDeepFool(clf, max_iter=50, epsilon=args.overshoot, nb_grads=10, batch_size=128, verbose=False)
            n_art = min(args.art_n or len(x), len(x))
            xn = x[:n_art].cpu().numpy()
            adv, sec = timed(lambda: atk.generate(xn), "cpu")
            label = "ART 1.20.1" + (f" (first {n_art} images; time scaled to n)" if n_art < len(x) else "")
            row = summarise(model, x[:n_art], y[:n_art], torch.from_numpy(adv).to(x.device), sec)
            row["seconds"] = sec * len(x) / n_art  # per-image time is what compares
            rows.append({"library": label, **row})
        rows.append({"library": "floor (1 fwd + 9 bwd per step, active images)", "seconds": floor,
                     "ms_per_image": 1000 * floor / len(x)})
        key = "median_l2" if norm == 2 else "median_linf"
        mean_key = "mean_l2" if norm == 2 else "mean_linf"
        print_table(f"DeepFool {name}, overshoot {args.overshoot}, 50 steps, 10 candidates, n = {args.n}", rows,
                    "foolkit", ["ms_per_image", "fooling_rate", key, mean_key, "avg_iters"])


if __name__ == "__main__":
    main()
