"""Binary cross-entropy and the binary focal loss, each beside its closed-form gradient."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .. import _dispatch
from .. import conventions as _conv
from .._namespace import float_dtypes, namespace, quiet, refuses_masked_arrays, to_dtype
from .._special import where_zero
from .._validation import (
    check_binary_targets,
    check_logits,
    check_nonnegative,
    check_probabilities,
    check_same_shape,
    check_unit_interval,
    check_weights,
)
from ._inputs import Losses, arrays, input_dtype, options, sample_weight_like
from ._reduction import reduce_losses, scale

Array = Any

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_focal_loss",
    "binary_focal_loss_grad",
]


def _inputs(
    y_true: object,
    y_pred: object,
    pos_weight: object,
    sample_weight: object,
    from_logits: bool,
    validate: bool,
) -> tuple[ModuleType, Array, Array, Array | None, Array | None, Any, Any]:
    """Convert and check the inputs of a binary loss (and of its gradient)."""
    xp, (y, p, pw, sw) = arrays(
        ("y_true", y_true), ("y_pred", y_pred), ("pos_weight", pos_weight), ("sample_weight", sample_weight)
    )
    assert y is not None and p is not None
    check_same_shape(y_true=y.shape, y_pred=p.shape)
    compute, out = float_dtypes(xp, p, y)
    dtype = input_dtype(xp, p, compute)
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


def _elements(
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


def _per_sample(xp: ModuleType, conv: _conv.Convention, elements: Array) -> Array:
    """Keras averages binary losses over the last axis per sample first."""
    if conv.binary_mean_over_last_axis and elements.ndim >= 1:
        return xp.mean(elements, axis=-1)
    return elements


@refuses_masked_arrays
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
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require(
        "binary" if from_logits else "binary_probabilities",
        label_smoothing=ls > 0,
        pos_weight=pos_weight is not None,
    )
    fused = _dispatch.binary(
        y_true, y_pred, convention=conv, from_logits=from_logits, pos_weight=pos_weight, label_smoothing=ls
    )
    if fused is not None:
        xp = namespace(fused)
        sw = sample_weight_like(xp, sample_weight, fused)
        return reduce_losses(xp, conv, "binary", Losses(fused), sw, reduction, fused.dtype, validate)
    xp, y, p, pw, sw, out, dtype = _inputs(y_true, y_pred, pos_weight, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    elements = _elements(xp, conv, y, p, pw, from_logits, dtype)
    return reduce_losses(xp, conv, "binary", Losses(_per_sample(xp, conv, elements)), sw, reduction, out, validate)


@refuses_masked_arrays
@quiet
def binary_cross_entropy_grad(
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
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require_gradient(from_logits)
    conv.require(
        "binary" if from_logits else "binary_probabilities", label_smoothing=ls > 0, pos_weight=pos_weight is not None
    )
    xp, y, p, pw, sw, out, _ = _inputs(y_true, y_pred, pos_weight, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    pos = y if pw is None else y * pw
    if from_logits:
        g = (pos + 1 - y) / (1 + xp.exp(-p)) - pos
    else:
        g = where_zero(xp, pos, -pos / p) + where_zero(xp, 1 - y, (1 - y) / (1 - p))
    return to_dtype(xp, g * scale(xp, conv, "binary", Losses(g), sw, reduction, validate), out)


@refuses_masked_arrays
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
    conv, ls = options(label_smoothing, reduction, convention)
    g = check_nonnegative("gamma", gamma)
    a = None if alpha is None else check_unit_interval("alpha", alpha)
    conv.require("binary_focal", label_smoothing=ls > 0)
    xp, y, x, _, sw, out, dtype = _inputs(y_true, y_pred, None, sample_weight, from_logits, validate)
    y = conv.smooth_binary(y, ls)
    if from_logits:
        p = 1 / (1 + xp.exp(-x))
        elements = (
            _elements(xp, conv, y, p, None, False, dtype)
            if conv.focal_logits_as_probabilities
            else _elements(xp, conv, y, x, None, True, dtype)
        )
        not_p = 1 / (1 + xp.exp(x))
    else:
        p, not_p = x, 1 - x
        elements = _elements(xp, conv, y, p, None, False, dtype)
    one_minus_pt = y * not_p + (1 - y) * p
    elements = elements * one_minus_pt**g
    if a is not None:
        elements = elements * (a * y + (1 - a) * (1 - y))
    return reduce_losses(xp, conv, "binary", Losses(_per_sample(xp, conv, elements)), sw, reduction, out, validate)


@refuses_masked_arrays
@quiet
def binary_focal_loss_grad(
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
    conv, ls = options(label_smoothing, reduction, convention)
    conv.require_gradient(from_logits)
    g_ = check_nonnegative("gamma", gamma)
    a = None if alpha is None else check_unit_interval("alpha", alpha)
    conv.require("binary_focal", label_smoothing=ls > 0)
    xp, y, x, _, sw, out, _ = _inputs(y_true, y_pred, None, sample_weight, from_logits, validate)
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
        db = where_zero(xp, y, -y / p) + where_zero(xp, 1 - y, (1 - y) / (1 - p))
    b = 0.0 - (conv.product(xp, y, log_p) + conv.product(xp, 1 - y, log_not_p))
    u = y * (1 - p) + (1 - y) * p
    focus = where_zero(xp, u, g_ * u ** (g_ - 1) * (1 - 2 * y) * dp * b) if g_ != 0 else 0.0
    grad = focus + u**g_ * db
    if a is not None:
        grad = grad * (a * y + (1 - a) * (1 - y))
    return to_dtype(xp, grad * scale(xp, conv, "binary", Losses(grad), sw, reduction, validate), out)
