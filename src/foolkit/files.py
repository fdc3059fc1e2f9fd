"""Writing output files whole or not at all.

Every file foolkit writes (reports, figures, checkpoints, perturbations) goes through
:func:`atomic_path`: it is written beside its final name and renamed into place only once it
is complete, so an interrupted or failed write never leaves a half-written file, and an older
complete file under that name survives a failed rewrite.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the folder of ``path``; write there. On success it replaces
    ``path`` (one rename); on an exception it is deleted and ``path`` is left as it was.

    Writers that infer the format from the file name (``savefig``, ``Image.save``) must be
    given the format explicitly: the temporary name ends in ``.tmp``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any long job, an output file that could not be written: a folder, a path
    under a file, or a folder without write permission. Creates the missing parent folders."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"cannot write {path}: a part of its folder path is a file") from None
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"cannot write {path}: no write permission in {path.parent}")
