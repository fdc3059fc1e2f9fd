"""The compact member of each thesis family trained here and shipped ([5/6] part 2)."""
import json

import pytest
import torch

import foolkit as fk
from foolkit.models import registry

# name -> (the thesis network of the same family, parameter count)
COMPACT = {
    "cifar10/resnet20": ("ResNet-50", 272_474),
    "cifar10/densenet_bc40": ("DenseNet-169", 176_122),
    "cifar10/mobilenet_v2_050": ("MobileNetV2", 700_490),
    "cifar10/inception_small_050": ("InceptionV3", 415_130),
}


@pytest.mark.parametrize("name", COMPACT)
def test_card_matches_network(name):
    card = fk.models.card(name)
    net = registry.build(name)
    assert card.num_params == sum(p.numel() for p in net.parameters()) == COMPACT[name][1]
    assert card.extra["thesis_network"] == COMPACT[name][0]
    for key in ("test_accuracy", "test_accuracy_data", "training", "measured_on", "measured_date"):
        assert key in card.extra, f"{name}: card lacks {key}"
    assert 0.8 <= card.extra["test_accuracy"] <= 1  # measured on the 10k test set (goal: 0.85, see the README)


@pytest.mark.parametrize("name", COMPACT)
def test_contract_and_bundled_accuracy(name, bundled):
    model = fk.models.load(name)
    x, y = bundled
    before = x.clone()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 250]) for i in range(0, len(x), 250)])
    assert logits.shape == (len(x), 10) and logits.dtype == torch.float32
    assert not model.training and torch.equal(x, before)
    accuracy = (logits.argmax(1) == y).float().mean().item()
    assert accuracy >= 0.83, f"{name}: {accuracy:.3f} on the bundled images"
    assert abs(accuracy - fk.models.card(name).extra["bundled_accuracy"]) < 1e-3  # the card says what we measure


def test_compact_variants_are_smaller_versions_of_the_full_networks():
    from foolkit.models.architectures.densenet_cifar import DenseNetCifar, densenet_bc40
    from foolkit.models.architectures.mobilenetv2_cifar import COMPACT_SETTING, CIFAR_SETTING, mobilenet_v2_050
    from foolkit.models.architectures.inception_small_cifar import SmallInceptionCifar

    dense = densenet_bc40()
    assert isinstance(dense, DenseNetCifar) and not hasattr(dense.features, "pool0")
    assert dense(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    # stride 2 moved to the 24-channel stage only
    assert [s for *_, s in COMPACT_SETTING] == [1, 2, 2, 2, 1, 2, 1] and len(CIFAR_SETTING) == 7
    assert mobilenet_v2_050()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    # the paper's widths give the paper's 1.65 M parameters
    assert sum(p.numel() for p in SmallInceptionCifar(width=1.0).parameters()) == 1_651_114


def test_cards_are_valid_json():
    for name in COMPACT:
        path = registry.CARDS_DIR / registry._CARD_FILES[name]
        data = json.loads(path.read_text())
        assert data["name"] == name


def test_reproduce_defaults_are_these_models():
    from foolkit.experiments.thesis_setup import COMPACT_MODELS
    assert {name: thesis for thesis, name in COMPACT_MODELS.items()} == {n: t for n, (t, _) in COMPACT.items()}
