"""Progress where an attack on one image runs a minute with no output (issue #16)."""
import io
import time

from foolkit.runtime.progress import elapsed_ticker


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_ticker_redraws_elapsed_time_on_a_terminal_and_erases_it():
    stream = FakeTerminal()
    with elapsed_ticker("attacking with LBFGS", stream=stream, interval=0.05):
        time.sleep(0.4)
    text = stream.getvalue()
    frames = text.split("\r")
    assert frames[1] == "attacking with LBFGS ... 0s"  # drawn at once, before any work
    # ["", first draw, redraws..., erase, ""]: at least one redraw in 0.4 s at 0.05 s intervals
    # (eight are due; one is certain even on a busy CPU)
    assert len(frames) >= 5 and frames[2].startswith("attacking with LBFGS ... ")
    assert frames[-1] == "" and frames[-2].strip() == ""  # the line is erased at the end


def test_ticker_is_silent_when_piped_or_disabled():
    piped = io.StringIO()  # isatty() is False
    with elapsed_ticker("x", stream=piped, interval=0.01):
        time.sleep(0.05)
    off = FakeTerminal()
    with elapsed_ticker("x", enabled=False, stream=off, interval=0.01):
        time.sleep(0.05)
    assert piped.getvalue() == "" and off.getvalue() == ""


def test_ticker_stops_when_the_block_raises():
    import threading

    import pytest
    stream = FakeTerminal()
    with pytest.raises(KeyboardInterrupt):
        with elapsed_ticker("x", stream=stream, interval=0.01):
            raise KeyboardInterrupt
    assert not any(t.name == "foolkit-ticker" for t in threading.enumerate())


def test_one_image_attack_shows_the_ticker_on_a_terminal(tmp_path, capsys, monkeypatch):
    import sys

    from foolkit import cli
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stream, posing as a terminal
    argv = ["attack", "--cifar-index", "3", "--attack", "fgsm", "--eps", "0.01", "--out", str(tmp_path / "f.png")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "\rattacking with FGSM ... 0s" in err
    assert cli.main(argv + ["--quiet"]) == 0
    assert "attacking" not in capsys.readouterr().err
