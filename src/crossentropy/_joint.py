"""Joint and conditional entropy and mutual information of discrete variables.

A joint probability table ``pxy`` has one axis per variable. Joint entropy
``H(X, Y)`` is the entropy of that table; it shares the notation of the
cross-entropy ``H(P, Q)`` but is a different quantity (one distribution over
pairs, not two distributions over the same events). The chain rule
``H(X, Y) = H(X) + H(Y | X)`` and ``I(X; Y) = H(X) + H(Y) - H(X, Y)`` hold
to rounding. The same measures are estimated from paired samples of labels
with the plug-in estimate or the Miller-Madow correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ._namespace import asarray, float_dtypes, namespace, quiet, refuses_masked_arrays, to_dtype
from ._special import xlogx
from ._validation import (
    InputError,
    check_base,
    check_choice,
    check_probabilities,
    sum_tolerance,
    to_numpy,
)

Array = Any

__all__ = [
    "conditional_entropy",
    "entropy_from_samples",
    "joint_entropy",
    "mutual_information",
    "mutual_information_from_samples",
]


def _axes(spec: int | Sequence[int] | None, ndim: int, name: str) -> tuple[int, ...]:
    if spec is None:
        return tuple(range(ndim))
    items = [spec] if isinstance(spec, (int, np.integer)) else list(spec)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise InputError(f"{name} must name axes of the {ndim}-dimensional table, got {spec!r}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise InputError(f"{name} names an axis twice: {spec!r}")
    return tuple(sorted(out))


def _table(pxy: object, validate: bool) -> tuple[ModuleType, Array, Any]:
    xp = namespace(pxy)
    table = asarray(xp, pxy, "pxy")
    if table.ndim == 0:
        raise InputError("pxy must have one axis per variable; it is 0-dimensional")
    compute, out = float_dtypes(xp, table)
    tf = to_dtype(xp, table, compute)
    if validate:
        check_probabilities(xp, tf, "pxy")
        total = float(xp.sum(tf))
        tol = sum_tolerance(xp, table.dtype if xp.isdtype(table.dtype, "real floating") else compute)
        if not abs(total - 1) <= tol:
            raise InputError(
                f"pxy sums to {total:.10g}, not 1 (off by {abs(total - 1):.3g}; tolerance {tol:.3g}): "
                "a joint probability table sums to 1 over all its cells"
            )
    return xp, tf, out


def _entropy_of_marginal(xp: ModuleType, table: Array, keep: tuple[int, ...]) -> Array:
    drop = tuple(a for a in range(table.ndim) if a not in keep)
    marginal = xp.sum(table, axis=drop) if drop else table
    return 0.0 - xp.sum(xlogx(xp, marginal))


def _finish(xp: ModuleType, value: Array, base: float | None, out: Any) -> Array:
    b = check_base(base)
    return to_dtype(xp, value if b is None else value / math.log(b), out)


@refuses_masked_arrays
@quiet
def joint_entropy(
    pxy: Array, /, *, axes: int | Sequence[int] | None = None, base: float | None = None, validate: bool = True
) -> Array:
    """Joint entropy ``H(X, Y, ...) = -sum p(x, y, ...) log p(x, y, ...)``.

    Parameters
    ----------
    pxy : array_like
        Joint probability table, one axis per variable, summing to 1.
    axes : int or sequence of int, optional
        The variables to keep (the others are marginalised out); default all.
    base : float, optional
        Logarithm base (``None`` nats, ``2`` bits).
    validate : bool, default True
        Check that the table is a probability table.

    Returns
    -------
    array
        A 0-d array of the table's kind.

    Raises
    ------
    InputError
        For negative entries, a table not summing to 1, or invalid axes.

    Examples
    --------
    >>> import crossentropy as ce
    >>> pxy = [[0.25, 0.25], [0.0, 0.5]]
    >>> print(f"{ce.joint_entropy(pxy, base=2):.4f} bits; H(X) = {ce.joint_entropy(pxy, axes=0, base=2):.4f}")
    1.5000 bits; H(X) = 1.0000
    """
    xp, table, out = _table(pxy, validate)
    return _finish(xp, _entropy_of_marginal(xp, table, _axes(axes, table.ndim, "axes")), base, out)


@refuses_masked_arrays
@quiet
def conditional_entropy(
    pxy: Array,
    /,
    *,
    target: int | Sequence[int] = 1,
    given: int | Sequence[int] = 0,
    base: float | None = None,
    validate: bool = True,
) -> Array:
    """Conditional entropy ``H(Y | X) = H(X, Y) - H(X)``.

    ``target`` and ``given`` name the axes of the variables (default
    ``H(axis 1 | axis 0)``); other axes are marginalised out.

    Examples
    --------
    >>> import crossentropy as ce
    >>> pxy = [[0.25, 0.25], [0.0, 0.5]]
    >>> print(f"{ce.conditional_entropy(pxy, target=1, given=0, base=2):.4f}")
    0.5000
    """
    xp, table, out = _table(pxy, validate)
    t = _axes(target, table.ndim, "target")
    g = _axes(given, table.ndim, "given")
    if set(t) & set(g):
        raise InputError(f"target {target!r} and given {given!r} share an axis")
    both = tuple(sorted(t + g))
    value = _entropy_of_marginal(xp, table, both) - _entropy_of_marginal(xp, table, g)
    return _finish(xp, value, base, out)


@refuses_masked_arrays
@quiet
def mutual_information(
    pxy: Array,
    /,
    *,
    x: int | Sequence[int] = 0,
    y: int | Sequence[int] = 1,
    base: float | None = None,
    validate: bool = True,
) -> Array:
    """Mutual information ``I(X; Y) = H(X) + H(Y) - H(X, Y) = KL(p(x, y) || p(x) p(y))``.

    ``x`` and ``y`` name the axes of the two variables (groups of axes are
    allowed); other axes are marginalised out.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(f"{ce.mutual_information([[0.5, 0.0], [0.0, 0.5]], base=2):.4f}")
    1.0000
    >>> print(f"{ce.mutual_information([[0.25, 0.25], [0.25, 0.25]]):.4f}")
    0.0000
    """
    xp, table, out = _table(pxy, validate)
    ax = _axes(x, table.ndim, "x")
    ay = _axes(y, table.ndim, "y")
    if set(ax) & set(ay):
        raise InputError(f"x {x!r} and y {y!r} share an axis")
    value = (
        _entropy_of_marginal(xp, table, ax)
        + _entropy_of_marginal(xp, table, ay)
        - _entropy_of_marginal(xp, table, tuple(sorted(ax + ay)))
    )
    return _finish(xp, xp.where(value < 0, 0.0, value), base, out)


def _codes(values: object, name: str) -> np.ndarray[Any, Any]:
    host = np.asarray(to_numpy(values) if hasattr(values, "__dlpack__") else values)
    if host.ndim != 1:
        raise InputError(f"{name} must be 1-D (one label per sample), got shape {host.shape}")
    return np.unique(host, return_inverse=True)[1].reshape(-1)


def _counts(samples: Sequence[object]) -> np.ndarray[Any, Any]:
    codes = [_codes(s, f"samples[{i}]") for i, s in enumerate(samples)]
    if not codes:
        raise InputError("give at least one array of labels")
    if len({c.size for c in codes}) != 1:
        raise InputError(f"the label arrays have different lengths: {[c.size for c in codes]}")
    if codes[0].size == 0:
        raise InputError("no samples: the label arrays are empty")
    counts = np.zeros(tuple(int(c.max()) + 1 for c in codes))
    np.add.at(counts, tuple(codes), 1.0)
    return counts


@refuses_masked_arrays
def entropy_from_samples(*samples: Array, base: float | None = None, correction: str | None = None) -> float:
    """Entropy (joint entropy, for several variables) estimated from samples of labels.

    The plug-in estimate is the entropy of the empirical distribution; the
    Miller-Madow correction adds ``(m - 1) / (2 N)``, with ``m`` the number of
    occupied cells and ``N`` the number of samples.

    Examples
    --------
    >>> import crossentropy as ce
    >>> print(f"{ce.entropy_from_samples(['a', 'b', 'a', 'b'], base=2):.4f}")
    1.0000
    >>> print(f"{ce.entropy_from_samples([0, 0, 1, 1], [0, 1, 0, 1], base=2):.4f}")
    2.0000
    """
    check_choice("correction", correction, (None, "miller-madow"))
    counts = _counts(samples)
    n = float(counts.sum())
    value = float(joint_entropy(counts / n, validate=False))
    if correction == "miller-madow":
        value += (int((counts > 0).sum()) - 1) / (2 * n)
    b = check_base(base)
    return value if b is None else value / math.log(b)


@refuses_masked_arrays
def mutual_information_from_samples(
    x: Array, y: Array, /, *, base: float | None = None, correction: str | None = None
) -> float:
    """Mutual information of two discrete variables from paired samples.

    The plug-in estimate is the mutual information of the empirical joint
    table (as :func:`sklearn.metrics.mutual_info_score`). With
    ``correction="miller-madow"`` each entropy gets the Miller-Madow bias
    correction ``(m - 1) / (2 N)`` (``m`` occupied cells), which adds
    ``(m_x + m_y - m_xy - 1) / (2 N)`` to the plug-in estimate.

    Parameters
    ----------
    x, y : array_like
        Labels of any kind (numbers or strings), one per sample.
    base : float, optional
        Logarithm base.
    correction : {None, "miller-madow"}
        Bias correction.

    Returns
    -------
    float

    Examples
    --------
    >>> import crossentropy as ce
    >>> labels = [0, 0, 1, 1, 2, 2]
    >>> predictions = [0, 0, 1, 1, 2, 1]
    >>> print(f"{ce.mutual_information_from_samples(labels, predictions):.6f}")
    0.780355
    """
    check_choice("correction", correction, (None, "miller-madow"))
    counts = _counts([x, y])
    n = float(counts.sum())
    value = float(mutual_information(counts / n, validate=False))
    if correction == "miller-madow":
        m_x = int((counts.sum(axis=1) > 0).sum())
        m_y = int((counts.sum(axis=0) > 0).sum())
        m_xy = int((counts > 0).sum())
        value += (m_x + m_y - m_xy - 1) / (2 * n)
    b = check_base(base)
    return value if b is None else value / math.log(b)
