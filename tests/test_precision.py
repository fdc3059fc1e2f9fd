"""``precision="bf16"``: the attack's passes in low precision, every verdict in float32."""
import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.attacks.base import Attack
from foolkit.attacks.precision import attack_precision, check_precision


class Knife(nn.Module):
    """Class 0 in float32, class 1 under bfloat16 autocast, for images of mean 0.5.

    logit_1 = u - 1 with u = mean(x) + 0.5045 = 1.0045, logit_0 = 0.005: in float32 0.0045 < 0.005;
    bf16 rounds u to 1.0078 (8-bit mantissa) inside the linear layer, so logit_1 = 0.0078 > 0.005.
    """

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
            self.lin.bias.copy_(torch.tensor([0.005, 0.0]))

    def forward(self, x):
        u = x.mean((1, 2, 3))[:, None] + 0.5045
        return self.lin(torch.cat([u, torch.ones_like(u)], 1))


class TrustsItsOwnLogits(Attack):
    """Returns the image unchanged, recording how its own pass classified it: a result that
    "fools" only in low precision."""

    name = "trusts"

    def _run(self, model, x0, label, target, counter, index):
        logits = model(x0)
        self.seen = logits.dtype, logits.argmax(1)
        return x0.clone(), torch.ones(len(x0), dtype=torch.long), {}


def test_a_success_only_in_bf16_is_not_counted():
    model, x = Knife().eval(), torch.full((4, 3, 4, 4), 0.5)
    attack = TrustsItsOwnLogits()
    assert (model(x).argmax(1) == 0).all()  # the premise: float32 says class 0 ...
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (model(x).argmax(1) == 1).all()  # ... bf16 says class 1
    result = attack(model, x, torch.zeros(4, dtype=torch.long), precision="bf16")
    assert attack.seen[0] == torch.bfloat16  # the attack's own pass ran in bf16 ...
    assert (attack.seen[1] == 1).all()  # ... where the image "is fooled": the attack believes it is done
    assert result.attacked.all() and not result.success.any()  # float32 says class 0: no success
    assert (result.adv_label == 0).all() and result.extra["precision"] == "bf16"
    # and even inside a caller's own autocast the verdict stays float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = attack(model, x, torch.zeros(4, dtype=torch.long))
    assert not again.success.any() and (again.adv_label == 0).all()


def test_check_precision_names():
    assert check_precision(None) == "float32" and check_precision("bfloat16") == "bf16"
    assert check_precision(torch.float16) == "fp16" and check_precision("FP32") == "float32"
    with pytest.raises(ValueError, match="precision must be float32, bf16 or fp16, got 'int8'"):
        check_precision("int8")
    with pytest.raises(ValueError, match="precision must be"):
        fk.attacks.DeepFool()(Knife(), torch.zeros(1, 3, 4, 4), precision="fp8")
    assert attack_precision("float32", "cpu").__class__.__name__ == "nullcontext"


@pytest.mark.slow
def test_bf16_deepfool_on_resnet20_fools_with_verified_success(resnet20, bundled, one_thread):
    x, y = bundled[0][:20], bundled[1][:20]
    result = fk.attacks.DeepFool()(resnet20, x, y, precision="bf16")
    checks = fk.evaluation.verify.verify_result(resnet20, result)  # a fresh float32 pass
    n = int(result.attacked.sum())
    assert n >= 15
    assert int(checks["verified"].sum()) >= 0.95 * n
    assert torch.equal(checks["verified"], result.success)


def test_precision_is_part_of_the_run_identity(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    store = tmp_path / "s.db"
    a = fk.evaluate(net, fk.attacks.DeepFool(), x, store)
    b = fk.evaluate(net, fk.attacks.DeepFool(), x, store, precision="bf16")
    c = fk.evaluate(net, fk.attacks.DeepFool(), x, store, precision="float32")
    assert a.run_id != b.run_id and a.run_id == c.run_id  # float32 keeps the id it had before
    assert b.config["precision"] == "bf16" and "precision" not in a.config
    with pytest.raises(ValueError, match="precision must be"):
        fk.evaluate(net, fk.attacks.DeepFool(), x, tmp_path / "t.db", precision="half-ish")
    assert not (tmp_path / "t.db").exists()


def test_cli_precision_flag(tmp_path, capsys):
    from foolkit import cli

    out = tmp_path / "r.db"
    assert cli.main(["attack", "--model", "cifar10/resnet20", "--attack", "deepfool", "--n", "3",
                     "--precision", "bf16", "--out", str(out), "--quiet"]) == 0
    (run,) = fk.evaluation.runs_in(out)
    assert run.config["precision"] == "bf16"
    assert cli.main(["attack", "--cifar-index", "0", "--precision", "bf16", "--out", str(tmp_path / "f.png")]) == 0
    assert "fooled" in capsys.readouterr().out
