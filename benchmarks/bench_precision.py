"""bf16 / fp16 autocast against float32 for DeepFool, SparseFool and One Pixel (foolkit only).

The attack's own forward and backward passes run under ``torch.autocast`` (``precision=``);
every success is verified by a fresh float32 forward pass, so the fooling rates are float32
fooling rates. Same model (cifar10/resnet20), same bundled images, same parameters.

    python benchmarks/bench_precision.py --n 100 --op-n 20 --threads 1 [--device cuda] [--precisions bf16,fp16]

Prints a markdown table: time, fooling rate, median L2 (and L0 for the sparse attacks) of the
fooled images, for float32 and each low precision, with the speed-up.
"""
from __future__ import annotations

import argparse
import subprocess
import warnings

import torch

import foolkit as fk
from foolkit.runtime.machine import parse_device
from _common import load_model_and_data, machine, timed, warm_up

warnings.filterwarnings("ignore")


def run_one(attack, model, x, y, precision: str, device: str):
    result, seconds = timed(lambda: attack(model, x, y, precision=precision), device)
    fooled = result.success
    n_att = int(result.attacked.sum())
    l2 = result.norms(2)[fooled]
    pixels = (result.perturbation != 0).any(1).flatten(1).sum(1)[fooled].float()
    return {"seconds": seconds, "rate": float(fooled.sum()) / max(n_att, 1), "n_att": n_att,
            "fooled": int(fooled.sum()), "l2": float(l2.median()) if len(l2) else float("nan"),
            "pixels": float(pixels.median()) if len(pixels) else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="images for DeepFool and SparseFool")
    ap.add_argument("--op-n", type=int, default=20, help="images for One Pixel")
    ap.add_argument("--op-population", type=int, default=100)
    ap.add_argument("--op-generations", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="bf16", help="comma-separated low precisions to compare with float32")
    ap.add_argument("--only", default="deepfool,sparsefool,onepixel", help="comma-separated attacks to run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = str(parse_device(args.device))
    model, x, y = load_model_and_data(max(args.n, args.op_n), device)
    warm_up(model, x)
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        warm_up(model, x, rounds=2)  # the bf16 kernels' one-off set-up, outside the timings
    attacks = [
        (f"DeepFool L2 (overshoot 0.02, 50 steps), n = {args.n}", fk.attacks.DeepFool(norm=2), args.n),
        (f"DeepFool Linf (overshoot 0.02, 50 steps), n = {args.n}", fk.attacks.DeepFool(norm="inf"), args.n),
        (f"SparseFool (lambda 3, 20 iterations), n = {args.n}", fk.attacks.SparseFool(), args.n),
        (f"One Pixel (d = 1, population {args.op_population}, {args.op_generations} generations), n = {args.op_n}",
         fk.attacks.OnePixel(pixels=1, population=args.op_population, generations=args.op_generations), args.op_n),
    ]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine()}; threads {args.threads}; device {device}")
    print(f"load at start: {load}\n")
    print("| attack | precision | time (s) | speed-up | fooling rate (float32-verified) | median L2 | median pixels |")
    print("|---|---|---:|---:|---:|---:|---:|")
    only = set(args.only.lower().split(","))
    for title, attack, n in attacks:
        if type(attack).__name__.lower() not in only:
            continue
        base = None
        for precision in ["float32"] + args.precisions.split(","):
            r = run_one(attack, model, x[:n], y[:n], precision, device)
            base = base or r
            speed = base["seconds"] / r["seconds"]
            print(f"| {title} | {precision} | {r['seconds']:.1f} | {speed:.2f}x | "
                  f"{100 * r['rate']:.1f}% ({r['fooled']}/{r['n_att']}) | {r['l2']:.4f} | {r['pixels']:.0f} |", flush=True)
    print(f"\nload at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
