import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

import foolkit as fk
from foolkit.models.training import TrainConfig, train


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
    from foolkit.models.augmentation import cutout
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


def test_adversarial_loss_is_the_thesis_combination():
    from foolkit.models.objectives import adversarial_loss
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    ce = torch.nn.functional.cross_entropy
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ce(net(xg), y), xg)
    x_adv = (x + 0.1 * grad.sign()).clamp(0, 1)
    expected = 0.3 * ce(net(x), y) + 0.7 * ce(net(x_adv), y)
    got = adversarial_loss(net, x, y, alpha=0.3, eps=0.1)
    torch.testing.assert_close(got, expected)
    assert ce(net(x_adv), y) > ce(net(x), y)  # the FGSM batch is harder: the second term is the adversarial one
    torch.testing.assert_close(adversarial_loss(net, x, y, alpha=1.0, eps=0.1), ce(net(x), y))
    got.backward()  # gradients reach the parameters
    assert net[1].weight.grad is not None and net[1].weight.grad.abs().sum() > 0


def test_orthogonality_penalty_zero_only_for_orthogonal_weights():
    from foolkit.models.objectives import orthogonality_penalty
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    lin = torch.nn.Linear(6, 6)
    conv = torch.nn.Conv2d(2, 4, 3)  # [4, 18]: a wide matrix, orthonormal rows can score zero
    wide, _ = torch.linalg.qr(torch.randn(18, 4, dtype=torch.float64))
    with torch.no_grad():
        lin.weight.copy_(q.float())
        conv.weight.copy_(wide.T.reshape(4, 2, 3, 3).float())
    net = torch.nn.Sequential(conv, torch.nn.Flatten(), lin)
    assert orthogonality_penalty(net).item() < 1e-10
    with torch.no_grad():
        lin.weight.mul_(1.1)  # W^T W = 1.21 I: penalty 6 * 0.21^2
    assert abs(orthogonality_penalty(net).item() - 6 * 0.21 ** 2) < 1e-4
    orthogonality_penalty(net).backward()
    assert lin.weight.grad.abs().sum() > 0


def test_adversarial_and_ortho_training_resume_only_with_the_same_settings(tmp_path):
    import pytest
    tiny_folder(tmp_path / "data", per_class=2)
    cfg = dict(epochs=2, batch_size=5, adversarial="fgsm", alpha=0.5, eps=0.03, ortho_beta=1e-4)
    first = train(TrainConfig(**cfg, max_steps=4), tmp_path / "data", tmp_path / "out", progress=False)
    assert np.isfinite(first["history"][-1]["train_loss"])
    for change in ({"adversarial": None}, {"alpha": 0.7}, {"eps": 0.05}, {"ortho_beta": 0.0}):
        key = next(iter(change))
        with pytest.raises(ValueError, match=f"cannot resume.*{key}="):
            train(TrainConfig(**{**cfg, **change}), tmp_path / "data", tmp_path / "out", progress=False)
    done = train(TrainConfig(**cfg), tmp_path / "data", tmp_path / "out", progress=False)
    assert [h["epoch"] for h in done["history"]] == [1, 2]
    with pytest.raises(ValueError, match="adversarial"):
        TrainConfig(adversarial="pgd").validate()
    with pytest.raises(ValueError, match="alpha"):
        TrainConfig(alpha=1.5).validate()
    with pytest.raises(ValueError, match="ortho_beta"):
        TrainConfig(ortho_beta=-1).validate()


def test_train_cli_adversarial_options(tmp_path):
    tiny_folder(tmp_path / "data", per_class=2)
    cmd = [sys.executable, "-m", "foolkit.cli", "train", "cifar10/resnet20", "--data", str(tmp_path / "data"),
           "--epochs", "2", "--batch-size", "5", "--out", str(tmp_path / "out"), "--quiet",
           "--adversarial", "fgsm", "--alpha", "0.5", "--eps", "0.03", "--ortho-beta", "0.001"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "out" / "history.json").read_text())["config"]
    assert (config["adversarial"], config["alpha"], config["eps"], config["ortho_beta"]) == ("fgsm", 0.5, 0.03, 0.001)
    bad = subprocess.run(cmd[:-6] + ["--alpha", "2"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "alpha" in bad.stderr and "Traceback" not in bad.stderr


def test_train_device_option(tmp_path, capsys):
    """`--device`: an absent GPU is a one-line error before anything is written; `--device cpu`
    trains, and the same run through the library (default device) gives the same weights."""
    import pytest
    from foolkit.cli import main
    tiny_folder(tmp_path / "data", per_class=2)
    args = ["train", "cifar10/resnet20", "--data", str(tmp_path / "data"), "--epochs", "2", "--batch-size", "5",
            "--max-steps", "4", "--seed", "3", "--quiet"]
    if not torch.cuda.is_available():
        assert main(args + ["--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cuda" in err and "not available" in err
        assert not (tmp_path / "gpu").exists()
    assert main(args + ["--out", str(tmp_path / "bad"), "--device", "tpu:0"]) == 2
    assert "unknown device" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(args + ["--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    lib = train(TrainConfig(epochs=2, batch_size=5, max_steps=4, seed=3, max_lr=0.15),  # the CLI's max-lr
                tmp_path / "data", tmp_path / "lib", progress=False)
    a = torch.load(tmp_path / "cpu" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "lib" / "weights.pt", weights_only=True)
    assert all(v.device.type == "cpu" for v in a.values())
    for k in a:  # same process, same threads: only summation order could differ, so a tight tolerance
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    hist = json.loads((tmp_path / "cpu" / "history.json").read_text())["history"]
    assert hist[-1]["test_acc"] == pytest.approx(lib["history"][-1]["test_acc"])
