"""The parser class, the argument types and the options that several commands share."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn, TypeAlias

from .output import DEFAULT_PRECISION, error_line

__all__ = [
    "Commands",
    "Parser",
    "add_format",
    "add_precision",
    "add_progress",
    "at_least_one",
    "base",
    "int_in",
    "number",
    "port",
    "positive_int",
    "precision",
]

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers`` returns: each command module adds its parser to it."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line pointing to ``--help`` (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {error_line(message)} (see --help)\n")


def base(text: str) -> float:
    """A logarithm base: a finite number > 0 and != 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid base {text!r}: a number > 0 and != 1") from None
    if not (value > 0 and value != 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"invalid base {text!r}: a number > 0 and != 1")
    return value


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """The argument type of an integer in ``[low, high]`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bounds}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


positive_int = int_in(0)
"""An integer >= 0."""

at_least_one = int_in(1)
"""An integer >= 1."""

port = int_in(0, 65535)
"""A TCP port, 0 (a free one) to 65535."""


def number(text: str) -> float:
    """A real number, infinities included; NaN, which no comparison holds for, is refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (NaN compares with nothing)")
    return value


def precision(text: str) -> int:
    """A number of significant digits, 1 to 17."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of digits") from None
    if not 1 <= value <= 17:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to 17 significant digits")
    return value


def add_format(p: argparse.ArgumentParser) -> None:
    """``--format table|json|csv``."""
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format (default: table)")


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress / --no-progress``."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def add_precision(p: argparse.ArgumentParser) -> None:
    """``--precision DIGITS``."""
    p.add_argument(
        "--precision",
        type=precision,
        default=DEFAULT_PRECISION,
        metavar="DIGITS",
        help=f"significant digits in tables (default {DEFAULT_PRECISION}; JSON keeps every digit)",
    )
