"""Scoring on Dask: the single-process scorer, run on workers over pieces of a data set.

The client plans the work and merges; workers read and score. A data set
(a file, a directory or glob of Parquet or CSV files, an fsspec URL) is cut
into pieces (Parquet row groups, CSV byte ranges of whole lines, NPY row
ranges); each worker reads its pieces as Arrow record batches and feeds them
to the same :func:`crossentropy._scoring.score_batches` core as ``crossentropy
score``, returning a mergeable :class:`~crossentropy._scoring.Scorer`. The
client merges the scorers in data-set order, so every figure (mean, per
class, calibration, histogram, rejected rows, bootstrap interval) equals the
single-process one whatever the partitioning: the bootstrap draws each row's
Poisson weights from a counter-based generator keyed by the row's index. Dask
recomputes the pieces of a worker that dies.

A Dask DataFrame is accepted too (each pandas partition becomes one Arrow
table); files are better, as workers then read them directly. The array-API
functions of :mod:`crossentropy` also accept Dask arrays.

Importing this module imports dask.

Examples
--------
>>> import numpy as np, pandas as pd, dask.dataframe as dd
>>> from crossentropy.dask import score
>>> frame = pd.DataFrame({"label": [1, 0, 1, 0], "p": [0.8, 0.1, 0.9, 0.4]})
>>> result = score(dd.from_pandas(frame, npartitions=2), probs=["p"], scheduler="synchronous")
>>> print(f"{result['mean_loss']:.6f} over {result['rows_scored']} rows")
0.236173 over 4 rows
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import dask
import numpy as np

from ._scoring import (
    BadRowError,
    Columns,
    ScoreOptions,
    Scorer,
    describe_rejection,
    infer_options,
    resolve_columns,
    score_batches,
)
from ._validation import InputError, check_choice

__all__ = ["score"]


def _score_piece(piece: Any, columns: Columns, options: ScoreOptions, batch_rows: int) -> Scorer:
    """Score one piece on a worker (every bad row counted; the client decides whether it is an error)."""
    scorer = Scorer(options, origin=piece.start)
    return score_batches(piece.batches(columns.read(), batch_rows), scorer, columns, on_bad_row="skip")


def _count_rows(piece: Any, label: str) -> int:
    """Rows of a CSV piece (for the bootstrap, which needs each piece's first row index)."""
    return sum(len(batch) for batch in piece.batches([label], 1 << 16))


def _frame_batches(frame: Any, columns: Columns, batch_rows: int) -> Iterator[Any]:
    import pyarrow as pa

    from .io import Batch

    table = pa.Table.from_pandas(frame[columns.read()], preserve_index=False)
    start = 0
    for rb in table.to_batches(max_chunksize=batch_rows):
        yield Batch("<dask>", start, {c: rb.column(c) for c in rb.schema.names}, rb.num_rows)
        start += rb.num_rows


def _score_frame(frame: Any, start: int | None, columns: Columns, options: ScoreOptions, batch_rows: int) -> Scorer:
    """Score one pandas partition of a Dask DataFrame."""
    scorer = Scorer(options, origin=start)
    return score_batches(_frame_batches(frame, columns, batch_rows), scorer, columns, on_bad_row="skip")


def _line_of(path: str, offset: int) -> int:
    """The 1-based line at byte ``offset`` of a CSV file (counted by reading up to it)."""
    from .io import _count_lines, _csv_stream

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


def _client(scheduler: Any) -> Any:
    """The distributed Client to use, or None for a local Dask scheduler."""
    if isinstance(scheduler, str) and scheduler in ("synchronous", "sync", "threads", "threading", "processes"):
        return None
    try:
        from distributed import Client, default_client
    except ImportError:
        return None
    if isinstance(scheduler, Client):
        return scheduler
    if scheduler is None:
        try:
            return default_client()
        except ValueError:
            return None
    return None


def _run(
    tasks: list[Any],
    weights: Sequence[float],
    scheduler: Any,
    progress: Callable[[int, float | None], None] | None,
) -> list[Any]:
    """Compute the delayed scorers; report rows and the fraction done as they finish."""
    client = _client(scheduler)
    if client is None:
        return list(dask.compute(*tasks, scheduler=scheduler))
    from distributed import as_completed

    futures = client.compute(tasks)
    order = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    total = float(sum(weights)) or 1.0
    done = 0.0
    rows = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            i = order[future.key]
            results[i] = future.result()
            rows += getattr(results[i], "rows_read", 0)
            done += weights[i]
            if progress is not None:
                progress(rows, done / total)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results


def score(
    data: Any,
    *,
    labels: str | None = None,
    probs: list[str] | None = None,
    logits: list[str] | None = None,
    sample_weight: str | None = None,
    convention: str = "exact",
    base: float | None = None,
    bins: int = 10,
    bootstrap: int = 0,
    seed: int = 0,
    atol: float | None = None,
    renormalize: bool = False,
    on_bad_row: str = "error",
    delimiter: str | None = None,
    scheduler: Any = None,
    partition_bytes: int = 64 << 20,
    batch_rows: int = 1 << 16,
    max_listed: int = 20,
    progress: Callable[[int, float | None], None] | None = None,
) -> dict[str, Any]:
    """Score a data set on Dask; the same result as :func:`crossentropy._scoring.score_file`.

    Parameters
    ----------
    data : str or dask.dataframe.DataFrame
        A file, a directory or glob of Parquet or CSV files, or an fsspec
        URL (the workers must be able to read it), or a Dask DataFrame.
    labels, probs, logits, sample_weight, convention, base, bins, bootstrap, seed, atol, renormalize, on_bad_row
        As for ``crossentropy score``.
    delimiter : str, optional
        CSV delimiter.
    scheduler : optional
        A ``distributed.Client``, or a scheduler name for ``dask.compute``
        (``"synchronous"``, ``"threads"``, ``"processes"``); ``None`` uses the
        current client, else Dask's default.
    partition_bytes : int
        Target size of a piece (CSV bytes, Parquet row groups of about this size).
    batch_rows : int
        Rows per Arrow batch on a worker.
    max_listed : int
        Rejected rows listed in the result.
    progress : callable, optional
        Called as pieces finish with the rows read so far and the fraction done.

    Returns
    -------
    dict
        The same fields as ``crossentropy score --format json``.

    Raises
    ------
    InputError
        As the single-process scorer; with ``on_bad_row="error"`` the first
        bad row in data-set order (every piece is scored first).
    """
    check_choice("on_bad_row", on_bad_row, ("error", "skip"))
    base_options = ScoreOptions(
        num_classes=2,
        convention=convention,
        base=base,
        bins=bins,
        bootstrap=bootstrap,
        seed=seed,
        atol=atol,
        renormalize=renormalize,
        max_listed=max(max_listed, 1),
    )
    if isinstance(data, str):
        total, options, columns, name = _score_files(
            data, labels, probs, logits, sample_weight, base_options, delimiter, scheduler, partition_bytes, batch_rows,
            progress,
        )  # fmt: skip
    else:
        total, options, columns, name = _score_dataframe(
            data, labels, probs, logits, sample_weight, base_options, scheduler, batch_rows, progress
        )
    if total.rows_rejected and on_bad_row == "error":
        entry = total.public_entry(total.rejected[0])
        raise BadRowError(describe_rejection(entry), entry)
    result = total.result()
    result["rejected"] = result["rejected"][:max_listed]
    return {
        "file": name,
        **result,
        "classes": options.num_classes,
        "prediction_columns": list(columns.predictions),
        "from_logits": columns.from_logits,
    }


def _score_files(
    path: str,
    labels: str | None,
    probs: list[str] | None,
    logits: list[str] | None,
    sample_weight: str | None,
    base_options: ScoreOptions,
    delimiter: str | None,
    scheduler: Any,
    partition_bytes: int,
    batch_rows: int,
    progress: Callable[[int, float | None], None] | None,
) -> tuple[Scorer, ScoreOptions, Columns, str]:
    from .io import open_table

    table = open_table(path, delimiter=delimiter)
    if table.pieces[0].stream is not None:
        raise InputError(f"{table.path}: the Dask engine reads files, not a stream; use the local engine")
    label, chosen, from_logits = resolve_columns(table.column_names, table.path, labels, probs, logits, sample_weight)
    columns = Columns(label, tuple(chosen), sample_weight, from_logits)
    first = None
    for piece in table.pieces:
        first = next(iter(piece.batches(columns.read(), 64)), None)
        if first is not None:
            break
    if first is None:
        raise InputError(f"{table.path}: no data rows")
    options, columns = infer_options(first, columns, table.list_columns, base_options)
    pieces = table.split(partition_bytes)
    if options.bootstrap and any(p.start is None for p in pieces):
        counts: list[int] = _run(
            [dask.delayed(_count_rows)(p, label) for p in pieces], [1.0] * len(pieces), scheduler, None
        )
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        pieces = [replace(p, start=int(s)) for p, s in zip(pieces, starts, strict=True)]
    tasks = [dask.delayed(_score_piece)(p, columns, options, batch_rows) for p in pieces]
    sizes = [float(p.rows if p.rows is not None else (p.size() or 1)) for p in pieces]
    scorers = _run(tasks, sizes, scheduler, progress)
    total = Scorer(options)
    for s in scorers:
        total.merge(s)
    for entry in total.rejected:
        if entry["line"] is None and entry["offset"] is not None and entry["file"]:
            entry["line"] = _line_of(entry["file"], entry["offset"])
    return total, options, columns, table.path


def _score_dataframe(
    data: Any,
    labels: str | None,
    probs: list[str] | None,
    logits: list[str] | None,
    sample_weight: str | None,
    base_options: ScoreOptions,
    scheduler: Any,
    batch_rows: int,
    progress: Callable[[int, float | None], None] | None,
) -> tuple[Scorer, ScoreOptions, Columns, str]:
    import dask.dataframe as dd

    if not isinstance(data, dd.DataFrame):
        raise InputError(f"data must be a path, a URL or a Dask DataFrame, got {type(data).__name__}")
    names = [str(c) for c in data.columns]
    label, chosen, from_logits = resolve_columns(names, "<dask>", labels, probs, logits, sample_weight)
    columns = Columns(label, tuple(chosen), sample_weight, from_logits)
    head = data.get_partition(0).head(64, compute=True) if data.npartitions else None
    if head is None or len(head) == 0:
        raise InputError("<dask>: no data rows (or an empty first partition)")
    first = next(_frame_batches(head, columns, 64))
    options, columns = infer_options(first, columns, [], base_options)
    starts: list[int | None] = [None] * data.npartitions
    if options.bootstrap:
        lengths = data.map_partitions(len).compute(scheduler=scheduler)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    tasks = [
        dask.delayed(_score_frame)(part, start, columns, options, batch_rows)
        for part, start in zip(data.to_delayed(), starts, strict=True)
    ]
    scorers = _run(tasks, [1.0] * len(tasks), scheduler, progress)
    total = Scorer(options)
    for s in scorers:
        total.merge(s)
    return total, options, columns, "<dask>"
