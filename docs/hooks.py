"""MkDocs hook: generate the pages and figures that come from the code, before every build.

- ``generated/cli.md``: the command-line reference, from ``crossentropy.cli.build_parser()``;
- ``generated/*.png``: the seed texts' figures, drawn by ``crossentropy tutorial --plots``.

Nothing here is committed (``docs/generated/`` is ignored by git).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

GENERATED = Path(__file__).with_name("generated")


def _cli_reference() -> str:
    from crossentropy.cli import build_parser

    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the argument parser at build time.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines += [f"## `crossentropy {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def on_pre_build(config: Any, **kwargs: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from crossentropy._tutorial import write_plots

    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "cli.md").write_text(_cli_reference(), encoding="utf-8")
    write_plots(GENERATED)
