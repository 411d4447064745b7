"""Streaming readers for prediction files: CSV, Parquet, NPY and NPZ.

A reader yields :class:`Batch` objects of at most ``batch_rows`` rows, so a
file of any size is read in bounded memory. CSV (also from standard input)
and Parquet need pyarrow (the ``io`` extra), which is imported only here and
only when such a file is opened; NPY files are memory-mapped.

Every problem with a file (missing, empty, truncated, unknown column,
non-numeric value) raises :class:`~crossentropy.InputError` whose message
names the file, and the row and column where there is one.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from crossentropy.io import open_table
>>> path = os.path.join(tempfile.mkdtemp(), "preds.npy")
>>> np.save(path, np.array([[0, 0.9, 0.1], [1, 0.2, 0.8]]))
>>> table = open_table(path)
>>> table.column_names
['0', '1', '2']
>>> [batch.numeric("1").tolist() for batch in table.batches()]
[[0.9, 0.2]]
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import InputError

__all__ = ["Batch", "Table", "describe_columns", "open_table", "select_columns"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _pyarrow(purpose: str) -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError:
        raise InputError(f"{purpose} needs pyarrow: pip install 'crossentropy[io]'") from None
    return pyarrow


@dataclass
class Batch:
    """Consecutive rows of a table.

    Attributes
    ----------
    source : str
        The file name, for messages.
    start : int
        Index (0-based, header not counted) of the batch's first row.
    columns : dict
        Column name to a 1-D array (numbers, or strings for CSV text), or a
        pyarrow list array for list-valued columns.
    """

    source: str
    start: int
    columns: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def numeric(self, name: str) -> np.ndarray[Any, Any]:
        """Column ``name`` as float64; a value that is not a number raises InputError."""
        values = self.columns[name]
        if isinstance(values, np.ndarray):
            if values.dtype.kind in "biuf":
                return values.astype(np.float64, copy=False)
            return self._parse_strings(name, values)
        pa = _pyarrow("reading this column")
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            raise InputError(f"{self.source}: column {name!r} holds lists; use it as the only prediction column")
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            try:
                values = pa.compute.cast(pa.compute.utf8_trim_whitespace(values), pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return self._parse_strings(name, np.asarray(values.to_pylist(), dtype=object))
        elif not (
            pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)
        ):
            raise InputError(f"{self.source}: column {name!r} is not numeric (type {values.type})")
        if values.null_count:
            row = self.start + int(np.argmax(np.asarray(values.is_null())))
            raise InputError(f"{self.source}: row {row + 1}, column {name!r}: value is missing")
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)

    def _parse_strings(self, name: str, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise InputError(
                    f"{self.source}: row {self.start + i + 1}, column {name!r}: {v!r} is not a number"
                ) from None
        return out

    def vectors(self, name: str) -> np.ndarray[Any, Any]:
        """A list-valued column (Parquet lists or CSV text like ``[0.1, 0.9]``) as a 2-D float array."""
        values = self.columns[name]
        pa = _pyarrow("reading list columns")
        if isinstance(values, np.ndarray):
            values = pa.array(values.astype(str))
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            stripped = pa.compute.replace_substring_regex(values, r"[\[\]\s]", "")
            values = pa.compute.split_pattern(stripped, ",")
        lengths = np.asarray(pa.compute.list_value_length(values).to_numpy(zero_copy_only=False))
        if len(lengths) and (lengths != lengths[0]).any():
            i = int(np.argmax(lengths != lengths[0]))
            raise InputError(
                f"{self.source}: row {self.start + i + 1}, column {name!r}: {lengths[i]} values, "
                f"but row {self.start + 1} has {lengths[0]}"
            )
        flat = Batch(self.source, self.start, {name: pa.compute.list_flatten(values)})
        try:
            numbers = flat.numeric(name)
        except InputError:
            raise InputError(f"{self.source}: column {name!r} holds a value that is not a number") from None
        width = int(lengths[0]) if len(lengths) else 0
        return numbers.reshape(len(lengths), width)


@dataclass
class Table:
    """An opened prediction file; :meth:`batches` streams its rows."""

    path: str
    format: str
    column_names: list[str]
    list_columns: list[str]
    num_rows: int | None
    size_bytes: int | None
    _open: Any = field(repr=False)

    def batches(self) -> Iterator[Batch]:
        """Yield the rows in order, in batches."""
        yield from self._open()


def describe_columns(names: Sequence[str]) -> str:
    """``columns are 'a', 'b'``, with a hint when a wrong delimiter seems to have merged them."""
    listing = f"columns are {', '.join(map(repr, names))}"
    if len(names) == 1 and any(d in names[0] for d in ";\t|"):
        listing += " (one column only: is the delimiter right? see --delimiter)"
    return listing


def select_columns(names: Sequence[str], patterns: Sequence[str], what: str, source: str) -> list[str]:
    """Column names matching glob ``patterns``, in file order.

    Raises InputError naming ``source`` (the file), the pattern and the
    available columns when a pattern matches nothing.
    """
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in names if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise InputError(f"{source}: no {what} column matches {pattern!r}; {describe_columns(names)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def open_table(
    path: str, *, batch_rows: int = 1 << 16, delimiter: str | None = None, columns: Sequence[str] | None = None
) -> Table:
    """Open a prediction file for streaming.

    Parameters
    ----------
    path : str
        A ``.csv``/``.tsv``/``.txt`` (``-`` for CSV on standard input),
        ``.parquet``/``.pq``, ``.npy`` or ``.npz`` file.
    batch_rows : int
        Rows per batch (CSV batches follow pyarrow's blocks instead).
    delimiter : str, optional
        CSV field delimiter; default ``,`` (tab for ``.tsv``).
    columns : sequence of str, optional
        Read only these columns (CSV and Parquet).

    Raises
    ------
    InputError
        For a missing, empty or unreadable file, naming it.
    """
    if path != "-":
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a file")
        if os.path.getsize(path) == 0:
            raise InputError(f"{path}: the file is empty")
    lower = path.lower()
    if path == "-" or lower.endswith(CSV_SUFFIXES):
        return _open_csv(path, delimiter or ("\t" if ".tsv" in lower else ","), batch_rows, columns)
    if lower.endswith(PARQUET_SUFFIXES):
        return _open_parquet(path, batch_rows, columns)
    if lower.endswith(".npy"):
        return _open_npy(path, batch_rows)
    if lower.endswith(".npz"):
        return _open_npz(path, batch_rows)
    raise InputError(f"{path}: unknown file type; expected .csv, .tsv, .parquet, .npy or .npz (or - for CSV on stdin)")


def _open_csv(path: str, delimiter: str, batch_rows: int, columns: Sequence[str] | None) -> Table:
    pa = _pyarrow("reading CSV")
    source: Any = sys.stdin.buffer if path == "-" else path
    name = "<stdin>" if path == "-" else path
    read = pa.csv.ReadOptions(block_size=1 << 22)
    parse = pa.csv.ParseOptions(delimiter=delimiter)

    def reader(include: Sequence[str] | None) -> Any:
        try:
            return pa.csv.open_csv(
                source,
                read_options=read,
                parse_options=parse,
                convert_options=pa.csv.ConvertOptions(
                    column_types={c: pa.string() for c in (include or [])},
                    include_columns=list(include) if include else None,
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: cannot read as CSV: {exc}") from None

    first = reader(None)
    names = list(first.schema.names)
    if path != "-":
        first.close()  # a file is read again from its start; keeping this reader would hold its buffers
        first = None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"{name}: duplicate column names {', '.join(map(repr, duplicates))}")
    wanted = list(columns) if columns else names

    def batches() -> Iterator[Batch]:
        stream = first if first is not None else reader(wanted)
        start = 0
        while True:
            try:
                rb = stream.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{name}: cannot read as CSV after row {start}: {exc}") from None
            cols = {c: rb.column(c) for c in wanted if c in rb.schema.names}
            yield Batch(name, start, cols)
            start += rb.num_rows

    size = None if path == "-" else os.path.getsize(path)
    return Table(name, "csv", names, [], None, size, batches)


def _open_parquet(path: str, batch_rows: int, columns: Sequence[str] | None) -> Table:
    pa = _pyarrow("reading Parquet")
    try:
        pf = pa.parquet.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet (truncated or not Parquet?): {exc}") from None
    schema = pf.schema_arrow
    names = list(schema.names)
    lists = [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]

    def batches() -> Iterator[Batch]:
        # one row group at a time: memory stays within a row group, not the file
        start = 0
        try:
            for group in range(pf.metadata.num_row_groups):
                for rb in pf.iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=list(columns) if columns else None
                ):
                    yield Batch(path, start, {c: rb.column(c) for c in rb.schema.names})
                    start += rb.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: cannot read Parquet after row {start}: {exc}") from None

    return Table(path, "parquet", names, lists, pf.metadata.num_rows, os.path.getsize(path), batches)


def _open_npy(path: str, batch_rows: int) -> Table:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read as NPY: {exc}") from None
    if arr.dtype.names:
        names = list(arr.dtype.names)

        def column(a: Any, n: str) -> np.ndarray[Any, Any]:
            return np.asarray(a[n])
    else:
        if arr.ndim not in (1, 2):
            raise InputError(f"{path}: expected a 1-D or 2-D array, got shape {arr.shape}")
        width = 1 if arr.ndim == 1 else arr.shape[1]
        names = [str(j) for j in range(width)]

        def column(a: Any, n: str) -> np.ndarray[Any, Any]:
            return np.asarray(a if a.ndim == 1 else a[:, int(n)])

    def batches() -> Iterator[Batch]:
        for start in range(0, arr.shape[0], batch_rows):
            chunk = arr[start : start + batch_rows]
            yield Batch(path, start, {n: column(chunk, n) for n in names})

    return Table(path, "npy", names, [], int(arr.shape[0]), os.path.getsize(path), batches)


def _open_npz(path: str, batch_rows: int) -> Table:
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read as NPZ: {exc}") from None
    lengths = {k: a.shape[0] if a.ndim else None for k, a in arrays.items()}
    if not arrays or len(set(lengths.values())) != 1 or None in lengths.values():
        raise InputError(
            f"{path}: the arrays must share their first dimension; shapes are "
            f"{ {k: a.shape for k, a in arrays.items()} }"
        )
    names: list[str] = []
    source: dict[str, tuple[str, int | None]] = {}
    for key, a in arrays.items():
        if a.ndim == 1:
            names.append(key)
            source[key] = (key, None)
        elif a.ndim == 2:
            for j in range(a.shape[1]):
                names.append(f"{key}_{j}")
                source[f"{key}_{j}"] = (key, j)
        else:
            raise InputError(f"{path}: array {key!r} has shape {a.shape}; expected 1-D or 2-D")
    n = next(iter(lengths.values())) or 0

    def batches() -> Iterator[Batch]:
        for start in range(0, n, batch_rows):
            cols = {}
            for name, (key, j) in source.items():
                a = arrays[key][start : start + batch_rows]
                cols[name] = a if j is None else a[:, j]
            yield Batch(path, start, cols)

    return Table(path, "npz", names, [], n, os.path.getsize(path), batches)
