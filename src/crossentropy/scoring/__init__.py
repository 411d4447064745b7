"""Scoring predictions in bounded memory: the library behind ``crossentropy score`` and :mod:`crossentropy.dask`.

Every figure is a mergeable partial: a :class:`Scorer` holds a tally of the
rows (read, scored, rejected with their reasons and first positions) and a
set of statistics (compensated sums, counts, a loss histogram in fixed bins
and a Poisson bootstrap keyed by each row's index in the data set), so
scorers of consecutive pieces of a data set merge into exactly the scorer of
the whole, whatever the partitioning. The single-process engine
(:func:`score_file`) feeds one scorer per piece and merges them in order;
:mod:`crossentropy.dask` does the same on workers. Both take one
:class:`ScoreOptions`.

The package, one module per job: :mod:`~crossentropy.scoring.options` (what
to score: options, columns, layout), :mod:`~crossentropy.scoring.checks`
(row checks and the tally), :mod:`~crossentropy.scoring.statistics` (the
mergeable statistics), :mod:`~crossentropy.scoring.bootstrap`,
:mod:`~crossentropy.scoring.scorer`, :mod:`~crossentropy.scoring.summary`
(the result document), :mod:`~crossentropy.scoring.rows` (each row's figures),
:mod:`~crossentropy.scoring.verdict` (the direction of a miscalibration, in
words), :mod:`~crossentropy.scoring.temperature` (the temperature that fixes
it, cross-fitted or fitted on a held-out file) and
:mod:`~crossentropy.scoring.engine` (reading a data set in one process).

Examples
--------
>>> import numpy as np
>>> from crossentropy.scoring import Layout, Scorer
>>> scorer = Scorer(Layout(num_classes=2, binary=True))
>>> scorer.update(np.array([1, 1, 0, 0.0]), np.array([0.8, 0.6, 0.1, 0.3]))
>>> print(f"{scorer.result()['mean_loss']:.6f} nats, accuracy {scorer.result()['accuracy']}")
0.299001 nats, accuracy 1.0
"""

from __future__ import annotations

from .bootstrap import Bootstrap, poisson_weights
from .checks import BadRowError, describe_rejection
from .engine import extract, fit_held_out, score_batches, score_file
from .options import LABEL_DEFAULTS, Columns, Layout, ScoreOptions, infer_layout, resolve_columns
from .scorer import STATISTICS, Scorer
from .statistics import Rows, Statistic
from .summary import TOP_CLASSES, summarize, top_classes
from .temperature import HeldOut, Temperature

__all__ = [
    "LABEL_DEFAULTS",
    "STATISTICS",
    "TOP_CLASSES",
    "BadRowError",
    "Bootstrap",
    "Columns",
    "HeldOut",
    "Layout",
    "Rows",
    "ScoreOptions",
    "Scorer",
    "Statistic",
    "Temperature",
    "describe_rejection",
    "extract",
    "fit_held_out",
    "infer_layout",
    "poisson_weights",
    "resolve_columns",
    "score_batches",
    "score_file",
    "summarize",
    "top_classes",
]
