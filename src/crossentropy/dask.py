"""Scoring on Dask: the single-process scorer, run on workers over pieces of a data set.

The client plans the work and merges; workers read and score. A data set
(a file, a directory or glob of Parquet or CSV files, an fsspec URL) is cut
into pieces (Parquet row groups, CSV byte ranges of whole lines, NPY row
ranges); each worker reads its pieces as Arrow record batches and feeds them
to the same :func:`crossentropy.scoring.score_batches` core as ``crossentropy
score``, returning a mergeable :class:`~crossentropy.scoring.Scorer`. The
client merges the scorers in data-set order, so every figure (mean, per
class, calibration, histogram, rejected rows, worst rows, bootstrap interval,
temperature) equals the single-process one whatever the partitioning: the
bootstrap draws each row's Poisson weights from a counter-based generator
keyed by the row's index, and the temperature's cross-fitting folds are a
hash of that index too (the workers send their scored predictions back to
the client, which fits; a temperature fitted on a held-out file is fitted
on the client first, then applied on the workers). Dask recomputes the
pieces of a worker that dies.

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

from ._validation import InputError, check_choice
from .io import Batch, Piece, open_table
from .io.csv import line_at
from .scoring import (
    BadRowError,
    Columns,
    HeldOut,
    Layout,
    ScoreOptions,
    Scorer,
    describe_rejection,
    fit_held_out,
    infer_layout,
    resolve_columns,
    score_batches,
    summarize,
)

__all__ = ["score"]


class _Refused:
    """An :class:`~crossentropy.InputError` met on a worker, returned rather than raised.

    A worker logs every exception its task raises ("Compute Failed" and a
    traceback on standard error); bad input is not such an event, so the task
    returns it and the client raises it, as the local engine would.
    """

    def __init__(self, error: InputError) -> None:
        self.error = error


def _guarded(task: Callable[..., Any], *args: Any) -> Any:
    """``task(*args)``, or :class:`_Refused` holding the InputError it raised."""
    try:
        return task(*args)
    except InputError as exc:
        return _Refused(exc)


def _score_piece(piece: Piece, columns: Columns, layout: Layout, options: ScoreOptions) -> Scorer:
    """Score one piece on a worker (every bad row counted; the client decides whether it is an error)."""
    scorer = Scorer(layout, options, origin=piece.start)
    return score_batches(piece.batches(columns.read(), options.batch_rows), scorer, columns, on_bad_row="skip")


def _count_rows(piece: Piece, label: str) -> int:
    """Rows of a CSV piece (for the statistics that need each piece's first row index: the bootstrap, the
    cross-fitting folds of the temperature, the worst rows)."""
    return sum(len(batch) for batch in piece.batches([label], 1 << 16))


def _frame_batches(frame: Any, columns: Columns, batch_rows: int) -> Iterator[Batch]:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame[columns.read()], preserve_index=False)
    start = 0
    for rb in table.to_batches(max_chunksize=batch_rows):
        yield Batch("<dask>", start, {c: rb.column(c) for c in rb.schema.names}, rb.num_rows)
        start += rb.num_rows


def _score_frame(frame: Any, start: int | None, columns: Columns, layout: Layout, options: ScoreOptions) -> Scorer:
    """Score one pandas partition of a Dask DataFrame."""
    scorer = Scorer(layout, options, origin=start)
    return score_batches(_frame_batches(frame, columns, options.batch_rows), scorer, columns, on_bad_row="skip")


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
    """Compute the delayed tasks (of :func:`_guarded`); report rows and the fraction done as they finish.

    The first task that met bad input (in data-set order, among those
    finished) raises its InputError here, and the others are cancelled.
    """
    client = _client(scheduler)
    if client is None:
        results = list(dask.compute(*tasks, scheduler=scheduler))
        refused = next((r for r in results if isinstance(r, _Refused)), None)
        if refused is not None:
            raise refused.error
        return results
    from distributed import as_completed

    futures = client.compute(tasks)
    order = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(futures)
    total = float(sum(weights)) or 1.0
    done = 0.0
    rows = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            i = order[future.key]
            results[i] = future.result()
            if isinstance(results[i], _Refused):
                raise next(r for r in results if isinstance(r, _Refused)).error
            rows += getattr(results[i], "rows_read", 0)
            done += weights[i]
            if progress is not None:
                progress(rows, done / total)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results


def score(
    data: Any,
    options: ScoreOptions | None = None,
    /,
    *,
    scheduler: Any = None,
    partition_bytes: int = 64 << 20,
    progress: Callable[[int, float | None], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Score a data set on Dask; the same result as :func:`crossentropy.scoring.score_file`.

    Parameters
    ----------
    data : str or dask.dataframe.DataFrame
        A file, a directory or glob of Parquet or CSV files, or an fsspec
        URL (the workers must be able to read it), or a Dask DataFrame.
    options : crossentropy.scoring.ScoreOptions, optional
        What to read and compute, as for ``crossentropy score`` (labels,
        probs, logits, sample_weight, convention, base, bins, bootstrap,
        seed, atol, renormalize, on_bad_row, delimiter, worst_rows, calibrate,
        folds, calibrate_on; ``batch_rows``: rows per Arrow batch on a
        worker; ``max_listed``: rejected rows listed).
    scheduler : optional
        A ``distributed.Client``, or a scheduler name for ``dask.compute``
        (``"synchronous"``, ``"threads"``, ``"processes"``); ``None`` uses the
        current client, else Dask's default.
    partition_bytes : int
        Target size of a piece (CSV bytes, Parquet row groups of about this size).
    progress : callable, optional
        Called as pieces finish with the rows read so far and the fraction done.
    **settings
        Fields of :class:`~crossentropy.scoring.ScoreOptions` to set on
        ``options``: ``score(path, probs=["p_*"], bootstrap=200)``.

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
    options = replace(ScoreOptions() if options is None else options, **settings)
    check_choice("on_bad_row", options.on_bad_row, ("error", "skip"))
    options, held_out = fit_held_out(options)  # on the client, in one process
    listed = replace(options, max_listed=max(options.max_listed, 1))  # the first bad row is needed for the error
    if isinstance(data, str):
        total, columns, name = _score_files(data, listed, scheduler, partition_bytes, progress, held_out)
    else:
        total, columns, name = _score_dataframe(data, listed, scheduler, progress, held_out)
    if total.rows_rejected and options.on_bad_row == "error":
        entry = total.public_entry(total.rejected[0])
        raise BadRowError(describe_rejection(entry), entry)
    result = summarize(name, total, columns)
    result["rejected"] = result["rejected"][: options.max_listed]
    if held_out is not None:
        result["calibration"].update(held_out.fields())
    return result


def _score_files(
    path: str,
    options: ScoreOptions,
    scheduler: Any,
    partition_bytes: int,
    progress: Callable[[int, float | None], None] | None,
    held_out: HeldOut | None,
) -> tuple[Scorer, Columns, str]:
    table = open_table(path, delimiter=options.delimiter)
    if table.pieces[0].stream is not None:
        raise InputError(f"{table.path}: the Dask engine reads files, not a stream; use the local engine")
    columns = resolve_columns(table.column_names, table.path, options)
    first = None
    for piece in table.pieces:
        first = next(iter(piece.batches(columns.read(), 64)), None)
        if first is not None:
            break
    if first is None:
        raise InputError(f"{table.path}: no data rows")
    layout, columns = infer_layout(first, columns, table.list_columns)
    if held_out is not None:
        held_out.check(layout)
    pieces = table.split(partition_bytes)
    if options.needs_positions and any(p.start is None for p in pieces):
        counts: list[int] = _run(
            [dask.delayed(_guarded)(_count_rows, p, columns.label) for p in pieces],
            [1.0] * len(pieces),
            scheduler,
            None,
        )
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        pieces = [replace(p, start=int(s)) for p, s in zip(pieces, starts, strict=True)]
    tasks = [dask.delayed(_guarded)(_score_piece, p, columns, layout, options) for p in pieces]
    sizes = [float(p.rows if p.rows is not None else (p.size() or 1)) for p in pieces]
    scorers = _run(tasks, sizes, scheduler, progress)
    total = Scorer(layout, options)
    for s in scorers:
        total.merge(s)
    for entry in total.rejected:
        if entry["line"] is None and entry["offset"] is not None and entry["file"]:
            entry["line"] = line_at(entry["file"], entry["offset"])
    return total, columns, table.path


def _score_dataframe(
    data: Any,
    options: ScoreOptions,
    scheduler: Any,
    progress: Callable[[int, float | None], None] | None,
    held_out: HeldOut | None,
) -> tuple[Scorer, Columns, str]:
    import dask.dataframe as dd

    if not isinstance(data, dd.DataFrame):
        raise InputError(f"data must be a path, a URL or a Dask DataFrame, got {type(data).__name__}")
    names = [str(c) for c in data.columns]
    columns = resolve_columns(names, "<dask>", options)
    head = data.get_partition(0).head(64, compute=True) if data.npartitions else None
    if head is None or len(head) == 0:
        raise InputError("<dask>: no data rows (or an empty first partition)")
    first = next(_frame_batches(head, columns, 64))
    layout, columns = infer_layout(first, columns, [])
    if held_out is not None:
        held_out.check(layout)
    starts: list[int | None] = [None] * data.npartitions
    if options.needs_positions:
        lengths = data.map_partitions(len).compute(scheduler=scheduler)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    tasks = [
        dask.delayed(_guarded)(_score_frame, part, start, columns, layout, options)
        for part, start in zip(data.to_delayed(), starts, strict=True)
    ]
    scorers = _run(tasks, [1.0] * len(tasks), scheduler, progress)
    total = Scorer(layout, options)
    for s in scorers:
        total.merge(s)
    return total, columns, "<dask>"
