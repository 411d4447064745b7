"""The ``crossentropy`` command line: parse, call the library, print.

Exit status: 0 on success, 1 when the numbers were computed but a requested
check failed (a tutorial number that does not reproduce, ``score
--fail-above``), 2 for bad usage or bad input (one line on stderr, never a
traceback).

One module per command (:mod:`~crossentropy.cli.compare`,
:mod:`~crossentropy.cli.score`, :mod:`~crossentropy.cli.tutorial`,
:mod:`~crossentropy.cli.train`, :mod:`~crossentropy.cli.explore`,
:mod:`~crossentropy.cli.perplexity`, :mod:`~crossentropy.cli.info`), each
adding its parser (``register``) and running it (``run``) by calling the
command's engine; :mod:`~crossentropy.cli.arguments` and
:mod:`~crossentropy.cli.output` hold what they share. :func:`main` and
:func:`build_parser` are the entry points.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

from .. import InputError
from . import compare, explore, info, perplexity, score, train, tutorial
from .arguments import Parser
from .output import discard_stdout, error_line, stdout_is_devnull

__all__ = ["build_parser", "main"]

EXAMPLES = """\
examples:
  crossentropy compare 0.1,0.4,0.5 0.8,0.15,0.05 --base 2 --names red,green,blue
  crossentropy score predictions.parquet --labels label --probs 'p_*' --per-class --calibration
  crossentropy score preds.csv --logits logit --convention torch --format json
  crossentropy tutorial --plots figures/ --lang ko
  crossentropy train --dataset digits --plot curves.png
  crossentropy perplexity ./my-model corpus.txt --context 1024 --format json
  crossentropy explore
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``crossentropy`` command."""
    parser = Parser(
        prog="crossentropy",
        description="Cross-entropy and the information measures around it, exactly.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=info.VersionAction, help="print the version, kernels, threads and backends")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in (compare, score, tutorial, train, explore, perplexity, info):
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    A closed pipe on standard output (``crossentropy ... | head -1``) ends
    the command quietly with status 0, as ``cat`` does; a closed or full
    standard output is one line on stderr and status 2. A closed standard
    error changes nothing but that the diagnostics are lost: the output and
    the status are those of a run with standard error open.
    """
    with _stderr_open():
        return _main(argv)


@contextlib.contextmanager
def _stderr_open() -> Iterator[None]:
    """Standard error pointed at the null device while the command runs, when it is closed (``2>&-``).

    When file descriptor 2 itself is closed, the null device is opened on it,
    so that a file the command opens cannot take descriptor 2 and receive
    what a library writes to standard error.
    """
    if sys.stderr is not None:
        yield
        return
    try:
        os.fstat(2)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != 2:
            os.dup2(null, 2)
            os.close(null)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stderr = sink
        try:
            yield
        finally:
            sys.stderr = None


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # no command: the help with the list of commands, as a usage error
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if sys.stdout is None:
        print("crossentropy: error: standard output is closed", file=sys.stderr)
        return 2
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"crossentropy: error: {error_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crossentropy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        discard_stdout()
        return 0
    except SystemExit as exc:
        if exc.code == 1 and stdout_is_devnull():
            return 0  # rich met a closed pipe, pointed stdout at /dev/null and exited 1
        raise
    except MemoryError:
        print("crossentropy: error: out of memory", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # writing standard output failed (a full disk, /dev/full)
            discard_stdout()
        what = "cannot write the output" if exc.filename is None else f"{exc.filename}"
        print(f"crossentropy: error: {error_line(f'{what}: {exc.strerror or exc}')}", file=sys.stderr)
        return 2
