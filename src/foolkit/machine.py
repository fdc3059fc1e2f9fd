"""One line describing the machine a measurement was made on (for cards, reports, benchmarks)."""
from __future__ import annotations

import os
import platform

import torch


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
