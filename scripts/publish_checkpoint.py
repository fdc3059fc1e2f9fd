"""Copy a trained network into the package and write its card with measured facts.

    python scripts/publish_checkpoint.py cifar10/resnet20 /path/to/train_dir --data ../shared/datasets/cifar10-jpeg

Reads ``train_dir/weights.pt`` and ``train_dir/history.json``, measures the accuracy on the
full test split of ``--data`` and on the bundled 1,000 images, and records the sha256,
parameter count, recipe, training time, machine and date in the card.
"""
from __future__ import annotations

import argparse
import json
import shutil
from datetime import date
from pathlib import Path

import torch

import foolkit as fk
from foolkit.evaluation.clean import clean_accuracy
from foolkit.runtime.machine import cpu_name
from foolkit.models import registry
from foolkit.runtime.hashing import sha256_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("train_dir")
    ap.add_argument("--data", required=True)
    ap.add_argument("--recipe", default="")
    ap.add_argument("--time-note", default="", help="how the training time was measured (threads, other load)")
    args = ap.parse_args()
    train_dir = Path(args.train_dir)
    run = json.loads((train_dir / "history.json").read_text())
    file_name = args.name.replace("/", "-") + ".pt"
    dest = registry.CHECKPOINTS_DIR / file_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(train_dir / "weights.pt", dest)
    model = fk.models.load(args.name, checkpoint=dest)
    card_path = registry.CARDS_DIR / registry._CARD_FILES[args.name]
    card = json.loads(card_path.read_text())
    torch.set_grad_enabled(False)
    x, y = fk.data.load("cifar10", "test", root=args.data)
    full = clean_accuracy(model, x, y, fk.data.CIFAR10_CLASSES)
    from foolkit.data.cifar10 import _to_tensors, read_bundled
    xb, yb = _to_tensors(*read_bundled())
    bundled = clean_accuracy(model, xb, yb, fk.data.CIFAR10_CLASSES)
    cfg, hist = run["config"], run["history"]
    for stale in ("test_accuracy_note", "status"):  # notes about an earlier checkpoint
        card.pop(stale, None)
    card.update({
        "num_params": sum(p.numel() for p in model.parameters()),
        "checkpoint": file_name,
        "sha256": sha256_file(dest),
        "test_accuracy": round(full.accuracy, 4),
        "test_accuracy_data": f"all {full.n} test images of {Path(args.data).name} (ImageFolder JPEG export of CIFAR-10)",
        "bundled_accuracy": round(bundled.accuracy, 4),
        "per_class_accuracy": {c: round(a, 4) for c, a in zip(fk.data.CIFAR10_CLASSES, full.per_class.tolist())},
        "training": {
            "recipe": args.recipe or (
                f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, SGD Nesterov momentum 0.9, OneCycle max lr "
                f"{cfg['max_lr']} ({round(100 * cfg.get('pct_start', 0.25))}% warm-up), weight decay {cfg['weight_decay']} (not on BN/bias), label smoothing "
                f"{cfg['label_smoothing']}, per-image random crop (pad 4) + horizontal flip"
                f"{', cutout ' + str(cfg['cutout']) if cfg.get('cutout') else ''}, "
                f"{'bfloat16 autocast + channels_last' if cfg['bf16'] else 'float32'}, seed {cfg['seed']}"),
            "data": "the 50,000 training images of the CIFAR-10 JPEG export (../shared/datasets/cifar10-jpeg/train)",
            "epochs": len(hist),
            "seconds": round(sum(h["seconds"] for h in hist)),
            "command": f"foolkit train {args.name} --data PATH --epochs {cfg['epochs']} --batch-size {cfg['batch_size']} "
                       f"--max-lr {cfg['max_lr']} --seed {cfg['seed']}{' --bf16' if cfg['bf16'] else ''}"
                       f"{' --cutout ' + str(cfg['cutout']) if cfg.get('cutout') else ''} --out DIR",
            **({"wall_time_note": args.time_note} if args.time_note else {}),
        },
        "measured_on": f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "measured_date": date.today().isoformat(),
    })
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
