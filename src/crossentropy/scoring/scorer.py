"""The scorer: the mergeable score of consecutive rows of a data set.

A :class:`Scorer` checks each batch's rows (:class:`~crossentropy.scoring.checks.RowChecks`),
counts them (:class:`~crossentropy.scoring.checks.Tally`), computes each
scored row's figures (:func:`~crossentropy.scoring.rows.score_rows`: its loss
with the library's losses, its probabilities with the library's softmax and
log-sigmoid), and hands the rows to every statistic in :data:`STATISTICS`. Scorers of consecutive pieces of a data set
merge into exactly the scorer of the whole, whatever the partitioning: the
tally and each statistic merge themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from .._formatting import unit_name
from .._validation import InputError
from .bootstrap import Bootstrap
from .checks import Cells, Problem, RowChecks, Tally, check_options
from .options import Columns, Layout, ScoreOptions
from .rows import score_rows
from .statistics import Calibration, Classes, LossHistogram, LossSums, Rows, Statistic, WorstRows
from .temperature import Temperature

__all__ = ["STATISTICS", "Scorer"]

Array = np.ndarray[Any, Any]
S = TypeVar("S", bound=Statistic)

STATISTICS: tuple[type[Statistic], ...] = (
    LossSums,
    Classes,
    Calibration,
    LossHistogram,
    WorstRows,
    Bootstrap,
    Temperature,
)
"""The statistics every scorer keeps, in the order of their fields in the result."""


class Scorer:
    """The mergeable score of consecutive rows of a data set.

    Parameters
    ----------
    layout : Layout
        The number of classes and how predictions are given.
    options : ScoreOptions, optional
        What to compute (convention, base, bins, bootstrap, ...).
    origin : int or None
        Index in the data set of the first row this scorer sees (needed for
        the bootstrap, whose weights are keyed by it).

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.scoring import Layout, Scorer
    >>> scorer = Scorer(Layout(num_classes=2, binary=True))
    >>> y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0.0])
    >>> p = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
    >>> scorer.update(y, p)
    >>> result = scorer.result()
    >>> print(f"{result['mean_loss']:.10f} against {result['baseline_loss']:.10f} for the class frequencies")
    0.2469198908 against 0.6931471806 for the class frequencies
    """

    def __init__(self, layout: Layout, options: ScoreOptions | None = None, *, origin: int | None = 0) -> None:
        options = ScoreOptions() if options is None else options
        check_options(options, layout)
        self.layout = layout
        self.options = options
        self.origin = origin
        self.checks = RowChecks(options, layout)
        self.tally = Tally(options.max_listed)
        self.statistics: dict[str, Statistic] = {kind.name: kind(options, layout) for kind in STATISTICS}
        self._names = Columns()

    # --- what a statistic may read (crossentropy.scoring.statistics.Partials) -----------------------------

    @property
    def rows_read(self) -> int:
        """Rows seen, scored or not."""
        return self.tally.rows_read

    @property
    def rows_scored(self) -> int:
        """Rows scored."""
        return self.tally.rows_scored

    @property
    def rows_rejected(self) -> int:
        """Rows that could not be scored."""
        return self.tally.rows_rejected

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """The first rejected rows (see :class:`~crossentropy.scoring.checks.Tally`)."""
        return self.tally.rejected

    @property
    def reasons(self) -> Counter[str]:
        """Rejected rows by reason."""
        return self.tally.reasons

    def statistic(self, kind: type[S]) -> S:
        """The statistic of class ``kind``."""
        found = self.statistics[kind.name]
        assert isinstance(found, kind)
        return found

    # --- updating and merging ------------------------------------------------------------------------------

    def update(
        self,
        labels: Array,
        preds: Array,
        weights: Array | None = None,
        *,
        dtype: Any = np.float64,
        problems: Sequence[Problem] = (),
        columns: Columns | None = None,
        cells: Cells | None = None,
    ) -> None:
        """Score the next rows; rows that cannot be scored are counted and the first ones listed.

        Parameters
        ----------
        labels : numpy.ndarray
            float64 class indices, shape ``(n,)``.
        preds : numpy.ndarray
            ``(n,)`` (binary) or ``(n, num_classes)`` float64 predictions.
        weights : numpy.ndarray, optional
            Per-row weights.
        dtype : numpy.dtype
            Stored precision of the predictions (sets the sum tolerance).
        problems : sequence
            Rows the reader already found bad: ``(mask, reason, describe)``.
        columns : Columns, optional
            Column names for messages.
        cells : optional
            The batch (``source``, ``locate(rows)``, ``text(column, row)``) for messages.
        """
        n = labels.shape[0]
        if columns is not None:
            self._names = columns
        ok, found = self.checks.check(labels, preds, weights, dtype, self._names)
        if problems:
            taken = np.zeros(n, dtype=bool)
            merged: list[Problem] = []
            for mask, reason, describe in problems:
                new = mask & ~taken
                if new.any():
                    merged.append((np.flatnonzero(new), reason, describe))
                    taken |= new
            found = merged + [(rows[~taken[rows]], r, d) for rows, r, d in found if (~taken[rows]).any()]
            ok &= ~taken
        if found:
            self.tally.reject(found, cells)
        index = np.flatnonzero(ok) if not ok.all() else None
        if index is not None:
            labels, preds = labels[index], preds[index]
            weights = None if weights is None else weights[index]
        first = self.rows_read
        m = labels.shape[0]
        self.tally.read(n, m)
        if m == 0:
            return
        rows = self._rows(labels, preds, weights, first, index)
        for statistic in self.statistics.values():
            statistic.update(rows)

    def _rows(self, labels: Array, preds: Array, weights: Array | None, first: int, index: Array | None) -> Rows:
        """The per-row figures of the scored rows that every statistic reads."""
        positions = None
        if self.origin is not None:
            positions = self.origin + first + (index if index is not None else np.arange(labels.shape[0]))
        return score_rows(self.options, self.layout, labels, preds, weights, positions)

    def merge(self, other: Scorer) -> None:
        """Append the score of the rows that follow this scorer's (another piece or batch range)."""
        if other.options != self.options or other.layout != self.layout:
            raise InputError("only scorers with the same options can be merged")
        if other.statistics.keys() != self.statistics.keys():
            raise InputError("only scorers of the same statistics can be merged")
        self.tally.merge(other.tally)
        for name, statistic in self.statistics.items():
            statistic.merge(other.statistics[name])

    # --- the result ----------------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """The score as plain Python numbers and lists (JSON-ready but for NaN and infinities)."""
        o = self.options
        out: dict[str, Any] = {
            "convention": o.convention,
            "unit": unit_name(o.base),
            "rows_read": self.rows_read,
            "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected,
            "rejected": [self.public_entry(e) for e in self.rejected],
            "rejected_reasons": dict(self.reasons.most_common()),
            "sum_tolerance": "auto" if o.atol is None else o.atol,
            "renormalized": o.renormalize,
        }
        for statistic in self.statistics.values():
            for key, value in statistic.summary(self).items():
                # a statistic may add fields to another's entry (the temperature's to "calibration")
                out[key] = (
                    {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
                )
        return out

    def public_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A rejected row as reported: 1-based row in the data set, no internal byte offset."""
        out = {k: v for k, v in entry.items() if k != "offset"}
        out["row"] = None if self.origin is None or entry["row"] is None else entry["row"] + 1 + self.origin
        return out
