"""The scorer's statistics: partial figures of consecutive rows that merge into the figure of all of them.

Each :class:`Statistic` is updated with the scored rows of one batch
(:class:`Rows`: per-row losses, weights, probabilities, predicted classes),
merges itself with the statistic of the rows that follow (:meth:`merge`),
and gives its part of the result (:meth:`summary`). The scorer keeps them by
name and merges every one it holds, so a new statistic needs no change
elsewhere to survive the merge of Dask workers' partials: add it to
:data:`crossentropy.scoring.scorer.STATISTICS`.

Sums are compensated (:class:`Sum`), counts are integers and the loss
histogram counts in fixed bins, so a merged statistic equals the one-pass
statistic whatever the partitioning (to the last bits for the sums).
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, TypeVar

import numpy as np

from .. import conventions as _conv
from .._formatting import number_or_none
from .._validation import InputError
from .options import Layout, ScoreOptions
from .verdict import calibration_verdict

__all__ = [
    "COARSE_LIMIT",
    "FINE_LIMIT",
    "FINE_WIDTH",
    "HISTOGRAM_TARGET_BINS",
    "Calibration",
    "Classes",
    "LossHistogram",
    "LossSums",
    "Rows",
    "Statistic",
    "Sum",
    "WorstRows",
]

Array = np.ndarray[Any, Any]
S = TypeVar("S", bound="Statistic")

FINE_WIDTH = 1.0 / 128
FINE_LIMIT = 32.0
COARSE_LIMIT = 1024.0
_FINE_BINS = int(FINE_LIMIT / FINE_WIDTH)
_HISTOGRAM_BINS = _FINE_BINS + int(COARSE_LIMIT - FINE_LIMIT)
HISTOGRAM_TARGET_BINS = 50
"""Per-row losses are counted in fixed bins (width 1/128 up to 32, width 1 up to 1024, in the
report's unit) so that partial histograms add; :meth:`LossHistogram.summary` merges neighbouring
bins into at most 50 that span the data."""


class Sum:
    """A compensated (Neumaier) float64 sum of array batches, which refuses to overflow.

    Infinite terms give an infinite sum (an infinite loss is a loss); finite
    terms whose sum is beyond the float range raise an
    :class:`~crossentropy.InputError` saying what they are (``what``), since
    ``inf`` would then be a wrong number (a mean loss of ``inf`` for losses of
    700 weighted by 1e306).
    """

    def __init__(self, shape: tuple[int, ...] = (), what: str = "the values") -> None:
        self.total = np.zeros(shape)
        self.carry = np.zeros(shape)
        self.what = what

    def add(self, value: Array | float) -> None:
        with np.errstate(invalid="ignore", over="ignore"):
            t = self.total + value
            if not np.isfinite(t).all() and (~np.isfinite(t) & np.isfinite(self.total) & np.isfinite(value)).any():
                raise self.overflow()
            big = np.abs(self.total) >= np.abs(value)
            self.carry += np.where(big, (self.total - t) + value, (value - t) + self.total)
        self.total = t

    def add_terms(self, terms: Array, groups: Array | None = None) -> None:
        """Add the sum of ``terms`` (per group of ``groups``, class indices, for a sum of that shape)."""
        with np.errstate(over="ignore", invalid="ignore"):
            if groups is None:
                partial = terms.sum()
                infinite: Any = not np.isfinite(terms).all()
            else:
                size = self.total.shape[0]
                partial = np.bincount(groups, weights=terms, minlength=size)
                infinite = np.bincount(groups, weights=~np.isfinite(terms), minlength=size) > 0
        if (~np.isfinite(partial) & ~np.asarray(infinite)).any():
            raise self.overflow()
        self.add(partial)

    def overflow(self) -> InputError:
        """The error of finite terms that add up beyond the float range."""
        return InputError(
            f"{self.what} add up to more than a float holds (about 1.8e308), so their mean cannot be computed: "
            "rescale the sample weights, or check the predictions"
        )

    def merge(self, other: Sum) -> None:
        self.add(other.total)
        self.carry += other.carry

    @property
    def value(self) -> Array:
        with np.errstate(invalid="ignore", over="ignore"):
            return np.where(np.isfinite(self.total), self.total + self.carry, self.total)


@dataclass(frozen=True)
class Rows:
    """The scored rows of one batch, as every statistic sees them.

    Attributes
    ----------
    classes : numpy.ndarray
        int64 labels.
    losses : numpy.ndarray
        Each row's loss, in the report's unit.
    weights : numpy.ndarray
        Each row's weight (ones without a weight column).
    weighted : numpy.ndarray
        ``losses * weights``, exactly 0 where the weight is 0.
    terms : numpy.ndarray
        Each row's share of the mean's denominator (the convention's).
    probabilities : numpy.ndarray
        ``(m,)`` probability of class 1 (binary), else ``(m, C)``.
    predicted : numpy.ndarray
        The predicted class of each row.
    positions : numpy.ndarray or None
        Each row's index in the data set (``None`` when the scorer does not know where its rows start).
    predictions : numpy.ndarray or None
        The predictions as scored (probabilities, renormalised if asked, or
        logits), for a statistic that transforms them (the temperature).
    """

    classes: Array
    losses: Array
    weights: Array
    weighted: Array
    terms: Array
    probabilities: Array
    predicted: Array
    positions: Array | None
    predictions: Array | None = None


class Partials(Protocol):
    """What a statistic may read of the scorer when it sums up: the rows scored and the other statistics."""

    @property
    def rows_scored(self) -> int: ...

    def statistic(self, kind: type[S]) -> S: ...


class Statistic(ABC):
    """A partial figure over consecutive rows of a data set.

    Subclasses are constructed from the options and the layout, keep only
    what merges exactly (sums, counts), and are picklable (Dask workers send
    them back to the client).
    """

    name: ClassVar[str]
    """The statistic's key in :attr:`crossentropy.scoring.Scorer.statistics`."""

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        self.options = options
        self.layout = layout

    @abstractmethod
    def update(self, rows: Rows) -> None:
        """Add the scored rows of the next batch."""

    @abstractmethod
    def merge(self, other: Self) -> None:
        """Add the statistic of the rows that follow this one's."""

    @abstractmethod
    def summary(self, partials: Partials) -> dict[str, Any]:
        """This statistic's fields of the result, as plain Python numbers and lists."""


class LossSums(Statistic):
    """The weighted loss and the mean's denominator, overall and per class: the mean, the sum and the baseline."""

    name = "loss"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.loss = Sum(what="the weighted losses")
        self.denominator = Sum(what="the sample weights")
        self.weight = Sum(what="the sample weights")
        self.class_loss = Sum((layout.num_classes,), what="the weighted losses of a class")
        self.class_weight = Sum((layout.num_classes,), what="the sample weights of a class")

    def update(self, rows: Rows) -> None:
        self.loss.add_terms(rows.weighted)
        self.denominator.add_terms(rows.terms)
        self.weight.add_terms(rows.weights)
        self.class_loss.add_terms(rows.weighted, rows.classes)
        self.class_weight.add_terms(rows.weights, rows.classes)

    def merge(self, other: Self) -> None:
        for mine, theirs in (
            (self.loss, other.loss),
            (self.denominator, other.denominator),
            (self.weight, other.weight),
            (self.class_loss, other.class_loss),
            (self.class_weight, other.class_weight),
        ):
            mine.merge(theirs)

    def class_mean(self) -> Array:
        """Each class's weighted mean loss (NaN for a class with no weight)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.class_loss.value / self.class_weight.value)

    def summary(self, partials: Partials) -> dict[str, Any]:
        denominator = float(self.denominator.value)
        total = float(self.loss.value)
        if denominator:
            mean = total / denominator
        else:
            mean = 0.0 if _conv.get(self.options.convention).empty_mean_is_zero else math.nan
        class_weight = self.class_weight.value
        scale = 1.0 if self.options.base is None else math.log(self.options.base)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = class_weight.sum()
            prior = class_weight / weight
            surprisal = np.where(class_weight > 0, -np.log(prior), 0.0) / scale
        baseline = float((class_weight * surprisal).sum() / denominator) if denominator and weight > 0 else None
        return {
            "mean_loss": mean,
            "sum_loss": total,
            "total_weight": float(self.weight.value),
            "baseline_loss": baseline,
        }


class Classes(Statistic):
    """Rows, hits and predictions per class: the accuracy, and each class's precision and recall."""

    name = "classes"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        k = layout.num_classes
        self.correct = 0
        self.count = np.zeros(k, dtype=np.int64)
        self.hits = np.zeros(k, dtype=np.int64)
        self.predicted = np.zeros(k, dtype=np.int64)

    def update(self, rows: Rows) -> None:
        k = self.layout.num_classes
        hit = rows.predicted == rows.classes
        self.correct += int(hit.sum())
        self.count += np.bincount(rows.classes, minlength=k)
        self.hits += np.bincount(rows.classes[hit], minlength=k)
        self.predicted += np.bincount(rows.predicted, minlength=k)

    def merge(self, other: Self) -> None:
        self.correct += other.correct
        self.count += other.count
        self.hits += other.hits
        self.predicted += other.predicted

    def summary(self, partials: Partials) -> dict[str, Any]:
        """The accuracy and, per class, its rows, mean loss, precision, recall, predicted rows and the sums behind them.

        ``weight`` (the rows' total weight), ``loss_sum`` (their weighted
        loss) and ``correct`` (rows of the class predicted as it) let a
        reader sum classes up (:func:`crossentropy.scoring.top_classes`).
        """
        scored = partials.rows_scored
        sums = partials.statistic(LossSums)
        class_mean = sums.class_mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = self.hits / self.count
            precision = self.hits / self.predicted
        weight, loss = sums.class_weight.value.tolist(), sums.class_loss.value.tolist()
        return {
            "accuracy": self.correct / scored if scored else math.nan,
            "per_class": [
                {
                    "class": c,
                    "count": int(self.count[c]),
                    "mean_loss": number_or_none(class_mean[c]),
                    "precision": number_or_none(precision[c]),
                    "recall": number_or_none(recall[c]),
                    "predicted": int(self.predicted[c]),
                    "weight": weight[c],
                    "loss_sum": loss[c],
                    "correct": int(self.hits[c]),
                }
                for c in range(self.layout.num_classes)
            ],
        }


class Calibration(Statistic):
    """Confidence and outcome per equal-width bin (top label, or the positive class when binary): ECE and MCE."""

    name = "calibration"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.count = np.zeros(options.bins, dtype=np.int64)
        self.confidence = Sum((options.bins,))
        self.outcome = Sum((options.bins,))

    def update(self, rows: Rows) -> None:
        bins = self.options.bins
        if self.layout.binary:
            confidence, outcome = rows.probabilities, rows.classes.astype(np.float64)
        else:
            confidence = rows.probabilities[np.arange(rows.classes.shape[0]), rows.predicted]
            outcome = (rows.predicted == rows.classes).astype(np.float64)
        b = np.minimum((confidence * bins).astype(np.int64), bins - 1)
        self.count += np.bincount(b, minlength=bins)
        self.confidence.add(np.bincount(b, weights=confidence, minlength=bins))
        self.outcome.add(np.bincount(b, weights=outcome, minlength=bins))

    def merge(self, other: Self) -> None:
        self.count += other.count
        self.confidence.merge(other.confidence)
        self.outcome.merge(other.outcome)

    def summary(self, partials: Partials) -> dict[str, Any]:
        bins, count, scored = self.options.bins, self.count, partials.rows_scored
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = self.confidence.value / count
            outcome = self.outcome.value / count
            gaps = np.abs(outcome - confidence)
        n = max(scored, 1)
        filled = count > 0
        ece = float((count[filled] / n * gaps[filled]).sum()) if scored else math.nan
        entries = [
            {
                "lower": i / bins,
                "upper": (i + 1) / bins,
                "count": int(count[i]),
                "confidence": number_or_none(confidence[i]),
                "observed": number_or_none(outcome[i]),
            }
            for i in range(bins)
        ]
        verdict = calibration_verdict(entries, binary=self.layout.binary)
        for entry, reading in zip(entries, verdict["bins"], strict=True):
            entry.update(reading)
        return {
            "calibration": {
                "kind": "positive class" if self.layout.binary else "top label",
                "ece": ece,
                "mce": float(gaps[filled].max()) if filled.any() else math.nan,
                "verdict": verdict["verdict"],
                "verdict_reason": verdict["reason"],
                "bins": entries,
            }
        }


class LossHistogram(Statistic):
    """Per-row losses counted in fixed bins, the infinite ones, and the largest finite one."""

    name = "loss_histogram"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.sign = 1.0 if options.base is None or options.base > 1 else -1.0
        self.counts = np.zeros(_HISTOGRAM_BINS + 1, dtype=np.int64)
        self.infinite = 0
        self.max_finite = -math.inf

    def update(self, rows: Rows) -> None:
        x = self.sign * rows.losses
        finite = np.isfinite(x)
        self.infinite += int((~finite).sum())
        x = np.maximum(x[finite], 0.0)
        if x.size:
            self.max_finite = max(self.max_finite, float(x.max()))
        x = np.minimum(x, COARSE_LIMIT)  # beyond the last edge: the last bin (and no overflow dividing 1e308)
        index = np.where(
            x < FINE_LIMIT,
            np.floor(x / FINE_WIDTH),
            _FINE_BINS + np.floor(x - FINE_LIMIT),
        ).astype(np.int64)
        self.counts += np.bincount(index, minlength=self.counts.size)

    def merge(self, other: Self) -> None:
        self.counts += other.counts
        self.infinite += other.infinite
        self.max_finite = max(self.max_finite, other.max_finite)

    def summary(self, partials: Partials) -> dict[str, Any]:
        """``{"edges", "counts", "infinite", "max_finite"}``: at most 50 equal bins spanning the finite losses.

        The last edge lies just above the largest finite loss (a loss
        beyond 1024 in the report's unit lands in one last, wider bin).
        """
        top = self.max_finite
        if not math.isfinite(top):
            return {"loss_histogram": {"edges": [], "counts": [], "infinite": self.infinite, "max_finite": None}}
        width = FINE_WIDTH
        regular = min(top, COARSE_LIMIT)
        while math.floor(regular / width) + 1 > HISTOGRAM_TARGET_BINS and width < COARSE_LIMIT:
            width *= 2
        count = min(math.floor(regular / width) + 1, int(COARSE_LIMIT / width))
        edges = [i * width for i in range(count + 1)]

        def position(edge: float) -> int:
            return int(edge / FINE_WIDTH) if edge < FINE_LIMIT else _FINE_BINS + int(edge - FINE_LIMIT)

        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        counts = [int(cumulative[position(b)] - cumulative[position(a)]) for a, b in itertools.pairwise(edges)]
        if top >= COARSE_LIMIT:
            edges.append(float(np.nextafter(top, math.inf)))
            counts.append(int(self.counts[-1]))
        if self.sign < 0:
            edges = [-e for e in reversed(edges)]
            counts = counts[::-1]
        return {
            "loss_histogram": {
                "edges": edges,
                "counts": counts,
                "infinite": self.infinite,
                "max_finite": self.sign * top,
            }
        }


class WorstRows(Statistic):
    """The rows with the largest loss (``options.worst_rows`` of them): where a practitioner looks next.

    Ties go to the earlier row, so the rows listed do not depend on how the
    data set was cut into pieces. A NaN loss counts as the largest.
    """

    name = "worst_rows"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.sign = 1.0 if options.base is None or options.base > 1 else -1.0
        self.positions = np.zeros(0, dtype=np.int64)
        self.labels = np.zeros(0, dtype=np.int64)
        self.losses = np.zeros(0)
        self.label_probability = np.zeros(0)
        self.predicted = np.zeros(0, dtype=np.int64)
        self.predicted_probability = np.zeros(0)

    def _fields(self) -> tuple[str, ...]:
        return ("positions", "labels", "losses", "label_probability", "predicted", "predicted_probability")

    def _keep_worst(self) -> None:
        """Keep the ``worst_rows`` largest losses (NaN first), ties to the earlier row."""
        key = np.where(np.isnan(self.losses), np.inf, self.sign * self.losses)
        order = np.lexsort((self.positions, -key))[: self.options.worst_rows]
        for field in self._fields():
            setattr(self, field, getattr(self, field)[order])

    def update(self, rows: Rows) -> None:
        k = self.options.worst_rows
        if not k:
            return
        if rows.positions is None:
            raise InputError("the worst rows need each row's index in the data set (origin)")
        key = np.where(np.isnan(rows.losses), np.inf, self.sign * rows.losses)
        take = np.argpartition(-key, k - 1)[:k] if key.shape[0] > k else np.arange(key.shape[0])
        probs = rows.probabilities[take]
        labels, predicted = rows.classes[take], rows.predicted[take]
        if self.layout.binary:
            label_p = np.where(labels == 1, probs, 1.0 - probs)
            predicted_p = np.where(predicted == 1, probs, 1.0 - probs)
        else:
            label_p = probs[np.arange(take.shape[0]), labels]
            predicted_p = probs[np.arange(take.shape[0]), predicted]
        new = (rows.positions[take], labels, rows.losses[take], label_p, predicted, predicted_p)
        for field, values in zip(self._fields(), new, strict=True):
            setattr(self, field, np.concatenate([getattr(self, field), values]))
        self._keep_worst()

    def merge(self, other: Self) -> None:
        if not self.options.worst_rows:
            return
        for field in self._fields():
            setattr(self, field, np.concatenate([getattr(self, field), getattr(other, field)]))
        self._keep_worst()

    def summary(self, partials: Partials) -> dict[str, Any]:
        """``{"worst_rows": [{"row", "label", "loss", "label_probability", "predicted", ...}]}``, worst first.

        ``row`` counts from 1, as the rejected rows do.
        """
        if not self.options.worst_rows:
            return {}
        return {
            "worst_rows": [
                {
                    "row": int(position) + 1,
                    "label": int(label),
                    "loss": float(loss),
                    "label_probability": float(label_p),
                    "predicted": int(predicted),
                    "predicted_probability": float(predicted_p),
                }
                for position, label, loss, label_p, predicted, predicted_p in zip(
                    *(getattr(self, field) for field in self._fields()), strict=True
                )
            ]
        }
