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
import numpy as np

from . import _kernels
from . import conventions as _conv
from ._losses import (
    _along,
    _binary_inputs,
    _categorical_inputs,
    _kernel_class_weight,
    _Losses,
    _options,
    _reduce,
    _sparse_inputs,
    _sparse_options,
    _weights,
)
from ._losses import sparse_categorical_cross_entropy as _sparse_loss
from ._namespace import normalize_axis, quiet, to_dtype
from ._special import log_softmax, logsumexp
from ._validation import InputError, check_nonnegative, check_unit_interval

Array = Any

__all__ = [
    "binary_cross_entropy",
    "binary_focal_loss",
    "categorical_cross_entropy",
    "categorical_focal_loss",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_value_and_grad",
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


def _fast_value_and_grad(
    labels: object,
    logits: object,
    axis: int,
    ignore: int | None,
    class_weight: object,
    sample_weight: object,
    ls: float,
    z: float,
    conv: _conv.Convention,
    reduction: str,
    validate: bool,
    out: Any,
) -> tuple[Array, Array] | None:
    """Loss and gradient in one pass of the fused CPU kernel (NumPy logits), or None."""
    if not _kernels.usable(logits, labels):
        return None
    assert isinstance(logits, np.ndarray) and isinstance(labels, np.ndarray)
    if logits.ndim < 1 or labels.dtype.kind not in "iu" or labels.shape != logits.shape[:-1]:
        return None
    if normalize_axis(axis, logits.ndim, "y_pred") != logits.ndim - 1 or logits.shape[-1] == 0:
        return None
    if not logits.flags.c_contiguous or (out is not None and not isinstance(out, np.ndarray)):
        return None
    ok, cw = _kernel_class_weight(class_weight, logits.shape[-1], logits.dtype)
    if not ok:
        return None
    valid = None if ignore is None else labels != ignore
    safe = labels if valid is None else np.where(valid, labels, 0)
    weight = None if cw is None else cw[safe]
    xp = array_api_compat.array_namespace(logits)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    shape = _Losses(np.ones(labels.shape), class_weight=weight, valid=valid)
    try:
        row_scale = np.broadcast_to(_scale(xp, conv, "sparse", shape, sw, reduction, validate), labels.shape)
    except InputError:
        return None
    grad = np.empty_like(logits) if out is None else out
    c = logits.shape[-1]
    values = _kernels.sparse(
        logits.reshape(-1, c),
        labels.reshape(-1),
        ignore_index=ignore,
        class_weight=cw,
        label_smoothing=ls,
        z_loss=z,
        grad_out=grad.reshape(-1, c) if grad.flags.c_contiguous else grad,
        row_scale=row_scale.reshape(-1),
    )
    if values is None:
        if out is not None and np.shares_memory(out, logits):
            # rows already overwritten hold finite gradients; the checks find the untouched bad row
            _sparse_inputs(labels, logits, class_weight, sample_weight, axis, True, ignore, conv, True)
            raise InputError("invalid logits or labels: the gradient could only be partly written into out")
        return None
    losses = _Losses(values.reshape(labels.shape), class_weight=weight, valid=valid)
    loss = _reduce(xp, conv, "sparse", losses, sw, reduction, logits.dtype, validate)
    return loss, grad


def _reference_grad(
    labels: object,
    y_pred: object,
    axis: int,
    from_logits: bool,
    ignore: int | None,
    class_weight: object,
    sample_weight: object,
    ls: float,
    z: float,
    conv: _conv.Convention,
    reduction: str,
    validate: bool,
) -> Array:
    """The sparse gradient on any array namespace."""
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
    are 0. NumPy logits take the fused CPU kernel.

    Examples
    --------
    >>> import crossentropy as ce
    >>> g = ce.grad.sparse_categorical_cross_entropy([1, -100], [[0.0, 0.0], [3.0, 1.0]], from_logits=True,
    ...                                              ignore_index=-100)
    >>> print(g)
    [[ 0.5 -0.5]
     [ 0.   0. ]]
    """
    conv, ls, z, ignore = _sparse_options(
        convention, label_smoothing, reduction, z_loss, from_logits, class_weight, ignore_index
    )
    conv = _differentiable(conv, from_logits)
    if from_logits:
        fast = _fast_value_and_grad(
            labels, y_pred, axis, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate, None
        )
        if fast is not None:
            return fast[1]
    return _reference_grad(
        labels, y_pred, axis, from_logits, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate
    )


@quiet
def sparse_categorical_cross_entropy_value_and_grad(
    labels: Array,
    logits: Array,
    /,
    *,
    axis: int = -1,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
    out: Array | None = None,
) -> tuple[Array, Array]:
    """The sparse cross-entropy of logits and its gradient, in one pass for NumPy inputs.

    Returns ``(loss, grad)`` as :func:`crossentropy.sparse_categorical_cross_entropy`
    and :func:`sparse_categorical_cross_entropy` would (``from_logits=True``).
    For C-contiguous NumPy logits the fused CPU kernel reads each row once
    (the second read of a row hits the cache) and writes the gradient.

    Parameters
    ----------
    out : array, optional
        Where to write the gradient: a caller-supplied array of the logits'
        shape and dtype, or the logits array itself to overwrite it in place
        (then, on invalid input, ``out`` is left partly written and
        InputError is raised).

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    >>> loss, grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad([0, 1], logits, out=logits)
    >>> print(f"{loss:.6f}", grad is logits)
    0.318540 True
    """
    conv, ls, z, ignore = _sparse_options(
        convention, label_smoothing, reduction, z_loss, True, class_weight, ignore_index
    )
    conv = _differentiable(conv, True)
    fast = _fast_value_and_grad(
        labels, logits, axis, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate, out
    )
    if fast is not None:
        return fast
    loss = _sparse_loss(
        labels,
        logits,
        axis=axis,
        from_logits=True,
        ignore_index=ignore_index,
        class_weight=class_weight,
        sample_weight=sample_weight,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        reduction=reduction,
        convention=conv,
        validate=validate,
    )
    g = _reference_grad(
        labels, logits, axis, True, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate
    )
    if out is None:
        return loss, g
    out[...] = g
    return loss, out


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
