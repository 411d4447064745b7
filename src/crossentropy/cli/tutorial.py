"""``crossentropy tutorial``: every worked example of the five teaching texts, reproduced, in English or Korean."""

from __future__ import annotations

import argparse
import sys

from .. import InputError
from .arguments import Commands, add_format, precision
from .output import print_tables, printable

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    """Add the ``tutorial`` command."""
    tutorial = commands.add_parser(
        "tutorial",
        help="reproduce every worked example of the five teaching texts",
        epilog="example:\n  crossentropy tutorial --plots figures/ --lang ko",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tutorial.add_argument("--plots", metavar="DIR", help="write the texts' seven figures as PNG files into DIR")
    tutorial.add_argument(
        "--lang", choices=["en", "ko"], default="en", help="language of the lesson and its figures (default en)"
    )
    add_format(tutorial)
    tutorial.add_argument(
        "--precision",
        type=precision,
        default=4,
        metavar="DIGITS",
        help="significant digits of each value (default 4; JSON keeps every digit)",
    )
    tutorial.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the lesson: each section's text and checks; 1 when a number of the texts does not reproduce."""
    from .._lesson import payload, print_lesson, tables, verdict
    from .._tutorial import sections

    all_sections = sections()
    if args.plots:
        from .._tutorial_figures import write_plots

        try:
            for path in write_plots(args.plots, lang=args.lang):
                print(f"wrote {printable(str(path))}", file=sys.stderr)
        except OSError as exc:
            raise InputError(f"cannot write the plots to {args.plots}: {exc}") from None
    reproduced, sentence = verdict(all_sections, args.lang)
    if args.format == "json":
        print_tables([], "json", payload(all_sections, args.lang))
    elif args.format == "csv":
        print_tables(tables(all_sections, args.lang), "csv", None, args.precision)
        print(sentence, file=sys.stderr)  # stdout stays CSV
    else:
        print_lesson(all_sections, args.lang, args.precision, file=sys.stdout)
    return 0 if reproduced else 1
