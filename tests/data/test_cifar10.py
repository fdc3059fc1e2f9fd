import io
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import foolkit as fk
from foolkit.data import DataError


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official CIFAR-10 files (protocol 2): every
    str as a BINSTRING (bytes once read with encoding="bytes"), numpy's array reconstruction
    under its numpy 1 name numpy.core.multiarray._reconstruct."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    def save_global(self, obj, name=None):
        module = {"numpy._core.multiarray": "numpy.core.multiarray"}.get(obj.__module__, obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_official(root, n_per_batch=4):
    """A cifar-10-batches-py folder in the official format: Python 2 protocol-2 pickles of dicts
    with data uint8 [n,3072], labels a list of ints, batch_label, filenames; and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.randint(0, 10, size=n_per_batch)]
        batch = {"batch_label": f"{name} of 6", "labels": labels, "data": data,
                 "filenames": [f"img_{i}.png" for i in range(n_per_batch)]}
        (folder / name).write_bytes(py2_pickle(batch))
    meta = {"num_cases_per_batch": n_per_batch, "label_names": list(fk.data.CIFAR10_CLASSES), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return folder


def write_folder(root, split="test", per_class=2, ext="png"):
    for c, name in enumerate(fk.data.CIFAR10_CLASSES):
        d = root / split / name
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((32, 32, 3), (c * 20 + i) % 256, dtype=np.uint8)
            Image.fromarray(arr).save(d / f"{i:04d}.{ext}")


def test_official_format(tmp_path):
    folder = write_official(tmp_path)
    x, y = fk.data.load("cifar10", "train", root=tmp_path)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    with open(folder / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    xt, yt = fk.data.load("cifar10", "test", root=tmp_path)
    # channel-major rows: the first 1024 bytes are the red plane
    assert torch.equal((xt[0, 0] * 255).round().to(torch.uint8).flatten(),
                       torch.from_numpy(raw[b"data"][0][:1024].copy()))
    assert yt.tolist() == [int(v) for v in raw[b"labels"]]


def test_image_folder(tmp_path):
    write_folder(tmp_path)
    x, y = fk.data.load("cifar10", "test", root=tmp_path)
    assert x.shape == (20, 3, 32, 32)
    # interleaved by class: every prefix is class-balanced (a class-sorted prefix held 1-2 classes)
    assert y.tolist() == list(range(10)) * 2
    assert abs(float(x[1, 0, 0, 0]) - 20 / 255) < 1e-6  # file 0000 of class 1
    assert abs(float(x[11, 0, 0, 0]) - 21 / 255) < 1e-6  # file 0001 of class 1
    xs, ys = fk.data.load("cifar10", "test", n=10, root=tmp_path)
    assert sorted(ys.tolist()) == list(range(10)) and torch.equal(xs, x[:10])


def test_interleave_by_class_with_unequal_classes():
    from foolkit.data.cifar10 import interleave_by_class
    labels = np.array([0, 0, 0, 1, 2, 2])
    order = interleave_by_class(labels)
    assert order.tolist() == [0, 3, 4, 1, 5, 2]
    assert labels[order].tolist() == [0, 1, 2, 0, 2, 0]


def test_env_variable_root(tmp_path, monkeypatch):
    write_folder(tmp_path)
    monkeypatch.setenv("FOOLKIT_DATA", str(tmp_path))
    x, _ = fk.data.load("cifar10", "test")
    assert len(x) == 20


def test_bundled_subset(monkeypatch):
    monkeypatch.delenv("FOOLKIT_DATA", raising=False)
    x, y = fk.data.load("cifar10", "test")
    assert x.shape == (1000, 3, 32, 32) and x.dtype == torch.float32
    assert torch.bincount(y).tolist() == [100] * 10
    x20, y20 = fk.data.load("cifar10", "test", n=20)
    assert torch.bincount(y20).tolist() == [2] * 10  # prefixes are class-balanced
    with pytest.raises(DataError, match="FOOLKIT_DATA"):
        fk.data.load("cifar10", "test", n=1001)
    with pytest.raises(DataError, match="test images only"):
        fk.data.load("cifar10", "train")


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        fk.data.load("cifar10", "test", root=tmp_path / "missing")
    with pytest.raises(DataError, match="unknown split"):
        fk.data.load("cifar10", "validation", root=tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        fk.data.load("mnist")
    with pytest.raises(DataError, match="n must be"):
        fk.data.load("cifar10", n=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither"):
        fk.data.load("cifar10", "test", root=tmp_path / "empty")


def test_corrupt_image_and_wrong_layout(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "test" / "cat" / "0001.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="0001.png"):
        fk.data.load("cifar10", "test", root=tmp_path)
    wrong = tmp_path / "wrong"
    (wrong / "test" / "not-a-class").mkdir(parents=True)
    with pytest.raises(DataError, match="one folder per class"):
        fk.data.load("cifar10", "test", root=wrong)


def test_corrupt_official_batch(tmp_path):
    folder = write_official(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="test_batch"):
        fk.data.load("cifar10", "test", root=tmp_path)


def test_official_format_genuine_python2_layout(tmp_path):
    """Python 2 pickles with numpy.core.multiarray (numpy 1 names), batches.meta beside them."""
    from foolkit.data.safe_load import load_cifar_pickle
    folder = write_official(tmp_path, n_per_batch=3)
    raw = (folder / "test_batch").read_bytes()
    assert b"numpy.core.multiarray\n_reconstruct\n" in raw  # the old name, as the official files
    x, y = fk.data.load("cifar10", "test", root=folder)  # the batches folder itself works too
    ref = pickle.loads(raw, encoding="bytes")
    assert torch.equal((x * 255).round().to(torch.uint8).flatten(1), torch.from_numpy(ref[b"data"]))
    assert y.tolist() == ref[b"labels"]
    meta = load_cifar_pickle(folder / "batches.meta")
    assert [n.decode() for n in meta[b"label_names"]] == list(fk.data.CIFAR10_CLASSES)
    assert meta[b"num_vis"] == 3072


def test_official_format_written_by_python3_protocol2(tmp_path):
    """Re-pickled with Python 3 at protocol 2 (bytes via _codecs.encode, numpy 2's numpy._core)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": data, b"labels": [3, 7], b"batch_label": b"x"}, fh, protocol=2)
    x, y = fk.data.load("cifar10", "test", root=tmp_path)
    assert y.tolist() == [3, 7] and x.shape == (2, 3, 32, 32)
    assert torch.equal((x * 255).round().to(torch.uint8).flatten(1), torch.from_numpy(data))


class _Payload:
    """Unpickling calls func(*args): here a command that would create a marker file."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    import builtins
    import os
    import subprocess
    cmd = f"touch {marker}"
    return {
        "os.system": _Payload(os.system, (cmd,)),  # pickles as posix.system on Linux
        "builtins.exec": _Payload(builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
        "builtins.eval": _Payload(builtins.eval, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": _Payload(subprocess.Popen, (["touch", str(marker)],)),
        "builtins.open": _Payload(open, (str(marker), "w")),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "builtins.eval", "subprocess.Popen", "builtins.open"])
@pytest.mark.parametrize("where", ["top", "labels"])
def test_official_batch_that_runs_code_is_refused(tmp_path, kind, where):
    """A `test_batch` whose unpickling would run code: one-line DataError naming the file and
    the refused global; nothing runs (no marker file)."""
    folder = write_official(tmp_path)
    marker = tmp_path / "MARKER"
    payload = _payloads(marker)[kind]
    obj = payload if where == "top" else {b"data": np.zeros((1, 3072), np.uint8), b"labels": [payload]}
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    with pytest.raises(DataError) as info:
        fk.data.load("cifar10", "test", root=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "test_batch" in msg and "refused global" in msg
    module, _, name = kind.rpartition(".")
    assert name in msg, msg  # the refused callable is named (os.system pickles as posix.system)
    assert not marker.exists()
    fk.data.load("cifar10", "train", root=tmp_path)  # the untouched batches still load


def test_refused_global_with_escape_codes_is_printed_clean(tmp_path):
    """The refused global's name is text the file's author chose: no terminal escapes reach the message."""
    folder = write_official(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x02c\x1b[2J\x1b]0;pwned\x07os\nsystem\nq\x00.")
    with pytest.raises(DataError, match="refused global") as info:
        fk.data.load("cifar10", "test", root=tmp_path)
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)
    # protocol 4 names its globals with counted strings: a newline in one must not split the line
    (folder / "test_batch").write_bytes(pickle.dumps(None, protocol=4)[:2] + pickle.dumps("os\nx", protocol=4)[2:-1]
                                        + pickle.dumps("system\x1b[31m", protocol=4)[2:-1] + b"\x93N\x85R.")
    with pytest.raises(DataError, match="refused global os x.system") as info:
        fk.data.load("cifar10", "test", root=tmp_path)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_codecs_encode_allowed_only_for_latin1(tmp_path):
    folder = write_official(tmp_path)
    # _codecs.encode("x", "rot13"): the latin-1 bytes of protocol 2 are allowed, other codecs not
    (folder / "test_batch").write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DataError, match="refused global _codecs.encode"):
        fk.data.load("cifar10", "test", root=tmp_path)


def test_full_jpeg_export_prefix_is_the_bundled_subset():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpeg"
    if not (root / "test").is_dir():
        pytest.skip(f"the CIFAR-10 JPEG export is not at {root} (shared/ must sit beside the repo root)")
    x, y = fk.data.load("cifar10", "test", n=1000, root=root)
    xb, yb = fk.data.load("cifar10", "test", n=1000, root=None)
    assert torch.equal(y, yb) and torch.equal(x, xb)


def test_image_folder_missing_or_empty_class_is_refused(tmp_path):
    # Accepted before, it printed "truck 0.00% (n=0)" in `foolkit eval`.
    import shutil
    write_folder(tmp_path / "a")
    shutil.rmtree(tmp_path / "a" / "test" / "truck")
    shutil.rmtree(tmp_path / "a" / "test" / "cat")
    with pytest.raises(DataError, match=r"no folder for class\(es\) \['cat', 'truck'\]") as info:
        fk.data.load("cifar10", "test", root=tmp_path / "a")
    assert "\n" not in str(info.value)
    write_folder(tmp_path / "b")
    for f in (tmp_path / "b" / "test" / "ship").iterdir():
        f.unlink()
    (tmp_path / "b" / "test" / "ship" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"no images .* class folder\(s\) \['ship'\]"):
        fk.data.load("cifar10", "test", root=tmp_path / "b")


def test_symlink_loops_are_reported_as_loops(tmp_path):
    import os
    os.symlink("root", tmp_path / "root")
    with pytest.raises(DataError, match="symlink loop"):
        fk.data.load("cifar10", "test", root=tmp_path / "root")
    (tmp_path / "tree").mkdir()
    os.symlink("test", tmp_path / "tree" / "test")
    with pytest.raises(DataError, match="symlink loop") as info:
        fk.data.load("cifar10", "test", root=tmp_path / "tree")
    assert str(tmp_path / "tree" / "test") in str(info.value)
    write_folder(tmp_path / "c")
    import shutil
    shutil.rmtree(tmp_path / "c" / "test" / "dog")
    os.symlink("dog", tmp_path / "c" / "test" / "dog")
    with pytest.raises(DataError, match="symlink loop"):
        fk.data.load("cifar10", "test", root=tmp_path / "c")


def test_one_image_suffix_list_and_every_suffix_is_read(tmp_path):
    """IMAGE_SUFFIXES is defined once (runtime.files); every suffix in it is a format Pillow
    writes and load_image reads, and an ImageFolder tree of any of them loads."""
    import foolkit.data.cifar10 as cifar10
    from foolkit.data import load_image
    from foolkit.runtime.files import IMAGE_SUFFIXES

    assert cifar10.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"} <= set(IMAGE_SUFFIXES)
    arr = np.random.RandomState(0).randint(0, 256, (32, 32, 3), dtype=np.uint8)
    for suffix in IMAGE_SUFFIXES:
        Image.fromarray(arr).save(tmp_path / f"x{suffix}")
        assert load_image(tmp_path / f"x{suffix}").shape == (1, 3, 32, 32), suffix
    write_folder(tmp_path / "gif", per_class=1, ext="gif")
    x, y = fk.data.load("cifar10", "test", root=tmp_path / "gif")
    assert x.shape == (10, 3, 32, 32) and sorted(y.tolist()) == list(range(10))

