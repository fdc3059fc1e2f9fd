import os

import torch

from foolkit.machine import cpu_name, describe


def test_machine_line_names_cpu_cores_threads_and_torch():
    line = describe("cpu")
    assert cpu_name() and line.startswith(cpu_name())
    assert f"{os.cpu_count()} CPU cores" in line and f"{torch.get_num_threads()} torch thread" in line
    assert f"torch {torch.__version__}" in line
    assert describe() == line  # no device: the CPU's description
