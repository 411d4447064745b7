"""Streaming readers for prediction files (CSV, Parquet, NPY, NPZ) and atomic writes.

:func:`open_table` opens a file, a directory or glob of files, standard
input (``-``), a FIFO or an fsspec URL (``file://``, ``memory://``, ``s3://``
with the matching fsspec package) and describes it as a :class:`Table`: its
columns and a list of :class:`Piece` objects, the units of work that the
scorer reads in order (one process) or hands to Dask workers (many). A piece
yields :class:`Batch` objects of bounded size, so a file of any size is read
in bounded memory:

- CSV is cut into blocks of whole lines by this module and each block is
  parsed by pyarrow, the same way for a file, standard input or a FIFO, so
  both give the same answer; values are parsed as text per block, never
  typed from a first block. Each row knows its line in the file.
- Parquet is read one row group at a time as Arrow record batches.
- NPY is read with ordinary reads from its header's offset (not
  memory-mapped: a file truncated while it is read is an error, not a
  ``SIGBUS``); NPZ members are decompressed as streams, so a compression bomb
  or a member declaring a huge shape costs no memory.

Every problem with a file (missing, empty, truncated, unknown column) raises
:class:`~crossentropy.InputError` whose message names the file. Cells that are
not numbers are not errors here: :meth:`Batch.numeric` marks them, and the
scorer decides (``--on-bad-row``). pyarrow (the ``io`` extra) is imported only
when a CSV or Parquet file is opened.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from crossentropy.io import open_table
>>> path = os.path.join(tempfile.mkdtemp(), "preds.npy")
>>> np.save(path, np.array([[0, 0.9, 0.1], [1, 0.2, 0.8]]))
>>> table = open_table(path)
>>> table.column_names
['0', '1', '2']
>>> [batch.numeric("1").values.tolist() for batch in table.batches()]
[[0.9, 0.2]]
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import glob
import os
import re
import stat
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any

import numpy as np

from ._validation import InputError

__all__ = [
    "Batch",
    "Numeric",
    "Piece",
    "Table",
    "atomic_write",
    "describe_columns",
    "open_table",
    "read_npy_header",
    "save_figure",
    "select_columns",
]

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_BLOCK_BYTES = 1 << 22
"""Bytes read at a time from a CSV file; a block is cut at its last line end."""
MAX_LINE_BYTES = 1 << 28
"""The longest CSV line accepted (256 MiB)."""
NUMBER = r"(?i)^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"


def _pyarrow(purpose: str) -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError:
        raise InputError(f"{purpose} needs pyarrow: pip install 'crossentropy[io]'") from None
    return pyarrow


# --- writing ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears whole or not at all.

    The data go to a temporary file in the same directory, which is flushed,
    synced and renamed over ``path`` when the ``with`` block ends without an
    error; on an error (a full disk, an exception while rendering) the
    temporary file is removed and ``path`` keeps its old content. A path
    that is not a regular file (``/dev/stdout``, a FIFO) is written directly.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; a symbolic link is followed.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        Text encoding (default UTF-8) for ``mode="w"``.

    Raises
    ------
    OSError
        When the directory is not writable or the disk is full.

    Examples
    --------
    >>> import os, tempfile
    >>> from crossentropy.io import atomic_write
    >>> target = os.path.join(tempfile.mkdtemp(), "report.html")
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("<p>done</p>")
    >>> open(target).read()
    '<p>done</p>'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = os.path.realpath(os.fspath(path))
    text = encoding or "utf-8" if mode == "w" else None
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        with open(target, mode, encoding=text) as direct:
            yield direct
        return
    directory, name = os.path.split(target)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(target):
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Save a matplotlib figure through :func:`atomic_write`, in the format its file name says.

    Raises
    ------
    OSError
        When the file cannot be written; ``path`` then keeps its old content.
    ValueError
        For a suffix that matplotlib cannot write.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(f"cannot write a .{suffix} figure; use one of .{', .'.join(sorted(supported))}")
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=suffix, dpi=dpi)


# --- columns --------------------------------------------------------------------------------------------


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


# --- batches ------------------------------------------------------------------------------------------------


@dataclass
class Numeric:
    """One column of a batch as float64, with the cells that are not numbers.

    Attributes
    ----------
    values : numpy.ndarray
        float64 values; NaN where a cell is missing or not a number.
    missing : numpy.ndarray or None
        True where the cell is empty or null (None when there is none).
    invalid : numpy.ndarray or None
        True where the cell holds text that is not a number.
    dtype : numpy.dtype
        The stored precision: float32 or float16 for such columns, float64
        for everything else (text, integers, float64).
    """

    values: np.ndarray[Any, Any]
    missing: np.ndarray[Any, Any] | None = None
    invalid: np.ndarray[Any, Any] | None = None
    dtype: np.dtype[Any] = field(default_factory=lambda: np.dtype(np.float64))


class Batch:
    """Consecutive rows of one piece of a table.

    Attributes
    ----------
    source : str
        The file name, for messages.
    start : int
        Index (0-based, within the piece) of the batch's first row.
    num_rows : int
        Rows in the batch, rows that could not be parsed included.
    columns : dict
        Column name to a 1-D NumPy array, a pyarrow array, or a pyarrow list
        array for list-valued columns.
    broken : numpy.ndarray or None
        Rows of a CSV block that have the wrong number of fields (their
        values read as missing).
    end_offset : int or None
        For CSV, the file offset just past the batch (for progress).
    broken_detail : dict
        For the rows in ``broken``: ``"4 fields, expected 3"``.
    """

    def __init__(
        self,
        source: str,
        start: int,
        columns: dict[str, Any],
        num_rows: int,
        *,
        locate: Callable[[Sequence[int]], list[tuple[int | None, int | None]]] | None = None,
        placement: np.ndarray[Any, Any] | None = None,
        fields: tuple[list[list[str]], dict[str, int]] | None = None,
    ) -> None:
        self._fields: list[list[str]] | None = None if fields is None else fields[0]
        self._header_index: dict[str, int] = {} if fields is None else fields[1]
        self.source = source
        self.start = start
        self.columns = columns
        self.num_rows = num_rows
        self._locate = locate
        self._placement = placement
        self.broken: np.ndarray[Any, Any] | None = None
        self.end_offset: int | None = None
        self.broken_detail: dict[int, str] = {}
        if placement is not None:
            self.broken = np.ones(num_rows, dtype=bool)
            self.broken[placement] = False

    def __len__(self) -> int:
        return self.num_rows

    def locate(self, rows: Sequence[int]) -> list[tuple[int | None, int | None]]:
        """``(line, byte offset)`` in the file of batch rows (0-based); ``None`` where unknown."""
        if self._locate is None:
            return [(None, None) for _ in rows]
        return self._locate(rows)

    def _spread(self, values: np.ndarray[Any, Any], fill: Any) -> np.ndarray[Any, Any]:
        if self._placement is None:
            return values
        out = np.full((self.num_rows, *values.shape[1:]), fill, dtype=values.dtype)
        out[self._placement] = values
        return out

    def numeric(self, name: str) -> Numeric:
        """Column ``name`` as float64, marking cells that are missing or not numbers."""
        if self._fields is not None:
            j = self._header_index[name]
            return self._spread_numeric(_numeric(_binary([row[j] for row in self._fields]), self.source, name))
        return self._spread_numeric(_numeric(self.columns[name], self.source, name))

    def matrix(self, names: Sequence[str]) -> Numeric:
        """Columns ``names`` as one ``(n, len(names))`` :class:`Numeric`, converted in one pass.

        ``missing`` and ``invalid`` are then 2-D; ``dtype`` is the least
        precise stored dtype of the columns.
        """
        if self._fields is not None:
            index = [self._header_index[c] for c in names]
            flat = [row[j] for row in self._fields for j in index]
            out = _numeric(_binary(flat), self.source, names[0])
            shape = (len(self._fields), len(names))
            return self._spread_numeric(_reshape(out, shape, transpose=False))
        raw = [self.columns[c] for c in names]
        if all(isinstance(v, np.ndarray) for v in raw):
            parts = [_numeric(v, self.source, c) for v, c in zip(raw, names, strict=True)]
            dtype = min((p.dtype for p in parts), key=lambda d: d.itemsize)
            return self._spread_numeric(Numeric(np.column_stack([p.values for p in parts]), dtype=dtype))
        pa = _pyarrow("reading these columns")
        chunks = [v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v for v in raw]
        kinds = {c.type for c in chunks}
        if len(kinds) != 1 or not (pa.types.is_string(chunks[0].type) or pa.types.is_binary(chunks[0].type)):
            parts = [_numeric(v, self.source, c) for v, c in zip(chunks, names, strict=True)]

            def stack(masks: list[np.ndarray[Any, Any] | None]) -> np.ndarray[Any, Any] | None:
                if all(m is None for m in masks):
                    return None
                return np.column_stack([np.zeros(len(chunks[0]), bool) if m is None else m for m in masks])

            dtype = min((p.dtype for p in parts), key=lambda d: d.itemsize)
            values = np.column_stack([p.values for p in parts])
            missing, invalid = stack([p.missing for p in parts]), stack([p.invalid for p in parts])
            return self._spread_numeric(Numeric(values, missing, invalid, dtype))
        flat = pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0]
        out = _numeric(flat, self.source, names[0])
        return self._spread_numeric(_reshape(out, (len(names), len(chunks[0])), transpose=True))

    def _spread_numeric(self, out: Numeric) -> Numeric:
        if self._placement is None:
            return out
        return Numeric(
            self._spread(out.values, np.nan),
            None if out.missing is None else self._spread(out.missing, False),
            None if out.invalid is None else self._spread(out.invalid, False),
            out.dtype,
        )

    def text(self, name: str, row: int) -> str:
        """The raw cell of column ``name`` at batch row ``row``, for messages."""
        if self._placement is not None:
            hits = np.flatnonzero(self._placement == row)
            if not hits.size:
                return ""
            row = int(hits[0])
        if self._fields is not None:
            return self._fields[row][self._header_index[name]]
        value = self.columns[name][row]
        value = value.as_py() if hasattr(value, "as_py") else value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value)

    def vectors(self, name: str, width: int | None) -> tuple[Numeric, np.ndarray[Any, Any] | None]:
        """A list-valued column as an ``(n, width)`` :class:`Numeric`, and the rows of another length.

        Parquet lists or CSV text like ``[0.1, 0.9]``; ``width`` is the
        expected length (``None``: the first row's).
        """
        pa = _pyarrow("reading list columns")
        if self._fields is not None:
            j = self._header_index[name]
            values: Any = pa.array([row[j] for row in self._fields], pa.string())
        else:
            values = self.columns[name]
        if isinstance(values, np.ndarray):
            values = pa.array(values.astype(str))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            text = pa.compute.cast(values, pa.binary())
            stripped = pa.compute.replace_substring_regex(text, r"[\[\]\s]", b"")
            values = pa.compute.split_pattern(stripped, b",")
        lengths = np.asarray(pa.compute.list_value_length(values).to_numpy(zero_copy_only=False), dtype=float)
        lengths = np.nan_to_num(lengths, nan=-1).astype(np.int64)
        if width is None:
            width = int(lengths[0]) if len(lengths) else 0
        wrong = lengths != width
        flat = _numeric(pa.compute.list_flatten(values.filter(pa.array(~wrong))), self.source, name)
        n = len(lengths)
        matrix = np.full((n, width), np.nan)
        matrix[~wrong] = flat.values.reshape(-1, width) if width else flat.values.reshape(-1, 0)

        def rows(mask: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any] | None:
            if mask is None:
                return None
            full = np.zeros(n, dtype=bool)
            full[~wrong] = mask.reshape(-1, width).any(axis=1) if width else False
            return full

        out = Numeric(matrix, rows(flat.missing), rows(flat.invalid), flat.dtype)
        spread = Numeric(
            self._spread(out.values, np.nan),
            None if out.missing is None else self._spread(out.missing, False),
            None if out.invalid is None else self._spread(out.invalid, False),
            out.dtype,
        )
        return spread, (self._spread(wrong, False) if wrong.any() else None)


def _binary(texts: list[str]) -> Any:
    pa = _pyarrow("reading CSV")
    return pa.array([t.encode("utf-8", "surrogateescape") for t in texts], pa.binary())


def _reshape(out: Numeric, shape: tuple[int, int], *, transpose: bool) -> Numeric:
    """A flat :class:`Numeric` as ``(n, C)``: from row-major, or from column-major (``transpose``)."""

    def fix(a: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any] | None:
        if a is None:
            return None
        return a.reshape(shape).T if transpose else a.reshape(shape)

    values = fix(out.values)
    assert values is not None
    return Numeric(np.ascontiguousarray(values), fix(out.missing), fix(out.invalid), out.dtype)


def _read_ahead(batches: Generator[Batch, None, None]) -> Iterator[Batch]:
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


def _stored_dtype(dtype: Any) -> np.dtype[Any]:
    d = np.dtype(dtype)
    return d if d.kind == "f" and d.itemsize < 8 else np.dtype(np.float64)


def _numeric(values: Any, source: str, name: str) -> Numeric:
    """float64 values of a NumPy or pyarrow column, marking missing and non-numeric cells."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biuf":
            return Numeric(values.astype(np.float64, copy=False), dtype=_stored_dtype(values.dtype))
        raise InputError(f"{source}: column {name!r} is not numeric (dtype {values.dtype})")
    pa = _pyarrow("reading this column")
    pc = pa.compute
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
        kind = values.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        raise InputError(f"{source}: column {name!r} holds lists; use it as the only prediction column")
    missing = None
    if values.null_count:
        missing = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        dtype = _stored_dtype(kind.to_pandas_dtype()) if pa.types.is_floating(kind) else np.dtype(np.float64)
        if pa.types.is_boolean(kind):
            values = values.cast(pa.int8())
        out = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        if missing is not None:
            out = np.where(missing, np.nan, out)
        return Numeric(out, missing, None, dtype)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)):
        raise InputError(f"{source}: column {name!r} is not numeric (type {kind})")
    try:
        parsed = pc.cast(values, pa.float64())
        invalid = None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = pc.cast(values, pa.binary())
        stripped = pc.replace_substring_regex(text, r"^\s+|\s+$", b"")
        ok = pc.match_substring_regex(stripped, NUMBER)
        empty = pc.equal(pc.binary_length(stripped), 0)
        parsed = pc.cast(pc.if_else(ok, stripped, pa.scalar(None, pa.binary())), pa.float64())
        blank = np.asarray(pc.fill_null(empty, True).to_numpy(zero_copy_only=False), dtype=bool)
        invalid = ~np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool) & ~blank
        missing = blank if missing is None else (missing | blank)
    out = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
    if missing is not None:
        out = np.where(missing, np.nan, out)
        if not missing.any():
            missing = None
    if invalid is not None and not invalid.any():
        invalid = None
    return Numeric(out, missing, invalid, np.dtype(np.float64))


# --- pieces -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A unit of work: one file, or a part of one (a byte range, row groups, rows).

    Pieces are small and picklable (except those reading a stream), so a
    Dask worker can read its own; :meth:`batches` yields the rows in order.

    Attributes
    ----------
    kind : {"csv", "parquet", "npy", "npz"}
        The format.
    path : str
        A local path or an fsspec URL.
    source : str
        The name used in messages.
    file_index : int
        Position of the file in its data set.
    rows : int or None
        Number of rows, when known without reading them (not for CSV).
    start : int or None
        Index of the piece's first row in the data set, when known.
    first, stop : int
        The piece's byte range (CSV, ``stop`` -1 for the end), row groups
        (Parquet) or rows (NPY).
    header : tuple of str
        CSV column names.
    delimiter : str
        CSV delimiter.
    first_line : int or None
        CSV line number at byte ``first`` (known for the first piece of a file).
    """

    kind: str
    path: str
    source: str
    file_index: int = 0
    rows: int | None = None
    start: int | None = None
    first: int = 0
    stop: int = -1
    header: tuple[str, ...] = ()
    delimiter: str = ","
    first_line: int | None = None
    stream: Any = field(default=None, compare=False, repr=False)

    def batches(self, columns: Sequence[str], batch_rows: int = 1 << 16) -> Iterator[Batch]:
        """Yield the piece's rows in batches, reading only ``columns``."""
        readers = {"csv": _csv_batches, "parquet": _parquet_batches, "npy": _npy_batches, "npz": _npz_batches}
        batches = readers[self.kind](self, list(columns), batch_rows)
        if self.kind == "csv" and self.stream is None:
            yield from _read_ahead(batches)
        else:
            yield from batches

    def size(self) -> int | None:
        """Bytes of the file this piece covers, when known (for progress)."""
        if self.kind == "csv" and self.stop >= 0:
            return self.stop - self.first
        return None


@dataclass
class Table:
    """An opened prediction file or data set; :meth:`batches` streams its rows.

    Attributes
    ----------
    path : str
        What the user named (file, directory, glob, URL or ``<stdin>``).
    format : str
        ``csv``, ``parquet``, ``npy`` or ``npz``.
    column_names : list of str
        The columns, in file order.
    list_columns : list of str
        Columns holding lists (Parquet).
    num_rows : int or None
        Rows in all, when known without reading (not for CSV).
    size_bytes : int or None
        Bytes in all, when known (not for a stream).
    pieces : list of Piece
        The units of work, in order (one per file; see :meth:`split`).
    files : list of str
        The files of the data set.
    """

    path: str
    format: str
    column_names: list[str]
    list_columns: list[str]
    num_rows: int | None
    size_bytes: int | None
    pieces: list[Piece]
    files: list[str] = field(default_factory=list)

    def batches(self, columns: Sequence[str] | None = None, batch_rows: int = 1 << 16) -> Iterator[Batch]:
        """Yield the rows in order, in batches (``columns``: all by default)."""
        for piece in self.pieces:
            yield from piece.batches(columns if columns is not None else self.column_names, batch_rows)

    def split(self, target_bytes: int = 64 << 20) -> list[Piece]:
        """Pieces of about ``target_bytes`` each: CSV byte ranges, Parquet row groups, NPY row ranges.

        NPZ members are compressed streams and stay one piece per file; a
        stream cannot be split.
        """
        out: list[Piece] = []
        for piece in self.pieces:
            if piece.stream is not None or piece.kind == "npz" or (piece.kind == "csv" and piece.stop < 0):
                out.append(piece)
            elif piece.kind == "csv":
                end = piece.stop
                for a in range(piece.first, end, max(1, target_bytes)):
                    b = min(a + target_bytes, end)
                    out.append(
                        replace(piece, first=a, stop=b, first_line=piece.first_line if a == piece.first else None)
                    )
            elif piece.kind == "parquet":
                out += _split_parquet(piece, target_bytes)
            else:
                row_bytes = max(1, (self.size_bytes or 1) // max(1, self.num_rows or 1))
                step = max(1, target_bytes // row_bytes)
                total = piece.rows or 0
                for a in range(0, total, step):
                    b = min(a + step, total)
                    out.append(replace(piece, first=a, stop=b, rows=b - a, start=(piece.start or 0) + a))
        return out


def open_table(path: str, *, delimiter: str | None = None) -> Table:
    """Open a prediction file or data set for streaming.

    Parameters
    ----------
    path : str
        A ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``), ``.parquet``/``.pq``,
        ``.npy`` or ``.npz`` file; ``-``, ``/dev/stdin`` or a FIFO for CSV on a
        stream; a directory or glob of Parquet or CSV files; or an fsspec URL
        (``file://``, ``memory://``, ...) of any of these.
    delimiter : str, optional
        CSV field delimiter, one character; default ``,`` (tab for ``.tsv``).

    Raises
    ------
    InputError
        For a missing, empty or unreadable file, naming it.
    """
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
        raise InputError(f"--delimiter must be one character other than a quote or a line end, got {delimiter!r}")
    if path == "-" or _is_stream(path):
        return _open_stream(path, delimiter)
    fs, files, shown = _expand(path)
    kinds = {_kind(f) for f in files}
    if None in kinds or len(kinds) != 1:
        unknown = next(f for f in files if _kind(f) is None) if None in kinds else files[0]
        if len(kinds) > 1 and None not in kinds:
            raise InputError(f"{path}: the files mix formats ({', '.join(sorted(str(k) for k in kinds))})")
        raise InputError(
            f"{unknown}: unknown file type; expected .csv, .tsv, .parquet, .npy or .npz (or - for CSV on stdin)"
        )
    kind = kinds.pop()
    if kind in ("npy", "npz") and len(files) > 1:
        raise InputError(f"{path}: a data set of several files must be Parquet or CSV, not {kind.upper()}")
    if kind == "csv":
        return _open_csv_files(fs, files, shown, delimiter)
    if kind == "parquet":
        return _open_parquet_files(fs, files, shown)
    if kind == "npy":
        return _open_npy(fs, files[0], shown)
    return _open_npz(fs, files[0], shown)


def _kind(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(".npy"):
        return "npy"
    if lower.endswith(".npz"):
        return "npz"
    return None


def _is_stream(path: str) -> bool:
    """A FIFO, a device, or a name of standard input: read as a CSV stream."""
    if "://" in path:
        return False
    if path == "/dev/stdin" or path.startswith(("/dev/fd/", "/proc/self/fd/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _expand(path: str) -> tuple[Any, list[str], str]:
    """The filesystem (None for local), the data files of ``path`` in order, and its display name."""
    if "://" in path:
        try:
            import fsspec.core
        except ImportError:
            raise InputError(f"{path}: reading URLs needs fsspec: pip install fsspec") from None
        try:
            fs, root = fsspec.core.url_to_fs(path)
        except (ImportError, ValueError) as exc:
            raise InputError(f"{path}: cannot open this URL: {exc}") from None
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        try:
            if any(ch in root for ch in "*?["):
                found = sorted(fs.glob(root))
            elif fs.isdir(root):
                found = sorted(p for p in fs.find(root) if _kind(p) is not None)
                if not found:
                    raise InputError(f"{path}: the directory holds no .parquet or .csv files")
            elif fs.exists(root):
                found = [root]
            else:
                raise InputError(f"{path}: no such file")
        except OSError as exc:
            raise InputError(f"{path}: cannot list: {exc}") from None
        if not found:
            raise InputError(f"{path}: no file matches")
        return fs, [f"{protocol}://{p.split('://')[-1]}" if protocol != "file" else p for p in found], path
    if any(ch in path for ch in "*?[") and not os.path.exists(path):
        found = sorted(glob.glob(path, recursive=True))
        if not found:
            raise InputError(f"{path}: no file matches")
        return None, found, path
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        found = sorted(
            os.path.join(d, f)
            for d, _, names in os.walk(path)
            for f in names
            if _kind(f) is not None and not f.startswith((".", "_"))
        )
        if not found:
            raise InputError(f"{path}: is a directory with no .parquet or .csv files")
        return None, found, path
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty")
    return None, [path], path


def _open_binary(path: str) -> IO[bytes]:
    """A binary file object for a local path or an fsspec URL."""
    try:
        if "://" in path:
            import fsspec

            handle: IO[bytes] = fsspec.open(path, "rb").open()
            return handle
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None


def _file_size(path: str) -> int:
    if "://" in path:
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(path)
        return int(fs.size(root))
    return os.path.getsize(path)


# --- CSV ----------------------------------------------------------------------------------------------------


def _read_header(stream: IO[bytes], source: str, delimiter: str) -> tuple[list[str], int, int, bytes]:
    """Column names from the first non-empty line: ``(names, its line number, bytes used, bytes read beyond)``."""
    buffer = b""
    start = 0
    line = 0
    while True:
        cut = _first_line_end(buffer, start)
        if cut is None:
            more = stream.read(1 << 16)
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
        raw = buffer[start:cut].rstrip(b"\r\n")
        if raw:
            break
        start = cut
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source}: line {line}: the header is not UTF-8 text (byte {raw[exc.start]:#04x} at position {exc.start})"
        ) from None
    names = next(csv.reader([text], delimiter=delimiter, quotechar='"'))
    counts = Counter(names)
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    if duplicates:
        raise InputError(f"{source}: duplicate column names {', '.join(map(repr, duplicates[:10]))}")
    return names, line, cut, buffer[cut:]


def _first_line_end(buffer: bytes, start: int = 0) -> int | None:
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


def _open_stream(path: str, delimiter: str | None) -> Table:
    name = "<stdin>" if path == "-" else path
    if path == "-":
        if sys.stdin is None:
            raise InputError("<stdin>: standard input is closed")
        stream: IO[bytes] = sys.stdin.buffer
    else:
        stream = _open_binary(path)
    sep = delimiter or ("\t" if ".tsv" in path.lower() else ",")
    names, line, used, rest = _read_header(stream, name, sep)
    piece = Piece(
        "csv", path, name, first=used, header=tuple(names), delimiter=sep, first_line=line + 1, stream=(stream, rest)
    )
    return Table(name, "csv", names, [], None, None, [piece], [name])


def _open_csv_files(fs: Any, files: list[str], shown: str, delimiter: str | None) -> Table:
    pieces = []
    names: list[str] | None = None
    total = 0
    for i, f in enumerate(files):
        sep = delimiter or ("\t" if ".tsv" in f.lower() else ",")
        with _csv_stream(f) as stream:
            header, line, used, _ = _read_header(stream, f, sep)
        if names is None:
            names = header
        elif header != names:
            raise InputError(f"{f}: its columns differ from those of {files[0]}")
        size = _file_size(f) if not f.lower().endswith(".gz") else -1
        total += max(size, 0)
        pieces.append(
            Piece("csv", f, f, i, first=used, stop=size, header=tuple(header), delimiter=sep, first_line=line + 1)
        )
    assert names is not None
    sizes = all(p.stop >= 0 for p in pieces)
    return Table(shown, "csv", names, [], None, total if sizes else None, pieces, files)


@contextlib.contextmanager
def _csv_stream(path: str) -> Iterator[IO[bytes]]:
    handle = _open_binary(path)
    try:
        if path.lower().endswith(".gz"):
            import gzip

            with gzip.GzipFile(fileobj=handle) as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield handle
    finally:
        handle.close()


def _csv_batches(piece: Piece, columns: list[str], batch_rows: int) -> Generator[Batch, None, None]:
    del batch_rows
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
    """From byte ``position`` (just before the piece), the bytes from the first line start on, and its offset."""
    buffer = b""
    while True:
        data = stream.read(1 << 16)
        buffer += data
        cut = _first_line_end(buffer)
        if cut is None and data and buffer[-1:] == b"\r":
            continue
        if cut is None and not data:
            return None, 0
        if cut is not None:
            begin = position + cut
            if piece.stop >= 0 and begin >= piece.stop:
                return None, 0
            return buffer[cut:], begin
        if len(buffer) > MAX_LINE_BYTES:
            raise InputError(f"{piece.source}: a line near byte {position} is longer than {MAX_LINE_BYTES >> 20} MiB")


def _csv_blocks(piece: Piece, stream: IO[bytes], pending: bytes, offset: int, columns: list[str]) -> Iterator[Batch]:
    """Blocks of whole lines from ``stream``, parsed by pyarrow; ``offset`` is the file offset of ``pending``."""
    pa = _pyarrow("reading CSV")
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
        block = pending
        while not eof:
            limit = end - offset if end is not None else None
            if limit is not None and len(block) >= limit:
                if limit <= 0 or _first_line_end(block, limit - 1) is not None:
                    break
            elif len(block) >= CSV_BLOCK_BYTES and has_end:
                break
            if len(block) > MAX_LINE_BYTES and not has_end:
                where = f"line {line}" if line is not None else f"the line at byte {offset}"
                raise InputError(f"{piece.source}: {where} is longer than {MAX_LINE_BYTES >> 20} MiB")
            try:
                data = stream.read(CSV_BLOCK_BYTES)
            except OSError as exc:
                raise InputError(f"{piece.source}: cannot read: {exc.strerror or exc}") from None
            if not data:
                eof = True
            has_end = has_end or b"\n" in data or b"\r" in data
            block += data
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
                batch = _parse_lines(piece, chunk, offset, line, row)
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


_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")
WIDE_COLUMNS = 1000
"""CSV files with more columns are parsed line by line (pyarrow's cost grows with the columns)."""


def _is_utf8(chunk: bytes) -> bool:
    if chunk.isascii():
        return True
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_lines(piece: Piece, chunk: bytes, offset: int, line: int | None, row: int) -> Batch:
    """Parse a block of CSV line by line with :mod:`csv`; values are then converted as pyarrow's are.

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
        values = next(csv.reader([text], delimiter=piece.delimiter, quotechar='"'))
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
    batch = Batch(piece.source, row, {}, len(lines), locate=locate, placement=placement, fields=(fields, index))
    batch.broken_detail = details
    return batch


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
        return _parse_lines(piece, chunk, offset, line, row)
    if broken:
        cache.append(layout())
        parsed = np.asarray(cache[0][2], dtype=bool)
        if int(parsed.sum()) != table.num_rows:
            return _parse_lines(piece, chunk, offset, line, row)
        placement = np.flatnonzero(parsed)
        n = int(parsed.size)
    batch = Batch(piece.source, row, cols, n, locate=locate, placement=placement)
    batch.broken_detail = details
    return batch


# --- Parquet ------------------------------------------------------------------------------------------------


def _parquet_file(pa: Any, path: str) -> Any:
    handle = _open_binary(path) if "://" in path else path
    try:
        return pa.parquet.ParquetFile(handle, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet (truncated or not Parquet?): {exc}") from None


def _open_parquet_files(fs: Any, files: list[str], shown: str) -> Table:
    del fs
    pa = _pyarrow("reading Parquet")
    pieces = []
    names: list[str] | None = None
    lists: list[str] = []
    start = 0
    size = 0
    for i, f in enumerate(files):
        pf = _parquet_file(pa, f)
        schema = pf.schema_arrow
        if names is None:
            names = list(schema.names)
            lists = [
                fl.name
                for fl in schema
                if pa.types.is_list(fl.type) or pa.types.is_large_list(fl.type) or pa.types.is_fixed_size_list(fl.type)
            ]
        elif list(schema.names) != names:
            raise InputError(f"{f}: its columns differ from those of {files[0]}")
        rows = pf.metadata.num_rows
        pieces.append(Piece("parquet", f, f, i, rows, start, 0, pf.metadata.num_row_groups))
        start += rows
        size += _file_size(f)
    assert names is not None
    return Table(shown, "parquet", names, lists, start, size, pieces, files)


def _split_parquet(piece: Piece, target_bytes: int) -> list[Piece]:
    pa = _pyarrow("reading Parquet")
    meta = _parquet_file(pa, piece.path).metadata
    out = []
    group, start = 0, piece.start or 0
    while group < meta.num_row_groups:
        last, rows, size = group, 0, 0
        while last < meta.num_row_groups and (
            last == group or size + meta.row_group(last).total_byte_size <= target_bytes
        ):
            rows += meta.row_group(last).num_rows
            size += meta.row_group(last).total_byte_size
            last += 1
        out.append(replace(piece, rows=rows, start=start, first=group, stop=last))
        group, start = last, start + rows
    return out


def _parquet_batches(piece: Piece, columns: list[str], batch_rows: int) -> Generator[Batch, None, None]:
    pa = _pyarrow("reading Parquet")
    pf = _parquet_file(pa, piece.path)
    known = set(pf.schema_arrow.names)
    missing = [c for c in columns if c not in known]
    if missing:
        raise InputError(f"{piece.source}: no column {missing[0]!r}")
    row = 0
    try:
        for group in range(piece.first, piece.stop):
            for rb in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
                yield Batch(piece.source, row, {c: rb.column(i) for i, c in enumerate(rb.schema.names)}, rb.num_rows)
                row += rb.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{piece.source}: cannot read Parquet after row {(piece.start or 0) + row}: {exc}") from None


# --- NPY and NPZ --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpyHeader:
    """What an NPY header declares: shape, dtype, order and where the data start."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype[Any]
    offset: int

    @property
    def nbytes(self) -> int:
        """Bytes the declared array occupies."""
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


def read_npy_header(stream: IO[bytes], source: str) -> NpyHeader:
    """Parse an NPY header without reading the data; InputError for a malformed or pickled array."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
    except Exception as exc:  # numpy parses the header as a Python literal: any error means a malformed file
        raise InputError(f"{source}: cannot read as NPY: {type(exc).__name__}: {exc}") from None
    if dtype.hasobject:
        raise InputError(f"{source}: holds Python objects (a pickled array); save numbers instead")
    offset = stream.tell()
    return NpyHeader(tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype), offset)


def _npy_columns(header: NpyHeader, source: str) -> list[str]:
    if header.dtype.names:
        if len(header.shape) != 1:
            raise InputError(f"{source}: a structured array must be 1-D, got shape {header.shape}")
        return list(header.dtype.names)
    if len(header.shape) not in (1, 2):
        raise InputError(f"{source}: expected a 1-D or 2-D array, got shape {header.shape}")
    return [str(j) for j in range(1 if len(header.shape) == 1 else header.shape[1])]


def _open_npy(fs: Any, path: str, shown: str) -> Table:
    del fs
    with _open_binary(path) as stream:
        header = read_npy_header(stream, path)
    size = _file_size(path)
    names = _npy_columns(header, path)
    if header.offset + header.nbytes > size:
        raise InputError(
            f"{path}: truncated: the header declares shape {header.shape} ({header.nbytes:,} bytes of data) "
            f"but the file holds {max(size - header.offset, 0):,}"
        )
    rows = header.shape[0] if header.shape else 0
    piece = Piece("npy", path, path, 0, rows, 0, 0, rows)
    return Table(shown, "npy", names, [], rows, size, [piece], [path])


def _npy_batches(piece: Piece, columns: list[str], batch_rows: int) -> Generator[Batch, None, None]:
    with _open_binary(piece.path) as stream:
        header = read_npy_header(stream, piece.source)
        names = _npy_columns(header, piece.source)
        index = {n: j for j, n in enumerate(names)}
        rows_total = header.shape[0]
        width = 1 if len(header.shape) == 1 else int(np.prod(header.shape[1:]))
        item = header.dtype.itemsize
        for a in range(piece.first, piece.stop, batch_rows):
            b = min(a + batch_rows, piece.stop)
            n = b - a
            if header.fortran and width > 1:
                cols = {}
                for c in columns:
                    j = index[c]
                    stream.seek(header.offset + (j * rows_total + a) * item)
                    cols[c] = np.frombuffer(_read_exact(stream, n * item, piece.source, a), dtype=header.dtype)
            else:
                stream.seek(header.offset + a * width * item)
                block = np.frombuffer(_read_exact(stream, n * width * item, piece.source, a), dtype=header.dtype)
                cols = _npy_split(block, header, columns, index, n)
            yield Batch(piece.source, a - piece.first, cols, n)


def _npy_split(
    block: np.ndarray[Any, Any], header: NpyHeader, columns: list[str], index: dict[str, int], n: int
) -> dict[str, np.ndarray[Any, Any]]:
    if header.dtype.names:
        return {c: np.asarray(block[c]) for c in columns}
    if len(header.shape) == 1:
        return {c: block for c in columns}
    matrix = block.reshape(n, -1)
    return {c: matrix[:, index[c]] for c in columns}


def _read_exact(stream: IO[bytes], count: int, source: str, row: int) -> bytes:
    data = stream.read(count)
    while len(data) < count:
        more = stream.read(count - len(data))
        if not more:
            raise InputError(
                f"{source}: the file ended early at row {row + 1} (truncated, or changed while it was read)"
            )
        data += more
    return data


def _npz_members(archive: zipfile.ZipFile, source: str) -> dict[str, tuple[str, NpyHeader]]:
    members: dict[str, tuple[str, NpyHeader]] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        with archive.open(info) as stream:
            header = read_npy_header(stream, f"{source}[{info.filename}]")
        if header.offset + header.nbytes != info.file_size:
            raise InputError(
                f"{source}: member {info.filename!r} declares shape {header.shape} ({header.nbytes:,} bytes) "
                f"but holds {max(info.file_size - header.offset, 0):,} bytes"
            )
        if header.fortran and len(header.shape) > 1:
            raise InputError(
                f"{source}: member {info.filename!r} is in Fortran order; save it with np.ascontiguousarray"
            )
        members[info.filename[:-4]] = (info.filename, header)
    return members


def _open_npz(fs: Any, path: str, shown: str) -> Table:
    del fs
    with _open_binary(path) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: cannot read as NPZ: {exc}") from None
        with archive:
            members = _npz_members(archive, path)
    shapes = {k: h.shape for k, (_, h) in members.items()}
    lengths = {s[0] if s else None for s in shapes.values()}
    if not members or len(lengths) != 1 or None in lengths:
        raise InputError(f"{path}: the arrays must share their first dimension; shapes are {shapes}")
    names = []
    for key, (_, h) in members.items():
        if h.dtype.names:
            raise InputError(f"{path}: array {key!r} is a structured array; save plain arrays")
        if len(h.shape) == 1:
            names.append(key)
        elif len(h.shape) == 2:
            names += [f"{key}_{j}" for j in range(h.shape[1])]
        else:
            raise InputError(f"{path}: array {key!r} has shape {h.shape}; expected 1-D or 2-D")
    rows = int(lengths.pop() or 0)
    return Table(
        shown, "npz", names, [], rows, _file_size(path), [Piece("npz", path, path, 0, rows, 0, 0, rows)], [path]
    )


def _npz_batches(piece: Piece, columns: list[str], batch_rows: int) -> Generator[Batch, None, None]:
    with _open_binary(piece.path) as handle, zipfile.ZipFile(handle) as archive:
        members = _npz_members(archive, piece.source)
        wanted: dict[str, list[tuple[str, int | None]]] = {}
        for c in columns:
            if c in members:
                wanted.setdefault(c, []).append((c, None))
            else:
                key, _, suffix = c.rpartition("_")
                if key not in members or not suffix.isdigit():
                    raise InputError(f"{piece.source}: no column {c!r}")
                wanted.setdefault(key, []).append((c, int(suffix)))
        with contextlib.ExitStack() as stack:
            streams = {}
            for key in wanted:
                stream = stack.enter_context(archive.open(members[key][0]))
                read_npy_header(stream, piece.source)
                streams[key] = stream
            try:
                for a in range(0, piece.rows or 0, batch_rows):
                    n = min(batch_rows, (piece.rows or 0) - a)
                    cols: dict[str, Any] = {}
                    for key, outs in wanted.items():
                        h = members[key][1]
                        width = h.shape[1] if len(h.shape) == 2 else 1
                        raw = _read_exact(streams[key], n * width * h.dtype.itemsize, piece.source, a)
                        block = np.frombuffer(raw, dtype=h.dtype).reshape(n, width)
                        for column, j in outs:
                            cols[column] = block[:, 0 if j is None else j]
                    yield Batch(piece.source, a, cols, n)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(f"{piece.source}: cannot read as NPZ: {exc}") from None
