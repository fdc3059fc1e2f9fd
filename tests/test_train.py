import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

import foolkit as fk
from foolkit.training import TrainConfig, train


def tiny_folder(root, per_class=3):
    rng = np.random.RandomState(0)
    for split in ("train", "test"):
        for name in fk.data.CIFAR10_CLASSES:
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_train_resume_matches_uninterrupted(tmp_path):
    tiny_folder(tmp_path / "data")
    cfg = dict(epochs=3, batch_size=8, seed=1)
    full = train(TrainConfig(**cfg), tmp_path / "data", tmp_path / "full", progress=False)
    # stop after the first epoch (4 steps of 8 over 30 images), then resume
    train(TrainConfig(**cfg, max_steps=4), tmp_path / "data", tmp_path / "resumed", progress=False)
    assert json.loads((tmp_path / "resumed" / "history.json").read_text())["history"][-1]["epoch"] == 1
    resumed = train(TrainConfig(**cfg), tmp_path / "data", tmp_path / "resumed", progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    a = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "weights.pt", weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    assert abs(full["history"][-1]["train_loss"] - resumed["history"][-1]["train_loss"]) < 1e-6


def test_train_cli_smoke(tmp_path):
    tiny_folder(tmp_path / "data", per_class=2)
    cmd = [sys.executable, "-m", "foolkit.cli", "train", "cifar10/resnet20", "--data", str(tmp_path / "data"),
           "--epochs", "2", "--batch-size", "5", "--out", str(tmp_path / "out"), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "last.pt").exists()
    bad = subprocess.run(cmd[:4] + ["cifar10/nope"] + cmd[5:], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown model" in bad.stderr and "Traceback" not in bad.stderr


def test_resume_with_other_epochs_needs_reschedule(tmp_path):
    import pytest
    tiny_folder(tmp_path / "data", per_class=2)
    train(TrainConfig(epochs=2, batch_size=5, max_steps=4), tmp_path / "data", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train(TrainConfig(epochs=3, batch_size=5), tmp_path / "data", tmp_path / "out", progress=False)
    done = train(TrainConfig(epochs=3, batch_size=5, reschedule=True), tmp_path / "data", tmp_path / "out",
                 progress=False)
    assert [h["epoch"] for h in done["history"]] == [1, 2, 3]
    with pytest.raises(ValueError, match="too few"):
        train(TrainConfig(epochs=1, batch_size=50), tmp_path / "data", tmp_path / "other", progress=False)
    saved = json.loads((tmp_path / "out" / "history.json").read_text())
    assert saved["reschedules"] == [{"at_epoch": 1, "from_epochs": 2, "to_epochs": 3}]


def test_swa_phase_writes_the_average_with_fresh_batchnorm_statistics(tmp_path):
    tiny_folder(tmp_path / "data")
    first = tmp_path / "first"
    train(TrainConfig(epochs=2, batch_size=8), tmp_path / "data", first, progress=False)
    cfg = dict(epochs=3, batch_size=8, seed=2, swa_lr=0.01, init_from=str(first / "weights.pt"))
    # interrupted after the first epoch, then resumed: the running sum must survive in last.pt
    train(TrainConfig(**cfg, max_steps=4), tmp_path / "data", tmp_path / "swa", progress=False)
    done = train(TrainConfig(**cfg), tmp_path / "data", tmp_path / "swa", progress=False)
    assert [h["swa_models"] for h in done["history"]] == [1, 2, 3]
    assert {h["lr"] for h in done["history"]} == {0.01}  # constant, no OneCycle
    state = torch.load(tmp_path / "swa" / "last.pt", weights_only=True)
    averaged = torch.load(tmp_path / "swa" / "weights.pt", weights_only=True)
    assert state["swa_count"] == 3
    for k, total in state["swa_sum"].items():
        if "running_" in k:
            continue  # recomputed on the training images, not averaged
        torch.testing.assert_close(averaged[k], (total / 3).float())
    # the last epoch-end weights differ from the average: training went on from them, not from it
    assert any(not torch.equal(state["model"][k], averaged[k]) for k in averaged if "weight" in k)
    # the BatchNorm statistics were recomputed for the averaged weights (not the last weights' ones)
    key = next(k for k in averaged if k.endswith("running_mean"))
    assert not torch.equal(averaged[key], state["model"][key])
    fk.models.build("cifar10/resnet20").net.load_state_dict(averaged, strict=True)


def test_cutout_cuts_one_clipped_square_per_image():
    from foolkit.training import cutout
    x = torch.rand(64, 3, 32, 32) * 0.4 + 0.5  # never 0.25, the fill below
    out = cutout(x, 16, torch.Generator().manual_seed(0), fill=0.25)
    assert out.shape == x.shape and not torch.equal(out, x) and (x >= 0.5).all()  # input untouched
    hole = (out == 0.25).all(1)  # [64, 32, 32]
    assert torch.equal(out[~hole[:, None].expand_as(out)], x[~hole[:, None].expand_as(x)])
    rows, cols = hole.any(2).sum(1), hole.any(1).sum(1)
    assert (hole.sum((1, 2)) == rows * cols).all()  # a rectangle...
    assert ((rows >= 8) & (rows <= 16) & (cols >= 8) & (cols <= 16)).all()  # ...of a 16-square, clipped
    assert ((rows == 16) & (cols == 16)).any()


def test_cutout_run_resumes_only_with_cutout(tmp_path):
    import pytest
    tiny_folder(tmp_path / "data", per_class=2)
    train(TrainConfig(epochs=2, batch_size=5, max_steps=4, cutout=8), tmp_path / "data", tmp_path / "out",
          progress=False)
    with pytest.raises(ValueError, match="cutout"):
        train(TrainConfig(epochs=2, batch_size=5), tmp_path / "data", tmp_path / "out", progress=False)
    done = train(TrainConfig(epochs=2, batch_size=5, cutout=8), tmp_path / "data", tmp_path / "out", progress=False)
    assert [h["epoch"] for h in done["history"]] == [1, 2]
