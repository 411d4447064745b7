"""The cross-entropy loss family: binary, categorical, sparse, log loss, focal.

Every loss is the same skeleton: convert and check the inputs, turn the
prediction into log-probabilities the way the convention does, combine them
with the (smoothed, weighted) targets, then reduce. The conventions
(:mod:`crossentropy.conventions`) supply the small formulas that differ.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from . import _kernels
from . import conventions as _conv
from ._namespace import asarray, float_dtypes, is_floating, namespace, normalize_axis, quiet, to_dtype
from ._reduction import check_reduction, reduce
from ._special import _shifted_lse, logsumexp
from ._validation import (
    InputError,
    check_binary_targets,
    check_distribution,
    check_labels,
    check_logits,
    check_nonnegative,
    check_probabilities,
    check_same_shape,
    check_unit_interval,
    check_weights,
    sum_tolerance,
    to_numpy,
)

Array = Any

__all__ = [
    "binary_cross_entropy",
    "binary_focal_loss",
    "categorical_cross_entropy",
    "categorical_focal_loss",
    "log_loss",
    "sparse_categorical_cross_entropy",
]


# --- shared steps -------------------------------------------------------------------------


def _arrays(*named: tuple[str, object]) -> tuple[ModuleType, list[Array | None]]:
    """Namespace and arrays for ``(name, value)`` pairs; ``None`` stays ``None``."""
    xp = namespace(*(v for _, v in named))
    like = next((v for _, v in named if hasattr(v, "shape") and hasattr(v, "dtype")), None)
    return xp, [None if v is None else asarray(xp, v, n, like=like) for n, v in named]


def _input_dtype(xp: ModuleType, x: Array, compute: Any) -> Any:
    """The dtype a library would compute in: the input's own floating dtype."""
    return x.dtype if is_floating(xp, x) else compute


def _check_rows(
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


def _class_vector(xp: ModuleType, w: Array | None, name: str, num_classes: int, validate: bool) -> Array | None:
    """A per-class weight vector of length ``num_classes``, checked."""
    if w is None:
        return None
    if tuple(w.shape) != (num_classes,):
        raise InputError(f"{name} must have shape ({num_classes},), one weight per class; got {tuple(w.shape)}")
    if validate:
        check_weights(xp, w, name)
    return w


def _along(xp: ModuleType, v: Array, axis: int, ndim: int) -> Array:
    """Reshape a per-class vector to broadcast along ``axis`` of ``ndim`` dims."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return xp.reshape(v, tuple(shape))


@dataclass
class _Losses:
    """Per-sample losses on their way to a reduction.

    ``values`` are the losses with in-sum class weights applied;
    ``class_weight`` holds each sample's class weight (``w[label]``, or
    ``sum_c w_c y_c`` for soft targets); ``valid`` marks samples not ignored.
    """

    values: Array
    class_weight: Array | None = None
    valid: Array | None = None


def _weights(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: _Losses,
    sample_weight: Array | None,
    reduction: str,
    validate: bool,
) -> tuple[Array, Array | float]:
    """Each loss value's weight and what ``reduction`` divides their sum by.

    The weight is the sample weight, times the class weight where the
    convention treats class weights as sample weights, and 0 where ignored;
    the divisor is the convention's mean denominator (1 for ``"sum"`` and
    ``"none"``).
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
                f"sample_weight of shape {tuple(sw.shape)} does not broadcast to the losses' shape {shape}"
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


def _reduce(
    xp: ModuleType,
    conv: _conv.Convention,
    kind: str,
    losses: _Losses,
    sample_weight: Array | None,
    reduction: str,
    out_dtype: Any,
    validate: bool,
) -> Array:
    """Weight, reduce and cast the per-sample losses the convention's way."""
    if sample_weight is None and losses.class_weight is None and losses.valid is None:
        # unweighted: every convention's mean divides by the count
        count = float(math.prod(losses.values.shape))
        result = reduce(xp, losses.values, reduction, count, empty_is_zero=conv.empty_mean_is_zero)
        return to_dtype(xp, result, out_dtype)
    weight, denominator = _weights(xp, conv, kind, losses, sample_weight, reduction, validate)
    weighted = conv.product(xp, weight, losses.values)
    if losses.valid is not None:
        weighted = xp.where(losses.valid, weighted, 0.0)
    result = reduce(xp, weighted, reduction, denominator, empty_is_zero=conv.empty_mean_is_zero)
    return to_dtype(xp, result, out_dtype)


def _options(
    label_smoothing: float, reduction: str, convention: str | _conv.Convention
) -> tuple[_conv.Convention, float]:
    check_reduction(reduction)
    return _conv.get(convention), check_unit_interval("label_smoothing", label_smoothing)


# --- the fused CPU kernels (NumPy inputs) ------------------------------------------------------

_LOGIT_EXACT = (_conv.EXACT, _conv.TORCH, _conv.OPTAX, _conv.KERAS, _conv.TF_KERAS2)
"""Conventions whose per-sample sparse loss from logits is the exact one (they differ in reductions)."""


def _kernel_class_weight(class_weight: object, num_classes: int, dtype: Any) -> tuple[bool, Array | None]:
    """``(ok, weights)``: class weights as a checked NumPy vector (None if absent).

    ``ok`` is False when they are invalid: the reference path then reports them.
    """
    if class_weight is None:
        return True, None
    try:
        cw = np.asarray(class_weight, dtype=dtype)
    except (TypeError, ValueError):
        return False, None
    return cw.shape == (num_classes,) and bool(np.all(np.isfinite(cw) & (cw >= 0))), cw


def _fast_sparse(
    labels: object,
    y_pred: object,
    axis: int,
    from_logits: bool,
    ignore: int | None,
    class_weight: object,
    label_smoothing: float,
    z_loss: float,
    conv: _conv.Convention,
) -> _Losses | None:
    """Per-sample sparse losses from the fused kernel, or None when it does not apply."""
    if not (from_logits and conv in _LOGIT_EXACT and _kernels.usable(y_pred, labels)):
        return None
    assert isinstance(y_pred, np.ndarray) and isinstance(labels, np.ndarray)
    if y_pred.ndim < 1 or labels.dtype.kind not in "iu" or labels.shape != y_pred.shape[:-1]:
        return None
    if normalize_axis(axis, y_pred.ndim, "y_pred") != y_pred.ndim - 1 or y_pred.shape[-1] == 0:
        return None
    ok, cw = _kernel_class_weight(class_weight, y_pred.shape[-1], y_pred.dtype)
    if not ok:
        return None
    inside = None if conv.class_weight_as_sample_weight else cw
    values = _kernels.sparse(
        y_pred.reshape(-1, y_pred.shape[-1]),
        labels.reshape(-1),
        ignore_index=ignore,
        class_weight=inside,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
    )
    if values is None:
        return None
    valid = None if ignore is None else labels != ignore
    safe = labels if valid is None else np.where(valid, labels, 0)
    weight = None if cw is None else cw[safe]
    return _Losses(values.reshape(labels.shape), class_weight=weight, valid=valid)


def _triton_sparse(
    labels: object,
    y_pred: object,
    axis: int,
    from_logits: bool,
    ignore: int | None,
    class_weight: object,
    label_smoothing: float,
    z_loss: float,
    conv: _conv.Convention,
    validate: bool,
    device_check: bool = True,
) -> _Losses | None:
    """Per-sample sparse losses of CUDA torch logits from the fused Triton kernel, or None.

    Differentiable (the kernel's custom op carries the gradient); ``device_check=False`` lets the
    tests run it on the CPU under ``TRITON_INTERPRET=1``.
    """
    torch = sys.modules.get("torch")
    if not from_logits or conv not in _LOGIT_EXACT or torch is None:
        return None
    if not (isinstance(y_pred, torch.Tensor) and isinstance(labels, torch.Tensor)):
        return None
    if (device_check and not y_pred.is_cuda) or y_pred.ndim < 1 or labels.shape != y_pred.shape[:-1]:
        return None
    if normalize_axis(axis, y_pred.ndim, "y_pred") != y_pred.ndim - 1 or torch.is_floating_point(labels):
        return None
    try:
        from ._kernels import triton_ce
    except ImportError:
        return None
    c = y_pred.shape[-1]
    if validate:  # the kernel reads the target's logit: labels must be in range before it runs
        xp = namespace(y_pred)
        check_labels(xp, labels, "labels", c, ignore)
        check_logits(xp, y_pred, "y_pred", -1)
    cw = None
    if class_weight is not None:
        cw = class_weight if isinstance(class_weight, torch.Tensor) else torch.as_tensor(class_weight)
        cw = cw.to(device=y_pred.device, dtype=torch.float32)
    values = triton_ce.fused_cross_entropy(
        y_pred.reshape(-1, c),
        labels.reshape(-1).long(),
        weight=None if conv.class_weight_as_sample_weight else cw,
        ignore_index=-(2**62) if ignore is None else ignore,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        reduction="none",
    ).reshape(labels.shape)
    valid = None if ignore is None else labels != ignore
    weight = None if cw is None else cw[labels.clamp(0, c - 1) if valid is None else torch.where(valid, labels, 0)]
    return _Losses(values, class_weight=weight, valid=valid)


def _fast_categorical(
    y_true: object,
    y_pred: object,
    axis: int,
    from_logits: bool,
    class_weight: object,
    label_smoothing: float,
    conv: _conv.Convention,
    validate: bool,
) -> _Losses | None:
    """Per-sample categorical losses (soft targets, logits, exact convention) from the fused kernel."""
    if not (from_logits and conv is _conv.EXACT and _kernels.usable(y_true, y_pred)):
        return None
    assert isinstance(y_pred, np.ndarray) and isinstance(y_true, np.ndarray)
    if y_pred.ndim < 1 or y_true.shape != y_pred.shape or y_true.dtype != y_pred.dtype or y_pred.shape[-1] == 0:
        return None
    if normalize_axis(axis, y_pred.ndim, "y_pred") != y_pred.ndim - 1:
        return None
    ok, cw = _kernel_class_weight(class_weight, y_pred.shape[-1], y_pred.dtype)
    if not ok:
        return None
    c = y_pred.shape[-1]
    result = _kernels.soft(
        y_pred.reshape(-1, c),
        y_true.reshape(-1, c),
        class_weight=cw,
        label_smoothing=label_smoothing,
        check_sums=validate,
        tol=sum_tolerance(np, y_pred.dtype),
    )
    if result is None:
        return None
    values, class_of = result
    shape = y_pred.shape[:-1]
    return _Losses(values.reshape(shape), class_weight=None if cw is None else class_of.reshape(shape))


def _fast_binary(
    y_true: object,
    y_pred: object,
    from_logits: bool,
    pos_weight: object,
    label_smoothing: float,
    conv: _conv.Convention,
) -> Array | None:
    """Elementwise exact binary cross-entropy from the fused kernel, or None."""
    if conv is not _conv.EXACT or not _kernels.usable(y_true, y_pred):
        return None
    assert isinstance(y_pred, np.ndarray) and isinstance(y_true, np.ndarray)
    if y_pred.dtype not in (np.float32, np.float64) or y_true.shape != y_pred.shape:
        return None
    if y_true.dtype.kind not in "biuf" or (y_true.dtype.kind == "f" and y_true.dtype != y_pred.dtype):
        return None
    if pos_weight is None:
        pw = 1.0
    elif isinstance(pos_weight, (int, float, np.number)) and not isinstance(pos_weight, bool):
        pw = float(pos_weight)
        if not (pw >= 0 and np.isfinite(pw)):
            return None
    else:
        return None
    return _kernels.binary(
        y_true.astype(y_pred.dtype, copy=False),
        y_pred,
        from_logits=from_logits,
        pos_weight=pw,
        label_smoothing=label_smoothing,
    )


def _sample_weight(xp: ModuleType, sample_weight: object, like: Array) -> Array | None:
    return None if sample_weight is None else asarray(xp, sample_weight, "sample_weight", like=like)


# --- binary ------------------------------------------------------------------------------------


def _binary_elements(
    xp: ModuleType,
    conv: _conv.Convention,
    y: Array,
    pred: Array,
    pos_weight: Array | None,
    from_logits: bool,
    dtype: Any,
) -> Array:
    """``-(w+ y log p + (1 - y) log(1 - p))`` elementwise, the convention's way."""
    if from_logits:
        log_p, log_not_p = conv.binary_log_sigmoids(xp, pred, dtype)
    else:
        log_p, log_not_p = conv.binary_log_probs(xp, pred, dtype)
    pos = y if pos_weight is None else y * pos_weight
    return 0.0 - (conv.product(xp, pos, log_p) + conv.product(xp, 1 - y, log_not_p))


def _binary_inputs(
    y_true: object,
    y_pred: object,
    pos_weight: object,
    sample_weight: object,
    from_logits: bool,
    validate: bool,
) -> tuple[ModuleType, Array, Array, Array | None, Array | None, Any, Any]:
    """Convert and check the inputs of a binary loss."""
    xp, (y, p, pw, sw) = _arrays(
        ("y_true", y_true), ("y_pred", y_pred), ("pos_weight", pos_weight), ("sample_weight", sample_weight)
    )
    assert y is not None and p is not None
    check_same_shape(y_true=y.shape, y_pred=p.shape)
    compute, out = float_dtypes(xp, p, y)
    dtype = _input_dtype(xp, p, compute)
    yf, pf = to_dtype(xp, y, compute), to_dtype(xp, p, compute)
    if validate:
        check_binary_targets(xp, yf, "y_true")
        if from_logits:
            check_logits(xp, pf, "y_pred", None)
        else:
            check_probabilities(xp, pf, "y_pred")
    if pw is not None:
        pw = to_dtype(xp, pw, compute)
        if validate:
            check_weights(xp, pw, "pos_weight")
    return xp, yf, pf, pw, sw, out, dtype


def _per_sample_binary(xp: ModuleType, conv: _conv.Convention, elements: Array) -> Array:
    """Keras averages binary losses over the last axis per sample first."""
    if conv.binary_mean_over_last_axis and elements.ndim >= 1:
        return xp.mean(elements, axis=-1)
    return elements


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
    """Binary cross-entropy (log loss of Bernoulli predictions).

    ``l = -(w+ y log p + (1 - y) log(1 - p))`` per element, with ``p`` the
    predicted probability of the positive class and ``w+`` the ``pos_weight``.

    Parameters
    ----------
    y_true : array_like
        Targets in [0, 1] (hard 0/1 labels or soft targets), same shape as
        ``y_pred``.
    y_pred : array_like
        Predicted probabilities, or logits with ``from_logits=True``.
    from_logits : bool, default False
        ``y_pred`` holds logits; computed with ``log_sigmoid``, never
        ``log(sigmoid(x))``. Logits of ``+-inf`` stand for probabilities 1 and 0.
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis (one per
        output column), as PyTorch's ``pos_weight``.
    sample_weight : array_like, optional
        Non-negative weight of each loss value (broadcast to the losses).
    label_smoothing : float, default 0
        Targets become ``y (1 - eps) + eps / 2``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns one loss per element. ``"mean"`` is
        ``sum(w l) / sum(w)`` under the exact convention; other conventions
        divide as their library does.
    convention : str, default "exact"
        ``"exact"``, ``"torch"``, ``"keras"``, ``"tf-keras2"``, ``"sklearn"``
        or ``"optax"``; see :mod:`crossentropy.conventions`.
    validate : bool, default True
        Check values (ranges, NaN, weights). Set to False inside ``jax.jit``.

    Returns
    -------
    array
        The reduced loss, or the element losses with ``reduction="none"``
        (per sample, averaged over the last axis, under ``"keras"``).

    Raises
    ------
    InputError
        For targets or probabilities outside [0, 1], NaN, shapes that differ,
        negative weights, an unknown convention or reduction, or an option the
        convention's library does not have.

    Notes
    -----
    Under ``"exact"`` a prediction of 0 for a positive target costs ``inf``;
    PyTorch caps each log at -100 (a loss of 100), Keras clips at 1e-7
    (16.118), TensorFlow 2's Keras adds a second 1e-7 (15.425), scikit-learn
    clips at the dtype's eps (36.04 in float64).

    Examples
    --------
    The ten predictions of the seed text, 0.247 nats under every convention:

    >>> import crossentropy as ce
    >>> y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    >>> p = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]
    >>> print(f"{ce.binary_cross_entropy(y, p):.10f}")
    0.2469198908
    >>> sorted({round(float(ce.binary_cross_entropy(y, p, convention=c)), 6) for c in ce.conventions.NAMES})
    [0.24692]

    The seed's TensorFlow 2 example, clipping *and* adding 1e-7:

    >>> print(f"{ce.binary_cross_entropy([1, 0, 1], [0.0, 0.0, 1.0], convention='tf-keras2'):.8f}")
    5.14164949
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    conv.require(
        "binary" if from_logits else "binary_probabilities",
        label_smoothing=ls > 0,
        pos_weight=pos_weight is not None,
    )
    fast = _fast_binary(y_true, y_pred, from_logits, pos_weight, ls, conv)
    if fast is not None:
        xp = namespace(fast)
        return _reduce(
            xp, conv, "binary", _Losses(fast), _sample_weight(xp, sample_weight, fast), reduction, fast.dtype, validate
        )
    xp, y, p, pw, sw, out, dtype = _binary_inputs(y_true, y_pred, pos_weight, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    elements = _binary_elements(xp, conv, y, p, pw, from_logits, dtype)
    return _reduce(xp, conv, "binary", _Losses(_per_sample_binary(xp, conv, elements)), sw, reduction, out, validate)


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
    """Binary focal loss (Lin et al., 2017).

    ``l = a_t (1 - p_t)**gamma * bce`` with ``p_t = y p + (1 - y)(1 - p)``
    and ``a_t = alpha y + (1 - alpha)(1 - y)``: well-classified examples are
    down-weighted so training focuses on the hard ones.

    Parameters
    ----------
    y_true, y_pred : array_like
        As :func:`binary_cross_entropy`.
    gamma : float, default 2.0
        Focusing exponent, >= 0; ``gamma=0`` is the (alpha-weighted) BCE.
    alpha : float, optional
        ``None``: no class balancing. A float in [0, 1] weights positives by
        ``alpha`` and negatives by ``1 - alpha``.
    from_logits, sample_weight, label_smoothing, reduction, convention, validate
        As :func:`binary_cross_entropy`. Conventions: ``"exact"``,
        ``"keras"``, ``"tf-keras2"`` and ``"optax"``.

    Returns
    -------
    array
        The reduced loss, or element losses with ``reduction="none"``.

    Raises
    ------
    InputError
        As :func:`binary_cross_entropy`, and for ``gamma < 0`` or ``alpha``
        outside [0, 1].

    Notes
    -----
    ``p_t`` uses the unclipped probability in every convention (as Keras and
    optax do); only the log terms follow the convention's clipping.

    Examples
    --------
    >>> import crossentropy as ce
    >>> losses = ce.binary_focal_loss([1, 0, 1], [-2.0, 0.5, 3.0], from_logits=True, reduction="none")
    >>> print(losses.round(6))
    [1.650078 0.377412 0.000109]
    >>> float(ce.binary_focal_loss([1, 0], [0.7, 0.2], gamma=0.0)) == float(ce.binary_cross_entropy([1, 0], [0.7, 0.2]))
    True
    """
    conv, ls = _options(label_smoothing, reduction, convention)
    g = check_nonnegative("gamma", gamma)
    a = None if alpha is None else check_unit_interval("alpha", alpha)
    conv.require("binary_focal", label_smoothing=ls > 0)
    xp, y, x, _, sw, out, dtype = _binary_inputs(y_true, y_pred, None, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    if from_logits:
        p = 1 / (1 + xp.exp(-x))
        elements = (
            _binary_elements(xp, conv, y, p, None, False, dtype)
            if conv.focal_logits_as_probabilities
            else _binary_elements(xp, conv, y, x, None, True, dtype)
        )
        not_p = 1 / (1 + xp.exp(x))
    else:
        p, not_p = x, 1 - x
        elements = _binary_elements(xp, conv, y, p, None, False, dtype)
    one_minus_pt = y * not_p + (1 - y) * p
    elements = elements * one_minus_pt**g
    if a is not None:
        elements = elements * (a * y + (1 - a) * (1 - y))
    return _reduce(xp, conv, "binary", _Losses(_per_sample_binary(xp, conv, elements)), sw, reduction, out, validate)


# --- categorical ----------------------------------------------------------------------------


def _categorical_inputs(
    y_true: object,
    y_pred: object,
    class_weight: object,
    sample_weight: object,
    axis: int,
    from_logits: bool,
    conv: _conv.Convention,
    validate: bool,
) -> tuple[ModuleType, Array, Array, Array | None, Array | None, int, Any, Any]:
    """Convert and check the inputs of a loss with soft or one-hot targets."""
    xp, (y, x, cw, sw) = _arrays(
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
    dtype = _input_dtype(xp, x, compute)
    yf, xf = to_dtype(xp, y, compute), to_dtype(xp, x, compute)
    if validate:
        check_probabilities(xp, yf, "y_true")
        _check_rows(xp, conv, yf, "y_true", ax, _input_dtype(xp, y, compute), validate)
        if from_logits:
            check_logits(xp, xf, "y_pred", ax)
        else:
            check_probabilities(xp, xf, "y_pred")
            _check_rows(xp, conv, xf, "y_pred", ax, dtype, validate)
    cw = _class_vector(xp, None if cw is None else to_dtype(xp, cw, compute), "class_weight", x.shape[ax], validate)
    return xp, yf, xf, cw, sw, ax, out, dtype


def _log_q(
    xp: ModuleType, conv: _conv.Convention, x: Array, ax: int, dtype: Any, from_logits: bool, sparse: bool
) -> Array:
    """The predicted log-probabilities, the convention's way."""
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
    if from_logits and type(conv).log_softmax is _conv.Convention.log_softmax:
        _, z, shift = _shifted_lse(xp, x, ax)
        return z, shift
    return _log_q(xp, conv, x, ax, dtype, from_logits, sparse=False), None


def _categorical_losses(
    xp: ModuleType,
    conv: _conv.Convention,
    y: Array,
    log_q: Array,
    cw: Array | None,
    ax: int,
    label_smoothing: float,
    shift: Array | None = None,
) -> _Losses:
    """``-sum_c w_c y'_c log q_c`` per sample, and each sample's class weight.

    With ``shift``, ``log_q`` holds ``x - max`` and the log-probabilities are
    ``log_q - shift``.
    """
    smoothed = conv.smooth_categorical(y, label_smoothing, log_q.shape[ax])
    w = None if cw is None else _along(xp, cw, ax, y.ndim)
    inside = smoothed if w is None or conv.class_weight_as_sample_weight else smoothed * w
    values = 0.0 - xp.sum(conv.product(xp, inside, log_q), axis=ax)
    if shift is not None:
        values = values + xp.squeeze(shift, axis=ax) * xp.sum(inside, axis=ax)
    return _Losses(values, class_weight=None if w is None else xp.sum(y * w, axis=ax))


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
    conv, ls = _options(label_smoothing, reduction, convention)
    conv.require("categorical", label_smoothing=ls > 0, class_weight=class_weight is not None)
    fast = _fast_categorical(y_true, y_pred, axis, from_logits, class_weight, ls, conv, validate)
    if fast is not None:
        xp = namespace(fast.values)
        assert isinstance(y_pred, np.ndarray)
        return _reduce(
            xp,
            conv,
            "categorical",
            fast,
            _sample_weight(xp, sample_weight, fast.values),
            reduction,
            y_pred.dtype,
            validate,
        )
    xp, y, x, cw, sw, ax, out, dtype = _categorical_inputs(
        y_true, y_pred, class_weight, sample_weight, axis, from_logits, conv, validate
    )
    log_q, shift = _log_q_parts(xp, conv, x, ax, dtype, from_logits)
    losses = _categorical_losses(xp, conv, y, log_q, cw, ax, ls, shift)
    return _reduce(xp, conv, "categorical", losses, sw, reduction, out, validate)


def _take(xp: ModuleType, x: Array, labels: Array, ax: int) -> Array:
    """``x[..., labels, ...]`` along ``ax``: one value per sample.

    Namespaces without ``take_along_axis`` (Dask) select with a one-hot mask.
    """
    if hasattr(xp, "take_along_axis"):
        return xp.squeeze(xp.take_along_axis(x, xp.expand_dims(labels, axis=ax), axis=ax), axis=ax)
    classes = _along(xp, xp.arange(x.shape[ax], device=array_api_compat.device(x)), ax, x.ndim)
    return xp.sum(xp.where(xp.expand_dims(labels, axis=ax) == classes, x, 0.0), axis=ax)


def _sparse_inputs(
    labels: object,
    y_pred: object,
    class_weight: object,
    sample_weight: object,
    axis: int,
    from_logits: bool,
    ignore_index: int | None,
    conv: _conv.Convention,
    validate: bool,
) -> tuple[ModuleType, Array, Array, Array | None, Array | None, int, Any, Any]:
    """Convert and check the inputs of a loss with integer labels."""
    xp, (t, x, cw, sw) = _arrays(
        ("labels", labels),
        ("y_pred", y_pred),
        ("class_weight", class_weight),
        ("sample_weight", sample_weight),
    )
    assert t is not None and x is not None
    ax = normalize_axis(axis, x.ndim, "y_pred") - x.ndim
    num_classes = x.shape[ax]
    if not xp.isdtype(t.dtype, "integral"):
        raise InputError(f"labels must be integers (class indices), got dtype {t.dtype}")
    expected = tuple(d for i, d in enumerate(x.shape) if i != x.ndim + ax)
    if tuple(t.shape) != expected:
        raise InputError(
            f"labels must have y_pred's shape without the class axis {axis}: expected {expected}, "
            f"got {tuple(t.shape)} (y_pred {tuple(x.shape)})"
        )
    if num_classes == 0:
        raise InputError("y_pred has an empty class axis")
    compute, out = float_dtypes(xp, x)
    dtype = _input_dtype(xp, x, compute)
    xf = to_dtype(xp, x, compute)
    if validate:
        check_labels(xp, t, "labels", num_classes, ignore_index)
        if from_logits:
            check_logits(xp, xf, "y_pred", ax)
        else:
            check_probabilities(xp, xf, "y_pred")
            _check_rows(xp, conv, xf, "y_pred", ax, dtype, validate)
    cw = _class_vector(xp, None if cw is None else to_dtype(xp, cw, compute), "class_weight", num_classes, validate)
    return xp, t, xf, cw, sw, ax, out, dtype


def _sparse_losses(
    xp: ModuleType,
    conv: _conv.Convention,
    labels: Array,
    log_q: Array,
    cw: Array | None,
    ax: int,
    label_smoothing: float,
    ignore_index: int | None,
) -> _Losses:
    """``(1 - eps) w_y (-log q_y) + eps / C sum_c w_c (-log q_c)`` per sample."""
    valid = None if ignore_index is None else labels != ignore_index
    safe = labels if valid is None else xp.where(valid, labels, 0)
    nll = 0.0 - _take(xp, log_q, safe, ax)
    weight = None if cw is None else xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), tuple(safe.shape))
    inside = weight is not None and not conv.class_weight_as_sample_weight
    values = nll * weight if inside else nll
    if label_smoothing:
        terms = 0.0 - log_q if not inside else (0.0 - log_q) * _along(xp, cw, ax, log_q.ndim)
        values = (1 - label_smoothing) * values + label_smoothing / log_q.shape[ax] * xp.sum(terms, axis=ax)
    if valid is not None:
        values = xp.where(valid, values, 0.0)
    return _Losses(values, class_weight=weight, valid=valid)


def _sparse_options(
    convention: str | _conv.Convention,
    label_smoothing: float,
    reduction: str,
    z_loss: float,
    from_logits: bool,
    class_weight: object,
    ignore_index: int | None,
) -> tuple[_conv.Convention, float, float, int | None]:
    """Checked options of the sparse loss: convention, smoothing, z-loss and the effective ignore_index."""
    conv, ls = _options(label_smoothing, reduction, convention)
    z = check_nonnegative("z_loss", z_loss)
    conv.require(
        "sparse",
        label_smoothing=ls > 0,
        class_weight=class_weight is not None,
        ignore_index=ignore_index is not None,
        z_loss=z > 0,
    )
    if z > 0 and not from_logits:
        raise InputError("z_loss needs logits: pass from_logits=True (the z-loss penalises logsumexp(logits)**2)")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))):
        raise InputError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    return conv, ls, z, ignore_index if ignore_index is not None else conv.default_ignore_index


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
    """Categorical cross-entropy with integer class labels.

    ``l_i = -log q_i[y_i]`` (with smoothing ``(1 - eps) w_y (-log q_y) +
    eps / C sum_c w_c (-log q_c)``), plus ``z * logsumexp(x_i)**2`` with
    ``z_loss``.

    Parameters
    ----------
    labels : array_like of int
        Class indices in [0, C), or ``ignore_index``; the shape of ``y_pred``
        without the class axis. Other shapes are an error, not a broadcast.
    y_pred : array_like
        Predicted probabilities, or logits with ``from_logits=True``.
    axis : int, default -1
        The class axis of ``y_pred``.
    from_logits : bool, default False
        ``y_pred`` holds logits.
    ignore_index : int, optional
        Label value whose samples are skipped (loss 0, excluded from the
        mean). ``None`` ignores nothing; under ``"torch"`` it means -100, as
        in PyTorch.
    class_weight : array_like, optional
        One non-negative weight per class; the mean divides by
        ``sum_i s_i w[y_i]`` over non-ignored samples (PyTorch's semantics).
    sample_weight : array_like, optional
        One non-negative weight per sample.
    label_smoothing : float, default 0
        Smoothing ``eps`` in [0, 1]: targets ``(1 - eps) onehot + eps / C``.
    z_loss : float, default 0
        Coefficient of the auxiliary ``logsumexp(x)**2`` term (PaLM); needs
        logits.
    reduction : {"mean", "sum", "none"}, default "mean"
        Under ``"exact"`` the mean over an empty or fully ignored batch is
        NaN (as PyTorch), the sum 0.
    convention : str, default "exact"
        See :mod:`crossentropy.conventions`.
    validate : bool, default True
        Check values (label range, probabilities, logits). Set to False
        inside ``jax.jit``.

    Returns
    -------
    array
        The reduced loss, or one loss per sample (0 where ignored).

    Raises
    ------
    InputError
        For labels that are not integers, out of range, or of the wrong
        shape; invalid probabilities or logits; bad weights; ``z_loss``
        without logits; options the convention's library lacks.

    Examples
    --------
    >>> import crossentropy as ce
    >>> logits = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]]
    >>> print(ce.sparse_categorical_cross_entropy([0, 1, 2], logits, from_logits=True, reduction="none"))
    [0.41703002 0.22004952 1.09861229]
    >>> print(f"{ce.sparse_categorical_cross_entropy([0, 1, 2], logits, from_logits=True, class_weight=[1, 2, 3]):.7f}")
    0.6921610
    >>> print(ce.sparse_categorical_cross_entropy([-100, -100, -100], logits, from_logits=True, ignore_index=-100))
    nan
    """
    conv, ls, z, ignore = _sparse_options(
        convention, label_smoothing, reduction, z_loss, from_logits, class_weight, ignore_index
    )
    fast = _fast_sparse(labels, y_pred, axis, from_logits, ignore, class_weight, ls, z, conv)
    if fast is None:
        fast = _triton_sparse(labels, y_pred, axis, from_logits, ignore, class_weight, ls, z, conv, validate)
    if fast is not None:
        xp = namespace(fast.values)
        return _reduce(
            xp, conv, "sparse", fast, _sample_weight(xp, sample_weight, fast.values), reduction, y_pred.dtype, validate
        )
    xp, t, x, cw, sw, ax, out, dtype = _sparse_inputs(
        labels, y_pred, class_weight, sample_weight, axis, from_logits, ignore, conv, validate
    )
    log_q = _log_q(xp, conv, x, ax, dtype, from_logits, sparse=True)
    losses = _sparse_losses(xp, conv, t, log_q, cw, ax, ls, ignore)
    if z > 0:
        penalty = z * logsumexp(xp, x, ax) ** 2
        losses.values = losses.values + (penalty if losses.valid is None else xp.where(losses.valid, penalty, 0.0))
    return _reduce(xp, conv, "sparse", losses, sw, reduction, out, validate)


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
    conv, ls = _options(label_smoothing, reduction, convention)
    g = check_nonnegative("gamma", gamma)
    conv.require("categorical_focal", label_smoothing=ls > 0)
    alpha_array = alpha if alpha is not None and not isinstance(alpha, (int, float)) else None
    xp, y, x, a_vec, sw, ax, out, dtype = _categorical_inputs(
        y_true, y_pred, alpha_array, sample_weight, axis, from_logits, conv, validate
    )
    log_q = _log_q(xp, conv, x, ax, dtype, from_logits, sparse=False)
    factor = conv.smooth_categorical(y, ls, x.shape[ax])
    if g != 0:
        factor = factor * (1 - xp.exp(log_q)) ** g
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        factor = factor * check_unit_interval("alpha", alpha)
    elif a_vec is not None:
        factor = factor * _along(xp, a_vec, ax, y.ndim)
    values = 0.0 - xp.sum(conv.product(xp, factor, log_q), axis=ax)
    return _reduce(xp, conv, "categorical", _Losses(values), sw, reduction, out, validate)


# --- log loss ------------------------------------------------------------------------------------


@quiet
def log_loss(
    y_true: Array,
    y_pred: Array,
    /,
    *,
    labels: Array | None = None,
    sample_weight: Array | None = None,
    normalize: bool = True,
    convention: str | _conv.Convention = "exact",
    validate: bool = True,
) -> Array:
    """Log loss (negative log-likelihood), with scikit-learn's signature.

    ``-1/N sum_i log p_i[y_i]``, the same quantity as the categorical
    cross-entropy against one-hot labels.

    Parameters
    ----------
    y_true : array_like
        Class labels of any kind (numbers or strings); the classes are the
        sorted unique values of ``labels`` if given, else of ``y_true``.
    y_pred : array_like
        Predicted probabilities, one column per class in sorted class order;
        a 1-D array is the probability of the second (positive) class.
    labels : array_like, optional
        All class labels, when ``y_true`` does not contain every class.
    sample_weight : array_like, optional
        One weight per sample: the result is ``np.average`` with these weights.
    normalize : bool, default True
        Return the (weighted) mean; False returns the (weighted) sum.
    convention : str, default "exact"
        ``"sklearn"`` clips to the dtype's eps exactly as
        :func:`sklearn.metrics.log_loss`; see :mod:`crossentropy.conventions`.
    validate : bool, default True
        Check values.

    Returns
    -------
    array
        A 0-d array of ``y_pred``'s kind.

    Raises
    ------
    InputError
        For fewer than two classes, labels not among the classes, a column
        count that does not match the classes, mismatched lengths, or invalid
        probabilities.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(f"{ce.log_loss([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]):.7f}")
    0.2283930
    >>> print(f"{ce.log_loss(['spam', 'ham', 'ham'], [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]):.7f}")
    1.7053319
    >>> print(f"{ce.log_loss([1, 1, 1], [1.0, 1.0, 0.0], labels=[0, 1], convention='sklearn'):.7f}")
    12.0145511
    """
    conv = _conv.get(convention)
    host = np.asarray(to_numpy(y_true) if hasattr(y_true, "__dlpack__") else y_true)
    if host.ndim != 1:
        raise InputError(f"y_true must be 1-D (one label per sample), got shape {host.shape}")
    classes = np.unique(np.asarray(labels) if labels is not None else host)
    if classes.size < 2:
        raise InputError(
            f"log_loss needs at least two classes; y_true holds only {classes.tolist()} (pass labels=[...])"
        )
    index = np.searchsorted(classes, host)
    unknown = (index >= classes.size) | (classes[np.minimum(index, classes.size - 1)] != host)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise InputError(f"y_true[{i}] = {host[i].item()!r} is not one of the classes {classes.tolist()}")
    xp, (p,) = _arrays(("y_pred", y_pred))
    assert p is not None
    if p.ndim == 1:
        if classes.size != 2:
            raise InputError(f"a 1-D y_pred is binary, but there are {classes.size} classes {classes.tolist()}")
        p = xp.stack([1 - p, p], axis=-1)
    if p.ndim != 2 or p.shape[1] != classes.size:
        raise InputError(
            f"y_pred must have one column per class ({classes.size}: {classes.tolist()}), got shape {tuple(p.shape)}"
        )
    if p.shape[0] != host.size:
        raise InputError(f"y_true has {host.size} samples but y_pred has {p.shape[0]}")
    if host.size == 0:
        raise InputError("log_loss of an empty sample: y_true and y_pred have no rows")
    idx = asarray(xp, index.astype(np.int64), "y_true", like=p)
    return sparse_categorical_cross_entropy(
        idx,
        p,
        sample_weight=sample_weight,
        reduction="mean" if normalize else "sum",
        convention=conv,
        validate=validate,
    )
