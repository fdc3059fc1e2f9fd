"""A model file is data, never code: crafted .pt2 archives and .pt checkpoints whose payloads
would write a marker file are refused with one line, and no marker is written."""
import io
import json
import pickle
import zipfile

import pytest
import torch
from torch import nn

from foolkit.models.pt2_safety import check_expr, check_pt2
from foolkit.models.registry import ModelError
from foolkit.models.sources import resolve_model

torch.set_num_threads(1)


class Marker:
    """Unpickling this calls open(path, "w"): it writes the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        return self.fc(x.mean((2, 3)).repeat(1, 4)) + torch.tensor([0.0, 1.0, 0.0, 0.0])  # a lifted constant


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pt2") / "net.pt2"
    ep = torch.export.export(Net().eval(), (torch.rand(2, 3, 4, 4),),
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(path))
    return path


def rewrite(src, dst, edit):
    """Copy the archive, letting ``edit(relative name, bytes) -> bytes | None`` change entries
    (None drops one); ``edit.extra`` adds entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        root = zin.namelist()[0].split("/")[0]
        for name in sorted(zin.namelist(), key=lambda n: not n.endswith(".json")):  # configs first
            data = edit(name[len(root) + 1:], zin.read(name))
            if data is not None:
                zout.writestr(name, data)
        for rel, data in getattr(edit, "extra", {}).items():
            zout.writestr(f"{root}/{rel}", data)
    return dst


def pickled(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def json_edit(target_suffix, change):
    def edit(rel, data):
        if rel.endswith(target_suffix):
            doc = json.loads(data)
            change(doc)
            return json.dumps(doc).encode()
        return data
    return edit


def pickled_weight(marker):
    def edit(rel, data):
        if rel.endswith("model_weights_config.json"):
            doc = json.loads(data)
            meta = doc["config"]["fc.weight"]
            meta["use_pickle"] = True
            edit.target = meta["path_name"]
            return json.dumps(doc).encode()
        return data

    def run(rel, data):
        out = edit(rel, data)
        return pickled(Marker(marker)) if rel == f"data/weights/{getattr(edit, 'target', None)}" else out
    return run


def pickled_constant(marker, prefix="tensor_constant_99", use_pickle=True):
    def edit(rel, data):
        if rel.endswith("model_constants_config.json"):
            doc = json.loads(data)
            any_meta = next(iter(doc["config"].values()))
            doc["config"]["evil"] = dict(any_meta, path_name=prefix, use_pickle=use_pickle)
            return json.dumps(doc).encode()
        return data
    # torch reads opaque objects with pickle.loads, tensor constants with torch.load
    payload = pickle.dumps(Marker(marker)) if prefix.startswith("opaque") else pickled(Marker(marker))
    edit.extra = {f"data/constants/{prefix}": payload}
    return edit


def pickled_sample_inputs(marker):
    def edit(rel, data):
        return pickled(((Marker(marker),), {})) if rel.startswith("data/sample_inputs/") else data
    return edit


@pytest.mark.parametrize("craft, message, live", [
    (pickled_weight, "weight 'fc.weight' is a pickle", True),
    (pickled_constant, "constant 'evil' is a pickle", True),
    (lambda m: pickled_constant(m, "opaque_obj_0"), "constant 'evil' is an opaque", True),
    # TorchScript's unpickler resolves no Python global, so this payload cannot be shown live
    (lambda m: pickled_constant(m, "custom_obj_0"), "constant 'evil' is an opaque", False),
    (pickled_sample_inputs, "sample inputs are not plain tensors", True),
])
def test_crafted_archive_is_refused_and_runs_nothing(archive, tmp_path, craft, message, live):
    marker = tmp_path / "MARKER"
    crafted = rewrite(archive, tmp_path / "crafted.pt2", craft(marker))
    with pytest.raises(ModelError, match=message) as info:
        resolve_model(str(crafted))
    assert "\n" not in str(info.value) and "could run code" in str(info.value)
    assert not marker.exists()
    # the payload is live: torch.export.load itself runs it (so the refusal above is what protects)
    try:
        torch.export.load(str(crafted))
    except Exception:  # noqa: BLE001 -- the payload is not a tensor; torch fails after running it
        pass
    assert marker.exists() == live


def test_a_plain_copy_of_the_archive_loads(archive, tmp_path):
    """The crafting itself (rewriting the zip) keeps a valid archive: the refusals above are
    about the payloads, not about the rewrite."""
    copy = rewrite(archive, tmp_path / "copy.pt2", lambda rel, data: data)
    m = resolve_model(str(copy))
    assert m.num_classes == 4 and m.input_size == (3, 4, 4)


@pytest.mark.parametrize("edit, message", [
    (json_edit("models/model.json", lambda d: d.__setitem__("guards_code", ["__import__('os')"])), "guard code"),
    (json_edit("models/model.json", lambda d: d["graph_module"]["graph"]["nodes"][0].__setitem__(
        "target", "torch.serialization.load")), "not a PyTorch operator"),
    (type("E", (), {"__call__": staticmethod(lambda rel, data: data),
                    "extra": {"data/aotinductor/model/model.so": b"\x7fELF"}})(), "AOTInductor"),
    (type("E", (), {"__call__": staticmethod(lambda rel, data: data),
                    "extra": {"data/weights/model.pt": pickled({})}})(), "legacy pickled payload"),
])
def test_other_code_paths_of_an_archive_are_refused(archive, tmp_path, edit, message):
    crafted = rewrite(archive, tmp_path / "crafted.pt2", edit)
    with pytest.raises(ModelError, match=message):
        check_pt2(crafted.read_bytes(), crafted)


def test_shape_expressions_sympy_would_evaluate_are_refused(archive, tmp_path):
    def edit(rel, data):
        if rel == "models/model.json":
            text = data.decode()
            assert "Symbol(" in text  # the dynamic batch dimension is a sympy expression
            return text.replace("Symbol(", "__import__('os').system('true') or Symbol(", 1).encode()
        return data
    crafted = rewrite(archive, tmp_path / "crafted.pt2", edit)
    with pytest.raises(ModelError, match="shape expression"):
        check_pt2(crafted.read_bytes(), crafted)
    assert check_expr("Symbol('s77', positive=True, integer=True)") and check_expr("Max(2, s0) + 1")
    assert not check_expr("s0.__class__") and not check_expr("eval('1')")


def test_pickled_state_dict_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    factory = tmp_path / "f.py"
    factory.write_text("from torch import nn\n\ndef make():\n    return nn.Linear(2, 2)\n")
    torch.save({"weight": Marker(marker)}, tmp_path / "w.pt")
    with pytest.raises(ModelError, match="not a weights-only PyTorch state_dict") as info:
        resolve_model(f"{factory}:make", checkpoint=tmp_path / "w.pt", input_size="2,1,1")
    assert "\n" not in str(info.value)
    assert not marker.exists()
