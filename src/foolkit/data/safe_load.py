"""Reading files that may come from anyone without running code from them.

- :func:`load_cifar_pickle` reads the official CIFAR-10 ``cifar-10-batches-py`` files. They are
  Python 2 pickles of dicts (bytes keys, lists of ints or bytes, one uint8 numpy array), and a
  plain ``pickle.load`` of a file in a folder passed as ``--data`` / ``$FOOLKIT_DATA`` would run
  whatever its ``__reduce__`` names. :class:`RestrictedUnpickler` resolves only the few globals
  a numpy array needs, and refuses every other one before anything is called.
- :func:`describe_load_error` turns a ``torch.load(weights_only=True)`` failure into one
  neutral line: no terminal escape codes (a pickle's global names are text its author chose),
  and never torch's hint to retry with ``weights_only=False`` (which would run the file's code).

Example:
    >>> batch = load_cifar_pickle("cifar-10-batches-py/test_batch")   # {b"data": uint8 [10000,3072], ...}
"""
from __future__ import annotations

import io
import os
import pickle
import re
from typing import Any

from ..errors import DataError

# module -> names the official CIFAR-10 batches need: numpy arrays pickle as
# _reconstruct(ndarray, (0,), b"b") + __setstate__ with a dtype. numpy 2 moved numpy.core to
# numpy._core; files written by either must read.
_ALLOWED: dict[str, frozenset[str]] = {
    "numpy.core.multiarray": frozenset({"_reconstruct"}),
    "numpy._core.multiarray": frozenset({"_reconstruct"}),
    "numpy": frozenset({"ndarray", "dtype"}),
}


def _numpy_global(name: str) -> Any:
    """The allowed numpy object itself, from this numpy's own module (no import of the name a
    file gave, and no numpy 2 warning about the old ``numpy.core`` path)."""
    import numpy as np

    if name == "_reconstruct":
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        return _reconstruct
    return {"ndarray": np.ndarray, "dtype": np.dtype}[name]


class UnsafePickleError(pickle.UnpicklingError, DataError):
    """A pickle names a global (a callable or class) outside the allowed set."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        # the names are text the file's author chose (protocol 4 allows newlines in them)
        super().__init__(f"refused global {clean_text(module, True)[:100]}.{clean_text(name, True)[:100]}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols <= 2, for latin-1 only: other
    codecs are refused (there is no need for them in a data file)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError("_codecs", f"encode with encoding {encoding!r}")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, numbers, strings, bytes and numpy arrays.

    ``find_class`` allows ``numpy(.core|._core).multiarray._reconstruct``, ``numpy.ndarray``,
    ``numpy.dtype`` and a latin-1-only ``_codecs.encode`` (how Python 3 writes bytes in a
    protocol-2 pickle); any other global raises :class:`UnsafePickleError` before it is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module in ("_codecs", "codecs") and name == "encode":
            return _latin1_encode
        if name in _ALLOWED.get(module, ()):
            return _numpy_global(name)
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid: Any) -> Any:  # no external references either
        raise pickle.UnpicklingError("persistent references are not allowed")


def load_cifar_pickle(path: str | os.PathLike) -> Any:
    """Unpickle one official CIFAR-10 file (``data_batch_1``..``5``, ``test_batch``,
    ``batches.meta``) with :class:`RestrictedUnpickler`, ``encoding="bytes"`` as the Python 2
    files need. Raises :class:`UnsafePickleError` for a forbidden global, ``pickle.UnpicklingError``
    or other exceptions for corrupt files, ``OSError`` when it cannot be read."""
    with open(path, "rb") as fh:
        data = fh.read()
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str, one_line: bool = False) -> str:
    """``text`` without terminal escape sequences or control characters (newlines kept unless
    ``one_line``: then newlines and tabs become spaces)."""
    text = _CONTROL.sub("?", _ANSI.sub("", str(text)))
    return re.sub(r"[\n\t]", " ", text) if one_line else text


_HINTS = re.compile(r"weights_only|arbitrary code|trusted source|In PyTorch 2\.6|safe_globals|if you trust",
                    re.IGNORECASE)


def describe_load_error(exc: BaseException) -> str:
    """One line saying why ``torch.load(..., weights_only=True)`` (or the restricted unpickler)
    refused a file: the refused global when there is one, else the first informative line.
    Never an escape code, never a suggestion to load with ``weights_only=False`` or to allowlist
    the refused global."""
    # torch ends the refused-global line with how to allowlist that global "if you trust" it:
    # advice to let the file run code, cut off like the weights_only=False hint
    lines = [re.split(r"\s*Please use `?torch\.serialization\.(?:add_)?safe_globals", ln)[0].strip()
             for ln in clean_text(str(exc)).splitlines()]
    lines = [ln for ln in lines if ln]
    refused = [ln for ln in lines if "global" in ln.lower() and not _HINTS.search(ln)]
    informative = [ln for ln in lines if not _HINTS.search(ln) and not ln.startswith("Check the documentation")]
    line = (refused or informative or [""])[0]
    line = re.sub(r"\s+", " ", line)
    if _HINTS.search(line):  # a torch wording not foreseen here: say it plainly instead
        line = ""
    line = line or f"{type(exc).__name__} (the file holds objects that are not plain tensors and numbers)"
    return line if len(line) <= 300 else line[:297] + "..."


def load_weights_only(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU: tensors and plain containers, never
    code. torch's note on an old pickle protocol is silenced: the caller's error says what is wrong."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True)
