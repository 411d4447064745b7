"""What every command prints with: tables (rich, CSV or JSON), a progress bar on stderr, and figures.

Output goes to stdout, diagnostics to stderr. Tables take the terminal's
width; floats show a chosen number of significant digits, while JSON keeps
every digit (NaN as ``null``, infinities as ``"inf"``, see
:func:`crossentropy._formatting.jsonable`).

Every string that may come from the user (a file name, a column, a JSONL
document's id, an argument) reaches the terminal through :func:`printable`:
control characters (an escape sequence that sets the window title, a
carriage return that overwrites a line) and invisible format characters
(bidirectional overrides) are written as escapes, the way ``repr`` writes
them, and table cells are plain text, never rich markup, so ``[bold]x`` shows
as written. Tables, the error line (:func:`error_line`), warnings and the
progress bar all use it.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import InputError
from .._formatting import jsonable

__all__ = [
    "DEFAULT_PRECISION",
    "Fixed",
    "Table",
    "discard_stdout",
    "error_line",
    "number",
    "plot_module",
    "print_note",
    "print_tables",
    "printable",
    "progress_bar",
    "save_figure",
    "stdout_is_devnull",
    "write_figure",
    "write_report",
]

DEFAULT_PRECISION = 6
"""Significant digits of a float in a table."""

Table = tuple[str, list[str], list[list[Any]]]
"""A titled table: ``(title, headers, rows)``."""


_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
"""Unicode categories written as escapes: controls, format characters (bidi overrides), surrogates, private use
and line or paragraph separators."""
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    r"""``text`` safe to write to a terminal: control and invisible format characters as ``repr``-style escapes.

    Examples
    --------
    >>> print(printable("id\x1b]0;PWN\x07 [bold]x\u202e"))
    id\x1b]0;PWN\x07 [bold]x\u202e
    >>> printable("한국어 names stay") == "한국어 names stay"
    True
    """
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)


def error_line(message: str) -> str:
    """A message as one printable line: its line breaks (and the blanks around them) become one space."""
    return printable(re.sub(r"\s*[\r\n]+\s*", " ", message).strip())


def _json_text(text: str) -> str:
    """JSON text with the characters :func:`printable` escapes written as ``\\uXXXX`` (the same JSON value)."""
    if text.isprintable():
        return text

    def escape(c: str) -> str:
        if unicodedata.category(c) not in _UNSAFE_CATEGORIES or c == "\n":
            return c
        code = ord(c)
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return "".join(escape(c) for c in text)


@dataclass(frozen=True)
class Fixed:
    """A table cell of a float with a fixed number of decimals, so that a column's decimal points align.

    A value too small to show a digit in that many decimals is written in
    scientific notation rather than as 0 (``3.1e-07``, never ``0.0000``).
    """

    value: float | None
    decimals: int = 4

    def __str__(self) -> str:
        v = self.value
        if v is None or math.isnan(v):
            return "—" if v is None else "nan"
        if v != 0 and abs(v) < 0.5 * 10.0**-self.decimals:
            return f"{v:.1e}"
        return f"{v:.{self.decimals}f}"


def number(value: Any, precision: int = DEFAULT_PRECISION) -> str:
    """A table cell: floats to ``precision`` significant digits, ``—`` for a missing value, :class:`Fixed`
    cells with their decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, Fixed):
        return str(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return "nan" if math.isnan(v) else f"{v:.{precision}g}"
    return printable(str(value))


def print_tables(tables: list[Table], fmt: str, payload: Any, precision: int = DEFAULT_PRECISION) -> None:
    """Print titled tables as rich tables, CSV sections, or ``payload`` as JSON.

    Tables take the terminal's width (80 columns when stdout is not a
    terminal and ``COLUMNS`` is unset); floats show ``precision``
    significant digits, while JSON keeps every digit. Strings in the
    titles and cells are shown as written (:func:`printable`; never markup).
    """
    if fmt == "json":
        sys.stdout.write(_json_text(json.dumps(jsonable(payload), indent=2, ensure_ascii=False)) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for title, headers, rows in tables:
            writer.writerow(["section", *headers])
            for row in rows:
                writer.writerow([printable(title), *(number(v, precision) for v in row)])
        return
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(file=sys.stdout, soft_wrap=False)
    for title, headers, rows in tables:
        table = RichTable(title=Text(printable(title)) if title else None, title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(Text(h), justify="left" if i == 0 else "right", overflow="fold")
        for row in rows:
            table.add_row(*(Text(number(v, precision)) for v in row))
        console.print(table)


def print_note(text: str, fmt: str = "table") -> None:
    """A sentence under the tables, on stdout, wrapped to the terminal's width (table format only)."""
    if fmt != "table":
        return
    from rich.console import Console

    Console(file=sys.stdout, soft_wrap=False, highlight=False).print(text, markup=False)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)


@contextlib.contextmanager
def progress_bar(show: bool | None, label: str, file: str, unit: str, amount: str) -> Iterator[Any]:
    """A transient progress bar on stderr while the block runs, or none (``show`` None: when stderr is a terminal).

    It reads ``<label> <file>``, the bar, the amount done (``amount``:
    ``"percent"`` or ``"bytes"``), a count of ``unit``, the elapsed time and
    the ETA. Yields ``update(**fields)`` (rich's ``Progress.update`` of the
    task: ``total``, ``completed``, ``count``), or None without a bar.
    """
    if not (show if show is not None else sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"{label} {{task.fields[file]}}", markup=False),
        BarColumn(),
        DownloadColumn() if amount == "bytes" else TaskProgressColumn(),
        TextColumn(f"{{task.fields[count]:,}} {unit}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=True,
        console=_stderr_console(),
    )
    task = bar.add_task(label, total=None, file=printable(file), count=0)
    with bar:
        yield functools.partial(bar.update, task)


def plot_module() -> Any:
    """:mod:`crossentropy.plot`, with matplotlib on its non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from .. import plot

    return plot


def save_figure(path: str, draw: Callable[[Any], Any]) -> None:
    """A 6.4 x 4 inch figure of one plot, drawn by ``draw(ax)``, written to ``path``."""
    plot_module()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    draw(fig.add_subplot())
    write_figure(fig, path)


def write_report(path: str, page: str) -> None:
    """Write an HTML report atomically (written whole or not at all); one line on stderr."""
    from ..io import atomic_write

    try:
        with atomic_write(path, "w") as handle:
            handle.write(page)
    except OSError as exc:
        raise InputError(f"cannot write the report {path}: {exc.strerror or exc}") from None
    print(f"wrote {printable(path)}", file=sys.stderr)


def write_figure(fig: Any, path: str) -> None:
    """Write ``fig`` atomically (a full disk never leaves a truncated file); one line on stderr."""
    from ..io import save_figure as save

    try:
        save(fig, path, dpi=100)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write the figure {path}: {exc}") from None
    print(f"wrote {printable(path)}", file=sys.stderr)


def stdout_is_devnull() -> bool:
    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def discard_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
