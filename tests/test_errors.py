"""foolkit's errors: every kind is a FoolkitError (and a ValueError); the command line turns each
into one line with exit code 2, and anything else (a bug) into a traceback."""
import subprocess
import sys

import pytest

import foolkit.errors as errors
from foolkit.cli import main
from conftest import run_cli

KINDS = [errors.InputError, errors.DataError, errors.UniversalFileError, errors.ModelError, errors.StoreError,
         errors.MergeConflict, errors.RayMissing, errors.OutOfMemory]


def test_every_kind_is_a_foolkit_error_and_a_value_error():
    defined = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)
               and v.__module__ == errors.__name__}
    assert defined == set(KINDS) | {errors.FoolkitError}  # a new kind: add it to KINDS
    for kind in KINDS:
        assert issubclass(kind, errors.FoolkitError) and issubclass(kind, ValueError)
    assert errors.FoolkitError in errors.USER_ERRORS


@pytest.fixture
def failing_command(monkeypatch):
    """``foolkit attacks`` made to raise ``exc`` (the command is looked up when main() runs)."""
    import foolkit.commands.attacks_list as command

    def make(exc: BaseException) -> list[str]:
        def run(args):
            raise exc
        monkeypatch.setattr(command, "run", run)
        return [command.NAME]
    return make


@pytest.mark.parametrize("kind", KINDS + [ValueError, FileNotFoundError], ids=lambda k: k.__name__)
def test_a_user_error_is_one_line_exit_2(kind, failing_command, capsys):
    code, out, err = run_cli(failing_command(kind("what went wrong\nand a detail on a second line")), capsys)
    assert code == 2 and out == ""
    assert err == ["foolkit attacks: error: what went wrong"]


def test_a_bug_is_not_caught(failing_command, capsys):
    argv = failing_command(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        main(argv)
    assert capsys.readouterr().err == ""  # nothing printed before the traceback


def test_bad_input_from_the_command_line_is_one_line_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["attack", "--model", "cifar10/resnet20", "--attack", "fgsm", "--eps", "-1",
                            "--n", "2", "--out", str(tmp_path / "r.db"), "--quiet"], capsys)
    assert code == 2
    assert err == ["foolkit attack: error: eps must be a finite number >= 0, got -1.0"]


def test_a_bug_in_a_real_process_shows_the_traceback():
    script = ("import sys, foolkit.commands.attacks_list as c\n"
              "def run(args): raise RuntimeError('boom')\n"
              "c.run = run\n"
              "from foolkit.cli import main\n"
              "sys.exit(main(['attacks']))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr and "RuntimeError: boom" in proc.stderr
    assert "error: boom" not in proc.stderr
