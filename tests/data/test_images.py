"""foolkit.data.load_image: any photo -> float32 [1,3,H,W] in [0,1], ImageNet centre crop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from foolkit.data import DataError, load_image, load_image_with_info


def _check(x: torch.Tensor, h: int, w: int) -> None:
    assert x.dtype == torch.float32 and x.shape == (1, 3, h, w)
    assert 0.0 <= x.min().item() and x.max().item() <= 1.0


def test_rgb_jpeg_no_resize(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    _check(x, 30, 40)
    assert torch.equal(x[0], torch.from_numpy(arr).permute(2, 0, 1).float() / 255)


def test_rgba_png_transparency_becomes_white(tmp_path):
    arr = np.zeros((20, 30, 4), dtype=np.uint8)
    arr[..., 0] = 200  # red, ...
    arr[:, :15, 3] = 255  # ... opaque on the left half, fully transparent on the right
    Image.fromarray(arr, "RGBA").save(tmp_path / "rgba.png")
    x = load_image(tmp_path / "rgba.png")
    _check(x, 20, 30)
    assert torch.allclose(x[0, :, :, :15], torch.tensor([200 / 255, 0, 0]).view(3, 1, 1).expand(3, 20, 15))
    assert torch.all(x[0, :, :, 15:] == 1.0)


def test_greyscale_gives_three_equal_channels(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "L").save(tmp_path / "grey.jpg", quality=95)
    x = load_image(tmp_path / "grey.jpg")
    _check(x, 8, 8)
    assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 1], x[0, 2])


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    arr = np.full((4, 4), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    x = load_image(tmp_path / "g16.png")
    _check(x, 4, 4)
    assert x.mean().item() == pytest.approx(128 / 255, abs=1 / 255)


def test_palette_and_cmyk(tmp_path):
    Image.new("RGB", (10, 6), (10, 200, 30)).convert("P").save(tmp_path / "p.png")
    Image.new("CMYK", (10, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    _check(load_image(tmp_path / "p.png"), 6, 10)
    x = load_image(tmp_path / "c.jpg")
    _check(x, 6, 10)
    assert x[0, 0].mean() > 0.9 and x[0, 1].mean() < 0.1 and x[0, 2].mean() < 0.1


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif)
    x, info = load_image_with_info(tmp_path / "rot.jpg")
    _check(x, 40, 20)
    assert info["original_size"] == (20, 40)


def test_resize_and_centre_crop_info(tmp_path):
    Image.new("RGB", (512, 600), (1, 2, 3)).save(tmp_path / "portrait.png")
    x, info = load_image_with_info(tmp_path / "portrait.png", 224)
    _check(x, 224, 224)
    assert info["original_size"] == (512, 600)
    assert info["resized_size"] == (256, 300)
    assert info["crop_box"] == (16, 38, 240, 262)
    assert info["mode"] == "RGB" and info["path"].endswith("portrait.png")


def test_tiny_image_is_upscaled(tmp_path):
    Image.new("RGB", (3, 2), (255, 0, 0)).save(tmp_path / "tiny.png")
    x, info = load_image_with_info(tmp_path / "tiny.png", 224)
    _check(x, 224, 224)
    assert info["resized_size"] == (384, 256)
    assert torch.allclose(x[0, 0], torch.ones(224, 224)) and x[0, 1:].abs().max() < 1e-6


@pytest.mark.parametrize("make", ["missing", "directory", "garbage", "truncated", "empty"])
def test_unreadable_paths_raise_data_error(tmp_path, make):
    path = tmp_path / f"{make}.jpg"
    if make == "directory":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"this is not an image at all")
    elif make == "empty":
        path.write_bytes(b"")
    elif make == "truncated":
        noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / "full.jpg")
        path.write_bytes((tmp_path / "full.jpg").read_bytes()[:600])
    with pytest.raises(DataError) as info:
        load_image(path, 224)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_bad_size_is_a_value_error(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(ValueError):
        load_image(tmp_path / "a.png", 0)


def test_exported_from_foolkit_data():
    import foolkit.data as data
    assert "load_image" in data.__all__ and "load_image_with_info" in data.__all__
    assert Path(data.images.__file__).name == "images.py"


# --------------------------------------------------------------------------- hostile files (issue #16)
_BOUNDED_LOAD = r"""
import json, resource, sys
import torch
import foolkit  # torch and friends first: their address space is the baseline
from foolkit.data import load_image
from foolkit.evaluation.single_image import load_for_model

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

# 1.5 GB above what the imports use: the old resize-then-crop needed about 10 GB for a 40000x1
# image (a 10,240,000 x 256 RGBX intermediate); resampling only the crop needs kilobytes.
limit = vm_bytes() + 1_500_000_000
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
for path in sys.argv[1:]:
    x = load_image(path, 224)
    y, info = load_for_model(path, 224)
    print(json.dumps({"shape": list(x.shape), "red": [float(x[0, 0].min()), float(x[0, 0].max())],
                      "green": [float(x[0, 1].min()), float(x[0, 1].max())], "same": bool(torch.equal(x, y)),
                      "resized": list(info["resized_size"])}))
"""


def test_extreme_aspect_ratio_loads_in_bounded_memory(tmp_path):
    import json
    import subprocess
    import sys

    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    Image.new("RGB", (40000, 1), (200, 10, 10)).save(wide)
    Image.new("RGB", (1, 40000), (200, 10, 10)).save(tall)
    assert wide.stat().st_size < 1000  # the file was 199 bytes
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", _BOUNDED_LOAD, str(wide), str(tall)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert len(lines) == 2
    for got, resized in zip(lines, ([10240000, 256], [256, 10240000])):
        assert got["shape"] == [1, 3, 224, 224] and got["resized"] == resized and got["same"]
        # a constant image stays constant under bicubic resampling: 200/255 red, 10/255 green
        assert got["red"] == pytest.approx([200 / 255] * 2, abs=1e-6)
        assert got["green"] == pytest.approx([10 / 255] * 2, abs=1e-6)


def test_crop_then_resample_matches_resize_then_crop(tmp_path):
    # The crop box in source pixels gives the same sampling grid as resizing the whole image
    # first: the two differ only by float rounding (at most one 8-bit level, rarely).
    arr = np.random.default_rng(3).integers(0, 256, (701, 1000, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "noise.png")
    x, info = load_image_with_info(tmp_path / "noise.png", 224)
    full = Image.fromarray(arr).resize(info["resized_size"], Image.Resampling.BICUBIC, reducing_gap=None)
    ref = np.asarray(full.crop(info["crop_box"]), dtype=np.int64)
    got = np.rint(x[0].permute(1, 2, 0).numpy() * 255).astype(np.int64)
    diff = np.abs(got - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("factor", [1.5, 3])  # Pillow warns above MAX_IMAGE_PIXELS, errors above 2x
def test_decompression_bomb_is_one_line_data_error(tmp_path, monkeypatch, factor):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(100 * 100 / factor))
    with pytest.raises(DataError, match="decompression bomb") as info:
        load_image(tmp_path / "big.png", 224)
    assert "big.png" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # at the limit: read
    _check(load_image(tmp_path / "big.png", 32), 32, 32)


def test_animated_gif_warns_and_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.warns(UserWarning, match=r"anim\.gif is animated \(3 frames\); using the first frame"):
        x, info = load_image_with_info(tmp_path / "anim.gif", 32)
    assert info["frames"] == 3
    assert x[0, 0].min() > 0.95 and x[0, 1:].max() < 0.05  # red: the first frame
    Image.new("RGB", (40, 40)).save(tmp_path / "still.gif")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image_with_info(tmp_path / "still.gif", 32)[1]["frames"] == 1


def test_symlink_loop_and_broken_symlink_are_named(tmp_path):
    import os
    loop = tmp_path / "loop.png"
    os.symlink("loop.png", loop)
    with pytest.raises(DataError, match="symlink loop") as info:
        load_image(loop, 224)
    assert str(loop) in str(info.value)
    os.symlink("gone.png", tmp_path / "dangling.png")
    with pytest.raises(DataError, match="broken symlink to gone.png"):
        load_image(tmp_path / "dangling.png", 224)
