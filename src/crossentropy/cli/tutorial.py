"""``crossentropy tutorial``: every worked example of the seed texts, reproduced, in English or Korean."""

from __future__ import annotations

import argparse
import sys

from .. import InputError
from .arguments import Commands, add_format, add_precision
from .output import print_tables

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    """Add the ``tutorial`` command."""
    tutorial = commands.add_parser(
        "tutorial",
        help="reproduce every worked example of the seed texts",
        epilog="example:\n  crossentropy tutorial --plots figures/ --lang ko",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tutorial.add_argument("--plots", metavar="DIR", help="write the seed texts' figures as PNG files into DIR")
    tutorial.add_argument("--lang", choices=["en", "ko"], default="en", help="language of the text (default en)")
    add_format(tutorial)
    add_precision(tutorial)
    tutorial.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print every section's text and checks; 1 when a number of the texts does not reproduce."""
    from .._tutorial import sections, write_plots

    lang = args.lang
    all_sections = sections()
    if args.plots:
        try:
            for path in write_plots(args.plots):
                print(f"wrote {path}", file=sys.stderr)
        except OSError as exc:
            raise InputError(f"cannot write the plots to {args.plots}: {exc}") from None
    failed = [c for s in all_sections for c in s.checks if c.ok is False]
    if args.format == "json":
        payload = {
            "sections": [
                {
                    "key": s.key,
                    "title": s.title[lang],
                    "text": s.text[lang],
                    "checks": [
                        {"quantity": c.label[lang], "computed": c.computed, "reported": c.reported, "ok": c.ok}
                        for c in s.checks
                    ],
                }
                for s in all_sections
            ],
            "all_reproduced": not failed,
        }
        print_tables([], "json", payload)
    else:
        headers = ["quantity", "computed", "text", "ok"] if lang == "en" else ["값", "계산", "원문", "일치"]
        verdict = {True: "yes", False: "NO", None: "—"} if lang == "en" else {True: "예", False: "아니오", None: "—"}
        tables = [
            (
                f"[{s.key}] {s.title[lang]}",
                headers,
                [[c.label[lang], c.computed, c.reported or "", verdict[c.ok]] for c in s.checks],
            )
            for s in all_sections
        ]
        if args.format == "table":
            from rich.console import Console
            from rich.markup import escape

            console = Console(file=sys.stdout)
            for s, table in zip(all_sections, tables, strict=True):
                console.print(f"\n[bold]{escape(table[0])}[/bold]\n{escape(s.text[lang])}", highlight=False)
                print_tables([("", table[1], table[2])], "table", None, args.precision)
        else:
            print_tables(tables, "csv", None, args.precision)
        total = sum(1 for s in all_sections for c in s.checks if c.ok is not None)
        message = (
            f"{total - len(failed)} of {total} reported numbers reproduced"
            if lang == "en"
            else f"원문의 수치 {total}개 중 {total - len(failed)}개 재현"
        )
        print(message, file=sys.stderr)
    return 1 if failed else 0
