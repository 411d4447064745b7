"""MkDocs hook: generate the pages and figures that come from the code, and render the maths.

- ``generated/cli.md``: the command-line reference, from ``crossentropy.cli.build_parser()``;
- ``generated/*.png``: the seed texts' figures, drawn by ``crossentropy tutorial --plots``
  (skipped, with a message, where matplotlib is not installed: the pages then show
  each figure's caption in place of the image);
- maths: ``$$ ... $$`` (display) and ``\\( ... \\)`` (inline) outside code become MathML
  with latex2mathml, which browsers render natively, with no script and no network.
  A display formula sits in a ``div.math-display`` that scrolls sideways when the
  formula is wider than the screen (``stylesheets/extra.css`` shades the edge that
  hides more of it); it takes the keyboard focus, so it scrolls with the arrow keys.
  Without latex2mathml the TeX source is shown as code.

Nothing here is committed (``docs/generated/`` is ignored by git).
"""

from __future__ import annotations

import argparse
import html
import logging
import re
from pathlib import Path
from typing import Any

GENERATED = Path(__file__).with_name("generated")
log = logging.getLogger("mkdocs.hooks.crossentropy")

_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"\\\((.+?)\\\)")


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


def _figures() -> None:
    try:
        import matplotlib
    except ImportError:
        log.info("matplotlib is not installed: the tutorial's figures are skipped (pip install 'crossentropy[plot]')")
        return
    matplotlib.use("Agg")
    from crossentropy._tutorial_figures import write_plots

    write_plots(GENERATED)


def on_pre_build(config: Any, **kwargs: Any) -> None:
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "cli.md").write_text(_cli_reference(), encoding="utf-8")
    _figures()


def _mathml(tex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert
    except ImportError:
        code = html.escape(tex.strip())
        return f"<pre><code>{code}</code></pre>" if display else f"<code>{code}</code>"
    mathml = convert(tex.strip(), display="block" if display else "inline")
    return f'<div class="math-display" tabindex="0">{mathml}</div>' if display else mathml


def render_maths(markdown: str) -> str:
    """Replace ``$$...$$`` and ``\\(...\\)`` outside code with MathML (or with code, without latex2mathml)."""
    protected: list[str] = []

    def keep(match: re.Match[str]) -> str:
        protected.append(match.group(0))
        return f"\x00{len(protected) - 1}\x00"

    text = _CODE_SPAN.sub(keep, _FENCE.sub(keep, markdown))
    text = _DISPLAY.sub(lambda m: "\n\n" + _mathml(m.group(1), True) + "\n\n", text)
    text = _INLINE.sub(lambda m: _mathml(m.group(1), False), text)
    return re.sub("\x00(\\d+)\x00", lambda m: protected[int(m.group(1))], text)


_FIGURE = re.compile(r"!\[([^\]]*)\]\((generated/[^)\s]+\.png)\)")


def _missing_figures(markdown: str) -> str:
    """A generated figure that was not drawn (no matplotlib) becomes its caption, not a broken link."""

    def replace(match: re.Match[str]) -> str:
        if (GENERATED.parent / match.group(2)).exists():
            return match.group(0)
        return f"*(Figure: {match.group(1)}. Drawing it needs matplotlib.)*"

    return _FIGURE.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return render_maths(_missing_figures(markdown))
