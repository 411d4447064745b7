"""Closed-form gradients of the losses with respect to the prediction.

Each function has the same name and arguments as its loss and returns the
gradient of that loss with respect to ``y_pred`` (the probabilities, or the
logits with ``from_logits=True``), with ``y_pred``'s shape:

- binary, from logits: ``w (sigmoid(x) (w+ y + 1 - y) - w+ y)``, which is
  ``sigmoid(x) - y`` without weights;
- categorical and sparse, from logits: ``w (sum_c a_c softmax(x) - a)`` with
  ``a_c = w_c y'_c`` the weighted, smoothed targets (``softmax - onehot`` in
  the plain case), plus ``2 z logsumexp(x) softmax(x)`` for the z-loss;
- from probabilities: ``-a / q`` (0 where ``a`` is 0).

``w`` is the sample weight divided by what the mean divides by, so the
result is the gradient of the reduced loss; with ``reduction="none"`` it is
the gradient of each sample's (weighted) loss with respect to its own row.

Closed forms exist for the conventions without clipping: ``"exact"`` and,
from logits, ``"torch"`` and ``"optax"`` (which differ from ``"exact"`` only
in what their mean divides by). Clipped conventions raise
:class:`~crossentropy.InputError`; differentiate them with autograd.

Examples
--------
>>> import numpy as np
>>> import crossentropy as ce
>>> logits = np.array([[2.0, 1.0, 0.1]])
>>> print(ce.grad.sparse_categorical_cross_entropy([0], logits, from_logits=True).round(6))
[[-0.340999  0.242433  0.098566]]
>>> e = np.exp(logits)
>>> print((e / e.sum() - [1, 0, 0]).round(6))
[[-0.340999  0.242433  0.098566]]
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat

from . import conventions as _conv
from ._losses import (
    _along,
    _binary_inputs,
    _categorical_inputs,
    _Losses,
    _options,
    _sparse_inputs,
    _weights,
)
from ._namespace import quiet, to_dtype
from ._special import log_softmax, logsumexp
from ._validation import InputError, check_nonnegative, check_unit_interval

Array = Any

__all__ = [
    "binary_cross_entropy",
    "binary_focal_loss",
    "categorical_cross_entropy",
    "categorical_focal_loss",
    "sparse_categorical_cross_entropy",
]


def _differentiable(conv: _conv.Convention, from_logits: bool) -> _conv.Convention:
    """The convention, if its loss has a closed-form gradient here."""
    if conv is _conv.EXACT or (from_logits and conv in (_conv.TORCH, _conv.OPTAX)):
        return conv
    raise InputError(
        f"no closed-form gradient for convention {conv.name!r} "
        f"{'from logits' if from_logits else 'from probabilities'}: its clipping is piecewise; "
        "use convention='exact' (or 'torch'/'optax' from logits), or autograd"
    )


def _scale(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: _Losses,
    sample_weight: Array | None,
    reduction: str,
    validate: bool,
) -> Array:
    """Each sample's weight divided by the mean's denominator."""
    weight, denominator = _weights(xp, conv, kind, losses, sample_weight, reduction, validate)
    return weight / denominator


def _where_zero(xp: ModuleType, a: Array, value: Array) -> Array:
    """``value`` where ``a != 0``, else exactly 0 (no ``0 * inf``)."""
    return xp.where(a == 0, 0.0, value)


@quiet
def binary_cross_entropy(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    from_logits: bool = False,
    pos_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Gradient of :func:`crossentropy.binary_cross_entropy` with respect to ``y_pred``.

    From logits ``sigmoid(x) (w+ y + 1 - y) - w+ y``; from probabilities
    ``-w+ y / p + (1 - y) / (1 - p)``; times each element's weight over the
    mean's denominator.

    Parameters and Raises are those of the loss; conventions with clipping
    raise InputError.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(ce.grad.binary_cross_entropy([1.0, 0.0], [0.0, 0.0], from_logits=True, reduction="sum"))
    [-0.5  0.5]
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    conv = _differentiable(conv, from_logits)
    conv.require(
        "binary" if from_logits else "binary_probabilities", label_smoothing=ls > 0, pos_weight=pos_weight is not None
    )
    xp, y, p, pw, sw, out, _ = _binary_inputs(y_true, y_pred, pos_weight, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    pos = y if pw is None else y * pw
    if from_logits:
        g = (pos + 1 - y) / (1 + xp.exp(-p)) - pos
    else:
        g = _where_zero(xp, pos, -pos / p) + _where_zero(xp, 1 - y, (1 - y) / (1 - p))
    return to_dtype(xp, g * _scale(xp, conv, "binary", _Losses(g), sw, reduction, validate), out)


@quiet
def binary_focal_loss(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    from_logits: bool = False,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Gradient of :func:`crossentropy.binary_focal_loss` with respect to ``y_pred``.

    With ``u = 1 - p_t`` and ``b`` the binary cross-entropy:
    ``a_t (gamma u**(gamma - 1) (1 - 2y) b dp + u**gamma db)``, where ``dp``
    and ``db`` are the derivatives of ``p`` and ``b`` with respect to the
    input (``p (1 - p)`` and ``p - y`` from logits).

    Examples
    --------
    >>> import crossentropy as ce
    >>> g = ce.grad.binary_focal_loss([1.0], [0.0], from_logits=True, gamma=0.0, reduction="sum")
    >>> print(g)
    [-0.5]
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    conv = _differentiable(conv, from_logits)
    g_ = check_nonnegative("gamma", gamma)
    a = None if alpha is None else check_unit_interval("alpha", alpha)
    conv.require("binary_focal", label_smoothing=ls > 0)
    xp, y, x, _, sw, out, _ = _binary_inputs(y_true, y_pred, None, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    if from_logits:
        p = 1 / (1 + xp.exp(-x))
        log_p, log_not_p = conv.binary_log_sigmoids(xp, x, None)
        dp = p * (1 - p)
        db = p - y
    else:
        p = x
        log_p, log_not_p = conv.binary_log_probs(xp, x, None)
        dp = xp.ones_like(p)
        db = _where_zero(xp, y, -y / p) + _where_zero(xp, 1 - y, (1 - y) / (1 - p))
    b = 0.0 - (conv.product(xp, y, log_p) + conv.product(xp, 1 - y, log_not_p))
    u = y * (1 - p) + (1 - y) * p
    focus = _where_zero(xp, u, g_ * u ** (g_ - 1) * (1 - 2 * y) * dp * b) if g_ != 0 else 0.0
    grad = focus + u**g_ * db
    if a is not None:
        grad = grad * (a * y + (1 - a) * (1 - y))
    return to_dtype(xp, grad * _scale(xp, conv, "binary", _Losses(grad), sw, reduction, validate), out)


def _softmax_grad(xp: ModuleType, h: Array, q: Array, ax: int) -> Array:
    """Gradient with respect to logits, given ``h = q * dL/dq``: ``h - q sum(h)``."""
    return h - q * xp.sum(h, axis=ax, keepdims=True)


def _from_targets(xp: ModuleType, a: Array, log_q: Array, ax: int, from_logits: bool) -> Array:
    """Gradient of ``-sum_c a_c log q_c``: ``sum(a) q - a`` (logits) or ``-a / q``."""
    if from_logits:
        return _softmax_grad(xp, -a, xp.exp(log_q), ax)
    return _where_zero(xp, a, -a / xp.exp(log_q))


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
    """Gradient of :func:`crossentropy.categorical_cross_entropy` with respect to ``y_pred``.

    From logits ``sum_c a_c softmax(x) - a`` with ``a = w * y'``; from
    probabilities ``-a / q``.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(ce.grad.categorical_cross_entropy([[0.0, 1.0]], [[0.0, 0.0]], from_logits=True))
    [[ 0.5 -0.5]]
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    conv = _differentiable(conv, from_logits)
    conv.require("categorical", label_smoothing=ls > 0, class_weight=class_weight is not None)
    xp, y, x, cw, sw, ax, out, _ = _categorical_inputs(
        y_true, y_pred, class_weight, sample_weight, axis, from_logits, conv, validate
    )
    log_q = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    a = conv.smooth_categorical(y, ls, x.shape[ax])
    losses = _Losses(xp.sum(y, axis=ax))
    if cw is not None:
        w = _along(xp, cw, ax, y.ndim)
        a = a * w
        losses.class_weight = xp.sum(y * w, axis=ax)
    g = _from_targets(xp, a, log_q, ax, from_logits)
    scale = _scale(xp, conv, "categorical", losses, sw, reduction, validate)
    return to_dtype(xp, g * xp.expand_dims(scale, axis=ax), out)


@quiet
def sparse_categorical_cross_entropy(
    labels: Array,
    y_pred: Array,
    /,
    *,
    axis: int = -1,
    from_logits: bool = False,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Gradient of :func:`crossentropy.sparse_categorical_cross_entropy` with respect to ``y_pred``.

    From logits ``sum_c a_c softmax(x) - a + 2 z logsumexp(x) softmax(x)``
    with ``a = (1 - eps) w_y onehot(y) + eps / C w``; rows of ignored labels
    are 0.

    Examples
    --------
    >>> import crossentropy as ce
    >>> g = ce.grad.sparse_categorical_cross_entropy([1, -100], [[0.0, 0.0], [3.0, 1.0]], from_logits=True,
    ...                                              ignore_index=-100)
    >>> print(g)
    [[ 0.5 -0.5]
     [ 0.   0. ]]
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    conv = _differentiable(conv, from_logits)
    z = check_nonnegative("z_loss", z_loss)
    conv.require(
        "sparse",
        label_smoothing=ls > 0,
        class_weight=class_weight is not None,
        ignore_index=ignore_index is not None,
        z_loss=z > 0,
    )
    if z > 0 and not from_logits:
        raise InputError("z_loss needs logits: pass from_logits=True")
    ignore = ignore_index if ignore_index is not None else conv.default_ignore_index
    xp, t, x, cw, sw, ax, out, _ = _sparse_inputs(
        labels, y_pred, class_weight, sample_weight, axis, from_logits, ignore, conv, validate
    )
    num_classes = x.shape[ax]
    valid = None if ignore is None else t != ignore
    safe = t if valid is None else xp.where(valid, t, 0)
    classes = _along(xp, xp.arange(num_classes, device=array_api_compat.device(x)), ax, x.ndim)
    onehot = xp.astype(xp.expand_dims(safe, axis=ax) == classes, x.dtype)
    a = conv.smooth_categorical(onehot, ls, num_classes)
    losses = _Losses(xp.sum(onehot, axis=ax), valid=valid)
    if cw is not None:
        w = _along(xp, cw, ax, x.ndim)
        a = a * w
        losses.class_weight = xp.sum(onehot * w, axis=ax)
    log_q = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    g = _from_targets(xp, a, log_q, ax, from_logits)
    if z > 0:
        g = g + 2 * z * logsumexp(xp, x, ax, keepdims=True) * xp.exp(log_q)
    g = g * xp.expand_dims(_scale(xp, conv, "sparse", losses, sw, reduction, validate), axis=ax)
    if valid is not None:
        g = xp.where(xp.expand_dims(valid, axis=ax), g, 0.0)
    return to_dtype(xp, g, out)


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
    conv, ls = _options(label_smoothing, reduction, convention)
    conv = _differentiable(conv, from_logits)
    g_ = check_nonnegative("gamma", gamma)
    conv.require("categorical_focal", label_smoothing=ls > 0)
    alpha_array = alpha if alpha is not None and not isinstance(alpha, (int, float)) else None
    xp, y, x, a_vec, sw, ax, out, _ = _categorical_inputs(
        y_true, y_pred, alpha_array, sample_weight, axis, from_logits, conv, validate
    )
    log_q = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    q = xp.exp(log_q)
    a = conv.smooth_categorical(y, ls, x.shape[ax])
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        a = a * check_unit_interval("alpha", alpha)
    elif a_vec is not None:
        a = a * _along(xp, a_vec, ax, y.ndim)
    flat = (a == 0) | (q == 0) | (q == 1)
    focus = xp.where(flat, 0.0, g_ * (1 - q) ** (g_ - 1) * q * log_q) if g_ != 0 else 0.0
    h = a * (focus - (1 - q) ** g_)
    g = _softmax_grad(xp, h, q, ax) if from_logits else _where_zero(xp, h, h / q)
    scale = _scale(xp, conv, "categorical", _Losses(xp.sum(y, axis=ax)), sw, reduction, validate)
    return to_dtype(xp, g * xp.expand_dims(scale, axis=ax), out)
