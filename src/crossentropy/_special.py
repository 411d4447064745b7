"""Numerically stable special functions on any array namespace.

A module of its own because both halves of the library, the information
measures and the losses, build on the same few primitives: ``logsumexp``,
``log_softmax``, ``log_sigmoid`` and the ``0 * log 0 = 0`` product (and the
scorer on ``softmax``). Each is
written with ``xp.`` operations only and stays differentiable (no NaN
gradients at masked entries) under torch autograd and ``jax.grad``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

Array = Any


def shifted_lse(xp: ModuleType, x: Array, axis: int) -> tuple[Array, Array, Array]:
    """Return ``(m, x - m, log(sum(exp(x - m))))`` with ``m`` the slice maximum.

    The sum is at least 1 (the maximum contributes ``exp(0)``), so it is
    written ``1 + rest`` and its logarithm taken with ``log1p(rest)``: the
    log-probability of a dominant class stays accurate to the last bit even
    when it is ``-1e-12``. A slice of all ``-inf`` gives ``-inf``.

    The maxima's terms ``exp(0) - 1`` are written ``expm1(z)``: 0 exactly, as
    a constant would be, but with ``exp``'s derivatives, so that ``m + log1p
    (rest)`` does not depend on ``m`` and autograd's derivatives of every
    order are the log-sum-exp's, ties included (``m``'s own derivative is a
    choice among the tied maxima that would otherwise leak into the Hessian).
    """
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    z = x - m
    at_max = z == 0
    ties = xp.sum(xp.astype(at_max, z.dtype), axis=axis, keepdims=True)
    rest = xp.sum(xp.where(at_max, xp.expm1(z), xp.exp(z)), axis=axis, keepdims=True) + (ties - 1)
    return m, z, xp.log1p(rest)


def logsumexp(xp: ModuleType, x: Array, axis: int, *, keepdims: bool = False) -> Array:
    """``log(sum(exp(x), axis))``, shifted by the maximum so it never overflows.

    A slice that is all ``-inf`` gives ``-inf``; a ``+inf`` entry gives ``+inf``.
    """
    m, _, lse = shifted_lse(xp, x, axis)
    out = lse + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(xp: ModuleType, x: Array, axis: int) -> Array:
    """``x - logsumexp(x)`` along ``axis``: log-probabilities from logits."""
    _, z, lse = shifted_lse(xp, x, axis)
    return z - lse


def softmax(xp: ModuleType, x: Array, axis: int) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum: probabilities from logits.

    For the probabilities themselves (the predicted class, its confidence),
    where relative accuracy of a few ulps suffices; :func:`log_softmax` is
    the accurate route to their logarithms. ``-inf`` logits give exactly 0;
    a slice of all ``-inf`` gives NaN (there is no class to put the mass on).
    """
    m = xp.max(x, axis=axis, keepdims=True)
    e = xp.exp(x - xp.where(xp.isfinite(m), m, 0.0))
    total = xp.sum(e, axis=axis, keepdims=True)
    return e / xp.where(total == 0, xp.nan, total)


def log_sigmoid(xp: ModuleType, x: Array) -> Array:
    """``log(sigmoid(x)) = -log(1 + exp(-x))`` without forming ``sigmoid(x)``.

    Exact at the ends: ``log_sigmoid(+inf) = 0`` and ``log_sigmoid(-inf) = -inf``.
    """
    return -xp.logaddexp(xp.zeros_like(x), -x)


def xlogy_from_log(xp: ModuleType, x: Array, log_y: Array) -> Array:
    """``x * log_y`` with the convention ``0 * log 0 = 0``.

    Where ``x == 0`` the product is exactly 0 whatever ``log_y`` is (also
    ``-inf``), and so is its gradient, so masked entries never produce NaN.
    """
    return x * xp.where(x == 0, 0.0, log_y)


def xlogx(xp: ModuleType, x: Array) -> Array:
    """``x * log(x)`` with ``0 * log 0 = 0`` (and a zero gradient there)."""
    return x * xp.log(xp.where(x == 0, 1.0, x))


def log_ratio(xp: ModuleType, p: Array, q: Array) -> Array:
    """``log(p / q)`` for ``p > 0``, accurate also where ``p / q`` would overflow.

    The single rounding of ``p / q`` is more accurate than ``log p - log q``
    when ``p`` is close to ``q``; where the ratio leaves the normal range
    (``q`` tiny or zero) the difference of logarithms is used instead.
    """
    ratio = p / q
    tiny = float(xp.finfo(ratio.dtype).smallest_normal)
    normal = (ratio >= tiny) & (ratio < math.inf)
    safe_ratio = xp.where(normal, ratio, 1.0)
    return xp.where(normal, xp.log(safe_ratio), xp.log(p) - xp.log(q))


def where_zero(xp: ModuleType, a: Array, value: Array) -> Array:
    """``value`` where ``a != 0``, else exactly 0 (no ``0 * inf`` from the masked entries)."""
    return xp.where(a == 0, 0.0, value)


def softmax_grad(xp: ModuleType, h: Array, q: Array, axis: int) -> Array:
    """Gradient with respect to logits given ``h = q * dL/dq`` and ``q = softmax``: ``h - q sum(h)``."""
    return h - q * xp.sum(h, axis=axis, keepdims=True)


def targets_grad(xp: ModuleType, a: Array, log_q: Array, axis: int, from_logits: bool) -> Array:
    """Gradient of ``-sum_c a_c log q_c``: ``sum(a) q - a`` for logits, ``-a / q`` for probabilities."""
    if from_logits:
        return softmax_grad(xp, -a, xp.exp(log_q), axis)
    return where_zero(xp, a, -a / xp.exp(log_q))
