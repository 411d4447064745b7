"""Temperature scaling as a scoring step: the temperature that fixes the predictions, and what it recovers.

With ``ScoreOptions(calibrate="temperature")`` the scorer fits one
temperature ``T`` (:func:`crossentropy.calibration.fit_temperature`: the
``T`` minimising the mean cross-entropy of ``softmax(logits / T)``, for
probabilities their logarithms as logits, ``sigmoid(z / T)`` for a binary
model) and reports the mean loss and the expected calibration error before
and after it, under the options' convention, base and bins.

An "after" measured on the rows the temperature was fitted on flatters it,
so it is measured on rows the fit did not see, in one of two ways:

- **Cross-fitting** (the default): each scored row is assigned to one of
  ``folds`` folds by a hash of its index in the data set (and the seed), so
  the folds do not depend on how the data set is cut into pieces; the rows
  of each fold are calibrated with the temperature fitted on the other
  folds, and the "after" figures are those of all rows calibrated so. The
  reported ``temperature`` is the one fitted on all the rows (the one to
  use on new data); ``fold_temperatures`` shows how stable it is. The fit
  holds the scored predictions in memory (at most :data:`MAX_VALUES`
  values).
- **A held-out file** (``calibrate_on``): the engines fit ``T`` on that file
  first and set ``temperature``; every scored row is then calibrated with it
  as it streams by, in bounded memory.

Rows whose label has probability 0 have an infinite loss at every
temperature; they are left out of the fit (and counted), and keep their
infinite loss after it. The calibrated predictions are scored as the
predictions were: logits stay logits; probabilities under a named
convention stay probabilities (so the library's clipping applies to them as
it would); under the exact convention they are scored as the logits
``log(p) / T``, so that no calibrated probability underflows to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np

from .._validation import InputError
from ..calibration import fit_temperature
from .options import Layout, ScoreOptions
from .rows import score_rows
from .statistics import Calibration, LossSums, Partials, Rows, Statistic

__all__ = [
    "MAX_VALUES",
    "HeldOut",
    "Temperature",
    "calibrated",
    "calibrated_layout",
    "fit",
    "fold_of",
    "logits_of",
]

Array = np.ndarray[Any, Any]

MAX_VALUES = 1 << 26
"""The most prediction values (rows x classes) that cross-fitting holds in memory (512 MiB of float64)."""
_MASK = (1 << 64) - 1


def fold_of(positions: Array, folds: int, seed: int = 0) -> Array:
    """The fold of each row, from its index in the data set: a SplitMix64 hash of ``(seed, index)`` modulo ``folds``.

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.scoring.temperature import fold_of
    >>> np.bincount(fold_of(np.arange(100_000), 5))
    array([20036, 20102, 20136, 19964, 19762])
    >>> bool((fold_of(np.arange(3, 10), 5) == fold_of(np.arange(10), 5)[3:]).all())
    True
    """
    offset = np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK)
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + offset + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(folds)).astype(np.int64)


def logits_of(preds: Array, layout: Layout) -> Array:
    """The logits whose softmax the predictions are: as given, or the logarithms of probabilities.

    A binary model's prediction becomes its log-odds ``log(p) - log(1 - p)``
    (``+-inf`` for a probability of 1 or 0).
    """
    if layout.from_logits:
        return preds
    with np.errstate(divide="ignore"):
        if layout.binary:
            return np.log(preds) - np.log1p(-preds)
        return np.log(preds)


def _scaled(z: Array, t: float, binary: bool) -> Array:
    """``z / t``, with the limits ``t = 0`` (the hard argmax) and ``t = inf`` (uniform over the finite logits)."""
    if 0.0 < t < math.inf:
        return z / t
    if binary:
        if t == 0.0:
            return np.where(z > 0, math.inf, np.where(z < 0, -math.inf, 0.0))
        return np.where(np.isfinite(z), 0.0, z)
    keep = z == z.max(axis=1, keepdims=True) if t == 0.0 else z > -math.inf
    return np.where(keep, 0.0, -math.inf)


def calibrated_layout(layout: Layout, convention: str) -> Layout:
    """How calibrated predictions are scored: as logits, except probabilities under a named convention."""
    return replace(layout, from_logits=True) if layout.from_logits or convention == "exact" else layout


def calibrated(preds: Array, layout: Layout, t: float, convention: str) -> tuple[Array, Layout]:
    """The predictions calibrated with temperature ``t``, and the layout to score them with.

    Logits stay logits. Probabilities stay probabilities under a named
    convention (its clipping applies as the library would apply it);
    under the exact convention they become the logits ``log(p) / t``.
    """
    z = _scaled(logits_of(preds, layout), t, layout.binary)
    after = calibrated_layout(layout, convention)
    if after.from_logits:
        return z, after
    if layout.binary:
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z)), layout
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), layout


def fit(preds: Array, labels: Array, weights: Array, layout: Layout) -> tuple[float, int]:
    """The temperature fitted on rows, and how many rows were left out (label of probability 0).

    A fit with no usable row (no positive weight, or every label ruled out)
    returns 1.0: no temperature changes anything it could measure.
    """
    z = logits_of(preds, layout)
    if layout.binary:
        possible = np.where(labels == 1, z > -math.inf, z < math.inf)
    else:
        possible = z[np.arange(z.shape[0]), labels] > -math.inf
    weighted = weights > 0
    usable = weighted & possible
    left_out = int((weighted & ~possible).sum())
    if not usable.any():
        return 1.0, left_out
    return fit_temperature(labels[usable], logits=z[usable], sample_weight=weights[usable]), left_out


@dataclass(frozen=True)
class HeldOut:
    """A temperature fitted on a held-out file, and what the fit saw."""

    path: str
    temperature: float
    layout: Layout
    rows: int
    left_out: int

    def check(self, layout: Layout) -> None:
        """InputError unless the scored data has the held-out file's classes (binary or not, how many)."""
        if (layout.binary, layout.num_classes) != (self.layout.binary, self.layout.num_classes):

            def what(x: Layout) -> str:
                return "a binary model" if x.binary else f"{x.num_classes} classes"

            raise InputError(f"calibrate_on: {self.path} has {what(self.layout)}, but the scored data has "
                             f"{what(layout)}; fit the temperature on predictions of the same model")  # fmt: skip

    def fields(self) -> dict[str, Any]:
        """What the held-out fit adds to the result's ``calibration`` entry."""
        return {"fit_rows": self.rows, "rows_left_out_of_fit": self.left_out}


class Temperature(Statistic):
    """The temperature step: the scored rows (cross-fitting), or the calibrated loss and bins (a given temperature).

    With ``options.calibrate`` None it keeps nothing and adds nothing to the
    result. Its fields join the ``calibration`` entry of the result:
    ``method``, ``temperature``, ``fitted_on``, ``mean_loss_before``,
    ``mean_loss_after``, ``ece_before``, ``ece_after``, ``verdict_after``,
    ``rows_left_out_of_fit`` and, when cross-fitted, ``folds`` and
    ``fold_temperatures``.
    """

    name = "temperature"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.values = 0
        self.chunks: list[tuple[Array, Array, Array, Array]] = []
        self.after: tuple[LossSums, Calibration] | None = None
        if options.calibrate is not None and options.temperature is not None:
            self.after = self._after_statistics()

    def _after_statistics(self) -> tuple[LossSums, Calibration]:
        """The loss and the bins of the calibrated rows, empty."""
        layout = calibrated_layout(self.layout, self.options.convention)
        return LossSums(self.options, layout), Calibration(self.options, layout)

    def _calibrated_rows(self, labels: Array, preds: Array, weights: Array, positions: Array | None, t: float) -> Rows:
        values, layout = calibrated(preds, self.layout, t, self.options.convention)
        return score_rows(self.options, layout, labels.astype(np.float64), values, weights, positions)

    def update(self, rows: Rows) -> None:
        o = self.options
        if o.calibrate is None:
            return
        assert rows.predictions is not None
        if self.after is not None:
            assert o.temperature is not None
            after = self._calibrated_rows(rows.classes, rows.predictions, rows.weights, rows.positions, o.temperature)
            for statistic in self.after:
                statistic.update(after)
            return
        if rows.positions is None:
            raise InputError("cross-fitting a temperature needs each row's index in the data set (origin)")
        self._count(rows.predictions.size)
        self.chunks.append((rows.positions, rows.classes, rows.weights, np.array(rows.predictions, dtype=np.float64)))

    def _count(self, values: int) -> None:
        self.values += values
        if self.values > MAX_VALUES:
            raise InputError(
                f"calibrate: cross-fitting a temperature holds the scored predictions in memory, at most "
                f"{MAX_VALUES:,} values (rows x classes); fit it on a held-out sample instead (--calibrate-on FILE)"
            )

    def merge(self, other: Self) -> None:
        if self.after is not None and other.after is not None:
            (loss, bins), (their_loss, their_bins) = self.after, other.after
            loss.merge(their_loss)
            bins.merge(their_bins)
        elif other.chunks:
            self._count(other.values)
            self.chunks.extend(other.chunks)

    def summary(self, partials: Partials) -> dict[str, Any]:
        o = self.options
        if o.calibrate is None:
            return {}
        before_loss = partials.statistic(LossSums).summary(partials)["mean_loss"]
        before_ece = partials.statistic(Calibration).summary(partials)["calibration"]["ece"]
        out: dict[str, Any] = {"method": "temperature"}
        if self.after is not None:
            assert o.temperature is not None
            loss, bins = self.after
            out |= {"temperature": o.temperature, "fitted_on": o.calibrate_on or "a temperature given in advance"}
            left_out = None
        else:
            out["fitted_on"] = f"{o.folds}-fold cross-fitting on the scored rows"
            loss, bins, left_out, temperatures = self._cross_fit()
            out |= {"temperature": temperatures[0], "folds": o.folds, "fold_temperatures": temperatures[1:]}
        after = bins.summary(partials)["calibration"]
        out |= {
            "mean_loss_before": before_loss,
            "mean_loss_after": loss.summary(partials)["mean_loss"],
            "ece_before": before_ece,
            "ece_after": after["ece"],
            "verdict_after": after["verdict"],
            "rows_left_out_of_fit": left_out,
        }
        return {"calibration": out}

    def _rows(self) -> tuple[Array, Array, Array, Array]:
        """The kept rows: positions, labels, weights, predictions."""
        positions, labels, weights, preds = (np.concatenate([c[i] for c in self.chunks]) for i in range(4))
        return positions, labels, weights, preds

    def fit_all(self) -> tuple[float, int]:
        """The temperature fitted on every kept row, and the rows left out (see :func:`fit`)."""
        if not self.chunks:
            return 1.0, 0
        _, labels, weights, preds = self._rows()
        return fit(preds, labels, weights, self.layout)

    def _cross_fit(self) -> tuple[LossSums, Calibration, int, list[float]]:
        """Fit on all rows and on each fold's complement; score each fold with its complement's temperature."""
        o = self.options
        loss, bins = self._after_statistics()
        if not self.chunks:
            return loss, bins, 0, [1.0] * (o.folds + 1)
        positions, labels, weights, preds = self._rows()
        t_all, left_out = fit(preds, labels, weights, self.layout)
        fold = fold_of(positions, o.folds, o.seed)
        temperatures = [t_all]
        for k in range(o.folds):
            train, test = fold != k, fold == k
            t_k, _ = fit(preds[train], labels[train], weights[train], self.layout)
            temperatures.append(t_k)
            if test.any():
                rows = self._calibrated_rows(labels[test], preds[test], weights[test], positions[test], t_k)
                loss.update(rows)
                bins.update(rows)
        return loss, bins, left_out, temperatures
