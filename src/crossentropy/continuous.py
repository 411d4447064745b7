"""Entropy, cross-entropy and KL divergence of continuous distributions.

The sums of the discrete case become integrals:
``H(P) = -int p log p``, ``H(P, Q) = -int p log q``,
``KL(P || Q) = int p log(p / q) = H(P, Q) - H(P)``.
Distributions are SciPy frozen distributions (``scipy.stats.norm(0, 1)``).

Each function returns an :class:`Estimate`: the value, an error bound and the
method used. Closed forms are used where they exist (normal, multivariate
normal, exponential, gamma, beta, uniform, Laplace; error 0), numerical
integration otherwise (``scipy.integrate.quad``'s error estimate; a
:class:`IntegrationWarning` when it exceeds ``tol``), and Monte Carlo with a
standard error when asked for or when only samples and log-densities are
known (:func:`monte_carlo_cross_entropy`).

Differential entropy, unlike discrete entropy, can be negative: a uniform
distribution on an interval of length 1/2 has entropy ``-log 2``. It is not
invariant to a change of variable; KL divergence is.

SciPy is required (it is imported when a function here is called).

Examples
--------
>>> from scipy import stats
>>> import crossentropy.continuous as cc
>>> p, q = stats.norm(0, 1), stats.norm(1, 2)
>>> print(f"{cc.entropy(p).value:.10f}")
1.4189385332
>>> h_pq, kl = cc.cross_entropy(p, q), cc.kl_divergence(p, q)
>>> print(f"{h_pq.value:.10f} = {cc.entropy(p).value:.10f} + {kl.value:.10f}")
1.8620857138 = 1.4189385332 + 0.4431471806
>>> print(cc.entropy(stats.uniform(0, 0.5)).value)  # negative: log(1/2)
-0.6931471805599453
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._validation import InputError, check_base, check_choice

__all__ = [
    "Estimate",
    "IntegrationWarning",
    "cross_entropy",
    "entropy",
    "kl_divergence",
    "monte_carlo_cross_entropy",
    "monte_carlo_kl_divergence",
    "parse_distribution",
]

METHODS = ("auto", "closed-form", "quad", "monte-carlo")


class Estimate(NamedTuple):
    """A value with its error bound and how it was obtained.

    ``error`` is 0 for a closed form, ``quad``'s absolute error estimate for
    numerical integration, and one standard error for Monte Carlo.
    ``float(estimate)`` is the value.
    """

    value: float
    error: float
    method: str

    def __float__(self) -> float:
        return self.value


class IntegrationWarning(UserWarning):
    """Numerical integration's error estimate exceeds the requested tolerance."""


# --- what a frozen distribution is ---------------------------------------------------------------------


def _frozen(dist: Any, name: str) -> tuple[str, tuple[float, ...], float, float]:
    """``(family, shapes, loc, scale)`` of a univariate frozen distribution."""
    family = getattr(getattr(dist, "dist", None), "name", None)
    if family is None or not hasattr(dist, "logpdf"):
        raise InputError(f"{name} must be a frozen SciPy continuous distribution such as scipy.stats.norm(0, 1)")
    shapes, loc, scale = dist.dist._parse_args(*dist.args, **dist.kwds)
    return str(family), tuple(float(s) for s in shapes), float(loc), float(scale)


def _is_mvn(dist: Any) -> bool:
    return type(dist).__name__ == "multivariate_normal_frozen"


def _scale(estimate: Estimate, base: float | None) -> Estimate:
    b = check_base(base)
    if b is None:
        return estimate
    factor = math.log(b)
    return Estimate(estimate.value / factor, estimate.error / factor, estimate.method)


# --- closed forms --------------------------------------------------------------------------------------


def _closed_entropy(dist: Any) -> float | None:
    from scipy import special

    if _is_mvn(dist):
        k = dist.mean.size
        _, logdet = np.linalg.slogdet(np.atleast_2d(dist.cov))
        return float(0.5 * (k * math.log(2 * math.pi * math.e) + logdet))
    family, shapes, _, s = _frozen(dist, "p")
    if family == "norm":
        return 0.5 * math.log(2 * math.pi * math.e * s * s)
    if family == "expon":
        return 1 + math.log(s)
    if family == "uniform":
        return math.log(s)
    if family == "laplace":
        return 1 + math.log(2 * s)
    if family == "gamma":
        (a,) = shapes
        return float(a + math.log(s) + special.gammaln(a) + (1 - a) * special.digamma(a))
    if family == "beta":
        a, b = shapes
        return float(
            special.betaln(a, b)
            - (a - 1) * special.digamma(a)
            - (b - 1) * special.digamma(b)
            + (a + b - 2) * special.digamma(a + b)
            + math.log(s)
        )
    return None


def _closed_cross_entropy(p: Any, q: Any) -> float | None:
    """``-E_p[log q]`` in closed form, ``inf`` when p has mass where q has none, None if unknown."""
    from scipy import special

    if _is_mvn(p) and _is_mvn(q):
        mp, mq = np.atleast_1d(p.mean), np.atleast_1d(q.mean)
        if mp.size != mq.size:
            raise InputError(f"p has dimension {mp.size} but q has {mq.size}")
        cp, cq = np.atleast_2d(p.cov), np.atleast_2d(q.cov)
        _, logdet = np.linalg.slogdet(cq)
        d = mq - mp
        inv = np.linalg.inv(cq)
        return float(0.5 * (mp.size * math.log(2 * math.pi) + logdet + np.trace(inv @ cp) + d @ inv @ d))
    if _is_mvn(p) or _is_mvn(q):
        return None
    fp, sp_, lp, s_p = _frozen(p, "p")
    fq, sq_, lq, s_q = _frozen(q, "q")
    if fp != fq:
        return None
    if fp == "norm":
        return 0.5 * math.log(2 * math.pi * s_q * s_q) + (s_p * s_p + (lp - lq) ** 2) / (2 * s_q * s_q)
    if fp == "laplace":
        gap = abs(lp - lq)
        return math.log(2 * s_q) + (s_p * math.exp(-gap / s_p) + gap) / s_q
    if fp == "uniform":
        inside = lq <= lp and lp + s_p <= lq + s_q
        return math.log(s_q) if inside else math.inf
    if fp == "expon":
        return math.log(s_q) + (lp + s_p - lq) / s_q if lq <= lp else math.inf
    if fp == "gamma":
        if lp != lq:
            return math.inf if lq > lp else None
        (ap,), (aq,) = sp_, sq_
        mean_log = special.digamma(ap) + math.log(s_p)
        return float(special.gammaln(aq) + aq * math.log(s_q) - (aq - 1) * mean_log + ap * s_p / s_q)
    if fp == "beta":
        if (lp, s_p) != (lq, s_q):
            return None
        (ap, bp), (aq, bq) = sp_, sq_
        e_log_x = special.digamma(ap) - special.digamma(ap + bp)
        e_log_1mx = special.digamma(bp) - special.digamma(ap + bp)
        return float(special.betaln(aq, bq) - (aq - 1) * e_log_x - (bq - 1) * e_log_1mx + math.log(s_q))
    return None


# --- numerical integration and Monte Carlo -----------------------------------------------------------------


def _support_inside(p: Any, q: Any) -> bool:
    lo_p, hi_p = (float(v) for v in p.support())
    lo_q, hi_q = (float(v) for v in q.support())
    return lo_q <= lo_p and hi_p <= hi_q


def _quad(integrand: Callable[[float], float], p: Any, tol: float) -> Estimate:
    from scipy import integrate

    lo, hi = (float(v) for v in p.support())
    # split at the median so quad sees the bulk of the mass on both sides
    mid = float(p.median())
    total, error = 0.0, 0.0
    for a, b in ((lo, mid), (mid, hi)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value, err = integrate.quad(integrand, a, b, limit=200, epsabs=tol / 10, epsrel=1e-12)
        total += value
        error += err
    if not error <= tol:
        warnings.warn(
            f"numerical integration error estimate {error:.3g} exceeds tol={tol:.3g}", IntegrationWarning, stacklevel=3
        )
    return Estimate(total, error, "quad")


def _xlogy_density(p: Any, q: Any) -> Callable[[float], float]:
    """``-p(x) log q(x)``; called only where q's support covers p's.

    Some SciPy log-densities are ``log(pdf)`` and give ``-inf`` far in the
    tails where the density underflows; there ``p(x)`` has underflowed too,
    so the term is taken as 0.
    """

    def integrand(x: float) -> float:
        density = float(p.pdf(x))
        log_q = float(q.logpdf(x))
        return 0.0 if density == 0 or log_q == -math.inf else -density * log_q

    return integrand


def _samples(p: Any, samples: int, seed: int | None) -> np.ndarray[Any, Any]:
    if samples < 2:
        raise InputError(f"samples must be at least 2, got {samples}")
    return np.asarray(p.rvs(size=samples, random_state=np.random.default_rng(seed)))


def _mean_with_error(values: np.ndarray[Any, Any]) -> Estimate:
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        raise InputError("a Monte-Carlo estimate needs at least 2 samples")
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size)), "monte-carlo")


# --- the public functions ------------------------------------------------------------------------------------


def _check_method(method: str) -> None:
    check_choice("method", method, METHODS)


def entropy(
    p: Any,
    /,
    *,
    base: float | None = None,
    method: str = "auto",
    tol: float = 1e-8,
    samples: int = 100_000,
    seed: int | None = 0,
) -> Estimate:
    """Differential entropy ``H(P) = -int p(x) log p(x) dx``.

    Parameters
    ----------
    p : frozen SciPy distribution
        Univariate (``scipy.stats.norm(0, 1)``) or ``multivariate_normal``.
    base : float, optional
        Logarithm base (``None`` nats, ``2`` bits).
    method : {"auto", "closed-form", "quad", "monte-carlo"}
        ``auto`` uses the closed form if known, else ``quad``.
    tol : float
        Absolute error above which numerical integration warns.
    samples, seed : int
        Monte-Carlo sample size and seed.

    Returns
    -------
    Estimate
        Can be negative (a density above 1 on a short interval).

    Raises
    ------
    InputError
        For something that is not a frozen distribution, or
        ``method="closed-form"`` for a family without one.
    """
    _check_method(method)
    if method in ("auto", "closed-form"):
        value = _closed_entropy(p)
        if value is not None:
            return _scale(Estimate(value, 0.0, "closed-form"), base)
        if method == "closed-form":
            raise InputError(f"no closed-form entropy for {_name(p)}")
    if method == "monte-carlo":
        return _scale(_mean_with_error(-p.logpdf(_samples(p, samples, seed))), base)
    _frozen(p, "p")
    return _scale(_quad(_xlogy_density(p, p), p, tol), base)


def cross_entropy(
    p: Any,
    q: Any,
    /,
    *,
    base: float | None = None,
    method: str = "auto",
    tol: float = 1e-8,
    samples: int = 100_000,
    seed: int | None = 0,
) -> Estimate:
    """Cross-entropy ``H(P, Q) = -int p(x) log q(x) dx``.

    It is ``inf`` when ``P`` puts mass where ``Q`` has density 0 (different
    supports). Arguments as :func:`entropy`; the Monte-Carlo estimate draws
    from ``P``.

    Examples
    --------
    >>> from scipy import stats
    >>> import crossentropy.continuous as cc
    >>> cc.cross_entropy(stats.uniform(0, 2), stats.uniform(0, 1)).value
    inf
    """
    _check_method(method)
    if _is_mvn(p) != _is_mvn(q):
        raise InputError("p and q must both be univariate or both multivariate normal")
    if method in ("auto", "closed-form"):
        value = _closed_cross_entropy(p, q)
        if value is not None:
            return _scale(Estimate(value, 0.0, "closed-form"), base)
        if method == "closed-form":
            raise InputError(f"no closed-form cross-entropy for {_name(p)} and {_name(q)}")
    if method == "monte-carlo":
        return _scale(_mean_with_error(-q.logpdf(_samples(p, samples, seed))), base)
    _frozen(p, "p")
    _frozen(q, "q")
    if not _support_inside(p, q):
        return _scale(Estimate(math.inf, 0.0, "support"), base)
    return _scale(_quad(_xlogy_density(p, q), p, tol), base)


def kl_divergence(
    p: Any,
    q: Any,
    /,
    *,
    base: float | None = None,
    method: str = "auto",
    tol: float = 1e-8,
    samples: int = 100_000,
    seed: int | None = 0,
) -> Estimate:
    """KL divergence ``KL(P || Q) = int p log(p / q) = H(P, Q) - H(P)``, never negative.

    Arguments as :func:`cross_entropy`.

    Examples
    --------
    >>> from scipy import stats
    >>> import crossentropy.continuous as cc
    >>> print(f"{cc.kl_divergence(stats.expon(scale=1), stats.expon(scale=2)).value:.10f}")
    0.1931471806
    """
    _check_method(method)
    if method == "monte-carlo":
        x = _samples(p, samples, seed)
        return _scale(_mean_with_error(p.logpdf(x) - q.logpdf(x)), base)
    if method == "quad" or (method == "auto" and (_closed_cross_entropy(p, q) is None or _closed_entropy(p) is None)):
        _frozen(p, "p")
        _frozen(q, "q")
        if not _support_inside(p, q):
            return _scale(Estimate(math.inf, 0.0, "support"), base)

        def integrand(x: float) -> float:
            lp, lq = float(p.logpdf(x)), float(q.logpdf(x))
            return 0.0 if lp == -math.inf or lq == -math.inf else math.exp(lp) * (lp - lq)

        return _scale(_quad(integrand, p, tol), base)
    h_pq = cross_entropy(p, q, method="closed-form")
    h_p = entropy(p, method="closed-form")
    value = h_pq.value - h_p.value if math.isfinite(h_pq.value) else math.inf
    return _scale(Estimate(max(value, 0.0), 0.0, "closed-form"), base)


def monte_carlo_cross_entropy(
    samples_p: Any, logpdf_q: Callable[[Any], Any], /, *, base: float | None = None
) -> Estimate:
    """``H(P, Q)`` estimated from samples of ``P`` and the log-density of ``Q``.

    The mean of ``-log q(x_i)`` with its standard error; for when ``P`` is only
    known through samples (data, a simulator).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> import crossentropy.continuous as cc
    >>> x = np.random.default_rng(0).normal(size=200_000)
    >>> est = cc.monte_carlo_cross_entropy(x, stats.norm(1, 2).logpdf)
    >>> abs(est.value - cc.cross_entropy(stats.norm(0, 1), stats.norm(1, 2)).value) < 4 * est.error
    True
    """
    return _scale(_mean_with_error(-np.asarray(logpdf_q(np.asarray(samples_p)), dtype=float)), base)


def monte_carlo_kl_divergence(
    samples_p: Any, logpdf_p: Callable[[Any], Any], logpdf_q: Callable[[Any], Any], /, *, base: float | None = None
) -> Estimate:
    """``KL(P || Q)`` from samples of ``P`` and both log-densities: the mean of ``log p - log q``."""
    x = np.asarray(samples_p)
    return _scale(_mean_with_error(np.asarray(logpdf_p(x), dtype=float) - np.asarray(logpdf_q(x), dtype=float)), base)


def _name(dist: Any) -> str:
    if _is_mvn(dist):
        return "multivariate_normal"
    return str(getattr(getattr(dist, "dist", None), "name", type(dist).__name__))


def parse_distribution(text: str) -> Any:
    """A frozen SciPy distribution from text like ``norm(0, 1)`` or ``gamma(2, scale=3)``.

    A small parser, never ``eval``: a distribution name of
    :mod:`scipy.stats` followed by numeric positional and ``key=value``
    arguments.

    Examples
    --------
    >>> from crossentropy.continuous import parse_distribution
    >>> d = parse_distribution("norm(1, 2)")
    >>> float(d.mean()), float(d.std())
    (1.0, 2.0)
    """
    import re

    from scipy import stats

    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*", text)
    if not match:
        raise InputError(f"cannot read distribution {text!r}: write it like norm(0, 1) or gamma(2, scale=3)")
    name, inner = match.groups()
    family = getattr(stats, name, None)
    if not isinstance(family, stats.rv_continuous):
        raise InputError(f"unknown continuous distribution {name!r} in {text!r} (a scipy.stats name like norm, expon)")
    args: list[float] = []
    kwargs: dict[str, float] = {}
    for part in [t.strip() for t in inner.split(",") if t.strip()]:
        key, _, value = part.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{text!r}: {value.strip()!r} is not a number") from None
        if key:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                raise InputError(f"{text!r}: {key.strip()!r} is not an argument name")
            kwargs[key.strip()] = number
        elif kwargs:
            raise InputError(f"{text!r}: a positional argument follows a keyword argument")
        else:
            args.append(number)
    try:
        frozen = family(*args, **kwargs)
        shapes, loc, scale = frozen.dist._parse_args(*frozen.args, **frozen.kwds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{text!r}: {exc}") from None
    if not (scale > 0 and np.isfinite(loc) and bool(np.all(frozen.dist._argcheck(*shapes)))):
        raise InputError(f"{text!r}: invalid parameters for {name} (scale must be > 0, shapes in range)")
    return frozen
