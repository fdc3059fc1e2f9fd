"""Progress for work that has no natural bar: one attack on one image (L-BFGS or One Pixel can
run a minute on a CPU with nothing to show). Batched work uses tqdm bars instead
(``foolkit attack`` over a data set, ``foolkit eval``)."""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import IO, Iterator


@contextmanager
def elapsed_ticker(desc: str, enabled: bool = True, stream: IO[str] | None = None,
                   interval: float = 1.0) -> Iterator[None]:
    """While the block runs, show ``"<desc> ... 12s"`` on ``stream`` (default stderr), redrawn
    every ``interval`` seconds, and erase it at the end.

    Only on a terminal: piped or captured output gets nothing (no ``\\r`` clutter in logs).
    The elapsed time after the work is the caller's to print.
    """
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        tty = False
    if not enabled or not tty:
        yield
        return
    start = time.perf_counter()
    stop = threading.Event()
    width = 0

    def draw() -> None:
        nonlocal width
        text = f"{desc} ... {time.perf_counter() - start:.0f}s"
        stream.write("\r" + text.ljust(width))
        stream.flush()
        width = len(text)

    def tick() -> None:
        while not stop.wait(interval):
            draw()

    draw()
    thread = threading.Thread(target=tick, name="foolkit-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write("\r" + " " * width + "\r")
        stream.flush()
