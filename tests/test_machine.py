import os

import torch

from foolkit.runtime.machine import cpu_name, describe


def test_machine_line_names_cpu_cores_threads_and_torch():
    line = describe("cpu")
    assert cpu_name() and line.startswith(cpu_name())
    assert f"{os.cpu_count()} CPU cores" in line and f"{torch.get_num_threads()} torch thread" in line
    assert f"torch {torch.__version__}" in line
    assert describe() == line  # no device: the CPU's description


def test_python_api_refuses_an_absent_cuda_device_clearly(tmp_path, monkeypatch):
    """device="cuda" without CUDA: the CLI's one-line ValueError from every Python entry point,
    not torch's AssertionError, and nothing written."""
    import pytest

    import foolkit as fk
    from foolkit.experiments.reproduce import reproduce
    from foolkit.runtime.machine import parse_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    image = tmp_path / "photo.png"
    from PIL import Image
    Image.new("RGB", (40, 30), (120, 30, 200)).save(image)
    calls = {
        "models.load": lambda: fk.models.load("cifar10/resnet20", device="cuda"),
        "evaluate": lambda: fk.evaluate("cifar10/resnet20", "fgsm", ("cifar10", "test", 4),
                                        store=tmp_path / "x.db", device="cuda"),
        "attack_image": lambda: fk.attack_image(image, "cifar10/resnet20", "fgsm", device="cuda", verbose=False),
        "reproduce": lambda: reproduce(tmp_path / "repro", quick=True, device="cuda:0", progress=False),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match="CUDA is not available") as info:
            call()
        assert "\n" not in str(info.value), what
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "repro").exists()
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        fk.models.load("cifar10/resnet20", device="gpu")
    assert parse_device("cpu") == torch.device("cpu")
