"""Temperature scaling: the one number that makes a classifier's probabilities honest.

A classifier that is right 80 % of the time but says 99 % is *overconfident*;
dividing its logits by a temperature ``T > 1`` softens every prediction, and
``T < 1`` sharpens an underconfident one. :func:`fit_temperature` finds the
``T`` that minimises the mean cross-entropy of ``softmax(logits / T)`` on
labelled rows (Guo et al., 2017), exactly: as a function of the inverse
temperature ``b = 1 / T`` the mean loss::

    L(b) = sum_i w_i (log sum_j exp(b z_ij) - b z_i,y_i) / sum_i w_i

is convex, with derivative ``L'(b) = mean_i(E_softmax(b z_i)[z_i] - z_{i y_i})``
(expected logit minus the label's logit) and second derivative the weighted
mean of the logits' variance under ``softmax(b z_i)``. The minimiser is the
root of ``L'``, found by Newton's method inside a bracket that always
contains it, in float64, to about 1e-12 relative (the rounding of ``L'``
itself is the limit).

:func:`apply_temperature` applies a temperature to new logits or
probabilities. For any ``0 < T < inf`` the argmax, so the accuracy, does not
change.

Binary problems (a 1-D array: the logit or the probability of the positive
class) use ``sigmoid(z / T)``: Platt scaling with its slope only, ``1 / T``,
and no bias term (scikit-learn's ``CalibratedClassifierCV(method="sigmoid")``
fits both, so it can also move the decision threshold).

References
----------
C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern
neural networks", ICML 2017. J. Platt, "Probabilistic outputs for support
vector machines", 1999.

Examples
--------
An overconfident model (its logits are three times too large):

>>> import numpy as np
>>> from crossentropy.calibration import apply_temperature, fit_temperature
>>> rng = np.random.default_rng(0)
>>> true_logits = rng.normal(size=(2000, 4))
>>> labels = np.array([rng.choice(4, p=np.exp(z) / np.exp(z).sum()) for z in true_logits])
>>> T = fit_temperature(labels, logits=3 * true_logits)
>>> print(f"{T:.2f}")
2.87
>>> probs = apply_temperature(3 * true_logits, T, from_logits=True)
>>> bool((probs.argmax(axis=1) == true_logits.argmax(axis=1)).all())
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._namespace import Array, asarray, float_dtypes, namespace, quiet, to_dtype
from ._validation import (
    InputError,
    check_distribution,
    check_logits,
    check_probabilities,
    check_weights,
    to_numpy,
)

__all__ = ["apply_temperature", "fit_temperature"]

_NP = namespace()  # NumPy's array API namespace: the fit runs on the host, in float64

MAX_ITERATIONS = 200
"""Steps before :func:`fit_temperature` stops (it needs about 5 to 15)."""
CHUNK = 1 << 20
"""Logits handled at a time by each step of :func:`fit_temperature` (about 8 MB per temporary array)."""
CONVERGED = 1e-10
"""A Newton step this small, relative to ``1 / T``, ends the search: the step after it would change ``T`` by
about its square, below float64's resolution."""


def fit_temperature(
    labels: Any,
    *,
    logits: Any = None,
    probs: Any = None,
    sample_weight: Any = None,
) -> float:
    """The temperature ``T`` that minimises the mean cross-entropy of ``softmax(logits / T)``.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        The true class of each row: in ``[0, C)``, or 0 and 1 for a binary
        problem. Floats are accepted when they are whole numbers.
    logits : array_like, shape (n, C) or (n,)
        The model's logits, ``-inf`` allowed for a class it rules out. A 1-D
        array is a binary problem: the logit of class 1, and ``sigmoid(z / T)``
        the calibrated probability (``+inf`` and ``-inf`` allowed).
    probs : array_like, shape (n, C) or (n,)
        Probabilities instead of logits (each row summing to 1; a 1-D array:
        the probability of class 1). Their logarithms are the logits, so the
        fitted probabilities are ``p ** (1 / T)``, renormalised.
    sample_weight : array_like, shape (n,), optional
        Non-negative weight of each row (default 1); the loss is the weighted
        mean. Rows of weight 0 take no part.

    Returns
    -------
    float
        ``T > 0``, exact to about 1e-12 relative. Three limits are returned as
        such (:func:`apply_temperature` accepts them):

        - ``0.0`` when every row's label already has the largest logit
          (separable data): sharpening always lowers the loss, which tends
          to 0 as ``T -> 0``; the limit is the hard argmax.
        - ``math.inf`` when the predictions are no better than uniform
          (the mean loss is smallest for ``T -> inf``, uniform predictions).
        - ``1.0`` when no temperature changes any prediction (every row's
          logits are equal, or only one class has a finite logit): the
          predictions are left as they are.

    Raises
    ------
    InputError
        Neither or both of ``logits`` and ``probs``; shapes that do not
        match; labels out of range or not whole numbers; NaN or ``+inf``
        logits; probabilities outside [0, 1] or rows not summing to 1;
        negative, infinite or all-zero weights; or a label whose
        probability is 0 (its loss is infinite at every temperature). The
        message names the argument and the first bad position.

    Notes
    -----
    The fit holds one float64 copy of the logits (or of the logarithms of
    the probabilities) and works through them :data:`CHUNK` at a time.

    In the inverse temperature ``b = 1 / T`` the mean loss is convex and
    ``L'(b)`` runs from ``L'(0+)`` (the mean of ``uniform mean logit - label
    logit``) up to ``L'(inf)`` (the mean of ``max logit - label logit``),
    both computed exactly; the three limits above are the cases where no
    root lies between. Otherwise the root is found by Newton steps on
    ``L'`` with ``L''`` from ``b = 1``, kept inside the bracket of the
    points seen so far (a step that leaves it multiplies or divides ``b``
    by 4 while one end is open, bisects otherwise).

    Examples
    --------
    >>> from crossentropy.calibration import fit_temperature
    >>> labels = [0, 1, 1, 0, 1]
    >>> logits = [[2.0, 0.5], [0.1, 1.2], [3.0, 0.0], [1.5, -0.5], [0.0, 2.5]]
    >>> print(f"{fit_temperature(labels, logits=logits):.6f}")
    2.572246

    A binary model giving the probability of class 1, too timid (right 6
    times out of 8, but never beyond 0.7): ``T < 1`` sharpens it.

    >>> labels = [1, 1, 0, 1, 0, 0, 1, 0]
    >>> print(f"{fit_temperature(labels, probs=[0.6, 0.7, 0.4, 0.55, 0.3, 0.45, 0.45, 0.55]):.6f}")
    0.232181

    Separable rows (each label already the most probable) return the limit 0:

    >>> fit_temperature([1, 0], probs=[0.6, 0.3])
    0.0
    """
    d, y, w = _problem(labels, logits, probs, sample_weight)
    return _solve(d, y, w)


@quiet
def apply_temperature(y_pred: Any, temperature: float, /, *, from_logits: bool = False) -> Array:
    """Calibrated probabilities: ``softmax(logits / T)``, or ``sigmoid(z / T)`` for a 1-D binary array.

    Parameters
    ----------
    y_pred : array_like, shape (n, C) or (n,)
        Logits (``from_logits=True``) or probabilities, as given to
        :func:`fit_temperature`. Classes are along the last axis; a 1-D
        array holds the logit or the probability of class 1 of each row.
    temperature : float
        ``T >= 0``, possibly ``0.0`` (the hard argmax, ties shared equally)
        or ``math.inf`` (uniform over the classes with a finite logit),
        the limits :func:`fit_temperature` may return.
    from_logits : bool
        Whether ``y_pred`` holds logits; otherwise probabilities, whose
        logarithms are the logits (``p ** (1 / T)``, renormalised).

    Returns
    -------
    array
        Probabilities of ``y_pred``'s shape, namespace, device and floating
        dtype: each row of a 2-D array sums to 1; a 1-D array gives the
        probability of class 1.

    Raises
    ------
    InputError
        A temperature that is negative, NaN or not a number; NaN or ``+inf``
        logits of a 2-D array, NaN logits of a 1-D one; probabilities
        outside [0, 1] or (2-D) rows not summing to 1; a 0-D array.

    Examples
    --------
    >>> import numpy as np
    >>> from crossentropy.calibration import apply_temperature
    >>> print(apply_temperature(np.array([[2.0, 0.0]]), 2.0, from_logits=True).round(6))
    [[0.731059 0.268941]]
    >>> print(apply_temperature(np.array([0.9, 0.5, 0.2]), 0.5).round(6))
    [0.987805 0.5      0.058824]
    """
    t = _check_temperature(temperature)
    xp = namespace(y_pred)
    x = asarray(xp, y_pred, "y_pred")
    if x.ndim not in (1, 2):
        raise InputError(f"y_pred must be 1-D (binary) or 2-D (rows, classes); got shape {tuple(x.shape)}")
    compute, out = float_dtypes(xp, x)
    xf = to_dtype(xp, x, compute)
    binary = x.ndim == 1
    if from_logits:
        check_logits(xp, xf, "y_pred", None if binary else 1)
        z = _binary_logits(xp, xf) if binary else xf
    else:
        check_probabilities(xp, xf, "y_pred")
        if not binary:
            check_distribution(xp, xf, "y_pred", 1, _own_float(xp, x, compute))
        z = _binary_log_probs(xp, xf) if binary else xp.log(xf)
    result = _softmax(xp, z, t)
    return to_dtype(xp, result[..., 1] if binary else result, out)


def _binary_logits(xp: Any, z: Array) -> Array:
    """Two-class logits of ``sigmoid(z)``, ``[0, z]`` shifted so the larger is 0 (``z = +-inf`` stays exact)."""
    return xp.stack([xp.where(z > 0, -z, 0.0), xp.where(z > 0, 0.0, z)], axis=-1)


def _binary_log_probs(xp: Any, p: Array) -> Array:
    """Two-class logits of the probability ``p`` of class 1: ``[log(1 - p), log p]``."""
    return xp.stack([xp.log1p(-p), xp.log(p)], axis=-1)


def _own_float(xp: Any, x: Array, compute: Any) -> Any:
    """The dtype whose precision sets the row-sum tolerance: the input's own floating dtype."""
    return x.dtype if xp.isdtype(x.dtype, "real floating") else compute


def _softmax(xp: Any, z: Array, t: float) -> Array:
    """``softmax(z / t)`` along the last axis, with the limits ``t = 0`` and ``t = inf``."""
    top = xp.max(z, axis=-1, keepdims=True)
    if t == 0.0:
        e = xp.astype(z == top, z.dtype)
    elif t == math.inf:
        e = xp.astype(z > -math.inf, z.dtype)
    else:
        e = xp.exp((z - top) / t)
    return e / xp.sum(e, axis=-1, keepdims=True)


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise InputError(f"temperature must be a number >= 0 (or math.inf), got {temperature!r}")
    t = float(temperature)
    if not t >= 0:
        raise InputError(f"temperature = {temperature!r}; a temperature must be >= 0 (0 and inf are the limits)")
    return t


# --- the fitting problem -------------------------------------------------------------------------------


def _host(value: object, name: str) -> np.ndarray[Any, Any]:
    """``value`` as a float64 NumPy array (the fit is a host computation that returns one number)."""
    xp = namespace(value)
    x = asarray(xp, value, name)
    if xp.isdtype(x.dtype, "real floating") and xp.finfo(x.dtype).bits < 32:
        x = xp.astype(x, xp.float32)  # float16 and bfloat16, which NumPy may not read
    return np.asarray(to_numpy(x), dtype=np.float64)


def _checked(value: object, name: str, from_logits: bool) -> np.ndarray[Any, Any]:
    """Logits or probabilities, checked in their own namespace and dtype (its precision sets the row-sum
    tolerance), as a float64 NumPy array."""
    xp = namespace(value)
    x = asarray(xp, value, name)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise InputError(f"{name} must be 1-D (binary) or 2-D (rows, classes) with at least one row; "
                         f"got shape {tuple(x.shape)}")  # fmt: skip
    if x.ndim == 2 and x.shape[1] < 2:
        raise InputError(f"{name} has {x.shape[1]} column(s); give at least 2 classes, or a 1-D array for a "
                         f"binary problem (the logit or probability of class 1)")  # fmt: skip
    compute, _ = float_dtypes(xp, x)
    xf = to_dtype(xp, x, compute)
    if from_logits:
        check_logits(xp, xf, name, None if x.ndim == 1 else 1)
    else:
        check_probabilities(xp, xf, name)
        if x.ndim == 2:
            check_distribution(xp, xf, name, 1, _own_float(xp, x, compute))
    return np.asarray(to_numpy(xf), dtype=np.float64)


@quiet
def _problem(
    labels: object, logits: object, probs: object, sample_weight: object
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Checked rows: logits shifted so each row's largest is 0 (``-inf`` kept), labels, weights.

    Rows of weight 0 and rows that no temperature changes (all finite logits
    equal) are dropped: they add a constant to the loss and nothing to its
    derivative.
    """
    if (logits is None) == (probs is None):
        raise InputError("give exactly one of logits= and probs=")
    name = "logits" if probs is None else "probs"
    x = _checked(logits if probs is None else probs, name, from_logits=probs is None)
    n, classes = x.shape[0], (2 if x.ndim == 1 else x.shape[1])
    y = _labels(labels, n, classes, binary=x.ndim == 1)
    w = np.ones(n) if sample_weight is None else _host(sample_weight, "sample_weight")
    if w.shape != (n,):
        raise InputError(f"sample_weight must have shape ({n},), one weight per row; got {w.shape}")
    check_weights(_NP, w, "sample_weight")
    if not w.sum() > 0:
        raise InputError("sample_weight: every weight is 0; at least one row needs a positive weight")
    if probs is None:
        z = _binary_logits(_NP, x) if x.ndim == 1 else x
    else:
        z = _binary_log_probs(_NP, x) if x.ndim == 1 else np.log(x)
    d = z - z.max(axis=1, keepdims=True)
    label_value = d[np.arange(n), y]
    impossible = (label_value == -math.inf) & (w > 0)
    if impossible.any():
        i = int(np.argmax(impossible))
        where = f"{name}[{i}]" if x.ndim == 1 else f"{name}[{i}, {y[i]}]"
        raise InputError(f"{where}: the label of row {i} (class {y[i]}) has probability 0, so its loss is infinite "
                         f"at every temperature; no temperature can be fitted")  # fmt: skip
    spread = ((d < 0) & (d > -math.inf)).any(axis=1)  # some finite logit below the row's largest
    keep = (w > 0) & spread
    return (d, y, w) if keep.all() else (d[keep], y[keep], w[keep])


def _labels(labels: object, n: int, classes: int, *, binary: bool) -> np.ndarray[Any, Any]:
    y = _host(labels, "labels")
    if y.shape != (n,):
        raise InputError(f"labels must have shape ({n},), one label per row; got {y.shape}")
    bad = ~((y >= 0) & (y < classes) & (y == np.floor(y)))
    if bad.any():
        i = int(np.argmax(bad))
        allowed = "0 or 1 (a 1-D array is a binary problem)" if binary else f"whole numbers in [0, {classes})"
        raise InputError(f"labels[{i}] = {y[i]:.10g}; labels must be {allowed}")
    return y.astype(np.intp)


def _moments(d: np.ndarray[Any, Any], b: float) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Mean and variance of each row's logits under ``softmax(b d)`` (``b > 0``; ``d <= 0``, max 0)."""
    s = np.exp(b * d)  # -inf -> 0; the largest entry is exp(0) = 1, so no overflow
    s /= s.sum(axis=1, keepdims=True)
    finite = np.where(s > 0, d, 0.0)  # no 0 * -inf: a masked class has weight 0 and adds nothing
    mean = np.einsum("ij,ij->i", s, finite)
    finite -= mean[:, None]
    finite *= finite
    return mean, np.einsum("ij,ij->i", s, finite)


@quiet
def _solve(d: np.ndarray[Any, Any], y: np.ndarray[Any, Any], w: np.ndarray[Any, Any]) -> float:
    """The root of ``L'(b)``, as ``T = 1 / b``, or one of the limits 0, inf, 1 (see fit_temperature)."""
    if d.shape[0] == 0:
        return 1.0
    w = w / w.sum()
    label = d[np.arange(d.shape[0]), y]
    rows = max(1, CHUNK // d.shape[1])  # rows at a time: the temporaries stay near CHUNK elements

    def slope(b: float) -> tuple[float, float]:
        g = h = 0.0
        for start in range(0, d.shape[0], rows):
            part = slice(start, start + rows)
            mean, var = _moments(d[part], b)
            g += float(w[part] @ (mean - label[part]))
            h += float(w[part] @ var)
        return g, h

    uniform_mean = (
        np.concatenate(  # each row's mean finite logit: its softmax-weighted mean as b -> 0
            [
                np.where(d[i : i + rows] > -math.inf, d[i : i + rows], 0.0).sum(axis=1)
                for i in range(0, d.shape[0], rows)
            ]
        )
        / (d > -math.inf).sum(axis=1)
    )
    at_zero = float(w @ (uniform_mean - label))
    at_infinity = float(w @ -label)  # each row's largest logit is 0
    if at_infinity <= 0.0:
        return 0.0
    if at_zero >= 0.0:
        return math.inf
    # L' < 0 at 0 and > 0 at infinity: (0, inf) brackets the root. Newton steps inside the bracket; a step that
    # leaves it is replaced by growing or shrinking b fourfold (one end still open) or by bisection.
    b, lo, hi = 1.0, 0.0, math.inf
    for _ in range(MAX_ITERATIONS):
        g, h = slope(b)
        if g == 0.0:
            break
        if g < 0:
            lo = b
        else:
            hi = b
        newton = b - g / h if h > 0 else math.nan
        if abs(newton - b) <= CONVERGED * b:  # quadratic convergence: the next step would be about its square
            b = min(max(newton, lo), hi)
            break
        if lo < newton < hi:
            b = newton
        elif hi - lo <= 4 * np.finfo(np.float64).eps * hi:
            break
        elif hi == math.inf:
            b *= 4.0
        elif lo == 0.0:
            b /= 4.0
        else:
            b = math.sqrt(lo * hi) if hi > 4 * lo else 0.5 * (lo + hi)
        if not 1e-300 < b < 1e300:  # only where L' rounds to 0 over hundreds of decades
            return 0.0 if b >= 1e300 else math.inf
    return 1.0 / b
