"""Benchmark the minimal-perturbation attacks: SuperDeepFool and FMN against adv-lib and Foolbox,
and the optimality of DeepFool, SuperDeepFool and FMN against the best norm any attack found.

One run, the same model (cifar10/resnet20) and bundled images for every attack, interleaved over
chunks of ``--chunk`` images (every attack runs on a chunk before the next chunk starts, in an
order rotated per chunk, so load changes on a shared machine hit all of them alike):
- L2: foolkit DeepFool, foolkit SuperDeepFool (its defaults; and with adv-lib's 10-step final
  bisection), adv-lib ``sdf`` (its defaults: 100 steps, 10 search steps), foolkit FMN, adv-lib
  ``fmn`` and Foolbox ``L2FMNAttack`` (``--steps`` each), adv-lib ``ddn`` (``--steps``) and
  ``alma`` (``--alma-steps``) as references.
- L∞: foolkit DeepFool, foolkit FMN, adv-lib ``fmn``, Foolbox ``LInfFMNAttack``.
Per norm, an image's best known norm is the smallest over all attacks of that norm that fooled
it; "median ratio" is the median over correctly classified images of (attack's norm / best),
infinite where the attack failed; "optimality" is the mean of best / attack's norm (0 where it
failed): 1 means the attack always found the best known point.

    python benchmarks/bench_minimal_norm.py --n 32 --chunk 8 --steps 100 --threads 1
"""
from __future__ import annotations

import argparse
import math
import warnings

import torch

import foolkit as fk
from _common import import_adv_lib, load_model_and_data, machine, timed, warm_up

warnings.filterwarnings("ignore")


def attacks(args, skip):
    """name -> (norm, fn(model, x, y) -> x_adv), in running order."""
    out = {}
    k = args.steps
    fkrun = lambda atk: (lambda m, x, y: atk(m, x, y).x_adv)  # noqa: E731
    out["foolkit DeepFool"] = (2, fkrun(fk.attacks.DeepFool(norm=2)))
    out["foolkit SuperDeepFool"] = (2, fkrun(fk.attacks.SuperDeepFool()))
    out["foolkit SuperDeepFool, search_steps=10"] = (2, fkrun(fk.attacks.SuperDeepFool(search_steps=10)))
    out[f"foolkit FMN L2, {k} steps"] = (2, fkrun(fk.attacks.FMN(norm=2, steps=k)))
    out["foolkit DeepFool Linf"] = (math.inf, fkrun(fk.attacks.DeepFool(norm="inf")))
    out[f"foolkit FMN Linf, {k} steps"] = (math.inf, fkrun(fk.attacks.FMN(norm="inf", steps=k)))
    if "advlib" not in skip:
        import_adv_lib()
        from adv_lib.attacks import alma, ddn, fmn, sdf
        out["adv-lib 0.2.8 sdf"] = (2, lambda m, x, y: sdf(m, x, y))
        out[f"adv-lib 0.2.8 fmn L2, {k} steps"] = (2, lambda m, x, y: fmn(m, x, y, norm=2, steps=k))
        out[f"adv-lib 0.2.8 fmn Linf, {k} steps"] = (math.inf, lambda m, x, y: fmn(m, x, y, norm=math.inf, steps=k))
        out[f"adv-lib 0.2.8 ddn, {k} steps (reference)"] = (2, lambda m, x, y: ddn(m, x, y, steps=k))
        if args.alma_steps:
            out[f"adv-lib 0.2.8 alma L2, {args.alma_steps} steps (reference)"] = (
                2, lambda m, x, y: alma(m, x, y, distance="l2", num_steps=args.alma_steps))
    if "foolbox" not in skip:
        import foolbox as fb

        def fbrun(cls):
            def run(m, x, y):
                fmodel = fb.PyTorchModel(m, bounds=(0, 1))
                raw, _, _ = cls(steps=k)(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
                return raw
            return run
        out[f"Foolbox 3.3.4 L2FMNAttack, {k} steps"] = (2, fbrun(fb.attacks.L2FMNAttack))
        out[f"Foolbox 3.3.4 LInfFMNAttack, {k} steps"] = (math.inf, fbrun(fb.attacks.LInfFMNAttack))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=8, help="images per interleaved round")
    ap.add_argument("--steps", type=int, default=100, help="FMN and DDN steps (every library)")
    ap.add_argument("--alma-steps", type=int, default=1000, help="ALMA steps (0: skip ALMA)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", default="", help="comma list: advlib,foolbox")
    ap.add_argument("--only", default="", help="comma list of substrings: run only the attacks named so")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)
    model, x, y = load_model_and_data(args.n, args.device, args.checkpoint)
    model.eval()
    warm_up(model, x)
    todo = attacks(args, skip)
    if args.only:
        todo = {k: v for k, v in todo.items() if any(w in k for w in args.only.split(","))}
    print(f"machine: {machine()}; model cifar10/resnet20; n = {args.n}, chunks of {args.chunk}")
    seconds = {k: 0.0 for k in todo}
    advs = {k: [] for k in todo}
    for s in range(0, len(x), args.chunk):
        xc, yc = x[s:s + args.chunk], y[s:s + args.chunk]
        names = list(todo)
        r = (s // args.chunk) % len(names)  # rotate the order per chunk: no attack always runs first
        for name in names[r:] + names[:r]:
            fn = todo[name][1]
            torch.manual_seed(s)
            adv, sec = timed(lambda: fn(model, xc, yc), args.device)
            seconds[name] += sec
            advs[name].append(adv.detach())
        print(f"  images {s}-{s + len(xc) - 1} done", flush=True)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    stats = {}
    for name, (p, _) in todo.items():
        adv = torch.cat(advs[name])
        with torch.no_grad():
            fooled = correct & (model(adv).argmax(1) != y)
        norm = (adv - x).flatten(1).norm(p=p, dim=1)
        stats[name] = {"p": p, "fooled": fooled, "norm": torch.where(fooled, norm, torch.full_like(norm, math.inf)),
                       "seconds": seconds[name]}
    for p, label in ((2, "L2"), (math.inf, "Linf")):
        names = [k for k in todo if stats[k]["p"] == p]
        best = torch.stack([stats[k]["norm"] for k in names]).min(0).values[correct]
        print(f"\n### {label}, n = {args.n} ({int(correct.sum())} correctly classified)\n")
        print(f"| attack | ms/img | fooling | median {label} | median ratio to best known | optimality |")
        print("|---|---|---|---|---|---|")
        for k in names:
            st = stats[k]
            nk = st["norm"][correct]
            ok = torch.isfinite(nk)
            ratio = (nk / best)
            opt = torch.where(ok, best / nk, torch.zeros_like(nk)).mean()
            print(f"| {k} | {1000 * st['seconds'] / args.n:.4g} | {100 * float(ok.float().mean()):.1f}% | "
                  f"{float(nk[ok].median()) if ok.any() else math.nan:.4g} | {float(ratio.median()):.3f} | "
                  f"{float(opt):.3f} |")
        print(f"\nbest known: median {label} {float(best.median()):.4g}")


if __name__ == "__main__":
    main()
