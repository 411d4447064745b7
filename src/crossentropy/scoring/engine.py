"""The single-process engine behind ``crossentropy score``: read a data set's batches in order and score them.

:func:`score_batches` is the core that both engines share: it turns each
batch of :mod:`crossentropy.io` into labels, predictions, weights and the
cells the reader found bad (:func:`extract`), and feeds them to a
:class:`~crossentropy.scoring.Scorer`. :func:`score_file` runs it over the
pieces of a file or data set in one process, one scorer per piece merged in
order, as :mod:`crossentropy.dask` does on workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from .._validation import InputError, check_choice
from ..io import Batch, Table, open_table
from .checks import BadRowError, Describe, Problem, describe_rejection
from .options import Columns, Layout, ScoreOptions, infer_layout, resolve_columns
from .scorer import Scorer
from .summary import summarize
from .temperature import HeldOut, Temperature

__all__ = ["Progress", "extract", "fit_held_out", "score_batches", "score_file"]

Array = np.ndarray[Any, Any]

Progress = Callable[[int, float | None], None]
"""``progress(rows_read, fraction_done)``; the fraction is ``None`` when the size is unknown (a stream)."""


def extract(batch: Batch, columns: Columns, layout: Layout) -> dict[str, Any]:
    """Labels, predictions, weights, stored dtype and the reader's bad cells: :meth:`Scorer.update`'s arguments."""
    problems: list[Problem] = []

    def cells(numeric: Any, name: str) -> Array:
        def missing(i: int) -> tuple[str | None, str]:
            return name, ""

        def invalid(i: int) -> tuple[str | None, str]:
            return name, repr(batch.text(name, i))

        if numeric.missing is not None and numeric.missing.any():
            problems.append((numeric.missing, "missing value", missing))
        if numeric.invalid is not None and numeric.invalid.any():
            problems.append((numeric.invalid, "not a number", invalid))
        return np.asarray(numeric.values)

    if batch.broken is not None:
        problems.append((batch.broken, "wrong number of fields", lambda i: (None, batch.broken_detail.get(i, ""))))
    y = cells(batch.numeric(columns.label), columns.label)
    dtype = np.dtype(np.float64)
    if columns.list_column:
        numeric, wrong = batch.vectors(columns.predictions[0], layout.num_classes)
        if wrong is not None:
            problems.append(
                (
                    wrong,
                    "wrong number of values",
                    lambda i: (columns.predictions[0], f"expected {layout.num_classes}"),
                )
            )
        preds = cells(numeric, columns.predictions[0])
        dtype = numeric.dtype
    else:
        numeric = batch.matrix(list(columns.predictions))

        def describer(mask: Array, reason: str) -> Describe:
            def describe(i: int) -> tuple[str | None, str]:
                name = columns.predictions[int(np.argmax(mask[i]))]
                return name, repr(batch.text(name, i)) if reason == "not a number" else ""

            return describe

        for mask, reason in ((numeric.missing, "missing value"), (numeric.invalid, "not a number")):
            if mask is not None and mask.any():
                rows = np.asarray(mask.any(axis=1))
                problems.append((rows, reason, describer(mask, reason)))
        preds = numeric.values[:, 0] if layout.binary else numeric.values
        dtype = numeric.dtype
    w = cells(batch.numeric(columns.weight), columns.weight) if columns.weight else None
    return {"labels": y, "preds": preds, "weights": w, "dtype": dtype, "problems": problems}


def score_batches(
    batches: Iterable[Batch],
    scorer: Scorer,
    columns: Columns,
    *,
    on_bad_row: str = "error",
    progress: Callable[[Batch], None] | None = None,
) -> Scorer:
    """Feed ``batches`` (of :mod:`crossentropy.io`) to ``scorer``; the core of both engines.

    With ``on_bad_row="error"`` the first row that cannot be scored raises
    :class:`~crossentropy.scoring.BadRowError` naming its file, line (or row) and column.
    """
    for batch in batches:
        if not len(batch):
            continue
        scorer.update(**extract(batch, columns, scorer.layout), columns=columns, cells=batch)
        if scorer.rows_rejected and on_bad_row == "error":
            entry = dict(scorer.rejected[0])
            entry["row"] = entry["row"] + 1 + (scorer.origin or 0) if scorer.origin is not None else None
            raise BadRowError(describe_rejection(entry), entry)
        if progress is not None:
            progress(batch)
    return scorer


def score_file(
    path: str, options: ScoreOptions | None = None, /, *, progress: Progress | None = None, **settings: Any
) -> dict[str, Any]:
    """Score a prediction file or data set in bounded memory; the engine behind ``crossentropy score``.

    Parameters
    ----------
    path : str
        Anything :func:`crossentropy.io.open_table` opens (a file, ``-`` for
        standard input, a FIFO, a directory or glob of Parquet or CSV files,
        an fsspec URL).
    options : ScoreOptions, optional
        What to read and compute (default: :class:`ScoreOptions`'s defaults).
    progress : callable, optional
        Called after each batch with the rows read so far and the fraction
        done (``None`` when the size is unknown, as on a stream).
    **settings
        Fields of :class:`ScoreOptions` to set on ``options`` (``probs=["p_*"]``, ...).

    Returns
    -------
    dict
        The scorer's result plus ``file``, ``classes``, ``prediction_columns``
        and ``from_logits`` (see :func:`crossentropy.scoring.summarize`);
        ``rejected`` lists the first ``max_listed`` rejected rows (row, file,
        line, column, reason, detail). With ``calibrate="temperature"`` the
        ``calibration`` entry also holds the temperature and the loss and
        calibration error before and after it (see
        :mod:`crossentropy.scoring.temperature`); with ``calibrate_on`` the
        temperature is fitted on that file first (:func:`fit_held_out`).

    Raises
    ------
    InputError
        For unreadable files, unknown columns, and (with
        ``on_bad_row="error"``) the first row that cannot be scored, naming
        the file, the line (CSV) or row, the column and the reason.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from crossentropy.scoring import score_file
    >>> path = os.path.join(tempfile.mkdtemp(), "preds.npy")
    >>> np.save(path, np.array([[1, 0.2, 0.8], [0, 0.9, 0.1], [1, 0.4, 0.6]]))
    >>> result = score_file(path, labels="0", probs=["1", "2"])
    >>> print(f"{result['mean_loss']:.6f} nats over {result['rows_scored']} rows, accuracy {result['accuracy']}")
    0.279777 nats over 3 rows, accuracy 1.0
    """
    options = replace(ScoreOptions() if options is None else options, **settings)
    check_choice("on_bad_row", options.on_bad_row, ("error", "skip"))
    options, held_out = fit_held_out(options)
    total, columns, name = _score_table(path, options, progress, held_out)
    result = summarize(name, total, columns)
    if held_out is not None:
        result["calibration"].update(held_out.fields())
    return result


def fit_held_out(options: ScoreOptions) -> tuple[ScoreOptions, HeldOut | None]:
    """Fit the temperature on ``options.calibrate_on`` (read here, in one process) and set it on the options.

    Options without a held-out file come back unchanged, with ``None``. The
    held-out file is read with the same columns, convention and checks as
    the scored data; its rows are held in memory for the fit.
    """
    if options.calibrate is None or options.calibrate_on is None or options.temperature is not None:
        return options, None
    fitting = replace(options, calibrate_on=None, temperature=None, bootstrap=0, worst_rows=0)
    total, _, name = _score_table(options.calibrate_on, fitting, None, None)
    t, left_out = total.statistic(Temperature).fit_all()
    held_out = HeldOut(name, t, total.layout, total.rows_scored, left_out)
    return replace(options, temperature=t), held_out


def _score_table(
    path: str, options: ScoreOptions, progress: Progress | None, held_out: HeldOut | None
) -> tuple[Scorer, Columns, str]:
    """The merged scorer of a file or data set, its columns and its name."""
    table = open_table(path, delimiter=options.delimiter)
    columns = resolve_columns(table.column_names, table.path, options)
    total: Scorer | None = None
    done_bytes = 0
    for piece in table.pieces:
        batches = iter(piece.batches(columns.read(), options.batch_rows))
        first = next(batches, None)
        if first is None:
            continue
        if total is None:
            layout, columns = infer_layout(first, columns, table.list_columns)
            if held_out is not None:
                held_out.check(layout)
            total = Scorer(layout, options)
        scorer = Scorer(total.layout, options, origin=total.rows_read)
        report = None if progress is None else _progress(progress, table, total.rows_read, scorer, done_bytes)
        score_batches(_chain(first, batches), scorer, columns, on_bad_row=options.on_bad_row, progress=report)
        total.merge(scorer)
        if piece.size() is not None:
            done_bytes += piece.stop
    if total is None:
        raise InputError(f"{table.path}: no data rows (the file has a header but no rows)")
    return total, columns, table.path


def _progress(
    progress: Progress, table: Table, before: int, scorer: Scorer, done_bytes: int
) -> Callable[[Batch], None]:
    """A per-batch callback reporting rows read and the fraction done (by rows, else by bytes)."""

    def report(batch: Batch) -> None:
        rows = before + scorer.rows_read
        if table.num_rows:
            progress(rows, rows / table.num_rows)
        elif table.size_bytes and batch.end_offset is not None:
            progress(rows, min(1.0, (done_bytes + batch.end_offset) / table.size_bytes))
        else:
            progress(rows, None)

    return report


def _chain(first: Batch, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    yield from rest
