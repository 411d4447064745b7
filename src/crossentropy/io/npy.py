"""The NPY and NPZ readers: ordinary reads from the header's offset, and NPZ members as streams.

NPY is read with ordinary reads from its header's offset (not
memory-mapped: a file truncated while it is read is an error, not a
``SIGBUS``); NPZ members are decompressed as streams, so a compression bomb
or a member declaring a huge shape costs no memory. A 2-D array's columns
are named ``"0"``, ``"1"``, ...; an NPZ member ``probs`` of shape ``(n, C)``
gives the columns ``probs_0`` ... ``probs_{C-1}``. :func:`read_npy` reads a
whole (bounded) array, for a distribution given as a file.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO, Any, ClassVar

import numpy as np

from .._validation import InputError
from .batches import Batch
from .pieces import Format, Piece, Table, file_size, open_binary

__all__ = ["Npy", "NpyHeader", "Npz", "read_npy", "read_npy_header"]


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


@dataclass(frozen=True)
class Npy(Format):
    """An NPY file (``.npy``): a 1-D or 2-D array, or a 1-D structured array whose fields are the columns."""

    name: ClassVar[str] = "npy"
    suffixes: ClassVar[tuple[str, ...]] = (".npy",)
    many_files: ClassVar[bool] = False

    def open(self, files: list[str], shown: str) -> Table:
        """Check the header against the file's size (a truncated file is refused before any row is read)."""
        (path,) = files
        with open_binary(path) as stream:
            header = read_npy_header(stream, path)
        size = file_size(path)
        names = _npy_columns(header, path)
        if header.offset + header.nbytes > size:
            raise InputError(
                f"{path}: truncated: the header declares shape {header.shape} ({header.nbytes:,} bytes of data) "
                f"but the file holds {max(size - header.offset, 0):,}"
            )
        rows = header.shape[0] if header.shape else 0
        piece = Piece(self, path, path, 0, rows, 0, 0, rows)
        return Table(shown, "npy", names, [], rows, size, [piece], [path])

    def batches(self, piece: Piece, columns: list[str], batch_rows: int) -> Iterator[Batch]:
        """Rows ``piece.first .. piece.stop - 1``, ``batch_rows`` at a time (a Fortran-order array column by column)."""
        with open_binary(piece.path) as stream:
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

    def split(self, piece: Piece, table: Table, target_bytes: int) -> list[Piece]:
        """Row ranges of about ``target_bytes``."""
        row_bytes = max(1, (table.size_bytes or 1) // max(1, table.num_rows or 1))
        step = max(1, target_bytes // row_bytes)
        total = piece.rows or 0
        out = []
        for a in range(0, total, step):
            b = min(a + step, total)
            out.append(replace(piece, first=a, stop=b, rows=b - a, start=(piece.start or 0) + a))
        return out


@dataclass(frozen=True)
class Npz(Format):
    """An NPZ archive (``.npz``) of 1-D and 2-D arrays with the same rows; one piece (its members are compressed)."""

    name: ClassVar[str] = "npz"
    suffixes: ClassVar[tuple[str, ...]] = (".npz",)
    many_files: ClassVar[bool] = False

    def open(self, files: list[str], shown: str) -> Table:
        """Read every member's header: each must be 1-D or 2-D, hold numbers and have the same rows."""
        (path,) = files
        with open_binary(path) as handle:
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
        piece = Piece(self, path, path, 0, rows, 0, 0, rows)
        return Table(shown, "npz", names, [], rows, file_size(path), [piece], [path])

    def batches(self, piece: Piece, columns: list[str], batch_rows: int) -> Iterator[Batch]:
        """The members holding ``columns``, decompressed side by side, ``batch_rows`` rows at a time."""
        with open_binary(piece.path) as handle, zipfile.ZipFile(handle) as archive:
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


def read_npy(path: str, *, name: str, max_values: int) -> np.ndarray[Any, Any]:
    """The numbers of a whole ``.npy`` file as a flat float64 array, its declared size checked before any data is read.

    Parameters
    ----------
    path : str
        A local ``.npy`` file.
    name : str
        What the array is, for messages (``"P"``).
    max_values : int
        The most values read; a larger declared shape is refused, not allocated.

    Raises
    ------
    InputError
        For a malformed, pickled, truncated or too large array, naming ``name`` and ``path``.
    """
    try:
        with open(path, "rb") as handle:
            header = read_npy_header(handle, f"{name}: {path}")
            count = header.nbytes // max(header.dtype.itemsize, 1)
            if count > max_values:
                raise InputError(
                    f"{name}: {path} declares shape {header.shape} ({count:,} values); at most {max_values:,} are read"
                )
            data = handle.read(header.nbytes)
        if len(data) < header.nbytes:
            raise InputError(f"{name}: {path} is truncated: shape {header.shape} needs {header.nbytes:,} bytes of data")
        array = np.frombuffer(data, dtype=header.dtype).reshape(header.shape, order="F" if header.fortran else "C")
        return np.asarray(array, dtype=float).reshape(-1)
    except InputError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"{name}: cannot read {path}: {exc}") from None
