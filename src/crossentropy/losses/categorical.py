"""Categorical cross-entropy (one-hot or soft targets) and the categorical focal loss, with their gradients."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .. import _dispatch
from .. import conventions as _conv
from .._namespace import float_dtypes, namespace, normalize_axis, quiet, refuses_masked_arrays, to_dtype
from .._special import log_softmax, shifted_lse, softmax_grad, targets_grad, where_zero
from .._validation import (
    InputError,
    check_logits,
    check_nonnegative,
    check_probabilities,
    check_same_shape,
    check_unit_interval,
)
from ._inputs import Losses, along, arrays, check_rows, class_vector, input_dtype, options, sample_weight_like
from ._reduction import reduce_losses, scale

Array = Any

__all__ = [
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "categorical_focal_loss",
    "categorical_focal_loss_grad",
]


def _inputs(
    y_true: object,
    y_pred: object,
    class_weight: object,
    sample_weight: object,
    axis: int,
    from_logits: bool,
    conv: _conv.Convention,
    validate: bool,
) -> tuple[ModuleType, Array, Array, Array | None, Array | None, int, Any, Any]:
    """Convert and check the inputs of a loss with soft or one-hot targets (and of its gradient)."""
    xp, (y, x, cw, sw) = arrays(
        ("y_true", y_true),
        ("y_pred", y_pred),
        ("class_weight", class_weight),
        ("sample_weight", sample_weight),
    )
    assert y is not None and x is not None
    check_same_shape(y_true=y.shape, y_pred=x.shape)
    ax = normalize_axis(axis, x.ndim, "y_pred") - x.ndim
    if x.shape[ax] == 0:
        raise InputError("y_pred has an empty class axis")
    compute, out = float_dtypes(xp, x, y)
    dtype = input_dtype(xp, x, compute)
    yf, xf = to_dtype(xp, y, compute), to_dtype(xp, x, compute)
    if validate:
        check_probabilities(xp, yf, "y_true")
        check_rows(xp, conv, yf, "y_true", ax, input_dtype(xp, y, compute), validate)
        if from_logits:
            check_logits(xp, xf, "y_pred", ax)
        else:
            check_probabilities(xp, xf, "y_pred")
            check_rows(xp, conv, xf, "y_pred", ax, dtype, validate)
    cw = class_vector(xp, None if cw is None else to_dtype(xp, cw, compute), "class_weight", x.shape[ax], validate)
    return xp, yf, xf, cw, sw, ax, out, dtype


def log_q(
    xp: ModuleType, conv: _conv.Convention, x: Array, ax: int, dtype: Any, from_logits: bool, sparse: bool
) -> Array:
    """The predicted log-probabilities, the convention's way (shared with the sparse family)."""
    if from_logits:
        return conv.log_softmax(xp, x, ax, dtype)
    return conv.log_probs(xp, x, ax, dtype, sparse=sparse)


def _log_q_parts(
    xp: ModuleType, conv: _conv.Convention, x: Array, ax: int, dtype: Any, from_logits: bool
) -> tuple[Array, Array | None]:
    """``(log q, None)``, or for a plain log-softmax ``(x - max, log sum exp(x - max))``.

    Keeping the two parts apart lets ``-sum a log q`` be summed as
    ``sum a (max - x) + shift sum a``: terms of one sign, so no cancellation.
    """
    if from_logits and conv.plain_log_softmax:
        _, z, shift = shifted_lse(xp, x, ax)
        return z, shift
    return log_q(xp, conv, x, ax, dtype, from_logits, sparse=False), None


def _losses(
    xp: ModuleType,
    conv: _conv.Convention,
    y: Array,
    log_probs: Array,
    cw: Array | None,
    ax: int,
    label_smoothing: float,
    shift: Array | None = None,
) -> Losses:
    """``-sum_c w_c y'_c log q_c`` per sample, and each sample's class weight.

    With ``shift``, ``log_probs`` holds ``x - max`` and the log-probabilities
    are ``log_probs - shift``.
    """
    smoothed = conv.smooth_categorical(y, label_smoothing, log_probs.shape[ax])
    w = None if cw is None else along(xp, cw, ax, y.ndim)
    inside = smoothed if w is None or conv.class_weight_as_sample_weight else smoothed * w
    values = 0.0 - xp.sum(conv.product(xp, inside, log_probs), axis=ax)
    if shift is not None:
        values = values + xp.squeeze(shift, axis=ax) * xp.sum(inside, axis=ax)
    return Losses(values, class_weight=None if w is None else xp.sum(y * w, axis=ax))


@refuses_masked_arrays
@quiet
def categorical_cross_entropy(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    axis: int = -1,
    from_logits: bool = False,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Categorical cross-entropy with one-hot or soft targets.

    ``l_i = -sum_c w_c y'_ic log q_ic`` per sample, with ``y'`` the smoothed
    targets ``(1 - eps) y + eps / C`` and ``w`` the class weights.

    Parameters
    ----------
    y_true : array_like
        Target distributions (one-hot or soft), same shape as ``y_pred``.
    y_pred : array_like
        Predicted probabilities, or logits with ``from_logits=True``.
    axis : int, default -1
        The class axis.
    from_logits : bool, default False
        ``y_pred`` holds logits (stable log-softmax; ``-inf`` masks a class).
    class_weight : array_like, optional
        One non-negative weight per class. Under ``"exact"`` and ``"torch"``
        each class's term is weighted and the mean divides by
        ``sum_i s_i sum_c w_c y_ic``.
    sample_weight : array_like, optional
        One non-negative weight per sample.
    label_smoothing : float, default 0
        Smoothing ``eps`` in [0, 1].
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns one (weighted) loss per sample.
    convention : str, default "exact"
        See :mod:`crossentropy.conventions`.
    validate : bool, default True
        Check values. Set to False inside ``jax.jit``.

    Returns
    -------
    array
        The reduced loss, or per-sample losses.

    Raises
    ------
    InputError
        For invalid probabilities (rows must sum to 1 under ``"exact"``),
        NaN or ``+inf`` logits, shapes that differ, bad weights, or an
        option the convention's library lacks.

    Examples
    --------
    >>> import crossentropy as ce
    >>> y = [[0, 1, 0], [0, 0, 1]]
    >>> p = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    >>> print(ce.categorical_cross_entropy(y, p, reduction="none"))
    [0.05129329 2.30258509]
    >>> print(f"{ce.categorical_cross_entropy(y, [[0.0, 1.0, -1.0], [2.0, 1.0, 0.1]], from_logits=True):.6f}")
    1.362318
    """
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require("categorical", label_smoothing=ls > 0, class_weight=class_weight is not None)
    if from_logits:
        fused = _dispatch.soft(
            y_true,
            y_pred,
            convention=conv,
            axis=axis,
            class_weight=class_weight,
            label_smoothing=ls,
            check_sums=validate,
        )
        if fused is not None:
            values, class_of = fused
            xp = namespace(values)
            losses = Losses(values, class_weight=class_of)
            sw = sample_weight_like(xp, sample_weight, values)
            return reduce_losses(xp, conv, "categorical", losses, sw, reduction, y_pred.dtype, validate)
    xp, y, x, cw, sw, ax, out, dtype = _inputs(
        y_true, y_pred, class_weight, sample_weight, axis, from_logits, conv, validate
    )
    log_probs, shift = _log_q_parts(xp, conv, x, ax, dtype, from_logits)
    losses = _losses(xp, conv, y, log_probs, cw, ax, ls, shift)
    return reduce_losses(xp, conv, "categorical", losses, sw, reduction, out, validate)


@refuses_masked_arrays
@quiet
def categorical_cross_entropy_grad(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    axis: int = -1,
    from_logits: bool = False,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Gradient of :func:`crossentropy.categorical_cross_entropy` with respect to ``y_pred``.

    From logits ``sum_c a_c softmax(x) - a`` with ``a = w * y'``; from
    probabilities ``-a / q``.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(ce.grad.categorical_cross_entropy([[0.0, 1.0]], [[0.0, 0.0]], from_logits=True))
    [[ 0.5 -0.5]]
    """
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require_gradient(from_logits)
    conv.require("categorical", label_smoothing=ls > 0, class_weight=class_weight is not None)
    xp, y, x, cw, sw, ax, out, _ = _inputs(
        y_true, y_pred, class_weight, sample_weight, axis, from_logits, conv, validate
    )
    log_probs = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    a = conv.smooth_categorical(y, ls, x.shape[ax])
    losses = Losses(xp.sum(y, axis=ax))
    if cw is not None:
        w = along(xp, cw, ax, y.ndim)
        a = a * w
        losses.class_weight = xp.sum(y * w, axis=ax)
    g = targets_grad(xp, a, log_probs, ax, from_logits)
    factor = scale(xp, conv, "categorical", losses, sw, reduction, validate)
    return to_dtype(xp, g * xp.expand_dims(factor, axis=ax), out)


def _alpha_vector(alpha: object) -> object:
    """The per-class alpha array, or None for a scalar (or absent) alpha."""
    return alpha if alpha is not None and not isinstance(alpha, (int, float)) else None


def _focal_weights(xp: ModuleType, a: Array, alpha: object, a_vec: Array | None, ax: int) -> Array:
    """The targets times alpha: a float applies to every class (Keras), an array per class."""
    if a_vec is not None:
        return a * along(xp, a_vec, ax, a.ndim)
    return a if alpha is None else a * check_unit_interval("alpha", alpha)  # type: ignore[arg-type]


@refuses_masked_arrays
@quiet
def categorical_focal_loss(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    gamma: float = 2.0,
    alpha: float | Array | None = None,
    axis: int = -1,
    from_logits: bool = False,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Categorical focal loss.

    ``l_i = -sum_c a_c (1 - q_ic)**gamma y'_ic log q_ic``.

    Parameters
    ----------
    y_true, y_pred : array_like
        As :func:`categorical_cross_entropy`.
    gamma : float, default 2.0
        Focusing exponent, >= 0.
    alpha : float or array_like, optional
        ``None``: no balancing; a float applies to every class (Keras); an
        array gives one weight per class.
    axis, from_logits, sample_weight, label_smoothing, reduction, convention, validate
        As :func:`categorical_cross_entropy`. Conventions: ``"exact"``,
        ``"keras"`` and ``"tf-keras2"``.

    Returns
    -------
    array
        The reduced loss, or one loss per sample.

    Raises
    ------
    InputError
        As :func:`categorical_cross_entropy`, and for ``gamma < 0`` or an
        invalid ``alpha``.

    Examples
    --------
    >>> import crossentropy as ce
    >>> y = [[0, 1, 0], [0, 0, 1]]
    >>> p = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    >>> print(ce.categorical_focal_loss(y, p, alpha=0.25, reduction="none").round(7))
    [3.21e-05 4.662735e-01]
    """
    conv, ls = options(label_smoothing, reduction, convention)
    g = check_nonnegative("gamma", gamma)
    conv.require("categorical_focal", label_smoothing=ls > 0)
    xp, y, x, a_vec, sw, ax, out, dtype = _inputs(
        y_true, y_pred, _alpha_vector(alpha), sample_weight, axis, from_logits, conv, validate
    )
    log_probs = log_q(xp, conv, x, ax, dtype, from_logits, sparse=False)
    factor = conv.smooth_categorical(y, ls, x.shape[ax])
    if g != 0:
        factor = factor * (1 - xp.exp(log_probs)) ** g
    factor = _focal_weights(xp, factor, alpha, a_vec, ax)
    values = 0.0 - xp.sum(conv.product(xp, factor, log_probs), axis=ax)
    return reduce_losses(xp, conv, "categorical", Losses(values), sw, reduction, out, validate)


@refuses_masked_arrays
@quiet
def categorical_focal_loss_grad(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    gamma: float = 2.0,
    alpha: float | Array | None = None,
    axis: int = -1,
    from_logits: bool = False,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Gradient of :func:`crossentropy.categorical_focal_loss` with respect to ``y_pred``.

    With ``h_c = a_c y'_c (gamma (1 - q_c)**(gamma - 1) q_c log q_c - (1 - q_c)**gamma)``
    (``q * dL/dq``): ``h - q sum(h)`` from logits, ``h / q`` from probabilities.

    Examples
    --------
    >>> import crossentropy as ce
    >>> g = ce.grad.categorical_focal_loss([[0.0, 1.0]], [[0.0, 0.0]], from_logits=True, gamma=0.0)
    >>> print(g)
    [[ 0.5 -0.5]]
    """
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require_gradient(from_logits)
    g_ = check_nonnegative("gamma", gamma)
    conv.require("categorical_focal", label_smoothing=ls > 0)
    xp, y, x, a_vec, sw, ax, out, _ = _inputs(
        y_true, y_pred, _alpha_vector(alpha), sample_weight, axis, from_logits, conv, validate
    )
    log_probs = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    q = xp.exp(log_probs)
    a = _focal_weights(xp, conv.smooth_categorical(y, ls, x.shape[ax]), alpha, a_vec, ax)
    flat = (a == 0) | (q == 0) | (q == 1)
    focus = xp.where(flat, 0.0, g_ * (1 - q) ** (g_ - 1) * q * log_probs) if g_ != 0 else 0.0
    h = a * (focus - (1 - q) ** g_)
    g = softmax_grad(xp, h, q, ax) if from_logits else where_zero(xp, h, h / q)
    factor = scale(xp, conv, "categorical", Losses(xp.sum(y, axis=ax)), sw, reduction, validate)
    return to_dtype(xp, g * xp.expand_dims(factor, axis=ax), out)
