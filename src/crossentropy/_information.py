"""Information, entropy, cross-entropy, KL and JS divergence, perplexity.

All functions take probabilities (or logits with ``from_logits=True``) with the
events along ``axis`` and use the exact conventions of the mathematics:
``0 * log 0 = 0`` and ``-log 0 = +inf``, with no hidden epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from . import _dispatch
from ._namespace import asarray, float_dtypes, namespace, normalize_axis, quiet, refuses_masked_arrays, to_dtype
from ._special import log_ratio, log_softmax, xlogx, xlogy_from_log
from ._validation import (
    InputError,
    check_base,
    check_broadcast,
    check_distribution,
    check_logits,
    check_probabilities,
)

Array = Any

__all__ = [
    "cross_entropy",
    "entropy",
    "information",
    "js_divergence",
    "kl_divergence",
    "perplexity",
]


def _scale(value: Array, base: float | None) -> Array:
    """Convert nats to the unit of ``base`` (``None`` keeps nats)."""
    return value if base is None else value / math.log(base)


def _distributions(
    named: Sequence[tuple[str, object, bool]], axis: int, validate: bool
) -> tuple[ModuleType, list[Array], int, Any]:
    """Convert and check distributions that share an event axis.

    ``named`` holds ``(name, value, is_logits)`` triples. Returns the namespace,
    the arrays in the compute dtype, the event axis as a negative index (valid
    for every array and for their broadcast) and the output dtype.
    """
    xp = namespace(*(v for _, v, _ in named))
    like = next((v for _, v, _ in named if hasattr(v, "shape") and hasattr(v, "dtype")), None)
    arrays = [asarray(xp, v, n, like=like) for n, v, _ in named]
    compute, out = float_dtypes(xp, *arrays)
    shape = check_broadcast(**{n: a.shape for (n, _, _), a in zip(named, arrays, strict=True)})
    neg = normalize_axis(axis, len(shape), named[0][0]) - len(shape)
    events = set()
    converted = []
    for (name, _, is_logits), a in zip(named, arrays, strict=True):
        if a.ndim < -neg:
            raise InputError(f"{name} has {a.ndim} dimension(s) and no event axis {axis}")
        events.add(a.shape[neg])
        if a.shape[neg] == 0:
            raise InputError(f"{name} has an empty event axis (axis {axis} has length 0)")
        af = to_dtype(xp, a, compute)
        if validate:
            if is_logits:
                check_logits(xp, af, name, neg)
            else:
                check_probabilities(xp, af, name)
                check_distribution(
                    xp, af, name, a.ndim + neg, a.dtype if xp.isdtype(a.dtype, "real floating") else compute
                )
        converted.append(af)
    if len(events) > 1:
        listed = " and ".join(f"{n} {tuple(a.shape)}" for (n, _, _), a in zip(named, arrays, strict=True))
        raise InputError(f"the event axis {axis} must have the same length in {listed}")
    return xp, converted, neg, out


def _fast(kind: str, p: object, q: object, axis: int, keepdims: bool, base: float | None, validate: bool) -> Any:
    """The row-wise measure from a fused kernel when the dispatcher picks one, else None."""
    first: Any = p
    if not hasattr(first, "ndim") or first.ndim < 1 or (q is not None and getattr(q, "shape", None) != first.shape):
        return None
    last = normalize_axis(axis, first.ndim, "p") == first.ndim - 1
    rows = _dispatch.info(kind, p, q, last_axis=last, check_sums=validate)
    if rows is None:
        return None
    values = _scale(rows.reshape(first.shape[:-1] + ((1,) if keepdims else ())), base).astype(first.dtype)
    return values if values.ndim else values[()]


def _fused_divergence(
    divergence: str, p: object, q: object, axis: int, keepdims: bool, base: float | None, validate: bool
) -> Any:
    """``KL(P || Q)`` of logits ``q`` (``divergence="forward_kl"``, ``p`` probabilities) or ``JS(P, Q)`` of
    logits ``p`` and ``q`` (``"jsd"``) from one fused pass per row pair when the dispatcher picks one, else None."""
    logits: Any = q
    if not hasattr(logits, "ndim") or logits.ndim < 1 or getattr(p, "shape", None) != logits.shape:
        return None
    last = normalize_axis(axis, logits.ndim, "q") == logits.ndim - 1
    rows = _dispatch.divergence(
        divergence, p, q, teacher_probs=divergence == "forward_kl", last_axis=last, check_sums=validate
    )
    if rows is None:
        return None
    xp = namespace(rows)
    values = to_dtype(xp, _scale(rows, base), logits.dtype)
    if keepdims:
        values = xp.expand_dims(values, axis=-1)
    return values[()] if isinstance(values, np.ndarray) and values.ndim == 0 else values


def _finish(xp: ModuleType, terms: Array, axis: int, keepdims: bool, base: float | None, out: Any) -> Array:
    """Sum ``terms`` over the event axis, change unit, cast to the output dtype."""
    total = xp.sum(terms, axis=axis, keepdims=keepdims)
    return to_dtype(xp, _scale(total, base), out)


@refuses_masked_arrays
@quiet
def information(p: Array, /, *, base: float | None = None, validate: bool = True) -> Array:
    """Information content (surprisal) of events with probability ``p``.

    ``h(p) = -log p``, elementwise. Rare events carry much information, certain
    ones none.

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1], any shape.
    base : float, optional
        Logarithm base: ``None`` for nats, ``2`` for bits; any number > 0, != 1.
    validate : bool, default True
        Check that every value lies in [0, 1]. Set to False inside
        ``jax.jit`` or to skip the check.

    Returns
    -------
    array
        ``-log p`` in the requested unit, same shape and kind as ``p``;
        ``inf`` where ``p == 0`` and ``0`` where ``p == 1``.

    Raises
    ------
    InputError
        If ``p`` is not numeric, holds NaN or values outside [0, 1], or
        ``base`` is invalid.

    Examples
    --------
    An event of probability 1/8 needs three bits; a fair coin's heads, one;
    being struck by lightning (about 1 in 280,000), about eighteen:

    >>> import crossentropy as ce
    >>> print(ce.information([1 / 8, 1 / 2, 1 / 280_000], base=2))
    [ 3.         1.        18.0950673]
    """
    b = check_base(base)
    xp = namespace(p)
    arr = asarray(xp, p, "p")
    compute, out = float_dtypes(xp, arr)
    pf = to_dtype(xp, arr, compute)
    if validate:
        check_probabilities(xp, pf, "p")
    return to_dtype(xp, _scale(0.0 - xp.log(pf), b), out)


@refuses_masked_arrays
@quiet
def entropy(
    p: Array,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    from_logits: bool = False,
    keepdims: bool = False,
    validate: bool = True,
) -> Array:
    """Shannon entropy of the distributions along ``axis``.

    ``H(P) = -sum_x P(x) log P(x)``, the expected information of an event drawn
    from ``P``, with ``0 * log 0 = 0``.

    Parameters
    ----------
    p : array_like
        Probabilities (each slice along ``axis`` sums to 1) or, with
        ``from_logits=True``, unnormalised log-probabilities.
    axis : int, default -1
        The axis that holds the events.
    base : float, optional
        Logarithm base: ``None`` for nats, ``2`` for bits.
    from_logits : bool, default False
        ``p`` holds logits; they are normalised with a stable log-softmax.
        ``-inf`` logits are events of probability 0.
    keepdims : bool, default False
        Keep the event axis with length 1.
    validate : bool, default True
        Check values (range, row sums, NaN). Set to False inside ``jax.jit``.

    Returns
    -------
    array
        The entropy of each distribution: ``p``'s shape without ``axis``.

    Raises
    ------
    InputError
        For NaN, probabilities outside [0, 1], rows not summing to 1 (within
        ``sqrt(eps)`` of the dtype), an empty event axis, a non-numeric dtype,
        ``+inf`` logits or an invalid ``base``.

    Notes
    -----
    A one-hot distribution has entropy exactly 0; no epsilon is needed. The
    uniform distribution over ``K`` events has the maximum, ``log K``.
    Unlike :func:`scipy.stats.entropy`, ``p`` is not renormalised and the
    default axis is the last one.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(f"{ce.entropy([0.10, 0.40, 0.50], base=2):.10f}")
    1.3609640474
    >>> print(ce.entropy([[1, 0, 0], [0, 0, 1]]))  # one-hot labels
    [0. 0.]
    >>> [float(ce.entropy([1 / 2**k] * 2**k, base=2)) for k in range(1, 5)]
    [1.0, 2.0, 3.0, 4.0]
    """
    b = check_base(base)
    if not from_logits and (fast := _fast("entropy", p, None, axis, keepdims, b, validate)) is not None:
        return fast
    xp, (pf,), ax, out = _distributions([("p", p, from_logits)], axis, validate)
    if from_logits:
        lp = log_softmax(xp, pf, ax)
        terms = xlogy_from_log(xp, xp.exp(lp), lp)
    else:
        terms = xlogx(xp, pf)
    return _finish(xp, 0.0 - terms, ax, keepdims, b, out)


@refuses_masked_arrays
@quiet
def cross_entropy(
    p: Array,
    q: Array,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    from_logits: bool = False,
    keepdims: bool = False,
    validate: bool = True,
) -> Array:
    """Cross-entropy of ``q`` relative to ``p``.

    ``H(P, Q) = -sum_x P(x) log Q(x)``: the average information needed to code
    events drawn from ``P`` with a code built for ``Q``. It equals
    ``H(P) + KL(P || Q)`` and is not symmetric.

    Parameters
    ----------
    p : array_like
        The true (reference) distributions, events along ``axis``.
    q : array_like
        The predicted distributions, or their logits with ``from_logits=True``.
        ``p`` and ``q`` broadcast against each other.
    axis : int, default -1
        The axis that holds the events.
    base : float, optional
        Logarithm base: ``None`` for nats, ``2`` for bits.
    from_logits : bool, default False
        ``q`` holds logits (normalised with a stable log-softmax).
    keepdims : bool, default False
        Keep the event axis with length 1.
    validate : bool, default True
        Check values. Set to False inside ``jax.jit``.

    Returns
    -------
    array
        ``H(P, Q)`` for each pair of distributions (the broadcast shape
        without ``axis``). ``inf`` where some ``P(x) > 0`` has ``Q(x) = 0``.

    Raises
    ------
    InputError
        For invalid distributions, shapes that do not broadcast, event axes of
        different lengths, ``+inf`` or NaN logits, or an invalid ``base``.

    Notes
    -----
    Terms with ``P(x) = 0`` contribute exactly 0, even where ``Q(x) = 0`` or
    the logit is ``-inf``.

    Examples
    --------
    The three-colour example of the seed texts, in bits and in nats:

    >>> import crossentropy as ce
    >>> p, q = [0.10, 0.40, 0.50], [0.80, 0.15, 0.05]
    >>> print(f"{ce.cross_entropy(p, q, base=2):.10f}")
    3.2879430946
    >>> print(f"{ce.cross_entropy(q, p, base=2):.10f}")
    2.9058316901
    >>> print(f"{ce.cross_entropy(p, q):.10f} {ce.cross_entropy(q, p):.10f}")
    2.2790284859 2.0141690432
    >>> h_pq = ce.entropy(p, base=2) + ce.kl_divergence(p, q, base=2)
    >>> print(f"{h_pq:.10f}")
    3.2879430946

    Ten binary predictions, each a two-event distribution; the mean is the
    binary cross-entropy loss:

    >>> y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    >>> yhat = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]
    >>> per_example = ce.cross_entropy([[1 - t, t] for t in y], [[1 - s, s] for s in yhat])
    >>> print(f"{per_example.mean():.10f}")
    0.2469198908
    """
    b = check_base(base)
    if not from_logits and (fast := _fast("cross_entropy", p, q, axis, keepdims, b, validate)) is not None:
        return fast
    xp, (pf, qf), ax, out = _distributions([("p", p, False), ("q", q, from_logits)], axis, validate)
    log_q = log_softmax(xp, qf, ax) if from_logits else xp.log(qf)
    return _finish(xp, 0.0 - xlogy_from_log(xp, pf, log_q), ax, keepdims, b, out)


def _kl_terms(xp: ModuleType, pf: Array, qf: Array, ax: int, from_logits: bool) -> Array:
    """The terms ``P(x) log(P(x) / Q(x))`` with ``0 * log(0 / q) = 0``."""
    zero = pf == 0
    p_safe = xp.where(zero, 1.0, pf)
    if from_logits:
        diff = xp.log(p_safe) - log_softmax(xp, qf, ax)
    else:
        diff = log_ratio(xp, p_safe, xp.where(zero, 1.0, qf))
    return xp.where(zero, 0.0, pf * diff)


@refuses_masked_arrays
@quiet
def kl_divergence(
    p: Array,
    q: Array,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    from_logits: bool = False,
    keepdims: bool = False,
    validate: bool = True,
) -> Array:
    """Kullback-Leibler divergence (relative entropy) of ``q`` from ``p``.

    ``KL(P || Q) = sum_x P(x) log(P(x) / Q(x)) = H(P, Q) - H(P)``. It is
    non-negative, 0 only when ``P == Q``, and not symmetric.

    Parameters
    ----------
    p : array_like
        The reference distributions, events along ``axis``.
    q : array_like
        The approximating distributions, or their logits with
        ``from_logits=True``. Broadcasts against ``p``.
    axis : int, default -1
        The axis that holds the events.
    base : float, optional
        Logarithm base: ``None`` for nats, ``2`` for bits.
    from_logits : bool, default False
        ``q`` holds logits.
    keepdims : bool, default False
        Keep the event axis with length 1.
    validate : bool, default True
        Check values. Set to False inside ``jax.jit``.

    Returns
    -------
    array
        ``KL(P || Q)`` per pair of distributions; ``inf`` where ``P(x) > 0``
        and ``Q(x) = 0``.

    Raises
    ------
    InputError
        As :func:`cross_entropy`.

    Notes
    -----
    The argument order is SciPy's ``rel_entr(p, q)`` and Keras'
    ``kl_divergence(p, q)``; PyTorch's ``kl_div`` and optax's
    ``kl_divergence`` take the model's log-probabilities first. With
    ``from_logits=True``, NumPy arrays and CPU or CUDA tensors take one fused
    pass per row pair (``log_softmax(q)`` and the divergence together; with
    torch, differentiable with respect to ``q``).

    Examples
    --------
    >>> import crossentropy as ce
    >>> p, q = [0.10, 0.40, 0.50], [0.80, 0.15, 0.05]
    >>> print(f"{ce.kl_divergence(p, q, base=2):.10f} {ce.kl_divergence(q, p, base=2):.10f}")
    1.9269790472 2.0216479704
    >>> float(ce.kl_divergence(p, p))
    0.0
    """
    b = check_base(base)
    if not from_logits and (fast := _fast("kl_divergence", p, q, axis, keepdims, b, validate)) is not None:
        return fast
    if from_logits and (fast := _fused_divergence("forward_kl", p, q, axis, keepdims, b, validate)) is not None:
        return fast
    xp, (pf, qf), ax, out = _distributions([("p", p, False), ("q", q, from_logits)], axis, validate)
    return _finish(xp, _kl_terms(xp, pf, qf, ax, from_logits), ax, keepdims, b, out)


@refuses_masked_arrays
@quiet
def js_divergence(
    p: Array,
    q: Array,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    from_logits: bool = False,
    keepdims: bool = False,
    validate: bool = True,
) -> Array:
    """Jensen-Shannon divergence between ``p`` and ``q``.

    ``JS(P, Q) = KL(P || M) / 2 + KL(Q || M) / 2`` with ``M = (P + Q) / 2``.
    Symmetric, finite, and at most ``log 2`` (1 bit).

    Parameters
    ----------
    p, q : array_like
        Distributions with events along ``axis`` (their logits with
        ``from_logits=True``); they broadcast.
    axis : int, default -1
        The axis that holds the events.
    base : float, optional
        Logarithm base: ``None`` for nats, ``2`` for bits.
    from_logits : bool, default False
        Both ``p`` and ``q`` hold logits (normalised with a stable
        log-softmax): the divergence between two models' predictions.
    keepdims : bool, default False
        Keep the event axis with length 1.
    validate : bool, default True
        Check values. Set to False inside ``jax.jit``.

    Returns
    -------
    array
        The divergence per pair of distributions.

    Raises
    ------
    InputError
        As :func:`cross_entropy`.

    Notes
    -----
    This is the divergence. :func:`scipy.spatial.distance.jensenshannon`
    returns its square root, the Jensen-Shannon *distance*. From logits,
    each term's ``log(P(x) / M(x))`` is formed from
    ``d = log Q(x) - log P(x)`` as ``-log1p(expm1(-|d|) / 2)`` (plus ``d``
    where it applies), which keeps its accuracy where ``P`` and ``Q`` nearly
    agree; NumPy arrays and CPU or CUDA tensors take one fused pass per row
    pair.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(f"{ce.js_divergence([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], base=2):.10f}")
    0.4202005704
    >>> float(ce.js_divergence([1, 0], [0, 1], base=2))
    1.0
    >>> import numpy as np
    >>> logits_p, logits_q = np.log([0.10, 0.40, 0.50]), np.log([0.80, 0.15, 0.05])
    >>> print(f"{ce.js_divergence(logits_p, logits_q, base=2, from_logits=True):.10f}")
    0.4202005704
    """
    b = check_base(base)
    if from_logits and (fast := _fused_divergence("jsd", p, q, axis, keepdims, b, validate)) is not None:
        return fast
    xp, (pf, qf), ax, out = _distributions([("p", p, from_logits), ("q", q, from_logits)], axis, validate)
    if from_logits:
        return _finish(xp, _js_terms_from_logits(xp, pf, qf, ax), ax, keepdims, b, out)
    m = (pf + qf) / 2
    terms = (_kl_terms(xp, pf, m, ax, False) + _kl_terms(xp, qf, m, ax, False)) / 2
    return _finish(xp, terms, ax, keepdims, b, out)


def _js_terms_from_logits(xp: ModuleType, pf: Array, qf: Array, ax: int) -> Array:
    """``(P log(P / M) + Q log(Q / M)) / 2`` of logits, the log-ratios from ``d = log Q - log P`` (see Notes)."""
    lp, lq = log_softmax(xp, pf, ax), log_softmax(xp, qf, ax)
    p, q = xp.exp(lp), xp.exp(lq)
    d = lq - lp
    neg = d <= 0
    safe = xp.where(xp.isnan(d), 0.0, d)  # both probabilities 0: the terms are 0 whatever the ratio
    r = 0.0 - xp.log1p(xp.expm1(0.0 - xp.abs(safe)) / 2)
    p_ratio = xp.where(neg, r, r - safe)
    q_ratio = xp.where(neg, r + safe, r)
    return (xp.where(p == 0, 0.0, p * p_ratio) + xp.where(q == 0, 0.0, q * q_ratio)) / 2


@refuses_masked_arrays
@quiet
def perplexity(
    p: Array,
    q: Array | None = None,
    /,
    *,
    axis: int = -1,
    from_logits: bool = False,
    keepdims: bool = False,
    validate: bool = True,
) -> Array:
    """Perplexity: the effective number of equally likely events.

    ``exp(H(P))`` for one distribution, ``exp(H(P, Q))`` for a model ``Q`` of
    data from ``P``. It does not depend on the logarithm base
    (``2 ** H_bits == exp(H_nats)``).

    Parameters
    ----------
    p : array_like
        Distributions (or logits, when ``q`` is omitted and
        ``from_logits=True``).
    q : array_like, optional
        Model distributions (or logits with ``from_logits=True``).
    axis : int, default -1
        The axis that holds the events.
    from_logits : bool, default False
        The predicted distribution (``q``, or ``p`` alone) holds logits.
    keepdims : bool, default False
        Keep the event axis with length 1.
    validate : bool, default True
        Check values. Set to False inside ``jax.jit``.

    Returns
    -------
    array
        The perplexity per distribution, at least 1.

    Raises
    ------
    InputError
        As :func:`entropy` and :func:`cross_entropy`.

    Examples
    --------
    >>> import crossentropy as ce
    >>> float(ce.perplexity([0.25, 0.25, 0.25, 0.25]))
    4.0
    >>> print(f"{ce.perplexity([0.10, 0.40, 0.50], [0.80, 0.15, 0.05]):.6f}")
    9.767187
    """
    if q is None:
        h = entropy(p, axis=axis, from_logits=from_logits, keepdims=keepdims, validate=validate)
    else:
        h = cross_entropy(p, q, axis=axis, from_logits=from_logits, keepdims=keepdims, validate=validate)
    xp = namespace(h)
    return xp.exp(h)
