import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import foolkit as fk
from foolkit.data import DataError


def write_official(root, n_per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = list(rng.randint(0, 10, size=n_per_batch))
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
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


def test_full_jpeg_export_prefix_is_the_bundled_subset():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpeg"
    if not (root / "test").is_dir():
        pytest.skip(f"the CIFAR-10 JPEG export is not at {root} (shared/ must sit beside the repo root)")
    x, y = fk.data.load("cifar10", "test", n=1000, root=root)
    xb, yb = fk.data.load("cifar10", "test", n=1000, root=None)
    assert torch.equal(y, yb) and torch.equal(x, xb)
