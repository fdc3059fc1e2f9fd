"""One image from the command line: odd files, bad paths, the saved PNG, targets, universal files.

The command runs through ``foolkit attack --image`` once that flag is wired into the CLI;
until then ``run_image_command`` is called with the CLI's own error handling (one line,
exit code 2). The CIFAR-10 ResNet-20 keeps it fast.
"""
import argparse
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import foolkit as fk
from foolkit import cli
from foolkit.commands import image_attack
from foolkit.errors import USER_ERRORS
from foolkit.commands.image_attack import run_image_command
from foolkit.evaluation.universal_io import UniversalFileError, load_universal, save_universal

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "datasets" / "natural-images"


@pytest.fixture(scope="module")
def ckpt(resnet20):
    """None: the shipped ResNet-20 weights (the conftest fixture fails loudly if they are missing)."""
    return None


@pytest.fixture(scope="module")
def model(ckpt):
    return fk.models.load("cifar10/resnet20", checkpoint=ckpt)


def _cli_has_image_flag() -> bool:
    parser, _ = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "--image" in sub.choices["attack"]._option_string_actions


WIRED = _cli_has_image_flag()


def run_cmd(capsys, ckpt, *, image=None, cifar_index=None, model="cifar10/resnet20", attack="deepfool",
            params=None, target=None, out=None, perturbation=None):
    """``foolkit attack --image ...`` -> (exit code, stdout, stderr)."""
    params = dict(params or {})
    if WIRED:
        argv = ["attack", "--model", model, "--attack", attack]
        for flag, value in (("--image", image), ("--cifar-index", cifar_index), ("--target", target),
                            ("--out", out), ("--perturbation", perturbation), ("--checkpoint", ckpt)):
            if value is not None:
                argv += [flag, str(value)]
        for k, v in params.items():
            argv += ["--" + k.replace("_", "-"), str(v)]
        rc = cli.main(argv)
    else:
        ns = argparse.Namespace(image=None if image is None else str(image), cifar_index=cifar_index, model=model,
                                checkpoint=ckpt, attack=attack, target=target,
                                out=None if out is None else str(out),
                                perturbation=None if perturbation is None else str(perturbation),
                                **{"param__" + k: str(v) for k, v in params.items()})
        try:  # what cli.main does with user errors
            rc = run_image_command(ns)
        except USER_ERRORS as exc:
            print(f"foolkit attack: error: {str(exc).splitlines()[0]}", file=__import__("sys").stderr)
            rc = 2
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_ok(rc, out, err, fig_path):
    assert rc == 0, err
    assert "Traceback" not in out + err
    assert fig_path.is_file() and fig_path.stat().st_size > 0
    adv = fig_path.with_name(fig_path.stem + "-adv.png")
    assert adv.is_file()
    assert re.search(r"original: +\S", out) and "adversarial" in out
    assert re.search(r"L2: .* in \[0,1\] units = .* in 0-255 levels", out)
    return adv


def test_png_with_alpha(tmp_path, capsys, ckpt):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = np.linspace(0, 255, 50, dtype=np.uint8)[None, :]
    rgba[..., 2] = 200
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # a transparent band
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "r.png", params={"norm": "inf"})
    assert_ok(rc, out, err, tmp_path / "r.png")
    assert "alpha.png (50x40 RGBA)" in out and "centre crop 32x32" in out and "transparency" in out


def test_greyscale_jpeg(tmp_path, capsys, ckpt):
    grey = (np.add.outer(np.arange(48), np.arange(64)) * 2 % 256).astype(np.uint8)
    path = tmp_path / "grey.jpg"
    Image.fromarray(grey, "L").save(path, quality=90)
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "g.png", attack="fgsm", params={"eps": 0.03})
    assert_ok(rc, out, err, tmp_path / "g.png")
    assert "(64x48 L)" in out and "greyscale" in out


def test_large_4000x3000_image(tmp_path, capsys, ckpt):
    yy, xx = np.mgrid[0:3000, 0:4000]
    img = np.stack([(xx // 16) % 256, (yy // 12) % 256, ((xx + yy) // 28) % 256], -1).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(img, "RGB").save(path, quality=80)
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "big-result.png")
    assert_ok(rc, out, err, tmp_path / "big-result.png")
    assert "(4000x3000 RGB) -> resized to 49x37 (bicubic), centre crop 32x32 at x 8..40, y 2..34" in out


def test_tiny_20x20_image(tmp_path, capsys, ckpt):
    img = (np.random.default_rng(0).random((20, 20, 3)) * 255).astype(np.uint8)
    path = tmp_path / "tiny.png"
    Image.fromarray(img, "RGB").save(path)
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "t.png")
    assert_ok(rc, out, err, tmp_path / "t.png")
    assert "upscaled" in out


def test_exact_size_image_is_used_as_is(tmp_path, capsys, ckpt, bundled):
    x, _ = bundled
    path = tmp_path / "c.png"
    image_attack.save_png(x[5], path)
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "c-out.png")
    assert_ok(rc, out, err, tmp_path / "c-out.png")
    assert "used as is" in out


@pytest.mark.parametrize("kind", ["corrupt", "directory", "missing"])
def test_bad_paths_exit_2_with_one_line(tmp_path, capsys, ckpt, kind):
    if kind == "corrupt":
        path = tmp_path / "broken.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" + bytes(200))
    elif kind == "directory":
        path = tmp_path / "adir"
        path.mkdir()
    else:
        path = tmp_path / "nope.png"
    rc, out, err = run_cmd(capsys, ckpt, image=path, out=tmp_path / "x.png")
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("foolkit attack: error:")
    assert {"corrupt": "cannot read image", "directory": "is a directory", "missing": "not found"}[kind] in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_other_user_errors_exit_2(tmp_path, capsys, ckpt):
    rc, _, err = run_cmd(capsys, ckpt, cifar_index=0, out=tmp_path / "x.txt")
    assert rc == 2 and "--out" in err
    rc, _, err = run_cmd(capsys, ckpt, cifar_index=5000, out=tmp_path / "x.png")
    assert rc == 2 and "out of range" in err
    rc, _, err = run_cmd(capsys, ckpt, cifar_index=0, target="unicorn", out=tmp_path / "x.png")
    assert rc == 2 and "unknown target class 'unicorn'" in err
    rc, _, err = run_cmd(capsys, ckpt, cifar_index=0, target=12, out=tmp_path / "x.png")
    assert rc == 2 and "out of range" in err


@pytest.fixture(scope="module")
def fgsm_index(model):
    """A bundled test image that FGSM(eps=0.05) fools (the weights may still be training)."""
    x, y = fk.data.load("cifar10", "test", n=50)
    r = fk.attacks.FGSM(eps=0.05)(model, x, y)
    return int(r.success.nonzero()[0, 0]) if r.success.any() else 7


@pytest.mark.parametrize("attack,params", [("fgsm", {"eps": 0.05}), ("deepfool", {"norm": "inf"})])
def test_saved_png_reads_back_as_the_output_says(tmp_path, capsys, ckpt, model, fgsm_index, attack, params):
    index = fgsm_index if attack == "fgsm" else 7
    rc, out, err = run_cmd(capsys, ckpt, cifar_index=index, attack=attack, params=params, out=tmp_path / "r.png")
    adv = assert_ok(rc, out, err, tmp_path / "r.png")
    assert "true class" in out
    arr = np.asarray(Image.open(adv))
    assert arr.dtype == np.uint8 and arr.shape == (32, 32, 3)
    x_back = torch.from_numpy(arr.transpose(2, 0, 1).copy()).float().div(255)[None]
    with torch.no_grad():
        pred = int(model(x_back).argmax(1))
        clean = int(model(fk.data.load("cifar10", "test", n=index + 1)[0][index:index + 1]).argmax(1))
    line = next(s for s in out.splitlines() if s.startswith("adversarial image:"))
    names = fk.data.class_names("cifar10")
    assert f"read back as {names[pred]} (class {pred})" in line
    if "still fools the model" in line:
        assert pred != clean
    elif "quantisation to 8 bits broke the attack" in line:
        assert pred == clean
    if attack == "fgsm":  # steps of 0.05 are far above one level: rounding keeps them
        assert "-> fooled" in out and "still fools the model" in line


def test_target_by_name_and_index(tmp_path, capsys, ckpt):
    for target, expect in (("cat", "class 3"), ("3", "class 3"), ("Ship", "class 8")):
        rc, out, err = run_cmd(capsys, ckpt, cifar_index=7, target=target, out=tmp_path / f"t{target}.png")
        assert rc == 0, err
        assert f"target: {fk.data.class_names('cifar10')[int(expect.split()[1])]} ({expect})" in out


def test_negative_target_without_a_class_count_is_a_one_line_error():
    """A model of unknown class count: a negative index is refused with the same kind of error
    (building the message once failed with a TypeError on the missing count)."""
    from foolkit.errors import InputError
    from foolkit.evaluation.single_image import resolve_target

    with pytest.raises(InputError, match="out of range"):
        resolve_target("-1")
    assert resolve_target("3") == 3  # no count: any index >= 0 passes


def test_universal_file_round_trip_and_errors(tmp_path):
    v = (torch.rand(1, 3, 32, 32) * 2 - 1) * 8 / 255
    path = save_universal(tmp_path / "v.pt", v, model="cifar10/resnet20", norm="inf", xi=8 / 255,
                          fooling_rates={"fit": 0.7, "test": 0.6}, n_fit=10)
    raw = torch.load(path, weights_only=True)  # plain tensors and Python types only
    assert raw["format"] == "foolkit.universal" and raw["card"]["norm"] == "inf"
    u = load_universal(path)
    assert torch.equal(u.perturbation, v)
    assert u.card["norm"] == float("inf") and u.card["xi"] == pytest.approx(8 / 255)
    assert set(u.card) >= {"model", "norm", "xi", "fooling_rates", "date", "n_fit"}
    assert "cifar10/resnet20" in u.describe()
    with pytest.raises(ValueError, match="norm must be 2 or inf"):
        save_universal(tmp_path / "w.pt", v, model="m", norm=1, xi=0.1)
    (tmp_path / "bad.pt").write_bytes(b"garbage" * 10)
    torch.save({"perturbation": argparse.Namespace(a=1)}, tmp_path / "pickled.pt")
    torch.save({"perturbation": v, "card": {"fooling_rates": [0.5]}}, tmp_path / "rates.pt")
    torch.save({"perturbation": v, "card": {"model": ["cifar10/resnet20"]}}, tmp_path / "model.pt")
    for bad, msg in (("bad.pt", "cannot read"), ("pickled.pt", "cannot read"), ("missing.pt", "not found"), ("", "directory"),
                     ("rates.pt", "card fooling_rates must be a dict"), ("model.pt", "card model must be")):
        with pytest.raises(UniversalFileError, match=msg):
            load_universal(tmp_path / bad)


def test_perturbation_flag_applies_a_saved_file(tmp_path, capsys, ckpt):
    v = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 16 / 255
    save_universal(tmp_path / "v.pt", v, model="cifar10/resnet20", norm="inf", xi=16 / 255, fooling_rates={"fit": 0.5})
    rc, out, err = run_cmd(capsys, ckpt, cifar_index=3, perturbation=tmp_path / "v.pt", out=tmp_path / "u.png")
    assert_ok(rc, out, err, tmp_path / "u.png")
    assert "universal perturbation for cifar10/resnet20" in out
    assert re.search(r"L∞: +0\.062\d* in \[0,1\] units = 1[56](\.\d+)? in 0-255 levels", out)
    save_universal(tmp_path / "w.pt", torch.zeros(1, 3, 64, 64), model="cifar10/resnet20", norm=2, xi=1.0)
    rc, out, err = run_cmd(capsys, ckpt, cifar_index=3, perturbation=tmp_path / "w.pt", out=tmp_path / "w.png")
    assert rc == 2 and "another input size" in err


def test_fit_universal_command(tmp_path, capsys, ckpt):
    out = tmp_path / "v.pt"
    argv = ["fit-universal", "--model", "cifar10/resnet20", "--norm", "inf", "--xi", "12/255", "--n", "30",
            "--n-test", "20", "--max-passes", "1", "--batch-size", "30", "--out", str(out)]
    if ckpt:
        argv += ["--checkpoint", ckpt]
    rc = cli.main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    u = load_universal(out)
    assert u.perturbation.shape == (1, 3, 32, 32)
    assert float(u.perturbation.abs().max()) <= 12 / 255 + 1e-6
    c = u.card
    assert c["model"] == "cifar10/resnet20" and c["norm"] == float("inf") and c["xi"] == pytest.approx(12 / 255)
    assert set(c["fooling_rates"]) == {"fit", "test"} and c["n_fit"] == 30 and c["n_test"] == 20 and c["date"]
    assert "saved" in captured.out
    assert cli.main(["fit-universal", "--model", "cifar10/resnet20", "--xi", "-1", "--out", str(out)]) == 2
    assert cli.main(["fit-universal", "--model", "cifar10/resnet20", "--norm", "3", "--out", str(out)]) == 2


def test_attack_image_returns_result_and_figure(tmp_path, ckpt, capsys):
    from matplotlib.figure import Figure

    img = (np.random.default_rng(1).random((45, 60, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "p.png")
    result, fig = fk.attack_image(tmp_path / "p.png", model="cifar10/resnet20", attack="fgsm", checkpoint=ckpt,
                                  eps=0.02)
    assert isinstance(result, fk.attacks.AttackResult) and isinstance(fig, Figure)
    assert result.x.shape == (1, 3, 32, 32)
    assert result.extra["image"]["crop_box"] == (8, 2, 40, 34)
    assert "centre crop 32x32" in result.extra["image"]["description"]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # a library function prints nothing (issue #16)
    names = fk.data.class_names("cifar10")
    assert names[int(result.clean_label[0])] in fig.axes[0].get_title()


@pytest.mark.slow
def test_attack_image_efficientnet_lite0_on_a_photo():
    pytest.importorskip("efficientnet_lite_pytorch")
    photo = PHOTOS / "chelsea.png"
    if not photo.is_file():
        pytest.skip(f"{photo} not available")
    result, fig = fk.attack_image(photo, attack="fgsm", eps=2 / 255)
    assert result.x.shape == (1, 3, 224, 224)
    assert "centre crop 224x224" in result.extra["image"]["description"]
    assert len(fig.axes) == 3 and fk.data.class_names("imagenet")[int(result.clean_label[0])] in fig.axes[0].get_title()


# --- issue #16 ----------------------------------------------------------------------------------------------
def test_norms_report_share_of_one_pixel_is_not_zero():
    r = torch.zeros(3, 224, 224)
    r[:, 10, 20] = 0.1
    line = image_attack.norms_report(r)[0]
    assert "1 of 50176 pixels changed (0.002%)" in line and "(0.00%)" not in line


def test_attack_device_flag_reaches_the_model_and_the_run(tmp_path, capsys, monkeypatch):
    from foolkit.evaluation import runner
    from foolkit.models import registry

    loads, runs = [], []
    real_load = registry.load
    monkeypatch.setattr(registry, "load", lambda *a, **k: loads.append(k.get("device")) or real_load(*a, **k))

    def fake_evaluate(*args, **kwargs):
        runs.append(kwargs.get("device"))
        raise ValueError("stopped by the test")

    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    # one image: the model is loaded on the device given
    assert cli.main(["attack", "--cifar-index", "2", "--attack", "fgsm", "--eps", "0.02", "--device", "cpu",
                     "--out", str(tmp_path / "one.png")]) == 0
    assert loads == [torch.device("cpu")]
    # a data-set run: the device goes to the runner
    assert cli.main(["attack", "--model", "cifar10/resnet20", "--attack", "fgsm", "--n", "2", "--device", "cpu",
                     "--out", str(tmp_path / "r.db")]) == 2
    assert runs == [torch.device("cpu")]
    capsys.readouterr()
    # a device that is not there: one line, exit code 2, nothing written
    for argv in (["--cifar-index", "2", "--out", str(tmp_path / "bad.png")], ["--model", "cifar10/resnet20", "--n", "2",
                                                                            "--out", str(tmp_path / "bad.db")]):
        for device, message in (("nope", "unknown device 'nope'"), ("cuda:99", "cuda:99")):
            assert cli.main(["attack", "--attack", "fgsm", *argv, "--device", device]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "bad.db").exists()


def test_universal_mode_default_is_the_same_in_both_commands():
    import inspect

    from foolkit.attacks.universal import UniversalPerturbation
    from foolkit.commands import attack as attack_cmd

    library = inspect.signature(UniversalPerturbation).parameters["mode"].default
    parser, _ = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    fit = sub.choices["fit-universal"]
    ns = fit.parse_args(["--model", "cifar10/resnet20"])
    assert ns.mode == library == "faithful"
    assert f"default {library}" in " ".join(fit.format_help().split())
    # `attack --attack universal` without --mode builds the library's default
    ns = sub.choices["attack"].parse_args(["--model", "cifar10/resnet20", "--attack", "universal"])
    assert attack_cmd.attack_from_args(ns).mode == library
    assert f"universal '{library}'" in " ".join(sub.choices["attack"].format_help().split())


def test_data_set_flags_beside_one_image_are_refused(tmp_path, capsys):
    # --n used to be ignored silently beside --image (issue #16)
    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    for argv, flag, one in ((["--image", str(tmp_path / "a.png"), "--n", "5"], "--n", "--image"),
                            (["--cifar-index", "3", "--n", "5"], "--n", "--cifar-index"),
                            (["--cifar-index", "3", "--fit-size", "5"], "--fit-size", "--cifar-index")):
        rc = cli.main(["attack", "--model", "cifar10/resnet20", "--out", str(tmp_path / "f.png")] + argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"{flag} applies to data sets, not to {one}" in err[0], err
    assert not (tmp_path / "f.png").exists()


def test_image_symlink_loop_is_named(tmp_path, capsys):
    import os
    os.symlink("loop.png", tmp_path / "loop.png")
    rc = cli.main(["attack", "--model", "cifar10/resnet20", "--image", str(tmp_path / "loop.png"),
                   "--out", str(tmp_path / "f.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is a symlink loop" in err[0], err


def test_animated_gif_is_named_once_in_the_image_line(tmp_path, capsys):
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rc = cli.main(["attack", "--model", "cifar10/resnet20", "--image", str(tmp_path / "anim.gif"), "--attack", "fgsm",
                   "--out", str(tmp_path / "f.png")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "animated (3 frames): the first frame is used" in captured.out.splitlines()[0]
    assert "UserWarning" not in captured.err


def test_one_image_takes_any_model_source_and_its_options(tmp_path, capsys):
    """--image / --cifar-index with a factory file, --mean/--std, --input-size and --classes
    (before, only registered names, and those options were silently ignored)."""
    (tmp_path / "nets.py").write_text(
        "import torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))\n")
    (tmp_path / "names.txt").write_text("\n".join(f"kind{i}" for i in range(10)))
    factory = f"{tmp_path / 'nets.py'}:make"
    rc = cli.main(["attack", "--cifar-index", "3", "--model", factory, "--mean", "0.5,0.5,0.5", "--std",
                   "0.25,0.25,0.25", "--classes", str(tmp_path / "names.txt"), "--out", str(tmp_path / "a.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "model: nets.py:make" in out and "kind" in out
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    rc = cli.main(["attack", "--image", str(tmp_path / "grey.png"), "--model", factory, "--out", str(tmp_path / "b.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "input size is unknown" in err  # a factory says no size
    rc = cli.main(["attack", "--image", str(tmp_path / "grey.png"), "--model", factory, "--input-size", "3,32,32",
                   "--out", str(tmp_path / "c.png")])
    assert rc == 0 and "resized to" in capsys.readouterr().out
    result, _ = fk.attack_image(tmp_path / "grey.png", model=factory, size=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert result.extra["model"] == "nets.py:make" and len(result) == 1
