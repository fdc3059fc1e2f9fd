"""Devices: out-of-memory splitting (simulated on CPU) and ``--device`` on every command.

A CUDA out-of-memory error is constructible without CUDA (``torch.cuda.OutOfMemoryError``), so a
model wrapper that raises it for batches above ``k`` images exercises the split on any CPU.
"""
import math
import warnings

import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit import cli
from foolkit.evaluation.oom import OomSplitter, concat_results


class SmallNet(nn.Module):
    def __init__(self, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1).to(dtype)
        self.fc = nn.Linear(6 * 8 * 8, 5).to(dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class RaisesAbove(nn.Module):
    """The wrapped network, but CUDA out of memory for batches of more than ``k`` images."""

    def __init__(self, net: nn.Module, k: int):
        super().__init__()
        self.net, self.k = net, k
        self.largest = 0

    def forward(self, x):
        if len(x) > self.k:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.largest = max(self.largest, len(x))
        return self.net(x)


def images(n, dtype=torch.float64, seed=1):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_split_gives_the_unsplit_deepfool_results_and_names_the_size():
    net = SmallNet().eval()
    x = images(12)
    attack = fk.attacks.DeepFool(norm=2)
    whole = attack(net, x)
    wrapped = RaisesAbove(net, k=3)
    splitter = OomSplitter()
    with pytest.warns(UserWarning, match=r"out of memory at batch size 12; batch size 3 worked") as caught:
        split, size = splitter.attack(attack, wrapped, x, start=0, base_seed=0)
    assert size == 3 and splitter.size == 3 and wrapped.largest == 3
    assert len(caught) == 1  # one line, not one per attempt
    # float64, and each image's DeepFool path depends on that image only: equal up to rounding
    for name in ("label", "clean_label", "attacked", "success", "adv_label", "iterations"):
        assert torch.equal(getattr(split, name), getattr(whole, name)), name
    assert torch.allclose(split.x_adv, whole.x_adv, rtol=0, atol=1e-10)
    assert split.forward_count == whole.forward_count  # the failed attempts are not counted
    # a later batch starts at the working size: no second failure, no second message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, size = splitter.attack(attack, wrapped, images(5, seed=2), start=12, base_seed=0)
    assert size == 3 and len(again) == 5


def test_one_image_that_does_not_fit_is_a_one_line_error():
    wrapped = RaisesAbove(SmallNet().eval(), k=0)
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"^out of memory attacking one image \(image 7\)") as err:
        OomSplitter().attack(fk.attacks.DeepFool(), wrapped, images(4), start=7)
    assert "\n" not in str(err.value)


def test_other_errors_are_not_retried():
    class Broken(nn.Module):
        calls = 0

        def forward(self, x):
            Broken.calls += 1
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        OomSplitter().attack(fk.attacks.DeepFool(), Broken(), images(4, dtype=torch.float32))
    assert Broken.calls == 1


def test_concat_keeps_per_sample_extras_in_order():
    net = SmallNet().eval()
    x = images(6)
    attack = fk.attacks.SparseFool()
    parts = [attack(net, x[:2]), attack(net, x[2:])]
    whole = concat_results(parts)
    assert len(whole) == 6 and torch.equal(whole.x, x)
    assert torch.equal(whole.success[2:], parts[1].success)
    assert whole.gradient_count == parts[0].gradient_count + parts[1].gradient_count


def test_evaluate_splits_batches_with_the_same_records(tmp_path):
    """The runner: a batch of 8 on a model that takes 2 at most is stored as the unsplit run."""
    net = SmallNet(torch.float32).eval()
    x = images(10, dtype=torch.float32)
    attack = fk.attacks.DeepFool(norm=math.inf)
    ref = fk.evaluate(net, attack, x, batch_size=8).records()
    with pytest.warns(UserWarning, match=r"batch size 2 worked"):
        run = fk.evaluate(RaisesAbove(net, 2), attack, x, store=tmp_path / "s.db", batch_size=8)
    got = run.records()
    assert run.config["batch_size"] == 8  # the same run: the grid of committed batches is unchanged
    assert [r["success"] for r in got] == [r["success"] for r in ref]
    # float32 on CPU: kernels picked by batch shape differ in the last bits, so the norms agree to
    # ~1e-6 relative; 1e-4 leaves room and still catches any wrong image or step
    for a, b in zip(got, ref):
        assert a["linf"] == pytest.approx(b["linf"], rel=1e-4, abs=1e-7)
    assert run.artifact("oom/batch0").item() == 2  # the working size, kept beside the split batch
    assert run.artifact("oom/batch8") is None  # images 8, 9: two fit, no split


def test_seeded_attack_first_part_draws_as_the_unsplit_batch():
    """One Pixel: part 1 runs under the batch's own seed, so its draws match an unsplit batch of
    that size; parts are reproducible (the same split gives the same numbers)."""
    net = SmallNet().eval()
    x = images(4)
    attack = fk.attacks.OnePixel(population=8, generations=2)

    def attack_at_most_2(model, xs, y=None, **kw):  # One Pixel's forwards hold the population: limit the call
        if len(xs) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return attack(model, xs, y, **kw)

    torch.manual_seed(5 * 1_000_003 + 0)
    alone = attack(net, x[:2])
    with pytest.warns(UserWarning, match="batch size 2 worked"):
        a, _ = OomSplitter().attack(attack_at_most_2, net, x, base_seed=5, start=0)
        b, _ = OomSplitter().attack(attack_at_most_2, net, x, base_seed=5, start=0)
    assert torch.equal(a.x_adv[:2], alone.x_adv)
    assert torch.equal(a.x_adv, b.x_adv)


# --- --device on every command that runs a model ---------------------------------------------
@pytest.mark.parametrize("argv", [
    ["attack", "--model", "cifar10/resnet20", "--attack", "deepfool", "--n", "2"],
    ["attack", "--cifar-index", "0"],
    ["eval", "cifar10/resnet20", "--n", "2"],
    ["fit-universal", "--model", "cifar10/resnet20", "--n", "2"],
    ["models", "--check", "cifar10/resnet20"],
    ["demo", "--n", "2"],
    ["reproduce", "--quick", "--only", "T11.4"],
])
def test_every_model_command_takes_device(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = "cuda:7" if torch.cuda.is_available() else "cuda"
    assert cli.main(argv + ["--device", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "device" in err and "cuda" in err, err
    assert list(tmp_path.iterdir()) == []  # refused before any file was written


def test_python_api_takes_the_models_device(monkeypatch, tmp_path):
    """device=None: the module's own device (a meta-device module stands in for a GPU one here)."""
    from foolkit.evaluation import runner

    seen = []

    def record(device):
        seen.append(torch.device(device))
        raise KeyboardInterrupt  # stop before any work: only the choice of device is under test

    monkeypatch.setattr(runner, "parse_device", record)
    with pytest.raises(KeyboardInterrupt):
        fk.evaluate(SmallNet().to("meta"), fk.attacks.DeepFool(), images(2))
    with pytest.raises(KeyboardInterrupt):
        fk.evaluate(SmallNet(), fk.attacks.DeepFool(), images(2), device="cpu")
    assert seen == [torch.device("meta"), torch.device("cpu")]
    assert not list(tmp_path.iterdir())
