"""CIFAR-10 loaders: the official python pickle format, ImageFolder trees, and the
bundled 1,000-image test subset.

Every loader returns ``(x, y)``: ``x`` float32 ``[N,3,32,32]`` in [0,1], ``y`` int64 ``[N]``.
"""
from __future__ import annotations

import errno
import os
from typing import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .safe_load import UnsafePickleError, clean_text, describe_load_error, load_cifar_pickle
from .classes import CIFAR10_CLASSES
from ..errors import DataError
from ..runtime.files import IMAGE_SUFFIXES  # the one list of image file names foolkit reads

BUNDLED_PATH = Path(__file__).with_name("bundled") / "cifar10_test_1000.npz"
SPLITS = ("train", "test")


def missing_path_error(path: str | os.PathLike, what: str, plain: str | None = None,
                       error: type[Exception] = DataError) -> Exception:
    """The error for a ``path`` that does not exist: says "symlink loop" or "broken symlink" when
    that is the reason (``Path.exists()`` is False for both, which reads as "not found").
    ``plain``: the message when the path is simply absent (default "<what> not found: <path>")."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return error(f"{what} {path} is a symlink loop (too many levels of symbolic links)")
    if path.is_symlink():
        return error(f"{what} not found: {path} is a broken symlink to {os.readlink(path)}")
    return error(plain or f"{what} not found: {path}")


def _to_tensors(images_u8: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N,32,32,3] or [N,3,32,32] -> float [N,3,32,32] in [0,1]."""
    arr = images_u8
    if arr.ndim == 4 and arr.shape[-1] == 3:
        arr = arr.transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return x, y


def read_official(root: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read ``cifar-10-batches-py`` (the official pickles). Returns uint8 [N,3,32,32], int64 [N].

    The files are read with a restricted unpickler (:mod:`foolkit.data.safe_load`): a file that names
    any Python callable other than numpy's array reconstruction is refused, never executed.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"CIFAR-10 official format: missing file {path}")
        try:
            batch = load_cifar_pickle(path)  # restricted: a data folder must not run code
        except UnsafePickleError as exc:
            raise DataError(f"CIFAR-10 official format: {path} is not a plain CIFAR-10 batch "
                            f"(it names a Python object to call: {exc}); not loaded") from None
        except Exception as exc:  # truncated or garbage bytes: a corrupt batch file
            raise DataError(f"CIFAR-10 official format: cannot read {path}: "
                            f"{describe_load_error(exc)}") from None
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:  # not a dict with b"data" [N,3072] and b"labels" [N]
            raise DataError(f"CIFAR-10 official format: cannot read {path}: expected a dict with "
                            f"b'data' uint8 [N,3072] and b'labels' [N] "
                            f"({clean_text(f'{type(exc).__name__}: {exc}').splitlines()[0][:200]})") from None
        if len(data) != len(lab):
            raise DataError(f"CIFAR-10 official format: {path} has {len(data)} images but {len(lab)} labels")
        images.append(data)
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def read_image_folder(root: str | os.PathLike[str], split: str, classes: Sequence[str] = CIFAR10_CLASSES,
                      size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<root>/<split>/<class>/<image>`` (suffixes :data:`IMAGE_SUFFIXES`). Returns uint8 [N,3,size,size], int64 [N].

    Images are interleaved by class: the first file (in sorted name order) of every class in
    label order, then the second of every class, and so on, so that every prefix is as
    class-balanced as it can be, like the bundled subset. An ImageFolder tree has lost the
    official files' shuffled order, and a class-sorted prefix (the first 2,000 test images)
    would hold only two classes.
    """
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise DataError(f"ImageFolder layout: missing folder {split_dir} (expected <root>/{split}/<class>/*.jpg)")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    unknown = sorted(set(found) - set(classes))
    if unknown or not found:
        raise DataError(
            f"ImageFolder layout: {split_dir} must hold one folder per class {list(classes)}; "
            f"found {found or 'no class folders'}"
        )
    # A missing class would be silently absent from every rate ("truck 0.00% (n=0)").
    missing = [name for name in classes if name not in found]
    for name in missing:
        if (split_dir / name).is_symlink():
            raise missing_path_error(split_dir / name, "ImageFolder class folder")
    if missing:
        raise DataError(f"ImageFolder layout: {split_dir} has no folder for class(es) {missing}; "
                        f"all {len(classes)} classes need one (found {len(found)})")
    images: list[np.ndarray] = []
    label_list: list[int] = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    if im.size != (size, size):
                        raise DataError(f"{path}: expected {size}x{size}, got {im.size[0]}x{im.size[1]}")
                    images.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot read image {path}: {exc}") from exc
            label_list.append(label)
    if not images:
        raise DataError(f"ImageFolder layout: no images under {split_dir}")
    labels = np.asarray(label_list, dtype=np.int64)
    empty = [name for k, name in enumerate(classes) if not (labels == k).any()]
    if empty:
        raise DataError(f"ImageFolder layout: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folder(s) "
                        f"{empty} of {split_dir}; every class needs at least one")
    order = interleave_by_class(labels)
    arr = np.stack([images[i] for i in order]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(arr), labels[order]


def interleave_by_class(labels: np.ndarray) -> np.ndarray:
    """Indices that reorder class-grouped ``labels [N]`` round-robin: the k-th image of each
    class (in its current order), classes in label order, for k = 0, 1, ..."""
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = labels == c
        rank[where] = np.arange(int(where.sum()))
    return np.lexsort((labels, rank))  # by rank, then by label


def read_bundled() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 bundled test images (100 per class), uint8 [1000,3,32,32]."""
    with np.load(BUNDLED_PATH) as f:
        return f["images"], f["labels"]


def load_cifar10_uint8(split: str = "test",
                       root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 arrays ``x [N,3,32,32]``, ``y [N]`` for a split; root: argument, else $FOOLKIT_DATA,
    else the bundled subset."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {SPLITS}")
    if root is None:
        root = os.environ.get("FOOLKIT_DATA") or None
    if root is None:
        if split != "test":
            raise DataError(
                "the bundled CIFAR-10 subset holds test images only; pass root=PATH or set "
                "FOOLKIT_DATA to a CIFAR-10 folder (cifar-10-batches-py/ or <root>/<split>/<class>/)"
            )
        return read_bundled()
    root = Path(root)
    if not root.exists():
        raise missing_path_error(root, "data path", f"data path does not exist: {root}")
    if (root / "cifar-10-batches-py").is_dir() or (root / "test_batch").is_file():
        return read_official(root, split)
    if (root / split).is_dir():
        return read_image_folder(root, split)
    if (root / split).is_symlink():  # a loop or a broken link would read as "no such folder"
        raise missing_path_error(root / split, "ImageFolder split folder")
    raise DataError(
        f"{root} is neither the official CIFAR-10 python format (cifar-10-batches-py/) "
        f"nor an ImageFolder tree with a {split}/ folder"
    )


def load(name: str = "cifar10", split: str = "test", n: int | None = None,
         root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a dataset as tensors.

    Args:
        name: only ``"cifar10"`` for now.
        split: ``"train"`` or ``"test"``.
        n: first ``n`` images (``None``: all). The bundled subset is ordered so that any
           prefix of 10k images holds k of each class.
        root: official or ImageFolder CIFAR-10 folder; default ``$FOOLKIT_DATA``, else the
           bundled 1,000 test images.

    Returns:
        ``x`` float32 ``[N,3,32,32]`` in [0,1], ``y`` int64 ``[N]`` in 0..9.
    """
    if name != "cifar10":
        raise DataError(f"unknown dataset {name!r}; known: ['cifar10']")
    if n is not None and (not isinstance(n, int) or n <= 0):
        raise DataError(f"n must be a positive integer or None, got {n!r}")
    using_bundled = root is None and not os.environ.get("FOOLKIT_DATA")
    images, labels = load_cifar10_uint8(split, root)
    if n is not None:
        if n > len(images):
            hint = (" The bundled subset holds 1,000 test images; for more, pass root=PATH or set "
                    "FOOLKIT_DATA to the full CIFAR-10 (official cifar-10-batches-py/ or an "
                    "ImageFolder tree)." if using_bundled else "")
            raise DataError(f"asked for {n} images but the {split} split has {len(images)}.{hint}")
        images, labels = images[:n], labels[:n]
    return _to_tensors(images, labels)
