"""The Parquet reader: one row group at a time, as Arrow record batches; a data set splits by row groups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from .._validation import InputError
from .batches import Batch, require_pyarrow
from .pieces import Format, Piece, Table, file_size, open_binary

__all__ = ["Parquet"]


def _parquet_file(pa: Any, path: str) -> Any:
    handle = open_binary(path) if "://" in path else path
    try:
        return pa.parquet.ParquetFile(handle, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet (truncated or not Parquet?): {exc}") from None


@dataclass(frozen=True)
class Parquet(Format):
    """Parquet files (``.parquet``, ``.pq``); list-valued columns are found from the schema."""

    name: ClassVar[str] = "parquet"
    suffixes: ClassVar[tuple[str, ...]] = (".parquet", ".pq")

    def open(self, files: list[str], shown: str) -> Table:
        """Read each file's footer (the schemas must agree); one piece per file, covering its row groups."""
        pa = require_pyarrow("reading Parquet")
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
                    if pa.types.is_list(fl.type)
                    or pa.types.is_large_list(fl.type)
                    or pa.types.is_fixed_size_list(fl.type)
                ]
            elif list(schema.names) != names:
                raise InputError(f"{f}: its columns differ from those of {files[0]}")
            rows = pf.metadata.num_rows
            pieces.append(Piece(self, f, f, i, rows, start, 0, pf.metadata.num_row_groups))
            start += rows
            size += file_size(f)
        assert names is not None
        return Table(shown, "parquet", names, lists, start, size, pieces, files)

    def batches(self, piece: Piece, columns: list[str], batch_rows: int) -> Iterator[Batch]:
        """Record batches of the piece's row groups, ``batch_rows`` rows at most."""
        pa = require_pyarrow("reading Parquet")
        pf = _parquet_file(pa, piece.path)
        known = set(pf.schema_arrow.names)
        missing = [c for c in columns if c not in known]
        if missing:
            raise InputError(f"{piece.source}: no column {missing[0]!r}")
        row = 0
        try:
            for group in range(piece.first, piece.stop):
                for rb in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
                    columns_read = {c: rb.column(i) for i, c in enumerate(rb.schema.names)}
                    yield Batch(piece.source, row, columns_read, rb.num_rows)
                    row += rb.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            where = (piece.start or 0) + row
            raise InputError(f"{piece.source}: cannot read Parquet after row {where}: {exc}") from None

    def split(self, piece: Piece, table: Table, target_bytes: int) -> list[Piece]:
        """Runs of consecutive row groups of about ``target_bytes`` (at least one group each)."""
        pa = require_pyarrow("reading Parquet")
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
