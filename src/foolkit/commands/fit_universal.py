"""``foolkit fit-universal --model NAME --norm inf --xi 10/255 --n 500 --out v.pt``: fit and save a
universal perturbation with its card (model, norm, xi, fooling rates, date).

Images: CIFAR-10 models read ``--data`` (official or ImageFolder root; default $FOOLKIT_DATA,
else the bundled 1,000 test images); ImageNet models read every image file under ``--data``
(a folder of photos, resized and centre-cropped to the model's input). The first ``--n``
images are the set X the perturbation is fitted on; the next ``--n-test`` (default: up to
``--n`` of the images left) measure its fooling rate on unseen images.

The file is read with ``torch.load(weights_only=True)`` (see ``foolkit.evaluation.universal_io``), and
applied to one image by ``foolkit attack --image PATH --perturbation v.pt``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from ..errors import InputError

NAME = "fit-universal"
HELP = "fit a universal perturbation on N images and save it with its card (model, norm, xi, fooling rates)"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def parse_xi(text: str) -> float:
    """``"0.04"``, ``"10/255"`` -> float > 0 (finite)."""
    t = str(text).strip()
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--xi must be a number such as 0.04 or 10/255, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"--xi must be finite and > 0, got {text!r}")
    return value


def default_mode() -> str:
    """UniversalPerturbation's default mode, so `fit-universal` and `attack --attack universal` fit alike."""
    import inspect

    from ..attacks.universal import UniversalPerturbation
    return inspect.signature(UniversalPerturbation).parameters["mode"].default


def add_arguments(p) -> None:
    from ..runtime.files import FORCE_HELP

    mode = default_mode()
    from ..models.sources import add_model_options

    p.add_argument("--model", required=True, help="registered name (see `foolkit models`), net.pt2 (torch.export) "
                                                  "or file.py:function (a factory)")
    add_model_options(p, checkpoint=True)  # --checkpoint --mean --std --input-size --classes
    p.add_argument("--norm", default="inf", help="2 or inf (default inf)")
    p.add_argument("--xi", default="10/255",
                   help="radius of the Lp ball in [0,1] pixel units; fractions allowed (default 10/255)")
    p.add_argument("--n", type=int, default=500, help="images in the set X the perturbation is fitted on (default 500)")
    p.add_argument("--n-test", type=int, default=None,
                   help="held-out images to measure the fooling rate on (default: up to --n of the images left)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="CIFAR-10 root for CIFAR models (default $FOOLKIT_DATA, else the bundled test images); "
                        "a folder of photos for ImageNet models")
    p.add_argument("--split", default=None, help="CIFAR-10 split (default train with --data/$FOOLKIT_DATA, "
                                                 "else test: the bundled images)")
    p.add_argument("--delta", type=float, default=0.2, help="stop at a fooling rate of 1 - delta on X (default 0.2)")
    p.add_argument("--max-passes", type=int, default=10, help="passes over X at most (default 10)")
    p.add_argument("--mode", default=mode, choices=("faithful", "batched"),
                   help=f"faithful (one image at a time, the authors' loop) or batched (DeepFool on --batch-size "
                        f"images at once: faster); default {mode}, as in `foolkit attack --attack universal`")
    p.add_argument("--batch-size", type=int, default=50, help="images per DeepFool call in batched mode (default 50)")
    p.add_argument("--deepfool-norm", default="2", help="the inner DeepFool's norm, 2 (default) or inf")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffling (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default="universal.pt", metavar="FILE",
                   help="output file (default universal.pt); its folder must exist; an earlier perturbation "
                        "file is replaced")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _photos(root: Path, size: int, count: int):
    import torch

    from ..data.cifar10 import DataError
    from ..data.images import load_image

    if not root.exists():
        raise DataError(f"data path does not exist: {root}")
    if not root.is_dir():
        raise DataError(f"--data {root}: ImageNet models need a folder of photos")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    files = files[:count]
    return torch.cat([load_image(f, size) for f in files]), len(files)


def load_images(model_name, data, split, n: int, n_test):
    """``(x_fit, x_test or None, description)`` for the model's data set (a registered name, or a
    :class:`~foolkit.models.sources.ResolvedModel`: CIFAR-10 when it takes 3x32x32 images)."""
    from ..data.cifar10 import DataError, load_cifar10_uint8, _to_tensors
    from ..models.registry import card

    if isinstance(model_name, str):
        c = card(model_name)
        dataset, size = c.dataset, int(c.input_size)
    else:  # a model from a file: CIFAR-10 when it takes 3x32x32 (or any) images, else photos
        shape = model_name.input_size
        dataset = "cifar10" if shape in (None, (3, 32, 32)) else f"{'x'.join(map(str, shape))} images"
        size, model_name = (shape[1] if shape else 32), model_name.name
    want = n + (n if n_test is None else n_test)
    if dataset == "cifar10":
        has_root = data is not None or bool(os.environ.get("FOOLKIT_DATA"))
        split = split or ("train" if has_root else "test")
        images, labels = load_cifar10_uint8(split, data)
        if len(images) < n:
            raise DataError(f"--n {n}: the CIFAR-10 {split} split here has only {len(images)} images")
        images, labels = images[:want], labels[:want]
        x, _ = _to_tensors(images, labels)
        source = f"CIFAR-10 {split} ({'bundled subset' if not has_root else data or os.environ['FOOLKIT_DATA']})"
    else:
        if data is None:
            raise DataError(f"{model_name} ({dataset}): pass --data FOLDER of photos to fit the perturbation on")
        x, found = _photos(Path(data), size, want)
        if found < n:
            raise DataError(f"--n {n}: only {found} images under {data}")
        source = f"photos under {data}"
    x_fit = x[:n]
    rest = x[n:]
    if n_test is not None:
        if n_test > len(rest):
            raise DataError(f"--n-test {n_test}: only {len(rest)} images left after the {n} of X")
        rest = rest[:n_test]
    return x_fit, (rest if len(rest) else None), source


def run(args) -> int:
    import torch

    from ..attacks.universal import UniversalPerturbation
    from ..evaluation.universal_io import load_universal, save_universal

    for flag, value, minimum in (("--n", args.n, 1), ("--n-test", args.n_test, 0), ("--max-passes", args.max_passes, 1),
                                 ("--batch-size", args.batch_size, 1), ("--seed", args.seed, 0)):
        if value is not None and value < minimum:
            raise InputError(f"{flag} must be >= {minimum}, got {value}")
    from ..runtime.files import check_output
    from ..runtime.machine import parse_device
    parse_device(args.device)
    xi = parse_xi(args.xi)
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as {out / 'universal.pt'}")
    check_output(out, inputs=[args.checkpoint], kind="perturbation", force=args.force)  # before the fit
    from ..models.sources import resolve_from_args
    resolved = resolve_from_args(args, device=args.device)  # bad models fail before any data is read
    uap = UniversalPerturbation(norm=args.norm, xi=xi, delta=args.delta, max_passes=args.max_passes, mode=args.mode,
                                batch_size=args.batch_size, deepfool_norm=args.deepfool_norm, seed=args.seed)
    x_fit, x_test, source = load_images(args.model if resolved.kind == "registered" else resolved, args.data,
                                        args.split, args.n, args.n_test)
    model = resolved.module
    x_fit = x_fit.to(args.device)
    norm_txt = "inf" if math.isinf(uap.norm) else "2"
    print(f"fitting a universal perturbation for {args.model}: L{norm_txt} <= {xi:.4g} ({255 * xi:.3g}/255), "
          f"{len(x_fit)} images of {source}, {args.mode} mode")
    uap.fit(model, x_fit)
    for h in uap.history_:
        print(f"  pass {h['pass']}: fooling rate on X {100 * h['fooling_rate']:.1f}% ({h['seconds']:.1f}s)")
    rates = {"fit": float(uap.fooling_rate_)}
    if x_test is not None:
        res = uap(model, x_test.to(args.device))  # labels = clean predictions: the paper's fooling rate
        rates["test"] = float((res.adv_label != res.clean_label).double().mean())
    v = uap.perturbation_
    params = {k: v_ for k, v_ in uap.params().items()}
    params["norm"] = norm_txt
    params["deepfool_norm"] = "inf" if math.isinf(uap.deepfool_norm) else "2"
    history = [{k: float(val) if isinstance(val, float) else val for k, val in h.items()} for h in uap.history_]
    save_universal(out, v, model=args.model, norm=uap.norm, xi=xi, fooling_rates=rates, n_fit=len(x_fit),
                   n_test=0 if x_test is None else len(x_test), data=source, checkpoint=args.checkpoint,
                   params=params, history=history,
                   norms={"l2": float(v.flatten().norm(2)), "linf": float(v.abs().max())})
    loaded = load_universal(out)  # what --perturbation will read: check it round-trips
    if not torch.equal(loaded.perturbation, v.detach().to("cpu", torch.float32)):
        raise RuntimeError(f"{out} does not read back equal to the fitted perturbation")
    print(f"fooling rate on X (vs clean predictions): {100 * rates['fit']:.1f}%")
    if "test" in rates:
        print(f"fooling rate on {len(x_test)} held-out images (vs clean predictions): {100 * rates['test']:.1f}%")
    print(f"||v||_2 = {float(v.flatten().norm(2)):.4g}, ||v||_inf = {float(v.abs().max()):.4g} "
          f"({255 * float(v.abs().max()):.3g}/255)")
    print(f"saved {out} ({loaded.describe()})")
    return 0
