"""Streaming readers for prediction files (CSV, Parquet, NPY, NPZ) and atomic writes.

:func:`open_table` opens a file, a directory or glob of files, standard
input (``-``), a FIFO or an fsspec URL (``file://``, ``memory://``, ``s3://``
with the matching fsspec package) and describes it as a :class:`Table`: its
columns and a list of :class:`Piece` objects, the units of work that the
scorer reads in order (one process) or hands to Dask workers (many). A piece
yields :class:`Batch` objects of bounded size, so a file of any size is read
in bounded memory:

- CSV is cut into blocks of whole lines by this package and each block is
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

The package, one module per job: :mod:`~crossentropy.io.writers` (atomic
writes, figures), :mod:`~crossentropy.io.columns` (choosing columns),
:mod:`~crossentropy.io.batches` (a batch of rows and its conversion to
numbers), :mod:`~crossentropy.io.pieces` (tables, pieces and the
:class:`~crossentropy.io.pieces.Format` interface),
:mod:`~crossentropy.io.datasets` (:func:`open_table`, the one switch over
formats) and one reader per format: :mod:`~crossentropy.io.csv`,
:mod:`~crossentropy.io.parquet`, :mod:`~crossentropy.io.npy` (NPY and NPZ).

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

from .batches import Batch, Numeric
from .columns import describe_columns, select_columns
from .datasets import open_table
from .npy import read_npy, read_npy_header
from .pieces import Piece, Table, read_bounded
from .writers import atomic_write, save_figure

__all__ = [
    "Batch",
    "Numeric",
    "Piece",
    "Table",
    "atomic_write",
    "describe_columns",
    "open_table",
    "read_bounded",
    "read_npy",
    "read_npy_header",
    "save_figure",
    "select_columns",
]
