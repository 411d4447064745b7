"""The figures of scored rows: each row's loss, its share of the mean's denominator, its probabilities.

One function, :func:`score_rows`, turns checked labels and predictions into
the :class:`~crossentropy.scoring.statistics.Rows` that every statistic
reads, with the library's losses under the chosen convention and the
library's softmax and log-sigmoid. The scorer calls it on the rows of a
batch; the temperature step calls it again on the calibrated predictions,
so the loss "after" a temperature is computed exactly as the loss before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import conventions as _conv
from .._namespace import namespace
from .._special import log_sigmoid, softmax
from .._validation import InputError
from ..losses import binary_cross_entropy, sparse_categorical_cross_entropy
from .checks import renormalized
from .options import Layout, ScoreOptions
from .statistics import Rows

__all__ = ["probabilities", "score_rows"]

Array = np.ndarray[Any, Any]


def probabilities(preds: Array, layout: Layout) -> Array:
    """The predicted probabilities: class 1's (binary) or every class's (from logits: the library's functions)."""
    if not layout.from_logits:
        return preds
    xp = namespace(preds)
    if layout.binary:
        return np.asarray(np.exp(log_sigmoid(xp, preds)))
    return np.asarray(softmax(xp, preds, 1))


def score_rows(
    options: ScoreOptions,
    layout: Layout,
    labels: Array,
    preds: Array,
    weights: Array | None,
    positions: Array | None,
) -> Rows:
    """The per-row figures of rows that passed the checks.

    Parameters
    ----------
    options : ScoreOptions
        The convention, the base and whether probability rows are renormalised.
    layout : Layout
        Binary or not, probabilities or logits.
    labels : numpy.ndarray
        float64 class indices, shape ``(m,)``.
    preds : numpy.ndarray
        ``(m,)`` (binary) or ``(m, C)`` float64 predictions.
    weights : numpy.ndarray or None
        Per-row weights (ones when ``None``).
    positions : numpy.ndarray or None
        Each row's index in the data set, if known.
    """
    m = labels.shape[0]
    if options.renormalize and not layout.binary and not layout.from_logits:
        preds = renormalized(preds)
    w = np.ones(m) if weights is None else weights
    if layout.binary:
        per = binary_cross_entropy(
            labels.reshape(-1, 1), preds.reshape(-1, 1), from_logits=layout.from_logits, reduction="none",
            convention=options.convention, validate=False,
        )  # fmt: skip
    else:
        per = sparse_categorical_cross_entropy(
            labels.astype(np.int64), preds, from_logits=layout.from_logits, reduction="none",
            convention=options.convention, validate=False,
        )  # fmt: skip
    scale = 1.0 if options.base is None else math.log(options.base)
    losses = np.asarray(per, dtype=np.float64).reshape(-1) / scale
    kind = "binary" if layout.binary else "sparse"
    convention = _conv.get(options.convention)
    terms = np.asarray(convention.denominator_terms(kind, w, np.ones(m)), dtype=np.float64)
    with np.errstate(over="ignore"):  # logits of +-1e308: x - max overflows to -inf, whose exp is exactly 0
        probs = probabilities(preds, layout)
    return Rows(
        classes=labels.astype(np.int64),
        losses=losses,
        weights=w,
        weighted=_weighted(losses, w),
        terms=terms,
        probabilities=probs,
        predicted=(probs >= 0.5).astype(np.int64) if layout.binary else np.argmax(probs, axis=1),
        positions=positions,
        predictions=preds,
    )


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
