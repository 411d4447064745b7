"""The Poisson bootstrap of the mean loss, drawn per row so that any partitioning draws the same weights.

Row ``i`` of the data set gets weight Poisson(1) in each replicate, drawn by
a counter-based generator (Philox) keyed by the seed and ``i``: a Dask worker
draws the weights of its own rows knowing nothing of the others, and the
replicate sums of consecutive pieces add up to those of the whole.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Self

import numpy as np

from .._validation import InputError
from .options import Layout, ScoreOptions
from .statistics import Partials, Rows, Statistic, Sum

__all__ = ["Bootstrap", "poisson_weights"]

Array = np.ndarray[Any, Any]


@functools.cache
def _poisson_thresholds() -> Array:
    """uint64 thresholds of the Poisson(1) CDF: ``k`` = how many a raw 64-bit draw exceeds."""
    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(20)])
    return np.array([min(int(c * 2.0**64), 2**64 - 1) for c in cdf], dtype=np.uint64)


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


class Bootstrap(Statistic):
    """The replicates' weighted loss and denominator sums; a 95% interval and the spread of the mean.

    With ``options.bootstrap`` 0 it keeps nothing and adds nothing to the result.
    """

    name = "bootstrap"

    def __init__(self, options: ScoreOptions, layout: Layout) -> None:
        super().__init__(options, layout)
        self.loss = Sum((options.bootstrap,), what="the weighted losses of a bootstrap replicate")
        self.denominator = Sum((options.bootstrap,), what="the sample weights of a bootstrap replicate")

    def update(self, rows: Rows) -> None:
        replicates = self.options.bootstrap
        if not replicates:
            return
        if rows.positions is None:
            raise InputError("the bootstrap needs each row's index in the data set (origin)")
        positions = rows.positions
        step = max(1, (1 << 20) // replicates)
        for i in range(0, positions.shape[0], step):
            part = positions[i : i + step]
            lo, hi = int(part[0]), int(part[-1]) + 1
            k = poisson_weights(self.options.seed, lo, hi - lo, replicates)[part - lo].astype(np.float64)
            self.loss.add(_weighted_sums(rows.weighted[i : i + step], k, self.loss))
            self.denominator.add(_weighted_sums(rows.terms[i : i + step], k, self.denominator))

    def merge(self, other: Self) -> None:
        self.loss.merge(other.loss)
        self.denominator.merge(other.denominator)

    def summary(self, partials: Partials) -> dict[str, Any]:
        o = self.options
        if not o.bootstrap:
            return {}
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.loss.value / self.denominator.value
        drawn = np.sort(means[~np.isnan(means)])  # a replicate that drew no row has no mean
        if not drawn.size:
            lo = hi = spread = math.nan
        else:
            lo, hi = _quantile(drawn, 0.025), _quantile(drawn, 0.975)
            spread = float(np.std(drawn)) if np.isfinite(drawn).all() else math.inf
        return {
            "bootstrap": {
                "replicates": o.bootstrap,
                "seed": o.seed,
                "ci95": [lo, hi],
                "std": spread,
            }
        }


def _weighted_sums(values: Array, k: Array, into: Sum) -> Array:
    """``values @ k`` (one sum per replicate) where a row drawn 0 times adds nothing, even an infinite loss.

    A replicate that draws a row of infinite loss has an infinite sum (NaN if
    it draws both signs); ``inf * 0`` would make every replicate NaN instead.
    Finite values whose sum overflows raise ``into``'s overflow error.
    """
    finite = np.isfinite(values)
    with np.errstate(over="ignore"):
        sums = np.asarray(values[finite] @ k[finite]) if not finite.all() else np.asarray(values @ k)
    if not np.isfinite(sums).all():
        raise into.overflow()
    if finite.all():
        return sums
    drawn = k[~finite] > 0
    other = values[~finite][:, None]
    up, down, nan = ((drawn & test).any(axis=0) for test in (other > 0, other < 0, np.isnan(other)))
    return np.where(nan | (up & down), math.nan, np.where(up, math.inf, np.where(down, -math.inf, sums)))


def _quantile(ordered: Array, q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated linearly as NumPy's default, infinities included.

    Between two equal values it is that value; next to an infinite one (which
    any share of the interpolation makes infinite) it is that infinity, where
    NumPy's interpolation would give NaN.
    """
    position = q * (ordered.size - 1)
    below = math.floor(position)
    above = min(below + 1, ordered.size - 1)
    a, b, t = float(ordered[below]), float(ordered[above]), position - below
    if t == 0 or a == b:
        return a
    if math.isinf(a):
        return a
    if math.isinf(b):
        return b
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)
