"""Writing output files whole or not at all, and never over data that is not the output's own.

Every file foolkit writes (reports, figures, checkpoints, perturbations) goes through
:func:`atomic_path`: it is written beside its final name and renamed into place only once it
is complete, so an interrupted or failed write never leaves a half-written file, and an older
complete file under that name survives a failed rewrite.

Every command checks its output paths with :func:`check_output` (files) or
:func:`check_output_folder` (folders it owns) before any long job. The rule: an output never
replaces one of the command's inputs; it replaces an existing run store (SQLite file), image or
PyTorch file (weights, checkpoint) only with ``--force``, except a file of its own kind (a
perturbation over a perturbation, a PNG foolkit wrote over a PNG foolkit wrote); it is never
written under a folder that does not exist (no folder is created silently).
"""
from __future__ import annotations

import errno
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator
from ..errors import InputError

SQLITE_HEADER = b"SQLite format 3\x00"
# Image files are recognised by content; these suffixes also let PIL try the file.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".ico")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
# tEXt "Software" of the PNGs foolkit writes: rerunning a command may replace them without --force.
PNG_SOFTWARE = "foolkit"
FORCE_HELP = ("replace an existing run store, image or PyTorch file named as output (without it they are "
              "refused; an input file is never overwritten)")
KINDS = ("report", "figure", "image", "perturbation", "store")


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """One line for a failed write: ``cannot write out/x.html: folder out does not exist``."""
    path = Path(path)
    if exc.errno == errno.ENOENT and not path.parent.exists():
        return OSError(f"cannot write {path}: folder {path.parent} does not exist")
    return OSError(f"cannot write {path}: {_reason(exc)}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the folder of ``path``; write there. On success it replaces
    ``path`` (one rename); on an exception it is deleted and ``path`` is left as it was.

    Writers that infer the format from the file name (``savefig``, ``Image.save``) must be
    given the format explicitly: the temporary name ends in ``.tmp``. A folder that cannot be
    written to (missing, read-only, full) raises a one-line ``OSError`` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:  # fail here, with a clear line, rather than inside a writer (torch.save raises RuntimeError)
            tmp.open("wb").close()
        except OSError as exc:
            raise write_error(path, exc) from exc
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise write_error(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --- what an existing file is ----------------------------------------------------------
def _head(path: Path, n: int = 16) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def is_sqlite(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing SQLite database (a run store or any other): its 16-byte header."""
    return Path(path).is_file() and _head(Path(path)) == SQLITE_HEADER


def is_image(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing image file: PNG, JPEG, GIF or TIFF by content, WebP/BMP and
    other formats when the name has an image suffix and PIL recognises the content."""
    path = Path(path)
    if not path.is_file():
        return False
    head = _head(path)
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    try:
        from PIL import Image
        with Image.open(path):  # reads the header only
            return True
    except Exception:  # not an image PIL knows
        return False


def is_foolkit_png(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG whose ``Software`` text says foolkit wrote it."""
    if _head(Path(path), 8) != b"\x89PNG\r\n\x1a\n":
        return False
    try:
        from PIL import Image
        with Image.open(path) as img:
            return str(img.info.get("Software", "")).startswith(PNG_SOFTWARE)
    except Exception:
        return False


def is_torch_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing file written by ``torch.save`` (a zip with a data.pkl, or
    the legacy pickle format)."""
    path = Path(path)
    if not path.is_file():
        return False
    head = _head(path, 4)
    if head[:1] == b"\x80":  # legacy torch.save: a pickle stream
        return path.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt", ".tar")
    if head != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("data.pkl") for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _is_perturbation_file(path: Path) -> bool:
    try:
        from ..evaluation.universal_io import load_universal
        load_universal(path)
        return True
    except Exception:  # any reason it is not one: then it is someone's other PyTorch file
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return os.path.abspath(a) == os.path.abspath(b)


# --- checks before a command writes --------------------------------------------------------
def check_writable(path: str | os.PathLike, *, create_folder: bool = False) -> None:
    """Refuse, before any long job, an output file that could not be written: a folder, a path
    under a file or under a folder that does not exist, or a folder without write permission.

    ``create_folder``: the parent folder may be missing, the writer creates it (a command's
    default output path, such as ``runs/x.db``, whose folder is foolkit's own); then the
    nearest existing folder above must be writable. Nothing is created here, so a command
    refused later leaves nothing behind. User-given paths never get folders created.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InputError(f"cannot write {path}: it is a symlink loop (too many levels of symbolic links)") from None
    parent = path.parent
    existing = next(above for above in (parent, *parent.parents) if above.exists() or above == above.parent)
    if existing.exists() and not existing.is_dir():
        raise InputError(f"cannot write {path}: {existing} is a file, not a folder")
    if existing != parent and not create_folder:
        raise InputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(existing, os.W_OK):
        raise InputError(f"cannot write {path}: no write permission in {existing}")
    # os.access trusts the mode bits (root passes everywhere); a pseudo file system such as
    # /proc still refuses new files. An unnamed temporary file finds out before the long job.
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise InputError(f"cannot write {path}: {existing} does not accept new files ({_reason(exc)})") from None


def check_output(path: str | os.PathLike, *, inputs: Iterable = (), kind: str = "report", force: bool = False,
                 create_folder: bool = False) -> Path:
    """Refuse an output file that would destroy data or could not be written; returns it as a Path.

    Args:
        path: the output file the command will write (replace whole).
        inputs: the command's input files (None entries are skipped): never overwritten.
        kind: what will be written: "report", "figure", "image" (a PNG), "perturbation", or
            "store" (a run store, written into rather than replaced: its content is checked by
            :class:`~foolkit.evaluation.store.Store`).
        force: allow replacing an existing run store, image or PyTorch file.
        create_folder: see :func:`check_writable`.

    Raises ``ValueError`` (one line) naming the file and what it is.
    """
    if kind not in KINDS:
        raise InputError(f"unknown output kind {kind!r}")
    path = Path(path)
    for given in inputs:
        if given is not None and str(given) != ":memory:" and _same_file(path, Path(given)):
            raise InputError(f"the output {path} is also an input of this command; choose another name")
    check_writable(path, create_folder=create_folder)
    if kind == "store":
        if path.exists() and path.stat().st_size > 0 and not is_sqlite(path):
            raise InputError(f"{path} is not an SQLite database (not a foolkit run store); refusing to touch it")
        return path
    if force or not path.exists():
        return path
    if is_sqlite(path):
        what = "an SQLite database (a run store?)"
    elif is_image(path):
        if kind in ("figure", "image") and is_foolkit_png(path):
            return path  # an earlier result of foolkit: rerunning replaces it
        what = "an image"
    elif is_torch_file(path):
        if kind == "perturbation" and _is_perturbation_file(path):
            return path
        what = "a PyTorch file (weights or a checkpoint?)"
    else:
        return path  # an earlier report or any other file the user names as output
    article = "an" if kind[0] in "aeiou" else "a"
    raise InputError(f"{path} exists and is {what}; refusing to replace it with {article} {kind} "
                     f"(choose another name, or --force to replace it)")


def check_output_folder(path: str | os.PathLike, *, inputs: Iterable = (), writes: Iterable[str] = (),
                        create_parents: bool = False) -> Path:
    """Refuse an output folder the command owns (``train --out DIR``, ``reproduce --out DIR``)
    that is a file, or whose parent folder does not exist (the folder itself may be missing:
    the command creates it). ``writes``: names of the files it writes in it, which must not be
    ``inputs``. ``create_parents``: for a default path, create its missing parents."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} is a file; the output is a folder")
    for name in writes:
        for given in inputs:
            if given is not None and _same_file(path / name, Path(given)):
                raise InputError(f"{given} is an input and would be overwritten by {path / name}; "
                                 f"choose another --out folder")
    if not path.exists():
        check_writable(path, create_folder=create_parents)
    return path
