"""Input parsing shared by every loss family: conversion, checks, per-sample losses.

Each family module (binary, categorical, sparse) turns its own arguments into
arrays with :func:`arrays`, checks options with :func:`options`, and hands
its per-sample :class:`Losses` to :mod:`._reduction`. The loss and its
closed-form gradient use the same parser, so they accept and refuse the same
inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .. import conventions as _conv
from .._namespace import asarray, is_floating, namespace
from .._validation import (
    InputError,
    check_choice,
    check_distribution,
    check_unit_interval,
    check_weights,
    sum_tolerance,
)

Array = Any

REDUCTIONS = ("mean", "sum", "none")


@dataclass
class Losses:
    """Per-sample losses on their way to a reduction.

    Attributes
    ----------
    values : array
        The losses, with in-sum class weights applied (0 where ignored).
    class_weight : array, optional
        Each sample's class weight (``w[label]``, or ``sum_c w_c y_c`` for
        soft targets), for the mean's denominator.
    valid : array of bool, optional
        The samples that are not ignored.
    """

    values: Array
    class_weight: Array | None = None
    valid: Array | None = None


def arrays(*named: tuple[str, object]) -> tuple[ModuleType, list[Array | None]]:
    """Namespace and arrays for ``(name, value)`` pairs; ``None`` stays ``None``."""
    xp = namespace(*(v for _, v in named))
    like = next((v for _, v in named if hasattr(v, "shape") and hasattr(v, "dtype")), None)
    return xp, [None if v is None else asarray(xp, v, n, like=like) for n, v in named]


def input_dtype(xp: ModuleType, x: Array, compute: Any) -> Any:
    """The dtype a library would compute in: the input's own floating dtype."""
    return x.dtype if is_floating(xp, x) else compute


def options(
    label_smoothing: float, reduction: str, convention: str | _conv.Convention
) -> tuple[_conv.Convention, float]:
    """The convention object and the checked label smoothing; the reduction must be known."""
    check_choice("reduction", reduction, REDUCTIONS)
    return _conv.get(convention), check_unit_interval("label_smoothing", label_smoothing)


def check_rows(
    xp: ModuleType, conv: _conv.Convention, x: Array, name: str, axis: int, dtype: Any, validate: bool
) -> None:
    """Row sums of probabilities: an error, a warning or nothing, by convention."""
    if not validate or conv.sum_check == "ignore":
        return
    if conv.sum_check == "error":
        check_distribution(xp, x, name, x.ndim + axis, dtype)
        return
    off = xp.abs(xp.sum(x, axis=axis) - 1) > sum_tolerance(xp, dtype)
    if bool(xp.any(off)):
        conv.check_sums(f"the rows of {name} do not sum to one; {conv.library} uses them as given (not renormalised)")


def class_vector(xp: ModuleType, w: Array | None, name: str, num_classes: int, validate: bool) -> Array | None:
    """A per-class weight vector of length ``num_classes``, checked."""
    if w is None:
        return None
    if tuple(w.shape) != (num_classes,):
        raise InputError(f"{name} must have shape ({num_classes},), one weight per class; got {tuple(w.shape)}")
    if validate:
        check_weights(xp, w, name)
    return w


def along(xp: ModuleType, v: Array, axis: int, ndim: int) -> Array:
    """Reshape a per-class vector to broadcast along ``axis`` of ``ndim`` dims."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return xp.reshape(v, tuple(shape))


def sample_weight_like(xp: ModuleType, sample_weight: object, like: Array) -> Array | None:
    """``sample_weight`` as an array of ``like``'s namespace and device (``None`` stays ``None``)."""
    return None if sample_weight is None else asarray(xp, sample_weight, "sample_weight", like=like)
