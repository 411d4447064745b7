"""Batches of rows as the readers hand them out, and their conversion to numbers.

A :class:`Batch` holds one storage model whatever the format: a dictionary
from column name to one column, which is

- a 1-D NumPy array (NPY, NPZ, a Dask partition),
- a pyarrow array or chunked array (Parquet, CSV parsed by pyarrow), or
- a list of the cells' text (CSV parsed line by line),

plus, for a CSV block with rows of the wrong number of fields, where the
parsed rows sit among the batch's rows (``placement``). Every method reads
the columns the same way and spreads its result over the batch's rows with
one helper. Cells that are not numbers are not errors here:
:meth:`Batch.numeric` marks them, and the scorer decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import InputError

__all__ = ["NUMBER", "Batch", "Numeric", "require_pyarrow"]

NUMBER = r"(?i)^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"
"""The text of a number, as a cell may hold it (surrounding blanks removed)."""

Locate = Callable[[Sequence[int]], list[tuple[int | None, int | None]]]
"""Batch rows -> ``(line, byte offset)`` of each in the file."""


def require_pyarrow(purpose: str) -> Any:
    """The ``pyarrow`` module (with ``compute``, ``csv`` and ``parquet``), or InputError saying what needs it."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError:
        raise InputError(f"{purpose} needs pyarrow: pip install 'crossentropy[io]'") from None
    return pyarrow


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
        Column name to a 1-D NumPy array, a pyarrow (chunked) array, a
        pyarrow list array for list-valued columns, or a list of the cells'
        text (see the module's description).
    broken : numpy.ndarray or None
        Rows of a CSV block that have the wrong number of fields (their
        values read as missing).
    end_offset : int or None
        For CSV, the file offset just past the batch (for progress; a block
        handed out in parts shares its bytes out among them by rows).
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
        locate: Locate | None = None,
        placement: np.ndarray[Any, Any] | None = None,
        broken_detail: dict[int, str] | None = None,
    ) -> None:
        self.source = source
        self.start = start
        self.columns = columns
        self.num_rows = num_rows
        self._locate = locate
        self._placement = placement
        self.broken: np.ndarray[Any, Any] | None = None
        self.end_offset: int | None = None
        self.broken_detail: dict[int, str] = {} if broken_detail is None else broken_detail
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

    def numeric(self, name: str) -> Numeric:
        """Column ``name`` as float64, marking cells that are missing or not numbers."""
        return self._spread_numeric(_numeric(self.columns[name], self.source, name))

    def matrix(self, names: Sequence[str]) -> Numeric:
        """Columns ``names`` as one ``(n, len(names))`` :class:`Numeric`, converted in one pass.

        ``missing`` and ``invalid`` are then 2-D; ``dtype`` is the least
        precise stored dtype of the columns.
        """
        raw = [self.columns[c] for c in names]
        rows = len(raw[0])
        if all(isinstance(v, np.ndarray) for v in raw):
            parts = [_numeric(v, self.source, c) for v, c in zip(raw, names, strict=True)]
            dtype = min((p.dtype for p in parts), key=lambda d: d.itemsize)
            return self._spread_numeric(Numeric(np.column_stack([p.values for p in parts]), dtype=dtype))
        if all(isinstance(v, list) for v in raw):
            flat = _text_array([cell for v in raw for cell in v])
            return self._spread_numeric(_reshape(_numeric(flat, self.source, names[0]), (len(names), rows)))
        pa = require_pyarrow("reading these columns")
        chunks = [v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v for v in raw]
        kinds = {c.type for c in chunks} if all(isinstance(c, pa.Array) for c in chunks) else set()
        if len(kinds) != 1 or not (pa.types.is_string(chunks[0].type) or pa.types.is_binary(chunks[0].type)):
            parts = [_numeric(v, self.source, c) for v, c in zip(chunks, names, strict=True)]

            def stack(masks: list[np.ndarray[Any, Any] | None]) -> np.ndarray[Any, Any] | None:
                if all(m is None for m in masks):
                    return None
                return np.column_stack([np.zeros(rows, bool) if m is None else m for m in masks])

            dtype = min((p.dtype for p in parts), key=lambda d: d.itemsize)
            values = np.column_stack([p.values for p in parts])
            missing, invalid = stack([p.missing for p in parts]), stack([p.invalid for p in parts])
            return self._spread_numeric(Numeric(values, missing, invalid, dtype))
        flat = pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0]
        return self._spread_numeric(_reshape(_numeric(flat, self.source, names[0]), (len(names), rows)))

    def text(self, name: str, row: int) -> str:
        """The raw cell of column ``name`` at batch row ``row``, for messages."""
        if self._placement is not None:
            hits = np.flatnonzero(self._placement == row)
            if not hits.size:
                return ""
            row = int(hits[0])
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
        pa = require_pyarrow("reading list columns")
        values = self.columns[name]
        if isinstance(values, list):
            values = pa.array(values, pa.string())
        elif isinstance(values, np.ndarray):
            values = pa.array(values.astype(str))
        elif isinstance(values, pa.ChunkedArray):
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
        return self._spread_numeric(out), (self._spread(wrong, False) if wrong.any() else None)

    def slice(self, begin: int, end: int) -> Batch:
        """Batch rows ``begin .. end - 1`` as a batch of their own (the columns are not copied)."""
        columns, placement = self.columns, self._placement
        if placement is not None:
            low, high = (int(i) for i in np.searchsorted(placement, [begin, end]))
            columns = {name: _rows(column, low, high) for name, column in columns.items()}
            placement = placement[low:high] - begin
            if placement.size == end - begin:
                placement = None
        else:
            columns = {name: _rows(column, begin, end) for name, column in columns.items()}
        detail = {r - begin: d for r, d in self.broken_detail.items() if begin <= r < end}

        def locate(rows: Sequence[int]) -> list[tuple[int | None, int | None]]:
            return self.locate([begin + r for r in rows])

        part = Batch(
            self.source, self.start + begin, columns, end - begin, locate=locate, placement=placement,
            broken_detail=detail,
        )  # fmt: skip
        part.end_offset = self.end_offset if end == self.num_rows else None
        return part

    def _spread(self, values: np.ndarray[Any, Any], fill: Any) -> np.ndarray[Any, Any]:
        """Values of the parsed rows, placed at their rows of the batch (``fill`` at the others)."""
        if self._placement is None:
            return values
        out = np.full((self.num_rows, *values.shape[1:]), fill, dtype=values.dtype)
        out[self._placement] = values
        return out

    def _spread_numeric(self, out: Numeric) -> Numeric:
        if self._placement is None:
            return out
        return Numeric(
            self._spread(out.values, np.nan),
            None if out.missing is None else self._spread(out.missing, False),
            None if out.invalid is None else self._spread(out.invalid, False),
            out.dtype,
        )


def _rows(column: Any, begin: int, end: int) -> Any:
    """Rows ``begin .. end - 1`` of a column of any kind, without a copy."""
    if isinstance(column, (np.ndarray, list)):
        return column[begin:end]
    return column.slice(begin, end - begin)


def _text_array(texts: list[str]) -> Any:
    """Cells' text as a pyarrow binary array (undecodable bytes kept as they were read)."""
    pa = require_pyarrow("reading CSV")
    return pa.array([t.encode("utf-8", "surrogateescape") for t in texts], pa.binary())


def _reshape(out: Numeric, shape: tuple[int, int]) -> Numeric:
    """A flat, column-major :class:`Numeric` of ``shape`` ``(C, n)`` as ``(n, C)``."""

    def fix(a: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any] | None:
        return None if a is None else a.reshape(shape).T

    values = fix(out.values)
    assert values is not None
    return Numeric(np.ascontiguousarray(values), fix(out.missing), fix(out.invalid), out.dtype)


def _stored_dtype(dtype: Any) -> np.dtype[Any]:
    d = np.dtype(dtype)
    return d if d.kind == "f" and d.itemsize < 8 else np.dtype(np.float64)


def _numeric(values: Any, source: str, name: str) -> Numeric:
    """float64 values of a column (NumPy, pyarrow or text), marking missing and non-numeric cells."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biuf":
            return Numeric(values.astype(np.float64, copy=False), dtype=_stored_dtype(values.dtype))
        raise InputError(f"{source}: column {name!r} is not numeric (dtype {values.dtype})")
    if isinstance(values, list):
        values = _text_array(values)
    pa = require_pyarrow("reading this column")
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
