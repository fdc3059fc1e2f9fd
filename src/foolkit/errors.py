"""foolkit's errors: one base class, :class:`FoolkitError`, that the command line reports as one
line (exit code 2) and that a library user can catch to tell a bad input from a bug.

Every error is also a ``ValueError`` (the Python convention for a bad value, and what foolkit
raised before this module existed), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


import torch


class FoolkitError(ValueError):
    """Base class: a problem with what the user gave (a value, a file, a model), not a bug."""


class InputError(FoolkitError):
    """A bad argument: out of range, the wrong shape, dtype or type of value, or settings that
    contradict each other. The message names the argument and what was wrong."""



class DataError(FoolkitError):
    """A dataset could not be read: the message says which file or folder and why."""


class UniversalFileError(DataError):
    """A universal perturbation file that is missing, unreadable or not in foolkit's format."""


class ModelError(FoolkitError):
    """Unknown model, or a checkpoint that is missing, corrupt or does not match."""


class StoreError(FoolkitError):
    """The store file cannot be used: not SQLite, corrupt, locked, or not a foolkit store."""


class MergeConflict(StoreError):
    """Two stores hold different records for the same run and image: nothing is merged."""


class RayMissing(ImportError, FoolkitError):
    """Ray is not installed (the message says how to install it)."""


class OutOfMemory(torch.cuda.OutOfMemoryError, FoolkitError):
    """Out of memory on a single image: nothing left to split; a setting to change."""


# What the command line reports as one line with exit code 2: foolkit's own errors, a
# ValueError raised by a library on a bad value (Pillow, numpy, float()), and OSError (a path
# that is missing, unreadable, unwritable, or a full disk). Anything else is a bug: a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (FoolkitError, ValueError, OSError)
