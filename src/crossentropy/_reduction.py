"""Reductions of per-sample losses: ``"none"``, ``"sum"`` and ``"mean"``.

What ``"mean"`` divides by is the convention's business
(:meth:`crossentropy.conventions.Convention.denominator_terms`); this module
only applies it, so every loss reduces the same way.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._validation import check_choice

Array = Any

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    """``reduction`` must be one of :data:`REDUCTIONS`."""
    check_choice("reduction", reduction, REDUCTIONS)


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
