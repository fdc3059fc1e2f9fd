"""One line describing the machine a measurement was made on (for cards, reports, benchmarks)."""
from __future__ import annotations

import os
import platform

import torch
from ..errors import InputError


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str | torch.device | None = None) -> str:
    """E.g. "AMD EPYC 9R14; 2 CPU cores, 2 torch threads; torch 2.13.0+cpu" (with the GPU's
    name instead of the core count when ``device`` is a CUDA device)."""
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        where = torch.cuda.get_device_name(torch.device(device))
    else:
        threads = torch.get_num_threads()
        where = f"{os.cpu_count()} CPU cores, {threads} torch thread{'' if threads == 1 else 's'}"
    return f"{cpu_name()}; {where}; torch {torch.__version__}"


def parse_device(name: str | torch.device) -> torch.device:
    """A torch device from a name (``"cpu"``, ``"cuda"``, ``"cuda:1"``), refused with a clear
    error when it is unknown or absent from this machine."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: CUDA is not available on this machine or in this torch build")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: MPS is not available on this machine")
    return device
