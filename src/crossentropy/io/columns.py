"""Choosing columns by name or glob pattern, and naming the columns a file has in messages."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from .._validation import InputError

__all__ = ["describe_columns", "select_columns"]


def describe_columns(names: Sequence[str]) -> str:
    """``columns are 'a', 'b'``, with a hint when a wrong delimiter seems to have merged them."""
    shown = ", ".join(map(repr, names[:20])) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    listing = f"columns are {shown}"
    if len(names) == 1 and any(d in names[0] for d in ";\t|"):
        listing += " (one column only: is the delimiter right? see --delimiter)"
    return listing


def select_columns(names: Sequence[str], patterns: Sequence[str], what: str, source: str) -> list[str]:
    """Column names matching glob ``patterns``, in the order of the patterns, then of the file.

    Linear in the number of columns for each pattern. Raises InputError
    naming ``source`` (the file), the pattern and the available columns when
    a pattern matches nothing.
    """
    chosen: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            match = re.compile(fnmatch.translate(pattern)).match
            hits = [c for c in names if match(c)]
        else:
            hits = [pattern] if pattern in set(names) else []
        if not hits:
            raise InputError(f"{source}: no {what} column matches {pattern!r}; {describe_columns(names)}")
        for h in hits:
            if h not in seen:
                seen.add(h)
                chosen.append(h)
    return chosen
