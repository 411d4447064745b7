"""What to score and how: the caller's options, the columns they select, and the layout found in the data.

- :class:`ScoreOptions` is everything a caller chooses (the options of
  ``crossentropy score``), one object passed to both engines.
- :class:`Columns` names the label, prediction and weight columns of a table
  (:func:`resolve_columns`).
- :class:`Layout` is what the first rows say: the number of classes, one
  prediction per row (binary) or one per class, probabilities or logits
  (:func:`infer_layout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._validation import InputError
from ..io import describe_columns, select_columns

__all__ = ["LABEL_DEFAULTS", "Columns", "Layout", "ScoreOptions", "infer_layout", "resolve_columns"]

LABEL_DEFAULTS = ("label", "labels", "y", "y_true", "target")
"""The label column's names tried in turn when none is given."""


@dataclass(frozen=True)
class ScoreOptions:
    """What to read and compute: the options of ``crossentropy score``, for both engines.

    Attributes
    ----------
    labels : str or None
        The label column (default: the first of :data:`LABEL_DEFAULTS` present).
    probs, logits : sequence of str or None
        Glob patterns of the probability (or logit) columns; at most one of
        the two. Default: every column but the label and the weight, as
        probabilities.
    sample_weight : str or None
        A per-row weight column.
    convention : str
        A named convention (see :mod:`crossentropy.conventions`).
    base : float or None
        Logarithm base of the reported losses (``None``: nats).
    bins : int
        Number of equal-width calibration bins.
    bootstrap : int
        Number of Poisson-bootstrap replicates (0 for none).
    seed : int
        Seed of the bootstrap.
    atol : float or None
        Allowed deviation of a probability row's sum from 1; ``None`` follows
        the stored precision (see :func:`crossentropy.scoring.checks.tolerance`).
    renormalize : bool
        Divide each probability row by its sum instead of checking it.
    on_bad_row : {"error", "skip"}
        Stop at the first row that cannot be scored, or count and skip it.
    delimiter : str or None
        CSV delimiter (default ``,``, tab for ``.tsv``).
    batch_rows : int
        Rows per batch read.
    max_listed : int
        How many rejected rows are listed (all are counted).
    worst_rows : int
        How many of the rows with the largest loss are listed (0 for none).
    calibrate : {None, "temperature"}
        Fit a temperature to the predictions and report the loss and the
        calibration error before and after it (see
        :mod:`crossentropy.scoring.temperature`).
    folds : int
        Folds of the cross-fitting that makes the "after" honest when the
        temperature is fitted on the scored rows themselves.
    calibrate_on : str or None
        A held-out file to fit the temperature on instead (same columns and
        classes); the scored rows are then only scored with it.
    temperature : float or None
        A temperature fitted beforehand: applied to every row, nothing fitted
        (the engines set it from ``calibrate_on``).
    """

    labels: str | None = None
    probs: Sequence[str] | None = None
    logits: Sequence[str] | None = None
    sample_weight: str | None = None
    convention: str = "exact"
    base: float | None = None
    bins: int = 10
    bootstrap: int = 0
    seed: int = 0
    atol: float | None = None
    renormalize: bool = False
    on_bad_row: str = "error"
    delimiter: str | None = None
    batch_rows: int = 1 << 16
    max_listed: int = 20
    worst_rows: int = 0
    calibrate: str | None = None
    folds: int = 5
    calibrate_on: str | None = None
    temperature: float | None = None

    def __post_init__(self) -> None:
        for name in ("probs", "logits"):  # tuples: the options compare equal and hash whatever sequence was given
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def cross_fit(self) -> bool:
        """Whether the temperature is fitted on the scored rows (cross-fitting), not given or fitted elsewhere."""
        return self.calibrate is not None and self.temperature is None and self.calibrate_on is None

    @property
    def needs_positions(self) -> bool:
        """Whether a statistic needs each row's index in the data set (the bootstrap, the folds, the worst rows)."""
        return bool(self.bootstrap) or self.cross_fit or self.worst_rows > 0


@dataclass(frozen=True)
class Layout:
    """What a data set holds, found in its first rows.

    Attributes
    ----------
    num_classes : int
        Number of classes (2 for binary).
    binary : bool
        One prediction per row: the probability (or logit) of class 1.
    from_logits : bool
        Predictions are logits.
    """

    num_classes: int
    binary: bool = False
    from_logits: bool = False


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


def resolve_columns(names: list[str], source: str, options: ScoreOptions) -> Columns:
    """The label, prediction and weight columns of a table with columns ``names``, for both scoring engines.

    The label column defaults to the first of :data:`LABEL_DEFAULTS` present;
    the prediction columns to every column that is not the label or the weight.
    """
    labels, probs, logits, sample_weight = options.labels, options.probs, options.logits, options.sample_weight
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
    return Columns(label, tuple(chosen), sample_weight, bool(logits))


def _is_list_text(batch: Any, name: str) -> bool:
    """Whether a column's first cell is text like ``[0.1, 0.9]`` (a list written into a CSV)."""
    values = getattr(batch, "columns", {}).get(name)
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return False
    first = next((t for t in (batch.text(name, r) for r in range(min(len(batch), 8))) if t), "")
    return first.lstrip().startswith("[")


def infer_layout(batch: Any, columns: Columns, table_lists: Sequence[str]) -> tuple[Layout, Columns]:
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
    return Layout(num_classes=classes, binary=binary, from_logits=columns.from_logits), columns
