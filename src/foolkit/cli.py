"""The ``foolkit`` command line: a thin dispatcher over ``foolkit.commands.*``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (bad input, unknown names, missing files) become one line on stderr and exit
code 2; a traceback is shown only with ``--debug``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from .errors import USER_ERRORS

# One entry per subcommand module, in the order shown by --help.
COMMAND_MODULES = [
    "foolkit.commands.demo",
    "foolkit.commands.train",
    "foolkit.commands.eval",
    "foolkit.commands.models",
    "foolkit.commands.attack",
    "foolkit.commands.show",
    "foolkit.commands.merge",
    "foolkit.commands.sweep",
    "foolkit.commands.report",
    "foolkit.commands.attacks_list",
    "foolkit.commands.fit_universal",
    "foolkit.commands.reproduce",
]




def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="foolkit", description="Adversarial examples and classifier instability.")
    parser.add_argument("--version", action="version", version=f"foolkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers = {}
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
        module.add_arguments(p)
        handlers[module.NAME] = module.run
    return parser, handlers


def _resumable(args) -> bool:
    """Whether an interrupted command keeps its finished work for a rerun to pick up."""
    if args.command in ("reproduce", "train"):
        return True
    return args.command == "attack" and not getattr(args, "image", None) and getattr(args, "cifar_index", None) is None



def error_line(exc: BaseException) -> str:
    """One line for a user error. A raw ``OSError`` (``[Errno 30] Read-only file system: 'x'``)
    becomes ``x: read-only file system``; other messages keep their first line."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        names = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else f"{exc.filename}"
        return f"{names}: {reason}"
    if isinstance(exc, OSError) and exc.strerror and exc.errno is not None and str(exc).startswith("[Errno"):
        return exc.strerror[:1].lower() + exc.strerror[1:]  # "[Errno 28] No space left on device"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warning_printer(command: str):
    """A ``warnings.showwarning`` that prints ``foolkit CMD: warning: ...`` as one line on
    stderr: no source file, line number or code line, no escape codes (a warning may quote
    a file name)."""
    from .data.safe_load import clean_text

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(clean_text(str(message), one_line=True).split())
        print(f"foolkit {command}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, handlers = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a one-line usage error
    if not args.command:
        parser.print_help()
        return 2
    # restored on return: main() also runs in-process (tests, scripts)
    previous_showwarning = warnings.showwarning
    warnings.showwarning = warning_printer(args.command)
    try:
        return int(handlers[args.command](args) or 0)
    except BrokenPipeError:
        # stdout closed early (`foolkit show S.db | head`): stop quietly, as other tools do; the
        # interpreter's own flush at exit must not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except KeyboardInterrupt:
        if _resumable(args):
            print("foolkit: interrupted; finished work is saved, rerun the same command to resume", file=sys.stderr)
        else:
            print("foolkit: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if getattr(args, "debug", False):
            raise
        print(f"foolkit {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = previous_showwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
