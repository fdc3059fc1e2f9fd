"""Models from anywhere: registered names, torch.export archives, factories, checkpoints;
their identity in a store; and the command line around them."""
import importlib.util
import textwrap

import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.models.registry import ModelError
from foolkit.models.sources import resolve_model
from foolkit.models.wrappers import Normalized
from conftest import run_cli

torch.set_num_threads(1)

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)

NET_SOURCE = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """3x32x32 -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


class WithNorm(nn.Module):
    """The same network normalising its input itself."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("m", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("s", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.m) / self.s)


class DictOut(Tiny):
    def forward(self, x):
        return {"logits": super().forward(x), "features": x.mean((2, 3))}


class Out:
    def __init__(self, logits):
        self.logits = logits


class AttrOut(Tiny):
    def forward(self, x):
        return Out(super().forward(x))


class TupleOut(Tiny):
    def forward(self, x):
        return super().forward(x), x.mean()


class Ambiguous(Tiny):
    def forward(self, x):
        return {"scores": super().forward(x)}


def make():
    torch.manual_seed(0)
    return Tiny()


def make_dict():
    torch.manual_seed(0)
    return DictOut()


def make_attr():
    torch.manual_seed(0)
    return AttrOut()


def make_tuple():
    torch.manual_seed(0)
    return TupleOut()


def make_ambiguous():
    return Ambiguous()


def broken():
    raise RuntimeError("no weights here\\nsecond line")


def not_module():
    return 42
'''


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The factory file, its module, and the Tiny network's state_dict as a .pt file."""
    root = tmp_path_factory.mktemp("nets")
    factory = root / "nets.py"
    factory.write_text(NET_SOURCE)
    spec = importlib.util.spec_from_file_location("test_sources_nets", factory)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(1)
    trained = mod.Tiny()
    torch.save(trained.state_dict(), root / "w.pt")
    return root, mod, trained


def export(net: nn.Module, path, size=(3, 32, 32)):
    ep = torch.export.export(net.eval(), (torch.rand(2, *size),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(path))
    return path


@pytest.fixture(scope="module")
def pt2(nets, tmp_path_factory):
    """Two exported archives of different weights."""
    root, mod, trained = nets
    out = tmp_path_factory.mktemp("pt2")
    torch.manual_seed(2)
    other = mod.Tiny()
    return export(trained, out / "a.pt2"), export(other, out / "b.pt2"), trained, other


# --- each source ----------------------------------------------------------------------------------
def test_pt2_archive_matches_the_network_and_takes_any_batch(pt2):
    a, _, trained, _ = pt2
    m = resolve_model(str(a))
    assert m.kind == "pt2" and m.input_size == (3, 32, 32) and m.num_classes == 10 and m.mean is None
    x = torch.rand(5, 3, 32, 32)  # another batch size than the export's 2
    with torch.no_grad():
        torch.testing.assert_close(m.module(x), trained(x), rtol=1e-5, atol=1e-6)
    x.requires_grad_(True)  # attacks need input gradients through the exported graph
    m.module(x).sum().backward()
    assert x.grad.abs().sum() > 0
    m.module.eval()  # the exported graph refuses eval(); the wrapper accepts it


def test_factory_with_state_dict_checkpoint(nets):
    root, _, trained = nets
    m = resolve_model(f"{root / 'nets.py'}:make", checkpoint=root / "w.pt")
    assert m.kind == "factory" and m.num_classes == 10 and m.input_size is None
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m.module(x), trained(x))
    without = resolve_model(f"{root / 'nets.py'}:make")  # the factory's own (seeded) weights
    assert without.identity != m.identity


def test_registered_name_with_checkpoint_keeps_its_store_identity(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "r20.pt"
    torch.save(fk.models.build("cifar10/resnet20").net.state_dict(), path)
    m = resolve_model("cifar10/resnet20", checkpoint=path)
    assert m.kind == "registered" and m.input_size == (3, 32, 32) and m.classes[0] == "airplane"
    # the same store identity as before this module existed, so old stores resume
    assert set(m.store_spec) == {"name", "card", "weights"} and m.store_spec["weights"].startswith("sha256:")


def test_safetensors_checkpoint(nets, tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed (optional: pip install safetensors)")
    from safetensors.torch import save_file

    root, _, trained = nets
    save_file(trained.state_dict(), str(tmp_path / "w.safetensors"))
    m = resolve_model(f"{root / 'nets.py'}:make", checkpoint=tmp_path / "w.safetensors")
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m.module(x), trained(x))


def test_mean_std_gives_the_predictions_of_the_network_normalising_itself(nets, tmp_path):
    root, mod, trained = nets
    own = mod.WithNorm(trained, MEAN, STD).eval()
    wrapped = resolve_model(f"{root / 'nets.py'}:make", checkpoint=root / "w.pt", mean=",".join(map(str, MEAN)),
                            std=",".join(map(str, STD)))
    assert isinstance(wrapped.module, Normalized) and wrapped.mean == MEAN
    x = torch.rand(16, 3, 32, 32)
    with torch.no_grad():
        expected, got = own(x), wrapped.module(x)
    # the same ops in the same order; tolerance for a kernel picking another summation order
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    plain = resolve_model(f"{root / 'nets.py'}:make", checkpoint=root / "w.pt")
    assert wrapped.identity != plain.identity  # normalisation changes results: another model


@pytest.mark.parametrize("function", ["make_dict", "make_attr", "make_tuple"])
def test_outputs_that_hold_logits_are_adapted(nets, function):
    root, mod, _ = nets
    m = resolve_model(f"{root / 'nets.py'}:{function}")
    x = torch.rand(3, 3, 32, 32)
    torch.manual_seed(0)
    reference = mod.Tiny().eval()
    with torch.no_grad():
        torch.testing.assert_close(m.module(x), reference(x))


def test_classes_file_must_match_the_output(nets, tmp_path):
    root, _, _ = nets
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    assert resolve_model(f"{root / 'nets.py'}:make", classes=names).classes[3] == "class3"
    names.write_text("a\nb\n")
    with pytest.raises(ModelError, match="outputs 10 classes but the class names list 2"):
        resolve_model(f"{root / 'nets.py'}:make", classes=names)


# --- bad files: one line ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec, checkpoint, message", [
    ("{root}/missing.pt2", None, "model file not found"),
    ("{root}/junk.pt2", None, "not a torch.export archive"),
    ("{root}/nets.py:broken", None, "factory .*broken raised RuntimeError: no weights here$"),
    ("{root}/nets.py:not_module", None, "returned a int, not a torch.nn.Module"),
    ("{root}/nets.py:nothing", None, "has no function 'nothing'"),
    ("{root}/gone.py:make", None, "factory file not found"),
    ("{root}/nets.py:make_ambiguous", None, "returns a dict with keys scores, not logits"),
    ("{root}/nets.py:make", "{root}/misfit.pt", "does not fit .*: 2 missing key.*1 unexpected key"),
    ("{root}/nets.py:make", "{root}/shape.pt", "does not fit .*size mismatch"),
    ("no/such-model", None, "unknown model"),
])
def test_bad_models_give_one_line_errors(nets, spec, checkpoint, message):
    root, _, _ = nets
    (root / "junk.pt2").write_bytes(b"not a zip at all")
    torch.save({"conv.weight": torch.zeros(6, 3, 3, 3), "conv.bias": torch.zeros(6), "extra": torch.zeros(1)},
               root / "misfit.pt")
    torch.save({"conv.weight": torch.zeros(6, 3, 5, 5), "conv.bias": torch.zeros(6), "fc.weight": torch.zeros(10, 6),
                "fc.bias": torch.zeros(10)}, root / "shape.pt")
    with pytest.raises((ModelError, ValueError), match=message) as info:
        resolve_model(spec.format(root=root), checkpoint=None if checkpoint is None else checkpoint.format(root=root))
    assert "\n" not in str(info.value)


def test_bad_files_exit_2_on_the_command_line(nets, tmp_path, capsys):
    root, _, _ = nets
    (tmp_path / "junk.pt2").write_bytes(b"PK\x03\x04 truncated")
    for argv in (["models", "--check", str(tmp_path / "junk.pt2")],
                 ["models", "--check", f"{root / 'nets.py'}:broken"],
                 ["eval", f"{root / 'nets.py'}:not_module", "--n", "2", "--quiet"],
                 ["attack", "--model", str(tmp_path / "junk.pt2"), "--attack", "deepfool", "--n", "2", "--quiet",
                  "--out", str(tmp_path / "r.db")]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and len(err) == 1 and "error:" in err[0], (argv, err)
    assert not (tmp_path / "r.db").exists()  # nothing half-written


# --- the command line ----------------------------------------------------------------------------
def test_models_check_prints_what_foolkit_understood(pt2, capsys):
    a = pt2[0]
    code, out, err = run_cli(["models", "--check", str(a), "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2"], capsys)
    assert code == 0, err
    assert "input size:     3x32x32" in out and "classes:        10" in out
    assert "mean (0.5, 0.5, 0.5), std (0.2, 0.2, 0.2)" in out
    assert "% on the 1000 bundled CIFAR-10 test images" in out


def test_attack_and_eval_accept_a_pt2_and_a_factory(pt2, nets, tmp_path, capsys):
    root = nets[0]
    store = tmp_path / "r.db"
    code, out, err = run_cli(["attack", "--model", str(pt2[0]), "--attack", "deepfool", "--n", "3", "--quiet",
                              "--out", str(store)], capsys)
    assert code == 0, err
    assert "stored in" in out
    code, out, err = run_cli(["eval", f"{root / 'nets.py'}:make", "--checkpoint", str(root / "w.pt"), "--n", "20",
                              "--quiet"], capsys)
    assert code == 0, err
    assert "nets.py:make" in out
    code, out, err = run_cli(["fit-universal", "--model", str(pt2[0]), "--n", "4", "--n-test", "2", "--max-passes", "1",
                              "--out", str(tmp_path / "v.pt")], capsys)
    assert code == 0, err
    assert (tmp_path / "v.pt").is_file() and "a.pt2" in out


# --- identity in a store ----------------------------------------------------------------------------
def test_store_keeps_two_archives_apart_and_resumes_a_renamed_one(pt2, tmp_path):
    a, b, _, _ = pt2
    x = torch.rand(4, 3, 32, 32)
    store = tmp_path / "runs.db"
    run_a = fk.evaluate(str(a), "deepfool", x, store)
    run_b = fk.evaluate(str(b), "deepfool", x, store)
    assert run_a.run_id != run_b.run_id
    renamed = tmp_path / "renamed.pt2"
    renamed.write_bytes(a.read_bytes())

    calls = []
    again = fk.evaluate(str(renamed), "deepfool", x, store, progress=calls.append)
    assert again.run_id == run_a.run_id
    assert calls == []  # every sample was already stored: nothing recomputed
    assert len(fk.evaluation.runs_in(store)) == 2
