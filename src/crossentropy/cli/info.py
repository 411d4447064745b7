"""``crossentropy info`` and ``--version``: the version, whether the kernels are built, the threads and the backends."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, NoReturn

from .arguments import Commands
from .output import discard_stdout

__all__ = ["VersionAction", "register", "run"]


def register(commands: Commands) -> None:
    """Add the ``info`` command."""
    info = commands.add_parser(
        "info",
        help="the version, whether the fast CPU kernels are built, their instruction set, threads and backends",
        epilog="examples:\n  crossentropy info\n  CROSSENTROPY_NUM_THREADS=1 crossentropy info --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("--format", choices=["table", "json"], default="table", help="output format (default: table)")
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the version, the kernels, the threads and the optional backends."""
    from .. import _about

    found = _about.facts()
    print(json.dumps(found, indent=2) if args.format == "json" else _about.render(found))
    return 0


class VersionAction(argparse.Action):
    """``--version``: the same facts as ``crossentropy info``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        from .. import _about

        try:
            print(_about.render(_about.facts()), flush=True)
        except BrokenPipeError:
            discard_stdout()
        parser.exit()
