"""The scorer: the mergeable score of consecutive rows of a data set.

A :class:`Scorer` checks each batch's rows (:class:`~crossentropy.scoring.checks.RowChecks`),
counts them (:class:`~crossentropy.scoring.checks.Tally`), computes each
scored row's loss with the library's losses and its probabilities with the
library's softmax and log-sigmoid, and hands the rows to every
statistic in :data:`STATISTICS`. Scorers of consecutive pieces of a data set
merge into exactly the scorer of the whole, whatever the partitioning: the
tally and each statistic merge themselves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from .._formatting import unit_name
from .._namespace import namespace
from .._special import log_sigmoid, softmax
from .._validation import InputError
from ..losses import binary_cross_entropy, sparse_categorical_cross_entropy
from .bootstrap import Bootstrap
from .checks import Cells, Problem, RowChecks, Tally, check_options, renormalized
from .options import Columns, Layout, ScoreOptions
from .statistics import Calibration, Classes, LossHistogram, LossSums, Rows, Statistic

__all__ = ["STATISTICS", "Scorer"]

Array = np.ndarray[Any, Any]
S = TypeVar("S", bound=Statistic)

STATISTICS: tuple[type[Statistic], ...] = (LossSums, Classes, Calibration, LossHistogram, Bootstrap)
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
        self._scale = 1.0 if options.base is None else math.log(options.base)

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
        o, layout = self.options, self.layout
        m = labels.shape[0]
        if o.renormalize and not layout.binary and not layout.from_logits:
            preds = renormalized(preds)
        w = np.ones(m) if weights is None else weights
        if layout.binary:
            per = binary_cross_entropy(
                labels.reshape(-1, 1), preds.reshape(-1, 1), from_logits=layout.from_logits, reduction="none",
                convention=o.convention, validate=False,
            )  # fmt: skip
        else:
            per = sparse_categorical_cross_entropy(
                labels.astype(np.int64), preds, from_logits=layout.from_logits, reduction="none",
                convention=o.convention, validate=False,
            )  # fmt: skip
        losses = np.asarray(per, dtype=np.float64).reshape(-1) / self._scale
        kind = "binary" if layout.binary else "sparse"
        terms = np.asarray(self.checks.convention.denominator_terms(kind, w, np.ones(m)), dtype=np.float64)
        with np.errstate(over="ignore"):  # logits of +-1e308: x - max overflows to -inf, whose exp is exactly 0
            probs = self._probabilities(preds)
        positions = None
        if self.origin is not None:
            positions = self.origin + first + (index if index is not None else np.arange(m))
        return Rows(
            classes=labels.astype(np.int64),
            losses=losses,
            weights=w,
            weighted=_weighted(losses, w),
            terms=terms,
            probabilities=probs,
            predicted=(probs >= 0.5).astype(np.int64) if layout.binary else np.argmax(probs, axis=1),
            positions=positions,
        )

    def _probabilities(self, preds: Array) -> Array:
        """The predicted probabilities: class 1's (binary) or every class's (from logits: the library's functions)."""
        if not self.layout.from_logits:
            return preds
        xp = namespace(preds)
        if self.layout.binary:
            return np.asarray(np.exp(log_sigmoid(xp, preds)))
        return np.asarray(softmax(xp, preds, 1))

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
            out.update(statistic.summary(self))
        return out

    def public_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A rejected row as reported: 1-based row in the data set, no internal byte offset."""
        out = {k: v for k, v in entry.items() if k != "offset"}
        out["row"] = None if self.origin is None or entry["row"] is None else entry["row"] + 1 + self.origin
        return out


def _weighted(losses: Array, weights: Array) -> Array:
    """``losses * weights``, exactly 0 where the weight is 0; InputError where a finite product overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.where(weights == 0, 0.0, losses * weights)
    over = np.flatnonzero(np.isinf(out) & np.isfinite(losses))
    if over.size:
        i = int(over[0])
        raise InputError(
            f"a row's loss {losses[i]:.6g} times its sample weight {weights[i]:.6g} is more than a float holds "
            "(about 1.8e308): rescale the sample weights"
        )
    return np.asarray(out)
