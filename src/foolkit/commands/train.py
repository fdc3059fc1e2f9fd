"""``foolkit train MODEL --data PATH --epochs E --out DIR``: resumable, seeded training."""
from __future__ import annotations
from ..errors import InputError

NAME = "train"
HELP = "train a registered CIFAR-10 architecture (resumes from DIR/last.pt)"


def add_arguments(p) -> None:
    p.add_argument("model", help="registered name, e.g. cifar10/resnet20")
    p.add_argument("--data", required=True, help="CIFAR-10 root (official cifar-10-batches-py/ or ImageFolder)")
    p.add_argument("--out", required=True, help="output folder: last.pt (resumable), weights.pt, history.json; "
                                                "created if missing, its parent folder must exist")
    p.add_argument("--epochs", type=int, default=70)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-lr", type=float, default=0.15)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast on the --device (on CPU about 3x faster with AVX512-BF16)")
    p.add_argument("--limit", type=int, default=None, help="train on this many images only (smoke tests)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--reschedule", action="store_true",
                   help="resume under a different --epochs (the OneCycle schedule is rebuilt and fast-forwarded)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="start from this state_dict (e.g. a previous run's weights.pt) instead of random weights")
    p.add_argument("--pct-start", type=float, default=0.25, help="OneCycle warm-up fraction (default 0.25)")
    p.add_argument("--swa-lr", type=float, default=None, metavar="LR",
                   help="stochastic weight averaging at this constant lr (with --init-from): weights.pt is the "
                        "average of the epoch-end weights, BatchNorm statistics recomputed")
    p.add_argument("--cutout", type=int, default=0, metavar="SIZE",
                   help="cut a SIZE x SIZE square (filled with the data mean) from every training image; "
                        "0 (default) is off, DeVries & Taylor use 16 on CIFAR-10")
    p.add_argument("--adversarial", choices=("fgsm",), default=None,
                   help="adversarial training (thesis 13.2.2): loss alpha*L(x,y) + (1-alpha)*L(x + eps*sign grad, y)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the clean loss with --adversarial (default 0.5)")
    p.add_argument("--eps", type=float, default=8 / 255,
                   help="FGSM step of --adversarial in [0,1] pixel units (default 8/255 = 0.0314)")
    p.add_argument("--ortho-beta", type=float, default=0.0, metavar="BETA",
                   help="add the orthogonality regulariser (BETA/2)*sum ||W^T W - I||^2 over conv/linear weights "
                        "(Defensive Quantization, thesis 13.2.3); 0 (default) is off")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where the network trains: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..runtime.files import check_output_folder
    from ..runtime.machine import parse_device
    from ..models.registry import card
    from ..models.training import TrainConfig, train

    card(args.model)  # unknown names fail here, listing the known ones
    device = parse_device(args.device)  # an absent GPU fails here, before anything is written
    check_output_folder(args.out, inputs=[args.init_from], writes=("last.pt", "weights.pt", "history.json"))
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1")
    if args.cutout < 0:
        raise InputError(f"--cutout must be >= 0 (0: off), got {args.cutout}")
    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, max_lr=args.max_lr,
                         weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, seed=args.seed,
                         bf16=args.bf16, limit=args.limit, max_steps=args.max_steps,
                         reschedule=args.reschedule, init_from=args.init_from, pct_start=args.pct_start,
                         swa_lr=args.swa_lr, cutout=args.cutout, adversarial=args.adversarial,
                         alpha=args.alpha, eps=args.eps, ortho_beta=args.ortho_beta)
    config.validate()  # before anything is loaded: a bad --alpha/--eps/--ortho-beta is a one-line error
    result = train(config, args.data, args.out, progress=not args.quiet, device=device)
    if result["history"]:
        last = result["history"][-1]
        print(f"{args.model}: epoch {last['epoch']}/{args.epochs}, test accuracy {last['test_acc']:.4f}; state in {args.out}")
    return 0
