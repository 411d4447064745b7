"""Row checks: which rows of a batch can be scored, why the others cannot, and the tally of both.

:class:`RowChecks` finds, for each row, the first reason it cannot be scored
(a label outside the classes, a probability outside [0, 1], a row that does
not sum to 1 within :meth:`RowChecks.tolerance`, a negative weight, ...).
:class:`Tally` counts the rows read, scored and rejected, by reason, and
lists the first rejected rows with their file, line and column; it merges
with the tally of the rows that follow, as every partial of the scorer does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .. import conventions as _conv
from .._validation import InputError, check_base, sum_tolerance
from .options import Columns, Layout, ScoreOptions

__all__ = [
    "MAX_BINS",
    "ROW_REASONS",
    "BadRowError",
    "Cells",
    "Problem",
    "RowChecks",
    "Tally",
    "check_options",
    "describe_rejection",
    "renormalized",
]

Array = np.ndarray[Any, Any]

Describe = Callable[[int], tuple[str | None, str]]
"""Row -> ``(column, detail)`` for the message about it."""

Problem = tuple[Array, str, Describe]
"""Rows (a mask or indices), the reason they cannot be scored, and how to describe one."""

MAX_BINS = 10_000
"""The most calibration bins (each is a row of the table and the report, and memory on every worker)."""
MIN_DECIMALS = 3
MAX_DECIMALS = 15
MAX_ROUNDING_ALLOWANCE = 0.01

ROW_REASONS = frozenset(
    {"probabilities do not sum to 1", "probabilities sum to 0", "every logit is -inf", "wrong number of values"}
)
"""The reasons about a whole row of predictions (its message names the span of columns)."""


class Cells(Protocol):
    """Where a batch's rows are, for messages (a :class:`crossentropy.io.Batch`)."""

    source: str

    def locate(self, rows: Sequence[int]) -> list[tuple[int | None, int | None]]: ...

    def text(self, name: str, row: int) -> str: ...


class BadRowError(InputError):
    """A row that cannot be scored, with where it is (``entry``)."""

    def __init__(self, message: str, entry: dict[str, Any]) -> None:
        super().__init__(message)
        self.entry = entry

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.entry))


def describe_rejection(entry: dict[str, Any], *, hint: bool = True) -> str:
    """``file: line N, column 'c': reason (detail)`` for one rejected row."""
    where = f"line {entry['line']}" if entry.get("line") is not None else f"row {entry['row']}"
    if entry.get("line") is None and entry.get("offset") is not None and entry.get("row") is None:
        where = f"the row at byte {entry['offset']}"
    column = entry.get("column")
    if column and entry["reason"] in ROW_REASONS and ".." in column:
        first, last = column.split("..", 1)
        column = f", columns {first!r}..{last!r}"
    elif column:
        column = f", column {column!r}"
    else:
        column = ""
    detail = f" ({entry['detail']})" if entry.get("detail") else ""
    text = f"{entry.get('file') or '<data>'}: {where}{column}: {entry['reason']}{detail}"
    if hint and entry["reason"] == "probabilities do not sum to 1":
        text += "; --atol sets the tolerance, --renormalize rescales rows"
    return text


class RowChecks:
    """The checks of a row of labels, predictions and weights, for given options and layout."""

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        self.options = options
        self.layout = layout
        self.convention = _conv.get(options.convention)

    def tolerance(self, values: Array, dtype: Any = np.float64, sums: Array | None = None) -> Array | float:
        """Allowed deviation from 1 of the sums of probability rows ``values`` (shape ``(n, C)``).

        ``atol`` when given. Otherwise the larger of ``sqrt(eps)`` of the
        stored dtype (as :func:`crossentropy.categorical_cross_entropy`
        allows) and, for a row whose values all have at most ``k`` decimal
        digits with ``k >= 3``, ``C * 0.5 * 10**-k`` (at most 0.01): the most
        that rounding each of the ``C`` values to ``k`` decimals can move the
        sum. So a file written with 6 decimals, or in float32, scores by
        default, while coarser rows (``0.5, 0.4``; ``0, 0``) must be allowed
        explicitly (``atol``) or renormalised.
        """
        if self.options.atol is not None:
            return self.options.atol
        base = sum_tolerance(np, np.dtype(dtype))
        sums = values.sum(axis=1) if sums is None else sums
        close = np.abs(sums - 1) <= base
        if close.all():
            return base
        out = np.full(values.shape[0], base)
        unsure = np.flatnonzero(~close & np.isfinite(sums))
        if unsure.size:
            decimals = _decimals(values[unsure])
            allowed = np.where(
                (decimals >= MIN_DECIMALS) & (decimals <= MAX_DECIMALS),
                np.minimum(values.shape[1] * 0.5 * 10.0 ** (-decimals.astype(float)), MAX_ROUNDING_ALLOWANCE),
                0.0,
            )
            out[unsure] = np.maximum(base, allowed)
        return out

    def check(
        self, labels: Array, preds: Array, weights: Array | None, dtype: Any, cols: Columns
    ) -> tuple[Array, list[Problem]]:
        """A mask of scoreable rows and, for the others, why.

        Returns the mask and a list of ``(rows, reason, describe)`` where
        ``describe(row)`` gives ``(column, detail)`` for a message; each row
        is listed under its first reason only.
        """
        o, layout = self.options, self.layout
        n = labels.shape[0]
        bad = np.zeros(n, dtype=bool)
        problems: list[Problem] = []

        def flag(mask: Any, reason: str, describe: Describe) -> None:
            new = mask & ~bad
            if new.any():
                problems.append((np.flatnonzero(new), reason, describe))
                bad[:] |= new

        def label_value(i: int) -> tuple[str | None, str]:
            return cols.label, f"value {labels[i]:.10g}"

        valid = (labels >= 0) & (labels < layout.num_classes) & (labels == np.floor(labels))
        if not valid.all():
            finite = np.isfinite(labels)
            flag(~finite, "label is not a number", label_value)
            flag(finite & (labels != np.round(labels)), "label is not an integer class index", label_value)
            flag(~valid, f"label is outside [0, {layout.num_classes})", label_value)
        p2 = preds.reshape(n, -1)

        def first_column(test: Callable[[Array], Array]) -> Describe:
            def describe(i: int) -> tuple[str | None, str]:
                row = p2[i]
                j = int(np.argmax(test(row)))
                return cols.prediction(j), f"value {row[j]:.10g}"

            return describe

        def span(i: int) -> tuple[str | None, str]:
            return cols.span(p2.shape[1]), ""

        if layout.from_logits:
            if not (p2 < np.inf).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag((p2 == np.inf).any(axis=1), "logit is +inf", first_column(lambda r: r == np.inf))
            if not layout.binary:
                flag((p2 == -np.inf).all(axis=1), "every logit is -inf", span)
        elif o.renormalize and not layout.binary:
            if not ((p2 >= 0) & (p2 < np.inf)).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag(((p2 < 0) | ~np.isfinite(p2)).any(axis=1), "probability is negative or infinite",
                     first_column(lambda r: (r < 0) | ~np.isfinite(r)))  # fmt: skip
            with np.errstate(over="ignore", invalid="ignore"):  # a row already flagged may sum to inf or NaN
                flag(~(p2.sum(axis=1) > 0), "probabilities sum to 0", span)
        else:
            if not ((p2 >= 0) & (p2 <= 1)).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag(((p2 < 0) | (p2 > 1)).any(axis=1), "probability is outside [0, 1]",
                     first_column(lambda r: (r < 0) | (r > 1)))  # fmt: skip
            if not layout.binary and self.convention.sum_check == "error":
                with np.errstate(over="ignore", invalid="ignore"):  # rows already flagged may hold 1e308 or inf
                    sums = p2.sum(axis=1)
                tol = self.tolerance(p2, dtype, sums)

                def describe_sum(i: int) -> tuple[str | None, str]:
                    t = tol if isinstance(tol, float) else float(tol[i])
                    off = abs(sums[i] - 1)
                    return cols.span(p2.shape[1]), f"sum {sums[i]:.10g}, off by {off:.3g}; tolerance {t:.3g}"

                flag(~(np.abs(sums - 1) <= tol), "probabilities do not sum to 1", describe_sum)
        if weights is not None:
            flag(
                ~np.isfinite(weights) | (weights < 0),
                "sample weight is negative or not finite",
                lambda i: (cols.weight, f"value {weights[i]:.10g}"),
            )
        return ~bad, problems


def renormalized(values: Array) -> Array:
    """Each row of ``values`` (finite, >= 0, with a sum > 0) divided by its sum, even when the sum overflows.

    A row whose sum is beyond the float range is first scaled by a power of
    two (exact), so ``[1e308, 1e308]`` gives ``[0.5, 0.5]``; other rows are
    divided by their sum as they are.

    Examples
    --------
    >>> import numpy as np
    >>> renormalized(np.array([[1e308, 1e308], [1.0, 3.0]])).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    with np.errstate(over="ignore"):
        sums = values.sum(axis=1, keepdims=True)
    out: Array = values / sums
    huge = np.flatnonzero(np.isinf(sums[:, 0]))
    if huge.size:
        _, exponent = np.frexp(values[huge].max(axis=1, keepdims=True))
        scaled = np.ldexp(values[huge], -exponent)
        out[huge] = scaled / scaled.sum(axis=1, keepdims=True)
    return out


def _decimals(values: Array) -> Array:
    """For each row, the fewest decimal digits (<= 15) that write all its values exactly; 16 if none."""
    out = np.full(values.shape[0], MAX_DECIMALS + 1)
    todo = np.arange(values.shape[0])
    for d in range(MAX_DECIMALS + 1):
        scale = 10.0**d
        rows = values[todo]
        with np.errstate(invalid="ignore", over="ignore"):
            exact = (np.round(rows * scale) / scale == rows).all(axis=1)
        out[todo[exact]] = d
        todo = todo[~exact]
        if not todo.size:
            break
    return out


class Tally:
    """Rows read, scored and rejected (by reason), and the first rejected rows, of consecutive rows.

    A rejected row is listed as ``{"row", "file", "line", "offset",
    "column", "reason", "detail"}`` with ``row`` counted from the first row
    this tally saw (0-based); :meth:`merge` renumbers the rows of the tally
    that follows.
    """

    def __init__(self, max_listed: int) -> None:
        self.max_listed = max_listed
        self.rows_read = 0
        self.rows_scored = 0
        self.rows_rejected = 0
        self.reasons: Counter[str] = Counter()
        self.rejected: list[dict[str, Any]] = []

    def reject(self, found: list[Problem], cells: Cells | None) -> None:
        """Count the rows of ``found`` (of the batch about to be read) and list the first ones."""
        count = sum(int(rows.size) for rows, _, _ in found)
        self.rows_rejected += count
        for rows, reason, _ in found:
            self.reasons[reason] += int(rows.size)
        room = self.max_listed - len(self.rejected)
        if room <= 0:
            return
        entries = sorted((int(r), reason, describe) for rows, reason, describe in found for r in rows[:room])[:room]
        places = cells.locate([r for r, _, _ in entries]) if cells is not None else [(None, None)] * len(entries)
        for (r, reason, describe), (line, offset) in zip(entries, places, strict=True):
            column, detail = describe(r)
            self.rejected.append(
                {
                    "row": self.rows_read + r,
                    "file": None if cells is None else cells.source,
                    "line": line,
                    "offset": offset,
                    "column": column,
                    "reason": reason,
                    "detail": detail,
                }
            )

    def read(self, rows: int, scored: int) -> None:
        """Count a batch of ``rows`` rows read, ``scored`` of them scored."""
        self.rows_read += rows
        self.rows_scored += scored

    def merge(self, other: Tally) -> None:
        """Append the tally of the rows that follow."""
        for entry in other.rejected[: max(0, self.max_listed - len(self.rejected))]:
            self.rejected.append({**entry, "row": entry["row"] + self.rows_read})
        self.rows_read += other.rows_read
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.reasons.update(other.reasons)


def check_options(options: ScoreOptions, layout: Layout) -> None:
    """InputError for options that cannot score ``layout`` (too few classes, bad bins, bootstrap, atol, base,
    worst rows, calibration or folds)."""
    if layout.num_classes < 2:
        raise InputError(f"scoring needs at least 2 classes, got {layout.num_classes}")
    check_base(options.base)
    if not 1 <= options.bins <= MAX_BINS:
        raise InputError(f"bins must be in [1, {MAX_BINS}], got {options.bins}")
    if options.bootstrap < 0 or options.bootstrap > 100_000:
        raise InputError(f"bootstrap must be in [0, 100000], got {options.bootstrap}")
    if options.atol is not None and not (options.atol >= 0 and math.isfinite(options.atol)):
        raise InputError(f"atol must be a finite number >= 0, got {options.atol}")
    if not 0 <= options.worst_rows <= 10_000:
        raise InputError(f"worst_rows must be in [0, 10000], got {options.worst_rows}")
    if options.calibrate not in (None, "temperature"):
        raise InputError(f"calibrate must be None or 'temperature', got {options.calibrate!r}")
    if not 2 <= options.folds <= 100:
        raise InputError(f"folds must be in [2, 100] (cross-fitting needs at least 2), got {options.folds}")
    if options.temperature is not None and not options.temperature >= 0:
        raise InputError(f"temperature must be >= 0 (0 and inf are the limits), got {options.temperature}")
    if options.calibrate is not None and options.calibrate_on is not None and options.temperature is None:
        raise InputError("calibrate_on is read by the engines (score_file, crossentropy.dask.score), which fit the "
                         "temperature on it; a Scorer takes the fitted temperature")  # fmt: skip
