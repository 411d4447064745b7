"""Cross-entropy with integer class labels, and scikit-learn's log loss, with their gradients."""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from .. import _dispatch
from .. import conventions as _conv
from .._namespace import asarray, float_dtypes, namespace, normalize_axis, quiet, refuses_masked_arrays, to_dtype
from .._special import log_softmax, logsumexp, targets_grad
from .._validation import (
    InputError,
    check_labels,
    check_logits,
    check_nonnegative,
    check_probabilities,
    ignored,
    to_numpy,
)
from ._inputs import Losses, along, arrays, check_rows, class_vector, input_dtype, options, sample_weight_like
from ._reduction import reduce_losses, scale
from .categorical import log_q

Array = Any

__all__ = [
    "log_loss",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_grad",
    "sparse_categorical_cross_entropy_value_and_grad",
]


def _take(xp: ModuleType, x: Array, labels: Array, ax: int) -> Array:
    """``x[..., labels, ...]`` along ``ax``: one value per sample.

    Namespaces without ``take_along_axis`` (Dask) select with a one-hot mask.
    """
    if hasattr(xp, "take_along_axis"):
        return xp.squeeze(xp.take_along_axis(x, xp.expand_dims(labels, axis=ax), axis=ax), axis=ax)
    classes = along(xp, xp.arange(x.shape[ax], device=array_api_compat.device(x)), ax, x.ndim)
    return xp.sum(xp.where(xp.expand_dims(labels, axis=ax) == classes, x, 0.0), axis=ax)


class _Labels(NamedTuple):
    """Integer labels ready to index: ``index`` holds int64 class indices (0 where ignored), ``valid`` the
    samples that are not ignored (None when no label can equal ``ignore_index``)."""

    index: Array
    valid: Array | None


def _index_labels(xp: ModuleType, labels: Array, ignore_index: int | None) -> _Labels:
    """Labels as int64 indices (torch gathers only with int64) with the ignored ones set to 0.

    Which labels are ignored is decided on the labels' own dtype, comparing as
    unbounded integers (:func:`crossentropy._validation.ignored`), before the
    cast: a uint64 label and an ``ignore_index`` at or above 2**63 stay apart.
    """
    valid = ignored(xp, labels, ignore_index)
    if valid is not None:
        valid = ~valid
    index = labels if labels.dtype == xp.int64 else xp.astype(labels, xp.int64)
    return _Labels(index if valid is None else xp.where(valid, index, 0), valid)


def _inputs(
    labels: object,
    y_pred: object,
    class_weight: object,
    sample_weight: object,
    axis: int,
    from_logits: bool,
    ignore_index: int | None,
    conv: _conv.Convention,
    validate: bool,
) -> tuple[ModuleType, _Labels, Array, Array | None, Array | None, int, Any, Any]:
    """Convert and check the inputs of a loss with integer labels (and of its gradient)."""
    xp, (t, x, cw, sw) = arrays(
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
    dtype = input_dtype(xp, x, compute)
    xf = to_dtype(xp, x, compute)
    if validate:
        check_labels(xp, t, "labels", num_classes, ignore_index)
        if from_logits:
            check_logits(xp, xf, "y_pred", ax)
        else:
            check_probabilities(xp, xf, "y_pred")
            check_rows(xp, conv, xf, "y_pred", ax, dtype, validate)
    cw = class_vector(xp, None if cw is None else to_dtype(xp, cw, compute), "class_weight", num_classes, validate)
    return xp, _index_labels(xp, t, ignore_index), xf, cw, sw, ax, out, dtype


def _losses(
    xp: ModuleType,
    conv: _conv.Convention,
    labels: _Labels,
    log_probs: Array,
    cw: Array | None,
    ax: int,
    label_smoothing: float,
) -> Losses:
    """``(1 - eps) w_y (-log q_y) + eps / C sum_c w_c (-log q_c)`` per sample."""
    safe, valid = labels
    nll = 0.0 - _take(xp, log_probs, safe, ax)
    weight = None if cw is None else xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), tuple(safe.shape))
    inside = weight is not None and not conv.class_weight_as_sample_weight
    values = nll * weight if inside else nll
    if label_smoothing:
        terms = 0.0 - log_probs if not inside else (0.0 - log_probs) * along(xp, cw, ax, log_probs.ndim)
        values = (1 - label_smoothing) * values + label_smoothing / log_probs.shape[ax] * xp.sum(terms, axis=ax)
    if valid is not None:
        values = xp.where(valid, values, 0.0)
    return Losses(values, class_weight=weight, valid=valid)


def _options(
    convention: str | _conv.Convention,
    label_smoothing: float,
    reduction: str,
    z_loss: float,
    from_logits: bool,
    class_weight: object,
    ignore_index: int | None,
) -> tuple[_conv.Convention, float, float, int | None]:
    """Checked options of the sparse loss: convention, smoothing, z-loss and the effective ignore_index."""
    conv, ls = options(label_smoothing, reduction, convention)
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
    return conv, ls, z, int(ignore_index) if ignore_index is not None else conv.default_ignore_index


@refuses_masked_arrays
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
    conv, ls, z, ignore = _options(
        convention, label_smoothing, reduction, z_loss, from_logits, class_weight, ignore_index
    )
    if from_logits:
        fused = _dispatch.sparse(
            labels,
            y_pred,
            convention=conv,
            axis=axis,
            ignore_index=ignore,
            class_weight=class_weight,
            label_smoothing=ls,
            z_loss=z,
            validate=validate,
        )
        if fused is not None:
            xp = namespace(fused.values)
            losses = Losses(fused.values, class_weight=fused.class_weight, valid=fused.valid)
            sw = sample_weight_like(xp, sample_weight, fused.values)
            return reduce_losses(xp, conv, "sparse", losses, sw, reduction, y_pred.dtype, validate)
    xp, t, x, cw, sw, ax, out, dtype = _inputs(
        labels, y_pred, class_weight, sample_weight, axis, from_logits, ignore, conv, validate
    )
    log_probs = log_q(xp, conv, x, ax, dtype, from_logits, sparse=True)
    losses = _losses(xp, conv, t, log_probs, cw, ax, ls)
    if z > 0:
        penalty = z * logsumexp(xp, x, ax) ** 2
        losses.values = losses.values + (penalty if losses.valid is None else xp.where(losses.valid, penalty, 0.0))
    return reduce_losses(xp, conv, "sparse", losses, sw, reduction, out, validate)


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
    xp, t, x, cw, sw, ax, out, _ = _inputs(
        labels, y_pred, class_weight, sample_weight, axis, from_logits, ignore, conv, validate
    )
    num_classes = x.shape[ax]
    safe, valid = t
    classes = along(xp, xp.arange(num_classes, device=array_api_compat.device(x)), ax, x.ndim)
    onehot = xp.astype(xp.expand_dims(safe, axis=ax) == classes, x.dtype)
    a = conv.smooth_categorical(onehot, ls, num_classes)
    losses = Losses(xp.sum(onehot, axis=ax), valid=valid)
    if cw is not None:
        w = along(xp, cw, ax, x.ndim)
        a = a * w
        losses.class_weight = xp.sum(onehot * w, axis=ax)
    log_probs = log_softmax(xp, x, ax) if from_logits else xp.log(x)
    g = targets_grad(xp, a, log_probs, ax, from_logits)
    if z > 0:
        g = g + 2 * z * logsumexp(xp, x, ax, keepdims=True) * xp.exp(log_probs)
    g = g * xp.expand_dims(scale(xp, conv, "sparse", losses, sw, reduction, validate), axis=ax)
    if valid is not None:
        g = xp.where(xp.expand_dims(valid, axis=ax), g, 0.0)
    return to_dtype(xp, g, out)


def _fused_value_and_grad(
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
    """Loss and gradient in one pass of a fused kernel, or None where the dispatcher picks none."""
    if not _dispatch.takes_value_and_grad(labels, logits, convention=conv, axis=axis, out=out):
        return None
    assert isinstance(logits, np.ndarray)
    try:
        xp, t, _, cw, sw, _, _, _ = _inputs(
            labels, logits, class_weight, sample_weight, axis, True, ignore, conv, False
        )
        if validate and cw is not None and not np.all(np.isfinite(cw) & (cw >= 0)):
            return None  # the reference path reports the weights, in its own order of checks
        safe, valid = t
        weight = None if cw is None else cw[np.clip(safe, 0, logits.shape[-1] - 1)]
        shape = Losses(np.ones(safe.shape), class_weight=weight, valid=valid)
        row_scale = np.broadcast_to(scale(xp, conv, "sparse", shape, sw, reduction, validate), safe.shape)
    except InputError:
        return None
    grad = np.empty_like(logits) if out is None else out
    values = _dispatch.sparse_value_and_grad(
        labels,
        logits,
        convention=conv,
        axis=axis,
        ignore_index=ignore,
        class_weight=None if conv.class_weight_as_sample_weight else cw,
        label_smoothing=ls,
        z_loss=z,
        row_scale=row_scale,
        out=grad,
    )
    if values is None:
        if out is not None and np.shares_memory(out, logits):
            # rows already overwritten hold finite gradients; the checks find the untouched bad row
            _inputs(labels, logits, class_weight, sample_weight, axis, True, ignore, conv, True)
            raise InputError("invalid logits or labels: the gradient could only be partly written into out")
        return None
    losses = Losses(values.reshape(safe.shape), class_weight=weight, valid=valid)
    return reduce_losses(xp, conv, "sparse", losses, sw, reduction, logits.dtype, validate), grad


@refuses_masked_arrays
@quiet
def sparse_categorical_cross_entropy_grad(
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
    conv, ls, z, ignore = _options(
        convention, label_smoothing, reduction, z_loss, from_logits, class_weight, ignore_index
    )
    conv.require_gradient(from_logits)
    if from_logits:
        fused = _fused_value_and_grad(
            labels, y_pred, axis, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate, None
        )
        if fused is not None:
            return fused[1]
    return _reference_grad(
        labels, y_pred, axis, from_logits, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate
    )


def _check_out(out: Any, logits: object) -> None:
    """``out`` must be a writable array of the logits' library, shape and (floating) gradient dtype.

    NumPy would cast the gradient into any array (zeros into integers, a
    rounded copy into a narrower float, a broadcast into a larger shape), so
    nothing is left to it.
    """
    if not (hasattr(out, "shape") and hasattr(out, "dtype")) or not array_api_compat.is_array_api_obj(out):
        raise InputError(f"out must be an array of the logits' shape and dtype, got {type(out).__name__}")
    xp = namespace(logits)
    if array_api_compat.array_namespace(out) is not xp:
        library = xp.__name__.rsplit(".", 1)[-1]
        raise InputError(f"out must be an array of the logits' library ({library}), got {type(out).__name__}")
    x = asarray(xp, logits, "logits")
    dtype = float_dtypes(xp, x)[1]
    if not xp.isdtype(out.dtype, "real floating"):
        raise InputError(f"out must have the gradient's floating dtype {dtype}; got {out.dtype}, which cannot hold it")
    if out.dtype != dtype:
        raise InputError(f"out must have the gradient's dtype {dtype} (the logits'), got {out.dtype}")
    if tuple(out.shape) != tuple(x.shape):
        raise InputError(f"out must have the logits' shape {tuple(x.shape)}, got {tuple(out.shape)}")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise InputError("out is read-only (a broadcast view or a read-only buffer); pass a writable array")


@refuses_masked_arrays
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
    and :func:`crossentropy.grad.sparse_categorical_cross_entropy` would
    (``from_logits=True``). For NumPy logits the fused CPU kernel reads each
    row once (the second read of a row hits the cache) and writes the
    gradient.

    Parameters
    ----------
    out : array, optional
        Where to write the gradient: a caller-supplied writable array of the
        logits' library, shape and floating dtype (any layout), or the logits
        array itself to overwrite it in place (then, on invalid input,
        ``out`` is left partly written and InputError is raised). Any other
        ``out`` (integer or narrower dtype, another shape) raises InputError
        before anything is computed.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    >>> loss, grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad([0, 1], logits, out=logits)
    >>> print(f"{loss:.6f}", grad is logits)
    0.318540 True
    """
    conv, ls, z, ignore = _options(convention, label_smoothing, reduction, z_loss, True, class_weight, ignore_index)
    conv.require_gradient(True)
    if out is not None:
        _check_out(out, logits)
    fused = _fused_value_and_grad(
        labels, logits, axis, ignore, class_weight, sample_weight, ls, z, conv, reduction, validate, out
    )
    if fused is not None:
        return fused
    loss = sparse_categorical_cross_entropy(
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


@refuses_masked_arrays
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
    xp, (p,) = arrays(("y_pred", y_pred))
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
