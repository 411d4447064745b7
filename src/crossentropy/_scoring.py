"""Streaming scoring of predictions: mean loss, per class, calibration, bootstrap.

A module of its own because two engines share it: ``crossentropy score``
feeds it batches from one process, and :mod:`crossentropy.dask` feeds one
scorer per partition and merges them. The state is a handful of sums, so
merging partial scores is exact (up to the rounding of float64 addition,
kept small with compensated sums).

Examples
--------
>>> import numpy as np
>>> from crossentropy._scoring import Scorer, ScoreOptions
>>> scorer = Scorer(ScoreOptions(num_classes=2, binary=True))
>>> y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0.0])
>>> p = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
>>> _ = scorer.update(y, p, None, start=0)
>>> print(f"{scorer.result()['mean_loss']:.10f}")
0.2469198908
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import conventions as _conv
from ._losses import binary_cross_entropy, sparse_categorical_cross_entropy
from ._validation import InputError, check_base, sum_tolerance

Array = np.ndarray[Any, Any]

__all__ = ["BadRows", "ScoreOptions", "Scorer"]

HISTOGRAM_BINS = 50
HISTOGRAM_MAX = 10.0
"""The loss histogram has equal bins on [0, 10) in the report's unit; the last also counts larger losses."""


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
    """

    num_classes: int
    binary: bool = False
    from_logits: bool = False
    convention: str = "exact"
    base: float | None = None
    bins: int = 10
    bootstrap: int = 0
    seed: int = 0


@dataclass
class BadRows:
    """Rows of one batch that could not be scored, with the first reason."""

    rows: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, rows: Array, reason: str) -> None:
        for r in rows.tolist():
            self.rows.append(int(r))
            self.reasons.append(reason)


class _Sum:
    """A compensated (Neumaier) float64 sum of array batches."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.total = np.zeros(shape)
        self.carry = np.zeros(shape)

    def add(self, value: Array | float) -> None:
        t = self.total + value
        big = np.abs(self.total) >= np.abs(value)
        self.carry += np.where(big, (self.total - t) + value, (value - t) + self.total)
        self.total = t

    def merge(self, other: _Sum) -> None:
        self.add(other.total)
        self.carry += other.carry

    @property
    def value(self) -> Array:
        return self.total + self.carry


class Scorer:
    """Accumulates a score over batches of rows; :meth:`merge` combines scorers."""

    def __init__(self, options: ScoreOptions) -> None:
        if options.num_classes < 2:
            raise InputError(f"scoring needs at least 2 classes, got {options.num_classes}")
        check_base(options.base)
        if options.bins < 1:
            raise InputError(f"bins must be at least 1, got {options.bins}")
        if options.bootstrap < 0:
            raise InputError(f"bootstrap must be >= 0, got {options.bootstrap}")
        self.options = options
        self.convention = _conv.get(options.convention)
        k, b = options.num_classes, options.bins
        self.rows_scored = 0
        self.loss = _Sum()
        self.denominator = _Sum()
        self.weight = _Sum()
        self.correct = 0
        self.class_count = np.zeros(k, dtype=np.int64)
        self.class_correct = np.zeros(k, dtype=np.int64)
        self.class_loss = _Sum((k,))
        self.class_weight = _Sum((k,))
        self.bin_count = np.zeros(b, dtype=np.int64)
        self.bin_confidence = _Sum((b,))
        self.bin_outcome = _Sum((b,))
        self.boot_loss = _Sum((options.bootstrap,))
        self.boot_denominator = _Sum((options.bootstrap,))
        self._rng = np.random.default_rng(options.seed)
        self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    # --- validation --------------------------------------------------------------------------------

    def check_rows(self, labels: Array, preds: Array, weights: Array | None) -> tuple[Array, list[tuple[Array, str]]]:
        """A mask of scoreable rows and, for the others, why (first reason per row)."""
        o = self.options
        problems: list[tuple[Array, str]] = []
        bad = np.zeros(labels.shape[0], dtype=bool)

        def flag(mask: Any, reason: str) -> None:
            new = mask & ~bad
            if new.any():
                problems.append((np.flatnonzero(new), reason))
                bad[:] |= mask

        flag(~np.isfinite(labels), "label is not a number")
        flag(np.isfinite(labels) & (labels != np.round(labels)), "label is not an integer class index")
        flag(np.isfinite(labels) & ((labels < 0) | (labels >= o.num_classes)), f"label is outside [0, {o.num_classes})")
        p2 = preds.reshape(preds.shape[0], -1)
        flag(np.isnan(p2).any(axis=1), "prediction is NaN")
        if o.from_logits:
            flag((p2 == np.inf).any(axis=1), "logit is +inf")
            if not o.binary:
                flag((p2 == -np.inf).all(axis=1), "every logit is -inf")
        else:
            flag(((p2 < 0) | (p2 > 1)).any(axis=1), "probability is outside [0, 1]")
            if not o.binary and self.convention.sum_check == "error":
                off = np.abs(p2.sum(axis=1) - 1) > sum_tolerance(np, np.dtype(np.float64))
                flag(off, "probabilities do not sum to 1")
        if weights is not None:
            flag(~np.isfinite(weights) | (weights < 0), "sample weight is negative or not finite")
        return ~bad, problems

    # --- accumulation ---------------------------------------------------------------------------------

    def _losses(self, labels: Array, preds: Array, weights: Array | None) -> Array:
        o = self.options
        if o.binary:
            column = preds.reshape(-1, 1)
            per = binary_cross_entropy(
                labels.reshape(-1, 1),
                column,
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
        scale = 1.0 if o.base is None else math.log(o.base)
        return np.asarray(per, dtype=np.float64).reshape(-1) / scale

    def _probabilities(self, preds: Array) -> Array:
        o = self.options
        if o.binary:
            return np.asarray(1 / (1 + np.exp(-preds))) if o.from_logits else preds
        if o.from_logits:
            e = np.exp(preds - preds.max(axis=1, keepdims=True))
            return np.asarray(e / e.sum(axis=1, keepdims=True))
        return preds

    def update(self, labels: Array, preds: Array, weights: Array | None, *, start: int) -> BadRows:
        """Score one batch; rows that cannot be scored are returned, not scored.

        ``labels`` are float64 class indices, ``preds`` a 1-D (binary) or
        ``(n, num_classes)`` array, ``weights`` optional per-row weights;
        ``start`` is the batch's first row number (0-based) for the report.
        """
        o = self.options
        ok, problems = self.check_rows(labels, preds, weights)
        bad = BadRows()
        for rows, reason in problems:
            bad.add(rows + start, reason)
        if not ok.all():
            labels, preds = labels[ok], preds[ok]
            weights = None if weights is None else weights[ok]
        n = labels.shape[0]
        if n == 0:
            return bad
        w = np.ones(n) if weights is None else weights
        per = self._losses(labels, preds, None)
        conv = self.convention
        kind = "binary" if o.binary else "sparse"
        terms = np.asarray(conv.denominator_terms(kind, w, np.ones(n)), dtype=np.float64)
        weighted = np.where(w == 0, 0.0, per * w)
        self.rows_scored += n
        self.loss.add(weighted.sum())
        self.denominator.add(terms.sum())
        self.weight.add(w.sum())
        cls = labels.astype(np.int64)
        probs = self._probabilities(preds)
        predicted = (probs >= 0.5).astype(np.int64) if o.binary else np.argmax(probs, axis=1)
        hit = predicted == cls
        self.correct += int(hit.sum())
        self.class_count += np.bincount(cls, minlength=o.num_classes)
        self.class_correct += np.bincount(cls, weights=hit, minlength=o.num_classes).astype(np.int64)
        self.class_loss.add(np.bincount(cls, weights=weighted, minlength=o.num_classes))
        self.class_weight.add(np.bincount(cls, weights=w, minlength=o.num_classes))
        confidence = probs if o.binary else probs.max(axis=1)
        outcome = cls.astype(np.float64) if o.binary else hit.astype(np.float64)
        index = np.minimum((confidence * o.bins).astype(np.int64), o.bins - 1)
        self.bin_count += np.bincount(index, minlength=o.bins)
        self.bin_confidence.add(np.bincount(index, weights=confidence, minlength=o.bins))
        self.bin_outcome.add(np.bincount(index, weights=outcome, minlength=o.bins))
        self._update_histogram(per)
        if o.bootstrap:
            self._update_bootstrap(weighted, terms)
        return bad

    def _update_histogram(self, per: Array) -> None:
        width = HISTOGRAM_MAX / self.histogram.size
        index = np.minimum(np.nan_to_num(per / width, posinf=self.histogram.size), self.histogram.size - 1)
        self.histogram += np.bincount(index.astype(np.int64), minlength=self.histogram.size)

    def _update_bootstrap(self, weighted: Array, terms: Array) -> None:
        replicates = self.options.bootstrap
        step = max(1, (1 << 21) // replicates)
        for i in range(0, weighted.shape[0], step):
            k = self._rng.poisson(1.0, size=(replicates, min(step, weighted.shape[0] - i))).astype(np.float64)
            self.boot_loss.add(k @ weighted[i : i + step])
            self.boot_denominator.add(k @ terms[i : i + step])

    def merge(self, other: Scorer) -> None:
        """Add another scorer's sums (from another batch range or partition)."""
        if other.options != self.options:
            raise InputError("only scorers with the same options can be merged")
        self.rows_scored += other.rows_scored
        self.correct += other.correct
        self.class_count += other.class_count
        self.class_correct += other.class_correct
        self.bin_count += other.bin_count
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
        self.histogram += other.histogram

    # --- the result ----------------------------------------------------------------------------------------

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
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = self.bin_confidence.value / count
            outcome = self.bin_outcome.value / count
            gaps = np.abs(outcome - confidence)
            class_mean = self.class_loss.value / self.class_weight.value
            class_accuracy = self.class_correct / self.class_count
        n = max(self.rows_scored, 1)
        filled = count > 0
        ece = float((count[filled] / n * gaps[filled]).sum()) if self.rows_scored else math.nan
        out: dict[str, Any] = {
            "convention": o.convention,
            "unit": "nats" if o.base is None else ("bits" if o.base == 2 else f"log base {o.base:g}"),
            "rows_scored": self.rows_scored,
            "mean_loss": mean,
            "sum_loss": total,
            "total_weight": float(self.weight.value),
            "accuracy": self.correct / self.rows_scored if self.rows_scored else math.nan,
            "per_class": [
                {
                    "class": c,
                    "count": int(self.class_count[c]),
                    "mean_loss": _num(class_mean[c]),
                    "accuracy": _num(class_accuracy[c]),
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
            "loss_histogram": {"upper": HISTOGRAM_MAX, "counts": self.histogram.tolist()},
        }
        if o.bootstrap:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = self.boot_loss.value / self.boot_denominator.value
            lo, hi = np.nanpercentile(means, [2.5, 97.5]) if np.isfinite(means).any() else (math.nan, math.nan)
            out["bootstrap"] = {
                "replicates": o.bootstrap,
                "ci95": [float(lo), float(hi)],
                "std": float(np.nanstd(means)),
            }
        return out


def _num(x: Any) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


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
    label = labels or next((c for c in LABEL_DEFAULTS if c in names), None)
    if label is None or label not in names:
        wanted = repr(labels) if labels else f"one of {', '.join(map(repr, LABEL_DEFAULTS))}"
        raise InputError(f"{source}: no label column {wanted} (see --labels); {describe_columns(names)}")
    if sample_weight is not None and sample_weight not in names:
        raise InputError(f"{source}: no sample-weight column {sample_weight!r}; {describe_columns(names)}")
    exclude = [label] + ([sample_weight] if sample_weight else [])
    if probs or logits:
        chosen = select_columns(names, probs or logits or [], "probability" if probs else "logit", source)
    else:
        chosen = [c for c in names if c not in exclude]
        if not chosen:
            raise InputError(f"{source}: no prediction columns besides {', '.join(map(repr, exclude))}")
    overlap = [c for c in chosen if c in exclude]
    if overlap:
        raise InputError(f"{source}: column {overlap[0]!r} is both a label/weight and a prediction column")
    return label, chosen, bool(logits)


def _describe(
    batch: Any, row: int, reason: str, label: str, weight: str | None, columns: list[str], preds: Array
) -> str:
    """Name the column of a bad row's first problem."""
    if reason.startswith("label"):
        where = f"column {label!r}"
    elif reason.startswith("sample weight"):
        where = f"column {weight!r}"
    elif reason.startswith("probabilities do not sum"):
        where = f"columns {columns[0]!r}..{columns[-1]!r}" if len(columns) > 1 else f"column {columns[0]!r}"
    else:
        values = preds.reshape(preds.shape[0], -1)[row - batch.start]
        bad = ~np.isfinite(values) if "NaN" in reason or "inf" in reason else (values < 0) | (values > 1)
        j = int(np.argmax(bad)) if bad.any() else 0
        where = f"column {columns[min(j, len(columns) - 1)]!r} = {float(values[j]):.10g}"
    return f"{batch.source}: row {row + 1}, {where}: {reason}"


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
    on_bad_row: str = "error",
    delimiter: str | None = None,
    batch_rows: int = 1 << 16,
    max_listed: int = 20,
    progress: Any = None,
) -> dict[str, Any]:
    """Score a prediction file in bounded memory; the engine behind ``crossentropy score``.

    Returns the scorer's result plus ``file``, ``rows_read``,
    ``rows_rejected`` and the first ``max_listed`` rejected rows (1-based
    row numbers with their reason). ``progress``, if given, is called with
    the number of rows read so far after each batch.

    Raises
    ------
    InputError
        For unreadable files, unknown columns, and (with
        ``on_bad_row="error"``) the first row that cannot be scored, naming
        the file, row and column.
    """
    from ._validation import check_choice
    from .io import open_table

    check_choice("on_bad_row", on_bad_row, ("error", "skip"))
    table = open_table(path, batch_rows=batch_rows, delimiter=delimiter)
    label, columns, from_logits = resolve_columns(table.column_names, table.path, labels, probs, logits, sample_weight)
    scorer: Scorer | None = None
    rows_read = 0
    rejected: list[dict[str, Any]] = []
    rejected_count = 0
    list_column = len(columns) == 1 and columns[0] in table.list_columns
    for batch in table.batches():
        n = len(batch)
        if n == 0:
            continue
        if scorer is None and len(columns) == 1 and not list_column:
            first = batch.columns[columns[0]]
            sample = first[0] if isinstance(first, np.ndarray) else first[0].as_py()
            list_column = isinstance(sample, str) and sample.lstrip().startswith("[")
        y = batch.numeric(label)
        if list_column:
            preds = batch.vectors(columns[0])
        elif len(columns) == 1:
            preds = batch.numeric(columns[0])
        else:
            preds = np.stack([batch.numeric(c) for c in columns], axis=1)
        w = batch.numeric(sample_weight) if sample_weight else None
        if scorer is None:
            binary = preds.ndim == 1
            k = 2 if binary else preds.shape[1]
            scorer = Scorer(
                ScoreOptions(
                    num_classes=k,
                    binary=binary,
                    from_logits=from_logits,
                    convention=convention,
                    base=base,
                    bins=bins,
                    bootstrap=bootstrap,
                    seed=seed,
                )
            )
        elif not scorer.options.binary and preds.shape[1] != scorer.options.num_classes:
            raise InputError(
                f"{batch.source}: row {batch.start + 1}: {preds.shape[1]} predictions, "
                f"expected {scorer.options.num_classes}"
            )
        bad = scorer.update(y, preds, w, start=batch.start)
        rows_read += n
        if bad.rows:
            order = np.argsort(bad.rows, kind="stable")
            first_row, first_reason = bad.rows[order[0]], bad.reasons[order[0]]
            pred_columns = columns if not list_column else [f"{columns[0]}[{j}]" for j in range(preds.shape[1])]
            if on_bad_row == "error":
                raise InputError(_describe(batch, first_row, first_reason, label, sample_weight, pred_columns, preds))
            rejected_count += len(bad.rows)
            for i in order[: max(0, max_listed - len(rejected))]:
                rejected.append({"row": bad.rows[i] + 1, "reason": bad.reasons[i]})
        if progress is not None:
            progress(rows_read)
    if scorer is None:
        raise InputError(f"{table.path}: no data rows (the file has a header but no rows)")
    result = scorer.result()
    summary = {
        "file": table.path,
        "rows_read": rows_read,
        "rows_scored": scorer.rows_scored,
        "rows_rejected": rejected_count,
        "rejected": rejected,
        "classes": scorer.options.num_classes,
        "prediction_columns": columns,
        "from_logits": from_logits,
    }
    assert rows_read == scorer.rows_scored + rejected_count
    return {**summary, **result}
