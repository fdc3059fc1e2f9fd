"""``hf:DIR``: a tiny randomly initialised ViT saved with ``save_pretrained`` in the test (no download)."""
import json

import pytest
import torch

pytest.importorskip("transformers")
import transformers  # noqa: E402

import foolkit as fk  # noqa: E402
from foolkit import cli  # noqa: E402
from foolkit.models.registry import ModelError  # noqa: E402
from foolkit.models.sources import resolve_model  # noqa: E402

MEAN, STD = (0.4, 0.45, 0.5), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16,
                                    num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    num_labels=10, id2label={i: f"thing{i}" for i in range(10)},
                                    label2id={f"thing{i}": i for i in range(10)})
    net = transformers.ViTForImageClassification(config).eval()
    folder = tmp_path_factory.mktemp("vit")
    net.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_normalize": True, "do_resize": True,
        "image_mean": list(MEAN), "image_std": list(STD), "size": {"height": 32, "width": 32}}))
    return folder, net


def test_hf_folder_loads_with_its_processor_normalisation(vit_dir):
    folder, net = vit_dir
    resolved = resolve_model(f"hf:{folder}")
    assert resolved.kind == "hf" and resolved.input_size == (3, 32, 32) and resolved.num_classes == 10
    assert resolved.mean == MEAN and resolved.std == STD and resolved.classes[3] == "thing3"
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    want = net(pixel_values=(x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)).logits
    with torch.no_grad():
        got = resolved.module(x)  # [0,1] pixels in, logits out (.logits taken, normalisation applied)
    assert torch.allclose(got, want, atol=1e-5)
    result = fk.attacks.DeepFool(max_iter=5)(resolved.module, x)  # gradients flow through the wrappers
    assert result.iterations[result.attacked].min() >= 1 and 0 <= result.x_adv.min() <= result.x_adv.max() <= 1
    assert (result.x_adv != x).any()


def test_hf_identity_is_the_folder_content(vit_dir, tmp_path):
    import shutil

    folder, _ = vit_dir
    copy = tmp_path / "renamed"
    shutil.copytree(folder, copy)
    assert resolve_model(f"hf:{copy}").identity == resolve_model(f"hf:{folder}").identity
    cfg = json.loads((copy / "preprocessor_config.json").read_text())
    cfg["image_std"] = [0.5, 0.5, 0.5]
    (copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    assert resolve_model(f"hf:{copy}").identity != resolve_model(f"hf:{folder}").identity


def test_hf_refuses_remote_code_pickles_and_missing_folders(vit_dir, tmp_path):
    import shutil

    folder, _ = vit_dir
    with pytest.raises(ModelError, match="no such folder"):
        resolve_model(f"hf:{tmp_path / 'nothing'}")
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ModelError, match="safetensors only"):
        resolve_model(f"hf:{pickled}")
    remote = tmp_path / "remote"
    shutil.copytree(folder, remote)
    marker = tmp_path / "ran"
    (remote / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    cfg = json.loads((remote / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForImageClassification": "evil.Net"}
    (remote / "config.json").write_text(json.dumps(cfg))
    try:
        resolve_model(f"hf:{remote}")  # transformers may ignore auto_map without trust_remote_code ...
    except ModelError as exc:
        assert "\n" not in str(exc)
    assert not marker.exists()  # ... but never runs the folder's code


def test_cli_attacks_an_hf_folder(vit_dir, tmp_path, capsys):
    folder, _ = vit_dir
    out = tmp_path / "r.db"
    assert cli.main(["attack", "--model", f"hf:{folder}", "--attack", "deepfool", "--n", "4", "--out", str(out),
                     "--quiet"]) == 0
    assert "stored in" in capsys.readouterr().out
    assert cli.main(["attack", "--cifar-index", "1", "--model", f"hf:{folder}", "--out", str(tmp_path / "f.png")]) == 0
    assert "thing" in capsys.readouterr().out  # the folder's own class names
    assert cli.main(["models", "--check", f"hf:{folder}"]) == 0
    text = capsys.readouterr().out
    assert "(hf)" in text and "mean (0.4, 0.45, 0.5)" in text
