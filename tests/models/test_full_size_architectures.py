"""Full-size CIFAR-10 architectures vs. the reference facts of the thesis's checkpoints.

The reference (shared/reference/cifar10-thesis-architectures.json, beside the repo root)
holds each state_dict's keys and shapes and the logits of the raw network for a fixed input
after a deterministic weight fill; matching them means the same function is computed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import foolkit as fk
from foolkit.models import ModelError

REFERENCE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
             / "cifar10-thesis-architectures.json")
NAMES = ["resnet50", "densenet169", "mobilenet_v2", "inception_v3"]
THESIS_ACCURACY = {"resnet50": 92.12, "densenet169": 92.84, "mobilenet_v2": 92.99, "inception_v3": 95.41}


@pytest.fixture(scope="module")
def reference() -> dict:
    if not REFERENCE.is_file():
        pytest.skip(f"reference facts not found at {REFERENCE.resolve()} (shared/ must sit beside the repo root)")
    return json.loads(REFERENCE.read_text())


pytestmark = pytest.mark.usefixtures("one_thread")


def reference_input() -> torch.Tensor:
    """X.flat[t] = 0.5 + 0.5 sin(0.01 t), t = 0..6143 (float64, then float32), shape 2x3x32x32."""
    t = np.arange(2 * 3 * 32 * 32, dtype=np.float64)
    return torch.from_numpy((0.5 + 0.5 * np.sin(0.01 * t)).astype(np.float32).reshape(2, 3, 32, 32))


def filled_state_dict(template: dict) -> dict:
    """The reference fill rule, applied to every tensor of ``template`` (a state_dict)."""
    out = {}
    for key, value in template.items():
        s = np.sin(0.7 * np.arange(value.numel(), dtype=np.float64) + len(key)).reshape(tuple(value.shape))
        if not value.is_floating_point():
            a = np.zeros(tuple(value.shape))
        elif key.endswith("running_var"):
            a = 1 + 0.5 * s ** 2
        elif key.endswith("running_mean"):
            a = 0.1 * s
        elif key.endswith("bias"):
            a = 0.01 * s
        elif value.dim() == 1:
            a = 1 + 0.1 * s
        else:
            a = s * math.sqrt(3.0 / value[0].numel())
        out[key] = torch.from_numpy(np.asarray(a)).to(value.dtype)
    return out


def raw_network(name: str) -> torch.nn.Module:
    return fk.models.build(f"cifar10/{name}").net.eval()


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_order_and_shapes(reference, name):
    sd = raw_network(name).state_dict()
    expected = [(k, tuple(v)) for k, v in reference[name]["state_dict"].items()]
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_and_card(reference, name):
    net = raw_network(name)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == reference[name]["num_params"]
    card = fk.models.card(f"cifar10/{name}")
    assert card.num_params == reference[name]["num_params"]
    assert card.input_size == 32 and card.dataset == "cifar10"
    assert card.mean == [0.4914, 0.4822, 0.4465] and card.std == [0.2471, 0.2435, 0.2616]
    assert card.checkpoint is None and card.sha256 is None
    assert card.extra["thesis_accuracy"] == THESIS_ACCURACY[name]
    assert "huyvnphan/PyTorch_CIFAR10" in card.extra["source"]


@pytest.mark.parametrize("name", NAMES)
def test_golden_logits(reference, name):
    net = raw_network(name)
    net.load_state_dict(filled_state_dict(net.state_dict()), strict=True)
    with torch.no_grad():
        logits = net(reference_input())
    golden = torch.tensor(reference[name]["golden_logits"])
    assert list(logits.shape) == reference[name]["output_shape"]
    rel = ((logits - golden).abs().max() / golden.abs().max()).item()
    assert rel < 1e-4, f"{name}: max relative error {rel:.2e}"


@pytest.mark.parametrize("name", NAMES)
def test_load_from_checkpoint_file(reference, name, tmp_path):
    """load(name, checkpoint=path): strict, wrapped in the CIFAR-10 normalisation, eval mode."""
    state = filled_state_dict(raw_network(name).state_dict())
    path = tmp_path / f"{name}.pt"
    torch.save(state, path)
    model = fk.models.load(f"cifar10/{name}", checkpoint=path)
    assert isinstance(model, fk.models.Normalized) and not model.training
    # choose x in [0,1]-space so that the normalised input is exactly the reference X
    x = reference_input() * model.std + model.mean
    with torch.no_grad():
        logits = model(x)
    golden = torch.tensor(reference[name]["golden_logits"])
    assert ((logits - golden).abs().max() / golden.abs().max()).item() < 1e-4


def test_load_without_checkpoint_says_how():
    with pytest.raises(ModelError, match="checkpoint") as info:
        fk.models.load("cifar10/resnet50")
    assert "resnet50.pt" in str(info.value)


def test_checkpoint_that_does_not_fit_is_refused(tmp_path):
    state = filled_state_dict(raw_network("mobilenet_v2").state_dict())
    del state["classifier.1.bias"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match="does not fit"):
        fk.models.load("cifar10/mobilenet_v2", checkpoint=path)


def test_registered_names():
    names = fk.models.list_models()
    for name in NAMES:
        assert f"cifar10/{name}" in names
    assert "cifar10/resnet20" in names
