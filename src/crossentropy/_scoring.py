"""Scoring predictions in bounded memory: the one core behind ``crossentropy score`` and Dask.

Every statistic is a mergeable partial: a :class:`Scorer` holds sums
(compensated), counts, the first rejected rows and a Poisson bootstrap
keyed by each row's index in the data set, so scorers of consecutive
pieces of a data set merge into exactly the scorer of the whole, whatever
the partitioning. The single-process engine feeds one scorer per piece and
merges them in order; :mod:`crossentropy.dask` does the same on workers.

Examples
--------
>>> import numpy as np
>>> from crossentropy._scoring import Scorer, ScoreOptions
>>> scorer = Scorer(ScoreOptions(num_classes=2, binary=True))
>>> y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0.0])
>>> p = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
>>> scorer.update(y, p)
>>> result = scorer.result()
>>> print(f"{result['mean_loss']:.10f} against {result['baseline_loss']:.10f} for the class frequencies")
0.2469198908 against 0.6931471806 for the class frequencies
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from . import conventions as _conv
from ._validation import InputError, check_base, check_choice, sum_tolerance
from .losses import binary_cross_entropy, sparse_categorical_cross_entropy

Array = np.ndarray[Any, Any]

__all__ = [
    "BadRowError",
    "Columns",
    "ScoreOptions",
    "Scorer",
    "infer_options",
    "poisson_weights",
    "resolve_columns",
    "score_batches",
    "score_file",
]

FINE_WIDTH = 1.0 / 128
FINE_LIMIT = 32.0
COARSE_LIMIT = 1024.0
_FINE_BINS = int(FINE_LIMIT / FINE_WIDTH)
_HISTOGRAM_BINS = _FINE_BINS + int(COARSE_LIMIT - FINE_LIMIT)
HISTOGRAM_TARGET_BINS = 50
"""Per-row losses are counted in fixed bins (width 1/128 up to 32, width 1 up to 1024, in the
report's unit) so that partial histograms add; :meth:`Scorer.result` merges neighbouring bins
into at most 50 that span the data."""
MIN_DECIMALS = 3
MAX_DECIMALS = 15
MAX_ROUNDING_ALLOWANCE = 0.01


@dataclass(frozen=True)
class ScoreOptions:
    """What to compute.

    Attributes
    ----------
    num_classes : int
        Number of classes (2 for binary).
    binary : bool
        One prediction per row: the probability (or logit) of class 1.
    from_logits : bool
        Predictions are logits.
    convention : str
        A named convention (see :mod:`crossentropy.conventions`).
    base : float or None
        Logarithm base of the reported losses.
    bins : int
        Number of equal-width calibration bins.
    bootstrap : int
        Number of Poisson-bootstrap replicates (0 for none).
    seed : int
        Seed of the bootstrap.
    atol : float or None
        Allowed deviation of a probability row's sum from 1; ``None`` follows
        the stored precision (see :meth:`Scorer.tolerance`).
    renormalize : bool
        Divide each probability row by its sum instead of checking it.
    max_listed : int
        How many rejected rows are listed (all are counted).
    """

    num_classes: int
    binary: bool = False
    from_logits: bool = False
    convention: str = "exact"
    base: float | None = None
    bins: int = 10
    bootstrap: int = 0
    seed: int = 0
    atol: float | None = None
    renormalize: bool = False
    max_listed: int = 20


class _Sum:
    """A compensated (Neumaier) float64 sum of array batches."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.total = np.zeros(shape)
        self.carry = np.zeros(shape)

    def add(self, value: Array | float) -> None:
        with np.errstate(invalid="ignore"):
            t = self.total + value
            big = np.abs(self.total) >= np.abs(value)
            self.carry += np.where(big, (self.total - t) + value, (value - t) + self.total)
        self.total = t

    def merge(self, other: _Sum) -> None:
        self.add(other.total)
        self.carry += other.carry

    @property
    def value(self) -> Array:
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(self.total), self.total + self.carry, self.total)


_POISSON_THRESHOLDS = None


def _poisson_thresholds() -> Array:
    """uint64 thresholds of the Poisson(1) CDF: ``k`` = how many a raw 64-bit draw exceeds."""
    global _POISSON_THRESHOLDS
    if _POISSON_THRESHOLDS is None:
        cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(20)])
        _POISSON_THRESHOLDS = np.array([min(int(c * 2.0**64), 2**64 - 1) for c in cdf], dtype=np.uint64)
    return _POISSON_THRESHOLDS


def poisson_weights(seed: int, start: int, count: int, replicates: int) -> Array:
    """Poisson(1) bootstrap weights of rows ``start .. start + count - 1``: an array ``(count, replicates)``.

    The weights of a row depend only on ``seed`` and the row's index (a
    counter-based Philox generator advanced to the row), so any split of a
    data set into pieces draws the same weights.

    Examples
    --------
    >>> import numpy as np
    >>> whole = poisson_weights(0, 0, 10, 4)
    >>> bool(np.array_equal(whole[3:], poisson_weights(0, 3, 7, 4)))
    True
    """
    width = -(-replicates // 4) * 4
    generator = np.random.Philox(key=seed % 2**128)
    generator.advance(start * (width // 4))
    raw = generator.random_raw(count * width).reshape(count, width)[:, :replicates]
    return np.searchsorted(_poisson_thresholds(), raw, side="right").astype(np.uint8)


class _Cells(Protocol):
    source: str

    def locate(self, rows: Sequence[int]) -> list[tuple[int | None, int | None]]: ...

    def text(self, name: str, row: int) -> str: ...


@dataclass(frozen=True)
class Columns:
    """Which columns hold what, for messages and reading."""

    label: str = "label"
    predictions: tuple[str, ...] = ("prediction",)
    weight: str | None = None
    from_logits: bool = False
    list_column: bool = False

    def read(self) -> list[str]:
        """The columns to read from a file."""
        return [self.label, *self.predictions] + ([self.weight] if self.weight else [])

    def prediction(self, j: int) -> str:
        """The name of prediction ``j``."""
        if self.list_column:
            return f"{self.predictions[0]}[{j}]"
        return self.predictions[min(j, len(self.predictions) - 1)]

    def span(self, width: int) -> str:
        """All prediction columns (``first..last``), for a message about a whole row."""
        first, last = self.prediction(0), self.prediction(max(width - 1, 0))
        return first if first == last else f"{first}..{last}"


class BadRowError(InputError):
    """A row that cannot be scored, with where it is (``entry``)."""

    def __init__(self, message: str, entry: dict[str, Any]) -> None:
        super().__init__(message)
        self.entry = entry

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.entry))


ROW_REASONS = frozenset(
    {"probabilities do not sum to 1", "probabilities sum to 0", "every logit is -inf", "wrong number of values"}
)


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


class Scorer:
    """The mergeable score of consecutive rows of a data set.

    Parameters
    ----------
    options : ScoreOptions
        What to compute.
    origin : int or None
        Index in the data set of the first row this scorer sees (needed for
        the bootstrap, whose weights are keyed by it).
    """

    def __init__(self, options: ScoreOptions, *, origin: int | None = 0) -> None:
        if options.num_classes < 2:
            raise InputError(f"scoring needs at least 2 classes, got {options.num_classes}")
        check_base(options.base)
        if options.bins < 1:
            raise InputError(f"bins must be at least 1, got {options.bins}")
        if options.bootstrap < 0 or options.bootstrap > 100_000:
            raise InputError(f"bootstrap must be in [0, 100000], got {options.bootstrap}")
        if options.atol is not None and not (options.atol >= 0 and math.isfinite(options.atol)):
            raise InputError(f"atol must be a finite number >= 0, got {options.atol}")
        self.options = options
        self.convention = _conv.get(options.convention)
        self.origin = origin
        self._names = Columns()
        self._scale = 1.0 if options.base is None else math.log(options.base)
        k, b = options.num_classes, options.bins
        self.rows_read = 0
        self.rows_scored = 0
        self.rows_rejected = 0
        self.reasons: Counter[str] = Counter()
        self.rejected: list[dict[str, Any]] = []
        self.loss = _Sum()
        self.denominator = _Sum()
        self.weight = _Sum()
        self.correct = 0
        self.class_count = np.zeros(k, dtype=np.int64)
        self.class_correct = np.zeros(k, dtype=np.int64)
        self.class_predicted = np.zeros(k, dtype=np.int64)
        self.class_loss = _Sum((k,))
        self.class_weight = _Sum((k,))
        self.bin_count = np.zeros(b, dtype=np.int64)
        self.bin_confidence = _Sum((b,))
        self.bin_outcome = _Sum((b,))
        self.histogram = np.zeros(_HISTOGRAM_BINS + 1, dtype=np.int64)
        self.infinite = 0
        self.max_finite = -math.inf
        self.boot_loss = _Sum((options.bootstrap,))
        self.boot_denominator = _Sum((options.bootstrap,))

    # --- validation --------------------------------------------------------------------------------

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

    def check_rows(
        self, labels: Array, preds: Array, weights: Array | None, dtype: Any = np.float64
    ) -> tuple[Array, list[tuple[Array, str, Callable[[int], tuple[str | None, str]]]]]:
        """A mask of scoreable rows and, for the others, why.

        Returns the mask and a list of ``(rows, reason, describe)`` where
        ``describe(row)`` gives ``(column, detail)`` for a message; each row
        is listed under its first reason only.
        """
        o = self.options
        n = labels.shape[0]
        bad = np.zeros(n, dtype=bool)
        problems: list[tuple[Array, str, Callable[[int], tuple[str | None, str]]]] = []
        cols = self._names

        def flag(mask: Any, reason: str, describe: Callable[[int], tuple[str | None, str]]) -> None:
            new = mask & ~bad
            if new.any():
                problems.append((np.flatnonzero(new), reason, describe))
                bad[:] |= new

        def label_value(i: int) -> tuple[str | None, str]:
            return cols.label, f"value {labels[i]:.10g}"

        valid = (labels >= 0) & (labels < o.num_classes) & (labels == np.floor(labels))
        if not valid.all():
            finite = np.isfinite(labels)
            flag(~finite, "label is not a number", label_value)
            flag(finite & (labels != np.round(labels)), "label is not an integer class index", label_value)
            flag(~valid, f"label is outside [0, {o.num_classes})", label_value)
        p2 = preds.reshape(n, -1)

        def first_column(test: Callable[[Array], Array]) -> Callable[[int], tuple[str | None, str]]:
            def describe(i: int) -> tuple[str | None, str]:
                row = p2[i]
                j = int(np.argmax(test(row)))
                return cols.prediction(j), f"value {row[j]:.10g}"

            return describe

        def span(i: int) -> tuple[str | None, str]:
            return cols.span(p2.shape[1]), ""

        if o.from_logits:
            if not (p2 < np.inf).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag((p2 == np.inf).any(axis=1), "logit is +inf", first_column(lambda r: r == np.inf))
            if not o.binary:
                flag((p2 == -np.inf).all(axis=1), "every logit is -inf", span)
        elif o.renormalize and not o.binary:
            if not ((p2 >= 0) & (p2 < np.inf)).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag(((p2 < 0) | ~np.isfinite(p2)).any(axis=1), "probability is negative or infinite",
                     first_column(lambda r: (r < 0) | ~np.isfinite(r)))  # fmt: skip
            flag(~(p2.sum(axis=1) > 0), "probabilities sum to 0", span)
        else:
            if not ((p2 >= 0) & (p2 <= 1)).all():
                flag(np.isnan(p2).any(axis=1), "prediction is NaN", first_column(np.isnan))
                flag(((p2 < 0) | (p2 > 1)).any(axis=1), "probability is outside [0, 1]",
                     first_column(lambda r: (r < 0) | (r > 1)))  # fmt: skip
            if not o.binary and self.convention.sum_check == "error":
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

    # --- accumulation -------------------------------------------------------------------------------

    def _losses(self, labels: Array, preds: Array) -> Array:
        o = self.options
        if o.binary:
            per = binary_cross_entropy(
                labels.reshape(-1, 1),
                preds.reshape(-1, 1),
                from_logits=o.from_logits,
                reduction="none",
                convention=o.convention,
                validate=False,
            )
        else:
            per = sparse_categorical_cross_entropy(
                labels.astype(np.int64),
                preds,
                from_logits=o.from_logits,
                reduction="none",
                convention=o.convention,
                validate=False,
            )
        return np.asarray(per, dtype=np.float64).reshape(-1) / self._scale

    def _probabilities(self, preds: Array) -> Array:
        o = self.options
        if o.binary:
            if not o.from_logits:
                return preds
            with np.errstate(over="ignore"):  # exp(5000) = inf gives the exact limit 1 / inf = 0
                return np.asarray(1 / (1 + np.exp(-preds)))
        if o.from_logits:
            e = np.exp(preds - preds.max(axis=1, keepdims=True))
            return np.asarray(e / e.sum(axis=1, keepdims=True))
        return preds

    def update(
        self,
        labels: Array,
        preds: Array,
        weights: Array | None = None,
        *,
        dtype: Any = np.float64,
        problems: Sequence[tuple[Array, str, Callable[[int], tuple[str | None, str]]]] = (),
        columns: Columns | None = None,
        cells: _Cells | None = None,
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
        o = self.options
        n = labels.shape[0]
        if columns is not None:
            self._names = columns
        ok, found = self.check_rows(labels, preds, weights, dtype)
        if problems:
            taken = np.zeros(n, dtype=bool)
            merged: list[tuple[Array, str, Callable[[int], tuple[str | None, str]]]] = []
            for mask, reason, describe in problems:
                new = mask & ~taken
                if new.any():
                    merged.append((np.flatnonzero(new), reason, describe))
                    taken |= new
            found = merged + [(rows[~taken[rows]], r, d) for rows, r, d in found if (~taken[rows]).any()]
            ok &= ~taken
        if found:
            self._reject(found, n, cells)
        index = np.flatnonzero(ok) if not ok.all() else None
        if index is not None:
            labels, preds = labels[index], preds[index]
            weights = None if weights is None else weights[index]
        first = self.rows_read
        self.rows_read += n
        m = labels.shape[0]
        if m == 0:
            return
        if o.renormalize and not o.binary and not o.from_logits:
            preds = preds / preds.sum(axis=1, keepdims=True)
        w = np.ones(m) if weights is None else weights
        per = self._losses(labels, preds)
        kind = "binary" if o.binary else "sparse"
        terms = np.asarray(self.convention.denominator_terms(kind, w, np.ones(m)), dtype=np.float64)
        weighted = np.where(w == 0, 0.0, per * w)
        self.rows_scored += m
        self.loss.add(weighted.sum())
        self.denominator.add(terms.sum())
        self.weight.add(w.sum())
        cls = labels.astype(np.int64)
        probs = self._probabilities(preds)
        predicted = (probs >= 0.5).astype(np.int64) if o.binary else np.argmax(probs, axis=1)
        hit = predicted == cls
        k = o.num_classes
        self.correct += int(hit.sum())
        self.class_count += np.bincount(cls, minlength=k)
        self.class_correct += np.bincount(cls[hit], minlength=k)
        self.class_predicted += np.bincount(predicted, minlength=k)
        self.class_loss.add(np.bincount(cls, weights=weighted, minlength=k))
        self.class_weight.add(np.bincount(cls, weights=w, minlength=k))
        confidence = probs if o.binary else probs[np.arange(m), predicted]
        outcome = cls.astype(np.float64) if o.binary else hit.astype(np.float64)
        b = np.minimum((confidence * o.bins).astype(np.int64), o.bins - 1)
        self.bin_count += np.bincount(b, minlength=o.bins)
        self.bin_confidence.add(np.bincount(b, weights=confidence, minlength=o.bins))
        self.bin_outcome.add(np.bincount(b, weights=outcome, minlength=o.bins))
        self._update_histogram(per)
        if o.bootstrap:
            if self.origin is None:
                raise InputError("the bootstrap needs each row's index in the data set (origin)")
            rows = (first + (index if index is not None else np.arange(m))) + self.origin
            self._update_bootstrap(rows, weighted, terms)

    def _reject(
        self,
        found: list[tuple[Array, str, Callable[[int], tuple[str | None, str]]]],
        n: int,
        cells: _Cells | None,
    ) -> None:
        count = sum(int(rows.size) for rows, _, _ in found)
        self.rows_rejected += count
        for rows, reason, _ in found:
            self.reasons[reason] += int(rows.size)
        room = self.options.max_listed - len(self.rejected)
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

    def _update_histogram(self, per: Array) -> None:
        x = per if self._scale > 0 else -per
        finite = np.isfinite(x)
        self.infinite += int((~finite).sum())
        x = np.maximum(x[finite], 0.0)
        if x.size:
            self.max_finite = max(self.max_finite, float(x.max()))
        index = np.where(
            x < FINE_LIMIT,
            np.floor(x / FINE_WIDTH),
            _FINE_BINS + np.floor(np.minimum(x, COARSE_LIMIT) - FINE_LIMIT),
        ).astype(np.int64)
        self.histogram += np.bincount(index, minlength=self.histogram.size)

    def _update_bootstrap(self, rows: Array, weighted: Array, terms: Array) -> None:
        replicates = self.options.bootstrap
        step = max(1, (1 << 20) // replicates)
        for i in range(0, rows.shape[0], step):
            part = rows[i : i + step]
            lo, hi = int(part[0]), int(part[-1]) + 1
            k = poisson_weights(self.options.seed, lo, hi - lo, replicates)[part - lo].astype(np.float64)
            self.boot_loss.add(weighted[i : i + step] @ k)
            self.boot_denominator.add(terms[i : i + step] @ k)

    def merge(self, other: Scorer) -> None:
        """Append the score of the rows that follow this scorer's (another piece or batch range)."""
        if other.options != self.options:
            raise InputError("only scorers with the same options can be merged")
        for entry in other.rejected[: max(0, self.options.max_listed - len(self.rejected))]:
            self.rejected.append({**entry, "row": entry["row"] + self.rows_read})
        self.rows_read += other.rows_read
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.reasons.update(other.reasons)
        self.correct += other.correct
        self.class_count += other.class_count
        self.class_correct += other.class_correct
        self.class_predicted += other.class_predicted
        self.bin_count += other.bin_count
        self.histogram += other.histogram
        self.infinite += other.infinite
        self.max_finite = max(self.max_finite, other.max_finite)
        for name in (
            "loss",
            "denominator",
            "weight",
            "class_loss",
            "class_weight",
            "bin_confidence",
            "bin_outcome",
            "boot_loss",
            "boot_denominator",
        ):
            getattr(self, name).merge(getattr(other, name))

    # --- the result ----------------------------------------------------------------------------------

    def loss_histogram(self) -> dict[str, Any]:
        """``{"edges", "counts", "infinite", "max_finite"}``: at most 50 equal bins spanning the finite losses.

        The last edge lies just above the largest finite loss (a loss
        beyond 1024 in the report's unit lands in one last, wider bin).
        """
        sign = 1.0 if self._scale > 0 else -1.0
        top = self.max_finite
        if not math.isfinite(top):
            return {"edges": [], "counts": [], "infinite": self.infinite, "max_finite": None}
        width = FINE_WIDTH
        regular = min(top, COARSE_LIMIT)
        while math.floor(regular / width) + 1 > HISTOGRAM_TARGET_BINS and width < COARSE_LIMIT:
            width *= 2
        count = min(math.floor(regular / width) + 1, int(COARSE_LIMIT / width))
        edges = [i * width for i in range(count + 1)]

        def position(edge: float) -> int:
            return int(edge / FINE_WIDTH) if edge < FINE_LIMIT else _FINE_BINS + int(edge - FINE_LIMIT)

        cumulative = np.concatenate([[0], np.cumsum(self.histogram)])
        counts = [int(cumulative[position(b)] - cumulative[position(a)]) for a, b in itertools.pairwise(edges)]
        if top >= COARSE_LIMIT:
            edges.append(float(np.nextafter(top, math.inf)))
            counts.append(int(self.histogram[-1]))
        if sign < 0:
            edges = [-e for e in reversed(edges)]
            counts = counts[::-1]
        return {"edges": edges, "counts": counts, "infinite": self.infinite, "max_finite": sign * top}

    def result(self) -> dict[str, Any]:
        """The score as plain Python numbers and lists (JSON-ready)."""
        o = self.options
        denominator = float(self.denominator.value)
        total = float(self.loss.value)
        if denominator:
            mean = total / denominator
        else:
            mean = 0.0 if self.convention.empty_mean_is_zero else math.nan
        count = self.bin_count
        class_weight = self.class_weight.value
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = self.bin_confidence.value / count
            outcome = self.bin_outcome.value / count
            gaps = np.abs(outcome - confidence)
            class_mean = self.class_loss.value / class_weight
            recall = self.class_correct / self.class_count
            precision = self.class_correct / self.class_predicted
            weight = class_weight.sum()
            prior = class_weight / weight
            surprisal = np.where(class_weight > 0, -np.log(prior), 0.0) / self._scale
        baseline = float((class_weight * surprisal).sum() / denominator) if denominator and weight > 0 else None
        n = max(self.rows_scored, 1)
        filled = count > 0
        ece = float((count[filled] / n * gaps[filled]).sum()) if self.rows_scored else math.nan
        out: dict[str, Any] = {
            "convention": o.convention,
            "unit": "nats" if o.base is None else ("bits" if o.base == 2 else f"log base {o.base:g}"),
            "rows_read": self.rows_read,
            "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected,
            "rejected": [self.public_entry(e) for e in self.rejected],
            "rejected_reasons": dict(self.reasons.most_common()),
            "sum_tolerance": "auto" if o.atol is None else o.atol,
            "renormalized": o.renormalize,
            "mean_loss": mean,
            "sum_loss": total,
            "total_weight": float(self.weight.value),
            "baseline_loss": baseline,
            "accuracy": self.correct / self.rows_scored if self.rows_scored else math.nan,
            "per_class": [
                {
                    "class": c,
                    "count": int(self.class_count[c]),
                    "mean_loss": _num(class_mean[c]),
                    "precision": _num(precision[c]),
                    "recall": _num(recall[c]),
                    "predicted": int(self.class_predicted[c]),
                }
                for c in range(o.num_classes)
            ],
            "calibration": {
                "kind": "positive class" if o.binary else "top label",
                "ece": ece,
                "mce": float(gaps[filled].max()) if filled.any() else math.nan,
                "bins": [
                    {
                        "lower": i / o.bins,
                        "upper": (i + 1) / o.bins,
                        "count": int(count[i]),
                        "confidence": _num(confidence[i]),
                        "observed": _num(outcome[i]),
                    }
                    for i in range(o.bins)
                ],
            },
            "loss_histogram": self.loss_histogram(),
        }
        if o.bootstrap:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = self.boot_loss.value / self.boot_denominator.value
            finite = means[~np.isnan(means)]
            lo, hi = np.percentile(finite, [2.5, 97.5]) if finite.size else (math.nan, math.nan)
            out["bootstrap"] = {
                "replicates": o.bootstrap,
                "seed": o.seed,
                "ci95": [float(lo), float(hi)],
                "std": float(np.std(finite)) if finite.size else math.nan,
            }
        return out

    def public_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A rejected row as reported: 1-based row in the data set, no internal byte offset."""
        out = {k: v for k, v in entry.items() if k != "offset"}
        out["row"] = None if self.origin is None or entry["row"] is None else entry["row"] + 1 + self.origin
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


def _num(x: Any) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


# --- columns --------------------------------------------------------------------------------------------

LABEL_DEFAULTS = ("label", "labels", "y", "y_true", "target")


def resolve_columns(
    names: list[str],
    source: str,
    labels: str | None,
    probs: list[str] | None,
    logits: list[str] | None,
    sample_weight: str | None,
) -> tuple[str, list[str], bool]:
    """``(label column, prediction columns, from_logits)`` of a table, for both scoring engines.

    The label column defaults to the first of :data:`LABEL_DEFAULTS` present;
    the prediction columns to every column that is not the label or the weight.
    """
    from .io import describe_columns, select_columns

    if probs and logits:
        raise InputError("give either --probs or --logits, not both")
    present = set(names)
    label = labels or next((c for c in LABEL_DEFAULTS if c in present), None)
    if label is None or label not in present:
        wanted = repr(labels) if labels else f"one of {', '.join(map(repr, LABEL_DEFAULTS))}"
        raise InputError(f"{source}: no label column {wanted} (see --labels); {describe_columns(names)}")
    if sample_weight is not None and sample_weight not in present:
        raise InputError(f"{source}: no sample-weight column {sample_weight!r}; {describe_columns(names)}")
    exclude = {label} | ({sample_weight} if sample_weight else set())
    if probs or logits:
        chosen = select_columns(names, probs or logits or [], "probability" if probs else "logit", source)
    else:
        chosen = [c for c in names if c not in exclude]
        if not chosen:
            raise InputError(f"{source}: no prediction columns besides {', '.join(map(repr, sorted(exclude)))}")
    overlap = [c for c in chosen if c in exclude]
    if overlap:
        raise InputError(f"{source}: column {overlap[0]!r} is both a label/weight and a prediction column")
    return label, chosen, bool(logits)


def _is_list_text(batch: Any, name: str) -> bool:
    """Whether a column's first cell is text like ``[0.1, 0.9]`` (a list written into a CSV)."""
    values = getattr(batch, "columns", {}).get(name)
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return False
    first = next((t for t in (batch.text(name, r) for r in range(min(len(batch), 8))) if t), "")
    return first.lstrip().startswith("[")


def infer_options(
    batch: Any, columns: Columns, table_lists: Sequence[str], base: ScoreOptions
) -> tuple[ScoreOptions, Columns]:
    """The number of classes and the layout (binary, list column) from a table's first batch."""
    list_column = len(columns.predictions) == 1 and (
        columns.predictions[0] in table_lists or _is_list_text(batch, columns.predictions[0])
    )
    columns = replace(columns, list_column=list_column)
    if list_column:
        numeric, _ = batch.vectors(columns.predictions[0], None)
        classes, binary = numeric.values.shape[1], False
    else:
        classes = len(columns.predictions)
        binary = classes == 1
        classes = 2 if binary else classes
    if classes < 2:
        raise InputError(f"{batch.source}: the first row has {classes} predictions; scoring needs at least 2 classes")
    return replace(base, num_classes=classes, binary=binary, from_logits=columns.from_logits), columns


def _extract(batch: Any, columns: Columns, options: ScoreOptions) -> dict[str, Any]:
    """Labels, predictions, weights, stored dtype and the reader's bad cells of one batch."""
    problems: list[tuple[Array, str, Callable[[int], tuple[str | None, str]]]] = []

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
        numeric, wrong = batch.vectors(columns.predictions[0], options.num_classes)
        if wrong is not None:
            problems.append(
                (
                    wrong,
                    "wrong number of values",
                    lambda i: (columns.predictions[0], f"expected {options.num_classes}"),
                )
            )
        preds = cells(numeric, columns.predictions[0])
        dtype = numeric.dtype
    else:
        numeric = batch.matrix(list(columns.predictions))
        for mask, reason in ((numeric.missing, "missing value"), (numeric.invalid, "not a number")):
            if mask is not None and mask.any():
                rows = mask.any(axis=1)

                def describe(i: int, mask: Array = mask, reason: str = reason) -> tuple[str | None, str]:
                    name = columns.predictions[int(np.argmax(mask[i]))]
                    return name, repr(batch.text(name, i)) if reason == "not a number" else ""

                problems.append((rows, reason, describe))
        preds = numeric.values[:, 0] if options.binary else numeric.values
        dtype = numeric.dtype
    w = cells(batch.numeric(columns.weight), columns.weight) if columns.weight else None
    return {"labels": y, "preds": preds, "weights": w, "dtype": dtype, "problems": problems}


def score_batches(
    batches: Iterable[Any],
    scorer: Scorer,
    columns: Columns,
    *,
    on_bad_row: str = "error",
    progress: Callable[[Any], None] | None = None,
) -> Scorer:
    """Feed ``batches`` (of :mod:`crossentropy.io`) to ``scorer``; the core of both engines.

    With ``on_bad_row="error"`` the first row that cannot be scored raises
    :class:`BadRowError` naming its file, line (or row) and column.
    """
    for batch in batches:
        if not len(batch):
            continue
        scorer.update(**_extract(batch, columns, scorer.options), columns=columns, cells=batch)
        if scorer.rows_rejected and on_bad_row == "error":
            entry = dict(scorer.rejected[0])
            entry["row"] = entry["row"] + 1 + (scorer.origin or 0) if scorer.origin is not None else None
            raise BadRowError(describe_rejection(entry), entry)
        if progress is not None:
            progress(batch)
    return scorer


def score_file(
    path: str,
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
    batch_rows: int = 1 << 16,
    max_listed: int = 20,
    progress: Callable[[int, float | None], None] | None = None,
) -> dict[str, Any]:
    """Score a prediction file or data set in bounded memory; the engine behind ``crossentropy score``.

    ``path`` is anything :func:`crossentropy.io.open_table` opens (a file,
    ``-`` for standard input, a FIFO, a directory or glob of Parquet or CSV
    files, an fsspec URL). Returns the scorer's result plus ``file``,
    ``classes``, ``prediction_columns`` and ``from_logits``; ``rows_read``
    is always ``rows_scored + rows_rejected``, and ``rejected`` lists the
    first ``max_listed`` rejected rows (row, file, line, column, reason,
    detail). ``progress``, if given, is called after each batch with the
    rows read so far and the fraction done (``None`` when the size is
    unknown, as on a stream).

    Raises
    ------
    InputError
        For unreadable files, unknown columns, and (with
        ``on_bad_row="error"``) the first row that cannot be scored, naming
        the file, the line (CSV) or row, the column and the reason.
    """
    from .io import open_table

    check_choice("on_bad_row", on_bad_row, ("error", "skip"))
    table = open_table(path, delimiter=delimiter)
    label, chosen, from_logits = resolve_columns(table.column_names, table.path, labels, probs, logits, sample_weight)
    columns = Columns(label, tuple(chosen), sample_weight, from_logits)
    base_options = ScoreOptions(
        num_classes=2,
        convention=convention,
        base=base,
        bins=bins,
        bootstrap=bootstrap,
        seed=seed,
        atol=atol,
        renormalize=renormalize,
        max_listed=max_listed,
    )
    total: Scorer | None = None
    options: ScoreOptions | None = None
    done_bytes = 0
    for piece in table.pieces:
        batches = iter(piece.batches(columns.read(), batch_rows))
        first = next(batches, None)
        if first is None:
            continue
        if options is None:
            options, columns = infer_options(first, columns, table.list_columns, base_options)
            total = Scorer(options)
        assert total is not None
        scorer = Scorer(options, origin=total.rows_read)
        report = None if progress is None else _progress(progress, table, piece, total.rows_read, scorer, done_bytes)
        score_batches(_chain(first, batches), scorer, columns, on_bad_row=on_bad_row, progress=report)
        total.merge(scorer)
        if piece.stop >= 0 and piece.kind == "csv":
            done_bytes += piece.stop
    if total is None or options is None:
        raise InputError(f"{table.path}: no data rows (the file has a header but no rows)")
    result = total.result()
    assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"]
    return {
        "file": table.path,
        **result,
        "classes": options.num_classes,
        "prediction_columns": list(columns.predictions),
        "from_logits": from_logits,
    }


def _progress(
    progress: Callable[[int, float | None], None], table: Any, piece: Any, before: int, scorer: Scorer, done_bytes: int
) -> Callable[[Any], None]:
    """A per-batch callback reporting rows read and the fraction done (by rows, else by bytes)."""

    def report(batch: Any) -> None:
        rows = before + scorer.rows_read
        if table.num_rows:
            progress(rows, rows / table.num_rows)
        elif table.size_bytes and batch.end_offset is not None:
            progress(rows, min(1.0, (done_bytes + batch.end_offset) / table.size_bytes))
        else:
            progress(rows, None)

    return report


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    yield first
    yield from rest
