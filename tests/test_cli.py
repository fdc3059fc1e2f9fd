"""The command line: attack / show / report / attacks; bad input is one line on stderr, exit code 2."""
import math
import sqlite3
import subprocess
import sys

import pytest
import torch

import foolkit as fk
from foolkit.cli import main
from conftest import run_cli

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(random_resnet20_weights):
    return random_resnet20_weights


def attack_args(tmp_path, weights, *extra):
    return ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--n", "4", "--out",
            str(tmp_path / "r.db"), "--quiet", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--attack", "nope"], "unknown attack 'nope'"),
    (["--attack", "deepfool", "--eps", "0.1"], "--eps is not a parameter of deepfool"),
    (["--attack", "deepfool", "--norm", "abc"], "--norm: expected float"),
    (["--attack", "deepfool", "--max-iter", "0"], "max_iter must be an integer >= 1"),
    (["--attack", "deepfool", "--max-iter", "2.5"], "--max-iter: expected int"),
    (["--attack", "fgsm", "--clip", "maybe"], "--clip: expected bool"),
    (["--attack", "fgsm", "--n", "0"], "--n must be >= 1"),
    (["--attack", "fgsm", "--n", "-3"], "--n must be >= 1"),
    (["--attack", "fgsm", "--n", "5000"], "asked for 5000 images"),
    (["--attack", "fgsm", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["--attack", "fgsm", "--data", "/no/such/folder"], "data path does not exist"),
    (["--attack", "fgsm", "--frobnicate", "1"], "unrecognized arguments: --frobnicate"),
    (["--attack", "fgsm", "--n", "many"], "invalid int value"),
])
def test_bad_attack_input_is_one_line_exit_2(tmp_path, weights, capsys, extra, message):
    code, out, err = run_cli(attack_args(tmp_path, weights) + extra, capsys)
    assert code == 2
    assert len(err) == 1, err
    assert message in err[0] and err[0].startswith("foolkit attack: error:")
    assert "Traceback" not in out + "".join(err)


def test_unknown_model_and_missing_store(tmp_path, capsys):
    code, _, err = run_cli(["attack", "--model", "cifar10/nope", "--attack", "fgsm", "--out",
                            str(tmp_path / "r.db")], capsys)
    assert code == 2 and len(err) == 1 and "unknown model 'cifar10/nope'" in err[0]
    code, _, err = run_cli(["show", str(tmp_path / "missing.db")], capsys)
    assert code == 2 and len(err) == 1 and "no such run store" in err[0]
    assert not (tmp_path / "missing.db").exists()


def test_foreign_store_is_untouched(tmp_path, weights, capsys):
    db = tmp_path / "r.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE thesis (chapter INTEGER)")
    con.commit()
    con.close()
    before = db.read_bytes()
    for argv in (attack_args(tmp_path, weights, "--attack", "fgsm"), ["show", str(db)],
                 ["report", str(db), "-o", str(tmp_path / "x.html")]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and len(err) == 1 and "not a foolkit run store" in err[0]
    assert db.read_bytes() == before


def test_debug_shows_the_traceback(tmp_path, weights):
    with pytest.raises(ValueError, match="unknown attack"):
        main(["--debug"] + attack_args(tmp_path, weights, "--attack", "nope"))


def test_attack_show_and_report(tmp_path, weights, capsys):
    db = tmp_path / "r.db"
    code, out, _ = run_cli(attack_args(tmp_path, weights, "--attack", "deepfool", "--norm", "inf", "--max-iter", "3",
                                       "--overshoot", "0.05", "--keep-closest", "none"), capsys)
    assert code == 0 and "fool%" in out and "stored in" in out
    code, out, _ = run_cli(attack_args(tmp_path, weights, "--attack", "fgsm", "--eps", "0.03", "--clip", "false"),
                           capsys)
    assert code == 0
    (df, fg) = fk.evaluation.runs_in(db)
    assert df.config["attack"]["params"]["norm"] == "inf" and df.config["attack"]["params"]["max_iter"] == 3
    assert df.config["attack"]["params"]["keep_closest"] is None
    assert fg.config["attack"]["params"] == {"eps": 0.03, "clip": False}
    assert df.config["data"]["n"] == 4 and df.config["seed"] == 0
    code, out, _ = run_cli(["show", str(db), "--details"], capsys)
    assert code == 0
    assert "deepfool norm=inf" in out and "fgsm eps=0.03 clip=False" in out and df.run_id in out
    code, out, _ = run_cli(["report", str(db), "-o", str(tmp_path / "r.html")], capsys)
    assert code == 0 and (tmp_path / "r.html").stat().st_size > 1000


def test_attack_parameter_flags_come_from_signatures():
    from foolkit.attacks import registry
    from foolkit.cli import build_parser
    from foolkit.commands.attack import flag_for

    parser, _ = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["attack"].format_help()
    for name, cls in registry.available().items():
        for p in registry.parameters(cls):
            assert flag_for(p.name) in help_text, (name, p.name)
    assert flag_for("lambda_") == "--lambda" and flag_for("seed") == "--attack-seed"
    assert flag_for("batch_size") == "--attack-batch-size" and flag_for("max_iter") == "--max-iter"
    norm = next(p for p in registry.parameters("deepfool") if p.name == "norm")
    assert registry.convert(norm, "inf") == math.inf and registry.convert(norm, "2") == 2.0


def test_attacks_lists_one_line_each(capsys):
    from foolkit.attacks import registry

    code, out, _ = run_cli(["attacks"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert names == list(registry.available())
    assert {"fgsm", "deepfool"} <= set(names)


def test_real_process_exit_code_and_single_line():
    proc = subprocess.run([sys.executable, "-m", "foolkit.cli", "attack", "--model", "cifar10/resnet20",
                           "--attack", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "unknown attack" in err[0] and "Traceback" not in proc.stderr


def test_output_closed_early_is_quiet(tmp_path):
    """`foolkit show S.db | head -1`: the reader leaves, foolkit stops without an error line."""
    # a command that prints far more than a pipe buffers (64 KiB), so the write must fail
    code = ("import sys, foolkit.commands.attacks_list as m, foolkit.cli as c\n"
            "m.run = lambda args: [print('x' * 79) for _ in range(20000)] and 0\n"
            "sys.exit(c.main(['attacks']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # before foolkit has written the rest
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Errno" not in err and "error" not in err and "Traceback" not in err, err


def test_more_bad_input_is_one_line_exit_2(tmp_path, weights, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    db = tmp_path / "r.db"
    assert run_cli(attack_args(tmp_path, weights, "--attack", "fgsm"), capsys)[0] == 0
    cases = [
        (["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--n", "4", "--attack", "fgsm",
          "--out", str(a_file / "x.db"), "--quiet"], "a_file"),
        (["fit-universal", "--model", "cifar10/resnet20", "--n", "2", "--device", "nope"], "unknown device 'nope'"),
        (["eval", "imagenet/efficientnet-lite0", "--n", "2"], "imagenet model"),
        (["report", str(db), "-o", str(tmp_path / "r.html"), "--images", "-1"], None),
        (["train", "cifar10/resnet20", "--data", str(tmp_path), "--out", str(tmp_path / "t"),
          "--label-smoothing", "2"], "label_smoothing must lie in [0, 1)"),
        (["train", "cifar10/resnet20", "--data", str(tmp_path), "--out", str(tmp_path / "t"),
          "--max-steps", "-1"], "max_steps must be an integer >= 1"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        if message is None:  # accepted or refused, but never a traceback
            assert "Traceback" not in out + "".join(err)
            continue
        assert code == 2, (argv, out, err)
        assert len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "t").exists()
    code, _, _ = run_cli(["report", str(db), "-o", str(tmp_path / "r0.html"), "--images", "0"], capsys)
    assert code == 0 and (tmp_path / "r0.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_training_state_is_one_line(tmp_path, capsys):
    out = tmp_path / "t"
    out.mkdir()
    (out / "last.pt").write_bytes(b"garbage")
    from test_train import tiny_folder
    tiny_folder(tmp_path / "data", per_class=1)
    code, _, err = run_cli(["train", "cifar10/resnet20", "--data", str(tmp_path / "data"), "--out", str(out),
                            "--epochs", "1", "--batch-size", "1", "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and "cannot resume" in err[0] and "is corrupt" in err[0]


def test_warnings_print_as_one_line_naming_the_command(tmp_path, weights, capsys):
    """The runner's UserWarning (an unfinished run at another batch size) reaches a CLI user as
    `foolkit attack: warning: ...` on one line: no source path or code line."""
    import warnings

    db = tmp_path / "r.db"
    base = ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "8",
            "--out", str(db), "--quiet"]
    assert run_cli(base + ["--batch-size", "4"], capsys)[0] == 0
    with sqlite3.connect(db) as con:  # as if killed after its first batch
        (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
        con.execute("DELETE FROM samples WHERE idx >= 4")
        con.execute("DELETE FROM blobs WHERE idx >= 4")
        con.execute("UPDATE runs SET complete = 0")
    con.close()
    shown_before = warnings.showwarning
    code, out, err = run_cli(base + ["--batch-size", "8"], capsys)
    assert code == 0, err
    assert len(err) == 1, err
    assert err[0].startswith("foolkit attack: warning: ") and f"unfinished run {run_id}" in err[0], err
    assert "batch size 4" in err[0] and "UserWarning" not in err[0] and ".py:" not in err[0]
    assert warnings.showwarning is shown_before  # main() restores the hook
