"""``foolkit demo``: the main job on the shipped model and the bundled images."""
from __future__ import annotations

NAME = "demo"
HELP = "evaluate cifar10/resnet20 on the bundled images and attack them (quick settings)"


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=200, help="bundled test images to attack (default 200)")


def run(args) -> int:
    import math
    import time

    import torch

    from .. import attacks
    from ..data import CIFAR10_CLASSES, load
    from ..evaluation.clean import clean_accuracy
    from ..models.registry import load as load_model

    torch.manual_seed(0)
    model = load_model("cifar10/resnet20")
    x_all, y_all = load("cifar10", "test")
    print("cifar10/resnet20 on the 1,000 bundled CIFAR-10 test images (Table 11.4)")
    print(clean_accuracy(model, x_all, y_all, CIFAR10_CLASSES).format())
    x, y = x_all[:args.n], y_all[:args.n]
    print(f"\nattacks on the first {args.n} bundled images (fooling rate over the correctly classified ones)")
    header = f"{'attack':28s} {'fool%':>6s} {'conf%':>6s} {'D2':>7s} {'rho2':>6s} {'Dinf':>7s} {'rhoinf':>6s} {'ms/img':>7s} {'iters':>5s}"
    print(header)
    print("-" * len(header))
    runs = [("FGSM eps=0.01", attacks.FGSM(eps=0.01)), ("FGSM eps=0.05", attacks.FGSM(eps=0.05)),
            ("DeepFool L2", attacks.DeepFool(norm=2, overshoot=0.01)),
            ("DeepFool Linf", attacks.DeepFool(norm=math.inf, overshoot=0.01))]
    for title, attack in runs:
        t0 = time.perf_counter()
        r = attack(model, x, y)
        s = r.success
        xn2 = r.x.flatten(1).norm(dim=1)
        xninf = r.x.flatten(1).abs().amax(1)
        d2 = r.norms(2)[s].mean().item() if s.any() else float("nan")
        dinf = r.norms(math.inf)[s].mean().item() if s.any() else float("nan")
        rho2 = (r.norms(2) / xn2)[s].mean().item() if s.any() else float("nan")
        rhoinf = (r.norms(math.inf) / xninf)[s].mean().item() if s.any() else float("nan")
        conf = r.adv_confidence[s].mean().item() if s.any() else float("nan")
        ms = 1000 * (time.perf_counter() - t0) / max(int(r.attacked.sum()), 1)
        iters = r.iterations[r.attacked].float().mean().item()
        print(f"{title:28s} {100 * r.fooling_rate:6.1f} {100 * conf:6.1f} {d2:7.4f} {rho2:6.3f} {dinf:7.4f} {rhoinf:6.3f} {ms:7.1f} {iters:5.2f}")
    return 0
