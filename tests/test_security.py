"""No input file can run code, and no message carries terminal escapes or torch's hint to load
with weights_only=False.

- A source scan of src/, scripts/ and benchmarks/ fails on any call that can execute a file's
  contents: torch.load without weights_only=True, pickle outside foolkit/data/safe_load.py,
  allow_pickle=True, eval/exec, yaml.load, marshal, shelve, dill, joblib.
- Checkpoints, universal perturbations and training states whose pickle would run a command
  are refused, by name, without running it (no marker file).
"""
from __future__ import annotations

import ast
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import foolkit as fk
from foolkit.data.safe_load import clean_text, describe_load_error

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("src", "scripts", "benchmarks")
PICKLE_HOME = Path("src/foolkit/data/safe_load.py")  # the one module allowed to touch pickle
_ALWAYS_BAD_MODULES = {"marshal", "shelve", "dill", "joblib", "cloudpickle"}


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for an attribute chain of names, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def unsafe_calls(source: str, path: Path) -> list[str]:
    """Every construct in ``source`` that can run code from data, as "path:line: what"."""
    found = []
    pickle_ok = path == PICKLE_HOME
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                if root in _ALWAYS_BAD_MODULES or (root in ("pickle", "_pickle", "cPickle") and not pickle_ok):
                    found.append(f"{where}: imports {name}")
            if isinstance(node, ast.ImportFrom) and node.module == "builtins":
                found += [f"{where}: imports builtins.{a.name}" for a in node.names if a.name in ("eval", "exec")]
        if not isinstance(node, ast.Call):
            continue
        func = _dotted(node.func)
        short = func.rsplit(".", 1)[-1]
        if func in ("eval", "exec", "builtins.eval", "builtins.exec", "compile"):
            found.append(f"{where}: {func}()")
        if func.endswith("torch.load"):
            flag = _keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append(f"{where}: torch.load without weights_only=True")
        if func.endswith("jit.load"):
            found.append(f"{where}: torch.jit.load (a TorchScript archive holds code)")
        flag = _keyword(node, "allow_pickle")
        if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
            found.append(f"{where}: {func}(allow_pickle=...) not False")
        if func.split(".")[0] in ("pickle", "_pickle") and short in ("load", "loads", "Unpickler") and not pickle_ok:
            found.append(f"{where}: {func}")
        if func.startswith("yaml.") and short in ("load", "load_all", "unsafe_load", "full_load"):
            loader = _keyword(node, "Loader")
            if not (loader is not None and _dotted(loader).endswith("SafeLoader")):
                found.append(f"{where}: {func} without SafeLoader")
    return found


def _python_files():
    for top in SCANNED:
        root = REPO / top
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts and "site-packages" not in p.parts)


def test_no_unsafe_loading_in_the_sources():
    problems = []
    files = list(_python_files())
    assert len(files) > 30  # the scan sees the package
    for path in files:
        problems += unsafe_calls(path.read_text(encoding="utf-8"), path.relative_to(REPO))
    assert not problems, "calls that can run code from a file:\n" + "\n".join(problems)


def test_the_scan_catches_each_unsafe_pattern():
    """The scanner itself: every pattern it exists for is caught, the safe forms are not."""
    bad = {
        "import pickle\npickle.load(f)": "imports pickle",
        "import torch\ntorch.load(p)": "weights_only",
        "import torch\ntorch.load(p, weights_only=False)": "weights_only",
        "import torch\ntorch.load(p, weights_only=flag)": "weights_only",
        "import numpy as np\nnp.load(p, allow_pickle=True)": "allow_pickle",
        "eval(text)": "eval()",
        "exec(text)": "exec()",
        "import yaml\nyaml.load(s)": "SafeLoader",
        "import marshal": "marshal",
        "import shelve": "shelve",
        "from pickle import loads": "imports pickle",
        "import torch\ntorch.jit.load(p)": "jit.load",
    }
    for source, what in bad.items():
        found = unsafe_calls(source, Path("src/foolkit/x.py"))
        assert any(what in f for f in found), (source, found)
    good = ("import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
            "import numpy as np\nnp.load(p)\nnp.load(p, allow_pickle=False)",
            "model.eval()", "import yaml\nyaml.safe_load(s)")
    for source in good:
        assert unsafe_calls(source, Path("src/foolkit/x.py")) == [], source
    assert unsafe_calls("import pickle\nclass U(pickle.Unpickler): pass", PICKLE_HOME) == []


# --- pickled payloads in checkpoints ------------------------------------------------------------

class _RunsCommand:
    """Unpickling this calls os.system("touch MARKER")."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _check_message(msg: str) -> None:
    assert "\n" not in msg, msg
    assert "safe_globals" not in msg and "if you trust" not in msg, msg
    assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg, msg
    assert "\x1b" not in msg, msg


@pytest.fixture
def payload(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    torch.save({"perturbation": _RunsCommand(marker), "conv.weight": torch.zeros(1)}, path)
    return path, marker


def test_checkpoint_with_payload_is_refused_by_models_load(payload):
    path, marker = payload
    with pytest.raises(fk.models.ModelError) as info:
        fk.models.load("cifar10/resnet20", checkpoint=path)
    msg = str(info.value)
    _check_message(msg)
    assert str(path) in msg and "system" in msg  # names the refused global (posix.system)
    assert not marker.exists()


def test_universal_file_with_payload_is_refused(payload):
    from foolkit.evaluation.universal_io import UniversalFileError, load_universal
    path, marker = payload
    with pytest.raises(UniversalFileError) as info:
        load_universal(path)
    _check_message(str(info.value))
    assert "system" in str(info.value)
    assert not marker.exists()


def test_a_plain_pickle_payload_is_refused_without_torchs_protocol_warning(tmp_path, recwarn):
    """A bare `pickle.dump` (no zip container) at protocol 4: torch warns about the protocol before
    it refuses; the one-line error says it all, so the warning is not passed on."""
    import pickle

    from foolkit.evaluation.universal_io import UniversalFileError, load_universal
    marker, path = tmp_path / "MARKER", tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"conv.weight": _RunsCommand(marker)}, protocol=4))
    with pytest.raises(fk.models.ModelError) as info:
        fk.models.load("cifar10/resnet20", checkpoint=path)
    _check_message(str(info.value))
    with pytest.raises(UniversalFileError) as info:
        load_universal(path)
    _check_message(str(info.value))
    assert not marker.exists()
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)], [str(w.message) for w in recwarn]


def test_training_state_with_payload_is_refused(tmp_path, payload):
    from foolkit.models.training import TrainConfig, train
    path, marker = payload
    for name in fk.data.CIFAR10_CLASSES:  # a minimal ImageFolder tree: one image per class
        for split in ("train", "test"):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "data" / split / name / "0.png")
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="cannot resume") as info:
        train(TrainConfig(epochs=3, batch_size=2), tmp_path / "data", out, progress=False)
    _check_message(str(info.value))
    assert not marker.exists()


def test_escape_codes_in_a_global_name_do_not_reach_the_message(tmp_path, monkeypatch):
    """A pickle's global names are chosen by the file's author: torch echoes them, we must not."""
    name = "evil\x1b[2J\x1b]0;title\x07mod"
    module = types.ModuleType(name)

    def hook():  # pragma: no cover - never called
        raise AssertionError

    hook.__module__, hook.__qualname__ = name, "hook"
    module.hook = hook
    monkeypatch.setitem(sys.modules, name, module)

    class Reducer:
        def __reduce__(self):
            return hook, ()

    path = tmp_path / "escapes.pt"
    torch.save({"w": Reducer()}, path)
    with pytest.raises(Exception) as raw:
        torch.load(path, weights_only=True)
    assert "\x1b" in str(raw.value)  # torch's own message carries them
    with pytest.raises(fk.models.ModelError) as info:
        fk.models.load("cifar10/resnet20", checkpoint=path)
    _check_message(str(info.value))


def test_describe_load_error_wording():
    exc = RuntimeError("Weights only load failed. Re-running `torch.load` with `weights_only=False` will "
                       "likely succeed, but it can result in arbitrary code execution.\n\n"
                       "\x1b[31mUnsupported global: GLOBAL os.system\x1b[0m\nCheck the documentation of torch.load")
    line = describe_load_error(exc)
    assert line == "Unsupported global: GLOBAL os.system"
    only_hint = describe_load_error(RuntimeError("please retry with weights_only=False"))
    _check_message(only_hint)
    assert "RuntimeError" in only_hint
    assert describe_load_error(EOFError("Ran out of input")) == "Ran out of input"
    # torch 2.6+ puts how to allowlist the refused global (advice to run the file's code) on
    # the same line as the global's name: the name stays, the advice goes
    allow = RuntimeError("Weights only load failed.\nWeightsUnpickler error: Unsupported global: GLOBAL os.system was "
                         "not an allowed global by default. Please use `torch.serialization.add_safe_globals("
                         "[os.system])` or the `torch.serialization.safe_globals([os.system])` context manager to "
                         "allowlist this global if you trust this class/function.")
    line = describe_load_error(allow)
    assert line == "WeightsUnpickler error: Unsupported global: GLOBAL os.system was not an allowed global by default."
    assert clean_text("a\x1b[1mb\x00c") == "ab?c"
