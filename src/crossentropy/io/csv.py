"""The CSV reader: blocks of whole lines, parsed by pyarrow (or line by line), each row knowing its line.

A CSV file is cut into blocks of whole lines by this module and each block is
parsed by pyarrow, the same way for a file, standard input or a FIFO, so both
give the same answer; values are parsed as text per block, never typed from a
first block. A block whose lines pyarrow cannot take one for one (a quote left
open joins lines; invalid UTF-8; thousands of columns) is parsed line by line
with :mod:`csv`. A file is read ahead in a second thread while the caller
scores the previous block; a data set is split into byte ranges of whole
lines (:meth:`Csv.split`), so Dask workers read their own.
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any, ClassVar

import numpy as np

from .._validation import InputError
from .batches import Batch, require_pyarrow
from .columns import describe_columns
from .pieces import Format, Piece, Table, file_size, open_binary

__all__ = ["CSV_BLOCK_BYTES", "MAX_LINE_BYTES", "WIDE_COLUMNS", "Csv", "line_at", "open_stream"]

CSV_BLOCK_BYTES = 1 << 22
"""Bytes read at a time from a CSV file; a block is cut at its last line end."""
MAX_LINE_BYTES = 1 << 28
"""The longest CSV line accepted (256 MiB)."""
WIDE_COLUMNS = 1000
"""CSV files with more columns are parsed line by line (pyarrow's cost grows with the columns)."""
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")


def _read_header(stream: IO[bytes], source: str, delimiter: str) -> tuple[list[str], int, int, bytes]:
    """Column names from the first non-empty line: ``(names, its line number, bytes used, bytes read beyond)``.

    Linear in the header's length: each read is appended in place and only
    the new bytes are searched for the line end.
    """
    buffer = bytearray()
    start = 0
    scanned = 0  # no line end starts in buffer[start:scanned] (but a CR there may be the first half of CRLF)
    line = 0
    while True:
        cut = _first_line_end(buffer, max(start, scanned - 1))
        if cut is None:
            scanned = len(buffer)
            more = stream.read(1 << 20)
            if more:
                if len(buffer) - start > MAX_LINE_BYTES:
                    raise InputError(
                        f"{source}: line {line + 1} (the header) is longer than {MAX_LINE_BYTES >> 20} MiB"
                    )
                buffer += more
                continue
            if not buffer[start:].strip(b"\r\n"):
                raise InputError(f"{source}: the file is empty")
            cut = len(buffer)
        line += 1
        raw = bytes(buffer[start:cut].rstrip(b"\r\n"))
        if raw:
            break
        start = scanned = cut
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source}: line {line}: the header is not UTF-8 text (byte {raw[exc.start]:#04x} at position {exc.start})"
        ) from None
    try:
        names = next(csv.reader([text], delimiter=delimiter, quotechar='"'))
    except csv.Error as exc:
        raise InputError(f"{source}: line {line}: cannot read the header: {_csv_problem(exc)}") from None
    counts = Counter(names)
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    if duplicates:
        raise InputError(f"{source}: duplicate column names {', '.join(map(repr, duplicates[:10]))}")
    return names, line, cut, bytes(buffer[cut:])


def _csv_problem(exc: csv.Error) -> str:
    """What :mod:`csv` could not read, in words (its field limit is the usual cause)."""
    if "field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit():,} characters"
    return str(exc)


def _first_line_end(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """Index just past the first line end at or after ``start`` (None when there is none yet)."""
    n = buffer.find(b"\n", start)
    r = buffer.find(b"\r", start, n if n >= 0 else len(buffer))
    if r >= 0:
        if r + 1 == len(buffer):
            return None  # a CR at the end of the buffer may be the first half of CRLF
        return r + 2 if buffer[r + 1 : r + 2] == b"\n" else r + 1
    return n + 1 if n >= 0 else None


@dataclass(frozen=True)
class _Lines:
    """Line counts of a block: line ends, and non-empty lines (CSV rows)."""

    ends: int
    rows: int


def _scan_lines(chunk: bytes) -> _Lines:
    """Count a block's line ends (LF, CRLF, CR, as pyarrow reads them) and non-empty lines, vectorised."""
    if chunk.find(b"\r") >= 0:
        lines = chunk.splitlines()
        ends = len(lines) - (0 if chunk.endswith((b"\n", b"\r")) else 1)
        return _Lines(ends, len(lines) - lines.count(b""))
    newline = np.frombuffer(chunk, dtype=np.uint8) == 10
    ends = int(np.count_nonzero(newline))
    empty = int(np.count_nonzero(newline[1:] & newline[:-1])) + int(newline[0]) if newline.size else 0
    return _Lines(ends, ends - empty + (0 if chunk.endswith(b"\n") else 1))


def _count_lines(chunk: bytes) -> int:
    """Line ends in ``chunk``."""
    return _scan_lines(chunk).ends if chunk else 0


def open_stream(path: str, delimiter: str | None) -> Table:
    """A table of one piece reading CSV from standard input (``-``), a FIFO or a device, from its header on."""
    name = "<stdin>" if path == "-" else path
    if path == "-":
        if sys.stdin is None:
            raise InputError("<stdin>: standard input is closed")
        stream: IO[bytes] = sys.stdin.buffer
    else:
        stream = open_binary(path)
    sep = delimiter or ("\t" if ".tsv" in path.lower() else ",")
    names, line, used, rest = _read_header(stream, name, sep)
    piece = Piece(
        Csv(delimiter), path, name, first=used, header=tuple(names), delimiter=sep, first_line=line + 1,
        stream=(stream, rest),
    )  # fmt: skip
    return Table(name, "csv", names, [], None, None, [piece], [name])


@dataclass(frozen=True)
class Csv(Format):
    """CSV files (``.csv``, ``.tsv``, ``.txt``, optionally gzipped), with the caller's delimiter.

    ``delimiter`` ``None`` reads each file with ``,``, or a tab for a
    ``.tsv`` name; the delimiter of each file is kept in its pieces.
    """

    delimiter: str | None = None
    name: ClassVar[str] = "csv"
    suffixes: ClassVar[tuple[str, ...]] = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")

    def open(self, files: list[str], shown: str) -> Table:
        """Read each file's header (they must agree); one piece per file, covering its data rows."""
        pieces = []
        names: list[str] | None = None
        total = 0
        for i, f in enumerate(files):
            sep = self.delimiter or ("\t" if ".tsv" in f.lower() else ",")
            with _csv_stream(f) as stream:
                header, line, used, _ = _read_header(stream, f, sep)
            if names is None:
                names = header
            elif header != names:
                raise InputError(f"{f}: its columns differ from those of {files[0]}")
            size = file_size(f) if not f.lower().endswith(".gz") else -1
            total += max(size, 0)
            pieces.append(
                Piece(self, f, f, i, first=used, stop=size, header=tuple(header), delimiter=sep, first_line=line + 1)
            )
        assert names is not None
        sizes = all(p.stop >= 0 for p in pieces)
        return Table(shown, "csv", names, [], None, total if sizes else None, pieces, files)

    def batches(self, piece: Piece, columns: list[str], batch_rows: int) -> Iterator[Batch]:
        """Blocks of whole lines of about :data:`CSV_BLOCK_BYTES`, handed out ``batch_rows`` rows at most at a time.

        A file's next block is read and parsed in a second thread while the
        caller works on this one (not a stream's: a thread blocked on an idle
        pipe could not be stopped).
        """
        blocks = _csv_batches(piece, columns)
        source = blocks if piece.stream is not None else _read_ahead(blocks)
        begin = piece.first  # the file offset where the block starts
        try:
            for block in source:
                n, end = len(block), block.end_offset
                if n <= batch_rows:
                    yield block
                else:
                    for a in range(0, n, batch_rows):
                        part = block.slice(a, min(a + batch_rows, n))
                        if end is not None:  # progress: the block's bytes shared out by rows
                            part.end_offset = begin + (end - begin) * (a + len(part)) // n
                        yield part
                begin = begin if end is None else end
        finally:
            source.close()

    def split(self, piece: Piece, table: Table, target_bytes: int) -> list[Piece]:
        """Byte ranges of about ``target_bytes``; each piece starts at its first whole line when it is read."""
        if piece.stream is not None or piece.stop < 0:
            return [piece]  # a stream, or a compressed file: no byte to seek to
        line = piece.first_line
        return [
            replace(
                piece, first=a, stop=min(a + target_bytes, piece.stop), first_line=None if a > piece.first else line
            )
            for a in range(piece.first, piece.stop, max(1, target_bytes))
        ]

    def size(self, piece: Piece) -> int | None:
        """The piece's byte range (unknown for a stream or a compressed file)."""
        return piece.stop - piece.first if piece.stop >= 0 else None


@contextlib.contextmanager
def _csv_stream(path: str) -> Iterator[IO[bytes]]:
    handle = open_binary(path)
    try:
        if path.lower().endswith(".gz"):
            import gzip

            with gzip.GzipFile(fileobj=handle) as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield handle
    finally:
        handle.close()


def _csv_batches(piece: Piece, columns: list[str]) -> Generator[Batch, None, None]:
    if piece.stream is not None:
        stream, pending = piece.stream
        yield from _csv_blocks(piece, stream, pending, piece.first, columns)
        return
    with _csv_stream(piece.path) as stream:
        if piece.path.lower().endswith(".gz"):
            _skip(stream, piece.first, piece.source)
            yield from _csv_blocks(piece, stream, b"", piece.first, columns)
            return
        start = piece.first
        pending = b""
        if start > 0 and piece.first_line is None:
            stream.seek(start - 1)
            pending, start = _to_line_start(stream, start - 1, piece)
            if pending is None:
                return
        else:
            stream.seek(start)
        yield from _csv_blocks(piece, stream, pending, start, columns)


def _skip(stream: IO[bytes], count: int, source: str) -> None:
    while count > 0:
        data = stream.read(min(count, 1 << 20))
        if not data:
            raise InputError(f"{source}: the file ended early")
        count -= len(data)


def _to_line_start(stream: IO[bytes], position: int, piece: Piece) -> tuple[Any, int]:
    """From byte ``position`` (just before the piece), the bytes from the first line start on, and its offset.

    The bytes before the first line end are dropped as they are read, so
    memory and time stay linear however long that line is.
    """
    buffer = bytearray()
    dropped = 0
    while True:
        data = stream.read(1 << 16)
        buffer += data
        cut = _first_line_end(buffer)
        if cut is None and data and buffer[-1:] == b"\r":
            continue
        if cut is None and not data:
            return None, 0
        if cut is not None:
            begin = position + dropped + cut
            if piece.stop >= 0 and begin >= piece.stop:
                return None, 0
            return bytes(buffer[cut:]), begin
        dropped += len(buffer)
        buffer.clear()
        if dropped > MAX_LINE_BYTES:
            raise InputError(f"{piece.source}: a line near byte {position} is longer than {MAX_LINE_BYTES >> 20} MiB")


def _csv_blocks(piece: Piece, stream: IO[bytes], pending: bytes, offset: int, columns: list[str]) -> Iterator[Batch]:
    """Blocks of whole lines from ``stream``, parsed by pyarrow; ``offset`` is the file offset of ``pending``."""
    pa = require_pyarrow("reading CSV")
    header = list(piece.header)
    known = set(header)
    missing = [c for c in columns if c not in known]
    if missing:
        raise InputError(f"{piece.source}: no column {missing[0]!r}; {describe_columns(header)}")
    read = pa.csv.ReadOptions(column_names=header, block_size=1 << 20)
    convert = pa.csv.ConvertOptions(
        include_columns=columns,
        column_types=dict.fromkeys(columns, pa.binary()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=False,
    )
    line = piece.first_line
    row = 0
    end = piece.stop if piece.stop >= 0 and piece.stream is None else None
    eof = False
    has_end = _last_line_end(pending) is not None
    while True:
        # A block is the bytes from `offset` to CSV_BLOCK_BYTES past it (more while they hold no line end), cut at
        # its last line end: a function of the data alone, so a file, standard input and a FIFO are cut into the
        # same blocks and batches, and every sum is taken in one order (the same last digits).
        growing = bytearray(pending)
        while not eof:
            limit = end - offset if end is not None else None
            if limit is not None and len(growing) >= limit:
                if limit <= 0 or _first_line_end(growing, limit - 1) is not None:
                    break
            elif len(growing) >= CSV_BLOCK_BYTES and has_end:
                break
            if len(growing) > MAX_LINE_BYTES and not has_end:
                where = f"line {line}" if line is not None else f"the line at byte {offset}"
                raise InputError(f"{piece.source}: {where} is longer than {MAX_LINE_BYTES >> 20} MiB")
            try:
                data = stream.read(CSV_BLOCK_BYTES - len(growing) % CSV_BLOCK_BYTES)
            except OSError as exc:
                raise InputError(f"{piece.source}: cannot read: {exc.strerror or exc}") from None
            if not data:
                eof = True
            has_end = has_end or b"\n" in data or b"\r" in data
            growing += data
        block = bytes(growing)
        del growing
        limit = end - offset if end is not None else None
        if limit is not None and len(block) >= limit:
            cut = (_first_line_end(block, limit - 1) or len(block)) if limit > 0 else 0
            chunk, pending, done = block[:cut], b"", True
        elif eof:
            chunk, pending, done = block, b"", True
        else:
            cut = _last_line_end(block) or len(block)
            chunk, pending, done = block[:cut], block[cut:], False
            has_end = _last_line_end(pending) is not None
        counts = _scan_lines(chunk) if chunk else _Lines(0, 0)
        if counts.rows:
            if len(header) > WIDE_COLUMNS or not _is_utf8(chunk):
                batch = _parse_lines(piece, chunk, offset, line, row, columns)
            else:
                batch = _parse_block(pa, piece, chunk, offset, line, row, read, convert, columns, counts.rows)
            batch.end_offset = offset + len(chunk)
            row += batch.num_rows
            yield batch
        if line is not None:
            line += counts.ends
        offset += len(chunk)
        if done:
            return


def _last_line_end(block: bytes) -> int | None:
    n = block.rfind(b"\n")
    if n >= 0:
        return n + 1
    r = block.rfind(b"\r")
    if r >= 0 and r + 1 < len(block):
        return r + 1
    return None


def _is_utf8(chunk: bytes) -> bool:
    if chunk.isascii():
        return True
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_lines(piece: Piece, chunk: bytes, offset: int, line: int | None, row: int, columns: list[str]) -> Batch:
    """Parse a block of CSV line by line with :mod:`csv`; the cells' text is then converted as pyarrow's is.

    For files with thousands of columns (pyarrow's cost grows with them) and
    for blocks where an unbalanced quote would join lines.
    """
    width = len(piece.header)
    index = {name: j for j, name in enumerate(piece.header)}
    fields: list[list[str]] = []
    lines: list[int] = []
    offsets: list[int] = []
    parsed: list[bool] = []
    details: dict[int, str] = {}
    for i, m in enumerate(_LINE.finditer(chunk)):
        if not m.group(1):
            continue
        text = m.group(1).decode("utf-8", "surrogateescape")
        try:
            values = next(csv.reader([text], delimiter=piece.delimiter, quotechar='"'))
        except csv.Error as exc:  # a field beyond the csv module's limit: a row that cannot be read
            values, details[len(lines)] = [], _csv_problem(exc)
        else:
            if len(values) != width:
                details[len(lines)] = f"{len(values)} fields, expected {width}"
            else:
                fields.append(values)
        lines.append(i)
        offsets.append(m.start())
        parsed.append(len(values) == width)

    def locate(rows: Sequence[int]) -> list[tuple[int | None, int | None]]:
        return [(None if line is None else line + lines[r], offset + offsets[r]) for r in rows]

    placement = None if all(parsed) else np.flatnonzero(np.asarray(parsed))
    cells = list(zip(*fields, strict=True)) if fields else [() for _ in range(width)]
    text = {name: list(cells[index[name]]) for name in columns}
    return Batch(piece.source, row, text, len(lines), locate=locate, placement=placement, broken_detail=details)


def _parse_block(
    pa: Any,
    piece: Piece,
    chunk: bytes,
    offset: int,
    line: int | None,
    row: int,
    read: Any,
    convert: Any,
    columns: list[str],
    lines_of_data: int,
) -> Batch:
    broken: list[tuple[str, int, int]] = []

    def invalid(entry: Any) -> str:
        broken.append((entry.text, entry.actual_columns, entry.expected_columns))
        return "skip"

    parse = pa.csv.ParseOptions(delimiter=piece.delimiter, invalid_row_handler=invalid)
    try:
        try:
            table = pa.csv.read_csv(
                pa.py_buffer(chunk), read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            broken.clear()  # a line longer than pyarrow's block: parse the chunk as one block
            whole = pa.csv.ReadOptions(column_names=read.column_names, block_size=len(chunk) + 1)
            table = pa.csv.read_csv(
                pa.py_buffer(chunk), read_options=whole, parse_options=parse, convert_options=convert
            )
    except (pa.ArrowInvalid, OSError) as exc:
        where = f"lines {line}-{line + _count_lines(chunk)}" if line is not None else f"bytes from {offset}"
        raise InputError(f"{piece.source}: {where}: cannot parse as CSV: {exc}") from None

    def layout() -> tuple[list[int], list[int], list[bool]]:
        """For each data line of the chunk: its line index, byte offset, and whether it parsed."""
        lines: list[int] = []
        offsets: list[int] = []
        parsed: list[bool] = []
        pending = Counter(text for text, _, _ in broken)
        fields = {text: f"{actual} fields, expected {expected}" for text, actual, expected in broken}
        for i, m in enumerate(_LINE.finditer(chunk)):
            if not m.group(1):
                continue
            text = m.group(1).decode("utf-8", "replace")
            bad = pending[text] > 0
            if bad:
                pending[text] -= 1
                details[len(lines)] = fields[text]
            lines.append(i)
            offsets.append(m.start())
            parsed.append(not bad)
        return lines, offsets, parsed

    cache: list[tuple[list[int], list[int], list[bool]]] = []
    details: dict[int, str] = {}

    def locate(rows: Sequence[int]) -> list[tuple[int | None, int | None]]:
        if not cache:
            cache.append(layout())
        lines, offsets, _ = cache[0]
        return [
            (None if line is None else line + lines[r], offset + offsets[r]) if r < len(lines) else (None, None)
            for r in rows
        ]

    cols = {c: table.column(c) for c in columns}
    placement = None
    n = table.num_rows
    if lines_of_data != table.num_rows + len(broken):
        # pyarrow saw other rows than the lines (an open quote joins lines): read this block line by line
        return _parse_lines(piece, chunk, offset, line, row, columns)
    if broken:
        cache.append(layout())
        parsed = np.asarray(cache[0][2], dtype=bool)
        if int(parsed.sum()) != table.num_rows:
            return _parse_lines(piece, chunk, offset, line, row, columns)
        placement = np.flatnonzero(parsed)
        n = int(parsed.size)
    return Batch(piece.source, row, cols, n, locate=locate, placement=placement, broken_detail=details)


def line_at(path: str, offset: int) -> int:
    """The 1-based line of a CSV file at byte ``offset``, counted by reading the file up to it.

    For a row found by a reader that started in the middle of the file (a
    Dask piece), which knows its byte offset but not its line.
    """
    lines = 1
    with _csv_stream(path) as stream:
        left = offset
        carriage_return = False
        while left > 0:
            data = stream.read(min(left, 1 << 22))
            if not data:
                break
            lines += _count_lines(data) - (1 if carriage_return and data.startswith(b"\n") else 0)
            carriage_return = data.endswith(b"\r")
            left -= len(data)
    return lines


def _read_ahead(batches: Generator[Batch, None, None]) -> Generator[Batch, None, None]:
    """Read and parse the next block in a second thread while the caller scores this one.

    For files only: a thread blocked on an idle pipe could not be stopped.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="crossentropy-read")
    try:
        following = pool.submit(next, batches, None)
        while True:
            batch = following.result()
            if batch is None:
                return
            following = pool.submit(next, batches, None)
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        batches.close()
