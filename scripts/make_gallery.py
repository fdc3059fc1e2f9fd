"""Build docs/gallery/: three photos attacked with DeepFool, SparseFool and FGSM on EfficientNet-Lite0.

Each figure is exactly what ``foolkit attack --image PHOTO --attack NAME --out FIGURE`` writes
(``foolkit.commands.image_attack.run_image_command``); docs/gallery/README.md shows the figures with
the command and what it printed. The adversarial PNGs are checked (read back, 8-bit) and then
deleted unless ``--keep-adv``.

    python scripts/make_gallery.py [--photos DIR] [--out docs/gallery] [--keep-adv]

Photos default to ../shared/datasets/natural-images relative to the repository root.
SparseFool is skipped (with a note) when foolkit has no SparseFool yet.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "datasets" / "natural-images"
OUT = REPO / "docs" / "gallery"
MODEL = "imagenet/efficientnet-lite0"
IMAGES = ("chelsea.png", "golden_retriever.jpg", "coffee.png")
# (registry name, parameters as command-line text, the flags shown in the README)
ATTACKS = (
    ("deepfool", {"norm": "2"}, "--attack deepfool --norm 2"),
    ("sparsefool", {}, "--attack sparsefool"),
    ("fgsm", {"eps": str(2 / 255)}, "--attack fgsm --eps 0.00784"),
)


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(REPO / "src"))
    from foolkit.attacks import registry
    from foolkit.commands.image_attack import run_image_command

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(PHOTOS), help=f"folder of photos (default {PHOTOS})")
    ap.add_argument("--out", default=str(OUT), help=f"output folder (default {OUT})")
    ap.add_argument("--keep-adv", action="store_true", help="keep the adversarial PNGs next to the figures")
    args = ap.parse_args(argv)
    photos, out = Path(args.photos), Path(args.out)
    missing = [name for name in IMAGES if not (photos / name).is_file()]
    if missing:
        print(f"make_gallery: missing photos in {photos}: {', '.join(missing)}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    available = registry.available()
    notes, sections = [], []
    for photo in IMAGES:
        for name, params, flags in ATTACKS:
            if name not in available:
                note = f"{name} is not available in this foolkit yet ({registry.status()[name][1]}); skipped."
                if note not in notes:
                    notes.append(note)
                continue
            fig = out / f"{Path(photo).stem}-{name}.png"
            ns = argparse.Namespace(image=str(photos / photo), cifar_index=None, model=MODEL, checkpoint=None,
                                    attack=name, target=None, out=str(fig), perturbation=None,
                                    **{"param__" + k: v for k, v in params.items()})
            buf = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(buf):
                rc = run_image_command(ns)
            seconds = time.perf_counter() - start
            text = buf.getvalue().replace(str(photos / photo), photo).replace(str(out) + "/", "")
            print(f"== {photo} / {name} ({seconds:.0f}s, exit {rc})\n{text}", flush=True)
            adv = fig.with_name(fig.stem + "-adv.png")
            if not args.keep_adv and adv.exists():
                adv.unlink()
            command = f"foolkit attack --image {photo} --model {MODEL} {flags} --out {fig.name}"
            sections.append((photo, name, fig.name, command, text.rstrip(), seconds))
    write_readme(out, sections, notes)
    print(f"wrote {len(sections)} figures and {out / 'README.md'}")
    return 0


def write_readme(out: Path, sections, notes) -> None:
    lines = ["# Gallery: one photo, three attacks", "",
             f"Photos from `shared/datasets/natural-images`, classified by `{MODEL}` (224x224 centre crop), "
             "attacked with DeepFool (L2), SparseFool and FGSM (eps = 2/255). Each figure shows the original "
             "(class, confidence) | the perturbation, amplified to be visible | the adversarial image "
             "(class, confidence); SparseFool's changed pixels are marked.", "",
             "Made by `python scripts/make_gallery.py` (CPU, one thread; times below). Each figure is what "
             "the command above it writes; the text is what it printed. The adversarial image was saved as an "
             "8-bit PNG and read back before the verdict on the last line.", "",
             "Reading the verdicts: DeepFool stops just past the decision boundary, so its perturbation is "
             "mostly smaller than half an 8-bit level; rounding to 8 bits (up to 0.5/255 per value) erases those "
             "changes, and the saved PNG can be classified as the original again (\"quantisation to 8 bits broke "
             "the attack\"). FGSM's steps of 2/255 survive rounding. SparseFool changes few pixels by a lot; it "
             "stops after `max_iter` = 20 outer iterations, and says \"not fooled\" when it has not crossed the "
             "boundary by then.", ""]
    for note in notes:
        lines += [f"> Note: {note}", ""]
    current = None
    for photo, name, fig, command, text, seconds in sections:
        if photo != current:
            lines += [f"## {photo}", ""]
            current = photo
        lines += [f"### {name} ({seconds:.0f} s)", "", f"![{photo} attacked with {name}]({fig})", "",
                  "```", f"$ {command}", text, "```", ""]
    (out / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
