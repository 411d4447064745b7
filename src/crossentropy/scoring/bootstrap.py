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
        self.loss = Sum((options.bootstrap,))
        self.denominator = Sum((options.bootstrap,))

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
            self.loss.add(rows.weighted[i : i + step] @ k)
            self.denominator.add(rows.terms[i : i + step] @ k)

    def merge(self, other: Self) -> None:
        self.loss.merge(other.loss)
        self.denominator.merge(other.denominator)

    def summary(self, partials: Partials) -> dict[str, Any]:
        o = self.options
        if not o.bootstrap:
            return {}
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.loss.value / self.denominator.value
        finite = means[~np.isnan(means)]
        lo, hi = np.percentile(finite, [2.5, 97.5]) if finite.size else (math.nan, math.nan)
        return {
            "bootstrap": {
                "replicates": o.bootstrap,
                "seed": o.seed,
                "ci95": [float(lo), float(hi)],
                "std": float(np.std(finite)) if finite.size else math.nan,
            }
        }
