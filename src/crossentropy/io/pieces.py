"""What an opened data set is made of: a :class:`Table` of :class:`Piece` objects, each read by its :class:`Format`.

A piece is the unit of work: one file, or a part of one (a byte range, row
groups, rows). It carries the :class:`Format` that reads it, so reading and
splitting ask the piece's format, and the only switch over file formats is
the one in :func:`crossentropy.io.open_table` that picks a file's format by
its name. The format readers (:mod:`crossentropy.io.csv`,
:mod:`crossentropy.io.parquet`, :mod:`crossentropy.io.npy`) subclass
:class:`Format`; this module also holds the file access they share.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from .._validation import InputError
from .batches import Batch

__all__ = ["Format", "Piece", "Table", "file_size", "open_binary", "read_bounded"]


class Format(ABC):
    """A file format: how its files open as a :class:`Table`, and how a piece of one is read and split.

    Subclasses are small, immutable and picklable (a piece carries its
    format to the Dask worker that reads it).
    """

    name: ClassVar[str]
    """The format's name (``Table.format``), e.g. ``"csv"``."""
    suffixes: ClassVar[tuple[str, ...]]
    """Lower-case file-name endings of the format."""
    many_files: ClassVar[bool] = True
    """Whether a data set (a directory or a glob) may hold several files of the format."""

    def matches(self, path: str) -> bool:
        """Whether the file name ``path`` is of this format."""
        return path.lower().endswith(self.suffixes)

    @abstractmethod
    def open(self, files: list[str], shown: str) -> Table:
        """The table of ``files`` (in order, all of this format), named ``shown`` in messages."""

    @abstractmethod
    def batches(self, piece: Piece, columns: list[str], batch_rows: int) -> Iterator[Batch]:
        """The rows of ``piece`` in order, at most ``batch_rows`` per batch, reading only ``columns``."""

    def split(self, piece: Piece, table: Table, target_bytes: int) -> list[Piece]:
        """``piece`` cut into pieces of about ``target_bytes`` (by default it stays whole)."""
        return [piece]

    def size(self, piece: Piece) -> int | None:
        """Bytes of the file that ``piece`` covers, when the format knows them (for progress)."""
        return None


@dataclass(frozen=True)
class Piece:
    """A unit of work: one file, or a part of one (a byte range, row groups, rows).

    Pieces are small and picklable (except those reading a stream), so a
    Dask worker can read its own; :meth:`batches` yields the rows in order.

    Attributes
    ----------
    format : Format
        The format, which reads the piece.
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

    format: Format
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

    @property
    def kind(self) -> str:
        """The format's name: ``"csv"``, ``"parquet"``, ``"npy"`` or ``"npz"``."""
        return self.format.name

    def batches(self, columns: Sequence[str], batch_rows: int = 1 << 16) -> Iterator[Batch]:
        """Yield the piece's rows in batches of at most ``batch_rows``, reading only ``columns``."""
        if batch_rows < 1:
            raise InputError(f"batch_rows must be at least 1, got {batch_rows}")
        yield from self.format.batches(self, list(columns), batch_rows)

    def size(self) -> int | None:
        """Bytes of the file this piece covers, when known (for progress)."""
        return self.format.size(self)


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
        return [part for piece in self.pieces for part in piece.format.split(piece, self, target_bytes)]


def open_binary(path: str) -> IO[bytes]:
    """A binary file object for a local path or an fsspec URL; InputError naming the file when it cannot open."""
    try:
        if "://" in path:
            import fsspec

            handle: IO[bytes] = fsspec.open(path, "rb").open()
            return handle
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None


def file_size(path: str) -> int:
    """Bytes of a local file or of an fsspec URL."""
    if "://" in path:
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(path)
        return int(fs.size(root))
    return os.path.getsize(path)


def read_bounded(path: str, limit: int, *, name: str) -> bytes:
    """The bytes of ``path``, read until its end, or InputError as soon as more than ``limit`` have been read.

    Bounded by the bytes actually read, never by the size the file claims
    (a device such as ``/dev/zero``, a FIFO or a ``/proc`` file says 0).
    ``name`` says what the file is, for messages (``"P"``).
    """
    chunks: list[bytes] = []
    total = 0
    try:
        with open_binary(path) as handle:
            while total <= limit:
                chunk = handle.read(min(1 << 20, limit + 1 - total))
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                total += len(chunk)
    except OSError as exc:
        raise InputError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    raise InputError(f"{name}: {path} holds more than {limit:,} bytes; at most {limit:,} are read")
