"""Reading and encoding text: a file in pieces, JSONL documents, and token ids as encoding the whole text gives them.

A plain text file is one document. It is read in pieces of ``piece_bytes``
and never held whole: the tokens of a piece are committed up to a *safe cut*
(a newline between two non-blank characters, else a single space between two
non-blank characters) at least :data:`MARGIN` characters before the end of
what was read, and the text from a safe cut :data:`MARGIN` characters before
that is encoded again with the next piece (its tokens already committed are
dropped), so that the ids equal those of encoding the whole text for
tokenizers whose pre-tokenization is local (byte-level BPE as in GPT-2,
Llama 3 and Qwen2; SentencePiece models, whose extra leading space at the
start of an input falls in the text encoded twice). A JSONL file holds one
document per line, a JSON object whose ``field`` (default ``"text"``) is the
document's text.
"""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .._validation import InputError

__all__ = [
    "MARGIN",
    "MAX_DOCUMENT_BYTES",
    "PIECE_BYTES",
    "WHITESPACE",
    "Encode",
    "json_lines",
    "jsonl_documents",
    "read_pieces",
    "text_tokens",
    "word_count",
]

PIECE_BYTES = 1 << 20
"""Bytes of a plain text file read, decoded and encoded at a time."""

MAX_DOCUMENT_BYTES = 1 << 28
"""The longest line of a JSONL file (one document) read: 256 MiB."""

MARGIN = 256
"""Characters of context kept on either side of where the encoding of one piece hands over to the next."""

WHITESPACE = re.compile(r"\s+")
_LINE_CUT = re.compile(r"(?<=\S\n)(?=\S)")
_SPACE_CUT = re.compile(r"(?<=\S)(?= \S)")

Encode = Callable[[str], tuple[Sequence[int], Sequence[tuple[int, int]]]]
"""``text -> (ids, offsets)``: token ids without special tokens and each token's ``(start, end)`` characters."""


def word_count(text: str) -> int:
    """``len(re.split(r"\\s+", text))``: the harness's word count of a document."""
    return sum(1 for _ in WHITESPACE.finditer(text)) + 1


def read_pieces(path: str | os.PathLike[str], piece_bytes: int) -> Iterator[tuple[str, int]]:
    """The text of a UTF-8 file, ``piece_bytes`` at a time, with each piece's size in bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        while True:
            raw = handle.read(piece_bytes)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                bad = (pending + raw)[exc.start : exc.start + 1]
                at = offset - len(pending) + exc.start
                raise InputError(f"{os.fspath(path)}: not UTF-8 text: byte {at} is {bad!r}") from None
            offset += len(raw)
            if not raw:
                return
            yield text, len(raw)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system.

    Encoding a 1 MiB piece allocates and frees hundreds of MB of small
    native and Python objects; glibc keeps the freed pages of a fragmented
    heap, so without this the resident memory of a long file grows with
    every piece (measured: 0.5 GB more after 8 MB of text) although nothing
    is still referenced.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _last_cut(text: str, lo: int, hi: int) -> int | None:
    """The last safe cut ``c`` with ``lo < c < hi``: after a newline, else before a space, between non-blanks."""
    for pattern in (_LINE_CUT, _SPACE_CUT):
        last = None
        for match in pattern.finditer(text, lo + 1, hi):
            last = match.start()
        if last is not None:
            return last
    return None


def text_tokens(pieces: Iterable[str], encode: Encode, *, max_carry: int = 16 * PIECE_BYTES) -> Iterator[list[int]]:
    """The token ids of the concatenated ``pieces``, as encoding the whole text would give them, chunk by chunk.

    Each round encodes ``carry + piece``, whose first ``done`` characters
    are already committed, and commits the tokens that start at or after
    ``done`` and end by the last safe cut at least ``MARGIN`` characters
    before the end of the text (so every committed token has its right
    context). The text from a safe cut at least ``MARGIN`` characters
    before the committed end is carried over and encoded again, so that the
    next round's tokens have their left context too (and an extra leading
    space some tokenizers put at the start of an input falls in what is
    skipped). Without a cut the text is carried whole, up to ``max_carry``
    characters, beyond which all of it is committed.
    """
    carry, done = "", 0
    stream = iter(pieces)
    final = False
    while not final:
        piece = next(stream, None)
        final = piece is None
        text = carry + (piece or "")
        cut = len(text) if final else _last_cut(text, done, len(text) - MARGIN + 1)
        if cut is None:
            if len(text) <= max_carry:
                carry = text
                continue
            cut = len(text)
        ids, offsets = encode(text)
        committed = [
            (int(i), end) for i, (start, end) in zip(ids, offsets, strict=True) if start >= done and end <= cut
        ]
        yield [i for i, _ in committed]
        del ids, offsets
        _trim_heap()
        done = max((end for _, end in committed), default=done)
        origin = _last_cut(text, -1, done - MARGIN + 1) or 0
        carry, done = text[origin:], done - origin


def json_lines(path: str | os.PathLike[str], what: str) -> Iterator[tuple[int, str, Any, int]]:
    """``(line, where, value, bytes_read)`` for each non-blank line of a JSON-lines file.

    ``where`` is ``"FILE, line N"``; a line that is not JSON is an
    :class:`InputError` saying that it is not ``what``. A line longer than
    :data:`MAX_DOCUMENT_BYTES` is an error, found after reading that many
    bytes of it, not the whole line.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_DOCUMENT_BYTES + 1), b""), start=1):
            where = f"{os.fspath(path)}, line {number}"
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise InputError(f"{where}: longer than {MAX_DOCUMENT_BYTES >> 20} MiB; {what} is one line")
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deeply, a 5000-digit number
                raise InputError(f"{where}: not {what}: {exc}") from None
            yield number, where, value, len(raw)


def jsonl_documents(path: str | os.PathLike[str], text_field: str) -> Iterator[tuple[int, str, str, int]]:
    """``(line, id, text, bytes_read)`` for each line of a JSONL file (blank lines skipped).

    The id is the record's ``id`` field, else its line number.
    """
    for number, where, record, size in json_lines(path, "a JSON object"):
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise InputError(f"{where}: expected an object with a string field {text_field!r}")
        yield number, str(record.get("id", number)), text, size
