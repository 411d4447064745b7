"""Weighting and reduction of per-sample losses: ``"none"``, ``"sum"`` and ``"mean"``.

What ``"mean"`` divides by is the convention's business
(:meth:`crossentropy.conventions.Convention.denominator_terms`); this module
only applies it, so every loss, and every loss's gradient, reduces the same
way.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from .. import conventions as _conv
from .._namespace import to_dtype
from .._validation import InputError, check_weights
from ._inputs import Losses

Array = Any


def reduce(
    xp: ModuleType,
    weighted: Array,
    reduction: str,
    denominator: Array | float,
    *,
    empty_is_zero: bool = False,
) -> Array:
    """Reduce weighted losses.

    Parameters
    ----------
    weighted : array
        The per-sample losses already multiplied by their weights (0 where
        ignored).
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns ``weighted`` itself.
    denominator : array or float
        What the mean divides ``sum(weighted)`` by.
    empty_is_zero : bool
        A zero denominator gives 0 instead of NaN (Keras' ``divide_no_nan``).
    """
    if reduction == "none":
        return weighted
    total = xp.sum(weighted)
    if reduction == "sum":
        return total
    if isinstance(denominator, float):
        return total / denominator if denominator or not empty_is_zero else total * 0.0
    if empty_is_zero:
        nonzero = denominator != 0
        return xp.where(nonzero, total / xp.where(nonzero, denominator, 1.0), 0.0)
    return total / denominator


def weights(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: Losses,
    sample_weight: Array | None,
    reduction: str,
    validate: bool,
) -> tuple[Array, Array | float]:
    """Each loss value's weight and what ``reduction`` divides their sum by.

    The weight is the sample weight, times the class weight where the
    convention treats class weights as sample weights, and 0 where ignored;
    the divisor is the convention's mean denominator (1 for ``"sum"`` and
    ``"none"``).

    Raises
    ------
    InputError
        For a ``sample_weight`` that does not fit the losses (the convention
        decides which shapes fit: Keras squeezes or expands a trailing axis of
        length 1) or holds negative or non-finite values.
    """
    values = losses.values
    shape = tuple(values.shape)
    weight = xp.ones_like(values)
    if sample_weight is not None:
        sw = to_dtype(xp, sample_weight, values.dtype)
        try:
            if np.broadcast_shapes(tuple(sw.shape), shape) != shape:
                raise ValueError
        except ValueError:
            raise InputError(
                f"sample_weight of shape {tuple(sample_weight.shape)} does not broadcast to the losses' shape {shape}"
            ) from None
        if validate:
            check_weights(xp, sw, "sample_weight")
        weight = weight * sw
    denominator_weight = weight
    if losses.class_weight is not None:
        denominator_weight = denominator_weight * losses.class_weight
        if conv.class_weight_as_sample_weight:
            weight = weight * losses.class_weight
    valid = xp.ones_like(values)
    if losses.valid is not None:
        valid = xp.astype(losses.valid, values.dtype)
        weight = weight * valid
        denominator_weight = denominator_weight * valid
    if reduction != "mean":
        return weight, 1.0
    return weight, xp.sum(conv.denominator_terms(kind, denominator_weight, valid))


def _match(
    xp: ModuleType, conv: _conv.Convention, losses: Losses, sample_weight: Array | None
) -> tuple[Losses, Array | None]:
    """The losses and sample weights in the shapes the convention combines them in (Keras matches ranks)."""
    if sample_weight is None:
        return losses, None
    values, sw = conv.match_sample_weight(xp, losses.values, sample_weight)
    if tuple(values.shape) == tuple(losses.values.shape):
        return losses, sw
    shape = tuple(values.shape)

    def fit(a: Array | None) -> Array | None:
        return None if a is None else xp.reshape(a, shape)

    return Losses(values, class_weight=fit(losses.class_weight), valid=fit(losses.valid)), sw


def reduce_losses(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: Losses,
    sample_weight: Array | None,
    reduction: str,
    out_dtype: Any,
    validate: bool,
) -> Array:
    """Weight, reduce and cast the per-sample losses the convention's way."""
    losses, sample_weight = _match(xp, conv, losses, sample_weight)
    if sample_weight is None and losses.class_weight is None and losses.valid is None:
        # unweighted: every convention's mean divides by the count
        count = float(math.prod(losses.values.shape))
        result = reduce(xp, losses.values, reduction, count, empty_is_zero=conv.empty_mean_is_zero)
        return to_dtype(xp, result, out_dtype)
    weight, denominator = weights(xp, conv, kind, losses, sample_weight, reduction, validate)
    weighted = conv.product(xp, weight, losses.values)
    if losses.valid is not None:
        weighted = xp.where(losses.valid, weighted, 0.0)
    result = reduce(xp, weighted, reduction, denominator, empty_is_zero=conv.empty_mean_is_zero)
    return to_dtype(xp, result, out_dtype)


def scale(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: Losses,
    sample_weight: Array | None,
    reduction: str,
    validate: bool,
) -> Array:
    """Each sample's weight divided by the mean's denominator: the gradient's factor."""
    losses, sample_weight = _match(xp, conv, losses, sample_weight)
    weight, denominator = weights(xp, conv, kind, losses, sample_weight, reduction, validate)
    return weight / denominator
