"""Entropy, cross-entropy and KL divergence of continuous distributions.

The sums of the discrete case become integrals:
``H(P) = -int p log p``, ``H(P, Q) = -int p log q``,
``KL(P || Q) = int p log(p / q) = H(P, Q) - H(P)``.
Distributions are SciPy frozen distributions (``scipy.stats.norm(0, 1)``).

Each function returns an :class:`Estimate`: the value, an error bound, the
method used and, for an infinite value, the reason. Closed forms are used
where they exist (normal, multivariate normal, exponential, gamma, beta,
uniform, Laplace, Cauchy, Student's t; any ``P`` against a normal, exponential
or uniform ``Q`` from ``P``'s moments; error 0), numerical integration
otherwise (``scipy.integrate.quad`` piece by piece, so that a divergent
integral is told from a convergent one; :class:`IntegrationError` when the
error estimate exceeds ``tol``), and Monte Carlo with a standard error when
asked for or when only samples and log-densities are known
(:func:`monte_carlo_cross_entropy`).

Cross-entropy and KL divergence are ``inf`` when ``P`` puts mass where ``Q``
has none (method ``"support"``) and when the integral diverges (method
``"divergent"``): a Cauchy ``P`` against a normal ``Q``, whose ``-log q``
grows as ``x**2`` while ``P`` has no variance. A KL divergence is never
negative; a numerical result below 0 by more than its error bound raises.

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
>>> kl = cc.kl_divergence(stats.cauchy(0, 1), stats.norm(0, 1))  # a Cauchy has no variance
>>> print(kl.value, kl.method, "|", kl.reason)
inf divergent | -log q grows as x**2 but P has no finite variance
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._namespace import refuses_masked_arrays
from ._quadrature import IntegrationError, integrate
from ._validation import InputError, check_base, check_choice

__all__ = [
    "Estimate",
    "IntegrationError",
    "cross_entropy",
    "entropy",
    "kl_divergence",
    "monte_carlo_cross_entropy",
    "monte_carlo_kl_divergence",
    "parse_distribution",
]

METHODS = ("auto", "closed-form", "quad", "monte-carlo")


class Estimate(NamedTuple):
    """A value with its error bound, how it was obtained and, when it is infinite, why.

    ``error`` is 0 for a closed form, the sum of ``quad``'s absolute error
    estimates for numerical integration, and one standard error for Monte
    Carlo. ``method`` is ``"closed-form"``, ``"quad"``, ``"monte-carlo"``,
    ``"support"`` (``inf``: ``P`` has mass where ``Q``'s density is 0) or
    ``"divergent"`` (``inf``: the integral diverges; ``reason`` says how it
    was found). ``float(estimate)`` is the value.
    """

    value: float
    error: float
    method: str
    reason: str = ""

    def __float__(self) -> float:
        return self.value


# --- what a frozen distribution is ---------------------------------------------------------------------


def _frozen(dist: Any, name: str) -> tuple[str, tuple[float, ...], float, float]:
    """``(family, shapes, loc, scale)`` of a univariate frozen distribution with valid parameters."""
    family = getattr(getattr(dist, "dist", None), "name", None)
    if family is None or not hasattr(dist, "logpdf") or not hasattr(dist.dist, "_parse_args"):
        raise InputError(f"{name} must be a frozen SciPy continuous distribution such as scipy.stats.norm(0, 1)")
    try:
        shapes, loc, scale = dist.dist._parse_args(*dist.args, **dist.kwds)
        valid = bool(np.all(dist.dist._argcheck(*shapes)))
        values = tuple(float(s) for s in shapes), float(loc), float(scale)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: {exc}") from None
    if not (valid and values[2] > 0 and math.isfinite(values[2]) and math.isfinite(values[1])):
        raise InputError(
            f"{name}: invalid parameters for {family}{_arguments(dist)} (loc finite, scale > 0, shapes in range)"
        )
    return str(family), *values


def _arguments(dist: Any) -> str:
    listed = [str(a) for a in dist.args] + [f"{k}={v}" for k, v in dist.kwds.items()]
    return f"({', '.join(listed)})"


def _is_mvn(dist: Any) -> bool:
    return type(dist).__name__ == "multivariate_normal_frozen"


def _scale(estimate: Estimate, base: float | None) -> Estimate:
    b = check_base(base)
    if b is None:
        return estimate
    factor = math.log(b)
    return estimate._replace(value=estimate.value / factor, error=estimate.error / factor)


# --- closed forms --------------------------------------------------------------------------------------

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _closed_entropy(dist: Any) -> float | None:
    from scipy import special

    if _is_mvn(dist):
        k = dist.mean.size
        _, logdet = np.linalg.slogdet(np.atleast_2d(dist.cov))
        return float(0.5 * (k * math.log(2 * math.pi * math.e) + logdet))
    family, shapes, _, s = _frozen(dist, "p")
    log_s = math.log(s)  # never s * s: a scale of 1e-320 squares to 0
    if family == "norm":
        return HALF_LOG_2PI + 0.5 + log_s
    if family == "expon":
        return 1 + log_s
    if family == "uniform":
        return log_s
    if family == "laplace":
        return 1 + math.log(2) + log_s
    if family == "cauchy":
        return math.log(4 * math.pi) + log_s
    if family == "t":  # SciPy's closed form (an asymptotic series for df >= 100, where the digammas cancel)
        return float(dist.entropy())
    if family == "gamma":
        (a,) = shapes
        return float(a + log_s + special.gammaln(a) + (1 - a) * special.digamma(a))
    if family == "beta":
        a, b = shapes
        return float(
            special.betaln(a, b)
            - (a - 1) * special.digamma(a)
            - (b - 1) * special.digamma(b)
            + (a + b - 2) * special.digamma(a + b)
            + log_s
        )
    return None


def _moments(dist: Any) -> tuple[float, float] | None:
    """Mean and variance of ``dist`` from its family's formulas (``_stats``), never by integration.

    The variance is ``inf`` when the second moment is infinite (SciPy gives
    ``inf``, or ``nan`` for the mean of a Cauchy-like law); None when the
    family has no formulas or leaves the answer open (a ``nan`` variance
    beside a finite mean).
    """
    from scipy import stats

    if type(dist.dist)._stats is stats.rv_continuous._stats:
        return None
    _, shapes, loc, scale = _frozen(dist, "p")
    try:
        with np.errstate(all="ignore"):
            mu, mu2 = dist.dist._stats(*shapes)[:2]
    except (TypeError, ValueError, ArithmeticError):
        return None
    if mu is None or mu2 is None:
        return None
    mean, var = float(mu), float(mu2)
    if not math.isfinite(mean) or var == math.inf:
        return mean, math.inf
    if not math.isfinite(var):
        return None
    return loc + scale * mean, scale * scale * var


def _closed(value: float) -> Estimate:
    """A closed form's value; one beyond the floating-point range says so (it is finite, not divergent)."""
    reason = "finite, but beyond the largest floating-point number" if math.isinf(value) else ""
    return Estimate(value, 0.0, "closed-form", reason)


def _infinite(method: str, reason: str) -> Estimate:
    return Estimate(math.inf, 0.0, method, reason)


def _support_reason(p: Any, q: Any) -> str:
    lo_p, hi_p = (float(v) for v in p.support())
    lo_q, hi_q = (float(v) for v in q.support())
    return f"P has mass where Q's density is 0: its support [{lo_p:g}, {hi_p:g}] is not inside [{lo_q:g}, {hi_q:g}]"


def _against_family_of_q(p: Any, q: Any) -> Estimate | None:
    """``H(P, Q)`` for any ``P`` against a uniform, normal or exponential ``Q`` (P inside Q's support).

    ``-log q`` is then a constant, a quadratic or a linear function of ``x``,
    so ``H(P, Q)`` needs only ``P``'s mean and variance; it is infinite when
    they are.
    """
    fq, _, lq, s_q = _frozen(q, "q")
    if fq == "uniform":
        return _closed(math.log(s_q))
    if fq not in ("norm", "expon"):
        return None
    moments = _moments(p)
    if moments is None:
        return None
    mean, var = moments
    if fq == "norm":
        if var == math.inf:
            return _infinite("divergent", "-log q grows as x**2 but P has no finite variance")
        sd, gap = math.sqrt(var) / s_q, (mean - lq) / s_q
        return _closed(HALF_LOG_2PI + math.log(s_q) + 0.5 * (sd * sd + gap * gap))
    if not math.isfinite(mean):
        return _infinite("divergent", "-log q grows as x but P has no finite mean")
    return _closed(math.log(s_q) + (mean - lq) / s_q)


def _mvn_cross_entropy(p: Any, q: Any) -> float:
    mp, mq = np.atleast_1d(p.mean), np.atleast_1d(q.mean)
    if mp.size != mq.size:
        raise InputError(f"p has dimension {mp.size} but q has {mq.size}")
    cp, cq = np.atleast_2d(p.cov), np.atleast_2d(q.cov)
    _, logdet = np.linalg.slogdet(cq)
    d = mq - mp
    inv = np.linalg.inv(cq)
    return float(0.5 * (mp.size * math.log(2 * math.pi) + logdet + np.trace(inv @ cp) + d @ inv @ d))


def _closed_cross_entropy(p: Any, q: Any) -> Estimate | None:
    """``-E_p[log q]`` in closed form, ``inf`` (with the reason) when it diverges, None if unknown."""
    from scipy import special

    if _is_mvn(p) and _is_mvn(q):
        return _closed(_mvn_cross_entropy(p, q))
    if _is_mvn(p) or _is_mvn(q):
        return None
    fp, sp_, lp, s_p = _frozen(p, "p")
    fq, sq_, lq, s_q = _frozen(q, "q")
    if not _support_inside(p, q):
        return _infinite("support", _support_reason(p, q))
    general = _against_family_of_q(p, q)
    if general is not None or fp != fq:
        return general
    value: float | None = None
    if fp == "laplace":
        gap = abs(lp - lq)
        value = math.log(2) + math.log(s_q) + (s_p * math.exp(-gap / s_p) + gap) / s_q
    elif fp == "cauchy":  # KL(P || Q) = log(((s_p + s_q)**2 + (lp - lq)**2) / (4 s_p s_q)), plus H(P) = log(4 pi s_p)
        spread, gap = (s_p + s_q) / s_q, (lp - lq) / s_q
        value = math.log(math.pi) + math.log(s_q) + math.log(spread * spread + gap * gap)
    elif fp == "gamma" and lp == lq:
        (ap,), (aq,) = sp_, sq_
        mean_log = special.digamma(ap) + math.log(s_p)
        value = float(special.gammaln(aq) + aq * math.log(s_q) - (aq - 1) * mean_log + ap * s_p / s_q)
    elif fp == "beta" and (lp, s_p) == (lq, s_q):
        (ap, bp), (aq, bq) = sp_, sq_
        e_log_x = special.digamma(ap) - special.digamma(ap + bp)
        e_log_1mx = special.digamma(bp) - special.digamma(ap + bp)
        value = float(special.betaln(aq, bq) - (aq - 1) * e_log_x - (bq - 1) * e_log_1mx + math.log(s_q))
    return None if value is None else _closed(value)


def _known_infinite(p: Any, q: Any) -> Estimate | None:
    """``H(P, Q)`` when it is infinite for a reason known without integrating (supports, moments), else None."""
    if _is_mvn(p) or _is_mvn(q):
        return None
    _frozen(p, "p")
    _frozen(q, "q")
    if not _support_inside(p, q):
        return _infinite("support", _support_reason(p, q))
    general = _against_family_of_q(p, q)
    return general if general is not None and math.isinf(general.value) else None


# --- numerical integration and Monte Carlo -----------------------------------------------------------------


def _support_inside(p: Any, q: Any) -> bool:
    lo_p, hi_p = (float(v) for v in p.support())
    lo_q, hi_q = (float(v) for v in q.support())
    return lo_q <= lo_p and hi_p <= hi_q


def _integrand(p: Any, q: Any | None, kind: str) -> Callable[[float], float]:
    """``-p log p`` (entropy), ``-p log q`` (cross-entropy) or ``p log(p / q)`` (KL) at a point of p's support.

    ``p log q`` is 0 where ``p`` is (its log-density ``-inf``). Where ``Q``'s
    log-density is ``-inf`` but ``P``'s density is not 0 (a density that
    underflows in ``Q``'s lighter tail), the term cannot be known: an
    :class:`IntegrationError`, not a guess.
    """

    log_p = _log_density(p)
    log_q = log_p if q is None else _log_density(q)

    def integrand(x: float) -> float:
        lp = log_p(x)
        if lp == -math.inf:
            return 0.0
        density = math.exp(lp) if lp < 709 else math.inf
        if q is None:
            return -density * lp
        lq = log_q(x)
        if lq == -math.inf:
            raise IntegrationError(
                f"log q({x:.6g}) = -inf where p({x:.6g}) = {density:.3g} > 0: Q's density underflows where P has "
                "mass, so the integrand cannot be evaluated there"
            )
        return -density * lq if kind == "cross" else density * (lp - lq)

    return integrand


def _log_density(dist: Any) -> Callable[[float], float]:
    """The log-density of ``dist`` at a point; Laplace's from its formula.

    SciPy's ``laplace.logpdf`` is ``log(pdf)``: ``-inf`` beyond 745 scales
    from the centre, where a heavier-tailed ``P`` still has mass.
    """
    family, _, loc, scale = _frozen(dist, "p")
    if family == "laplace":
        offset = math.log(2) + math.log(scale)
        return lambda x: -offset - abs(x - loc) / scale
    return lambda x: float(dist.logpdf(x))


def _quad(p: Any, q: Any | None, kind: str, tol: float) -> Estimate:
    if not tol > 0:
        raise InputError(f"tol must be > 0, got {tol!r}")
    found = integrate(_integrand(p, q, kind), p, tol)
    if found.divergent:
        return Estimate(found.value, 0.0, "divergent", found.divergent)
    return Estimate(found.value, found.error, "quad")


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
        Error bound of numerical integration: absolute, relative to the
        value when it exceeds 1.
    samples, seed : int
        Monte-Carlo sample size and seed.

    Returns
    -------
    Estimate
        Can be negative (a density above 1 on a short interval).

    Raises
    ------
    InputError
        For something that is not a frozen distribution or has invalid
        parameters, or ``method="closed-form"`` for a family without one.
    IntegrationError
        When numerical integration cannot meet ``tol`` (an InputError).
    """
    _check_method(method)
    if method in ("auto", "closed-form"):
        value = _closed_entropy(p)
        if value is not None:
            return _scale(_closed(value), base)
        if method == "closed-form":
            raise InputError(f"no closed-form entropy for {_name(p)}")
    if method == "monte-carlo":
        return _scale(_mean_with_error(-p.logpdf(_samples(p, samples, seed))), base)
    _frozen(p, "p")
    return _scale(_quad(p, None, "entropy", tol), base)


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
    supports, method ``"support"``) and when the integral diverges (method
    ``"divergent"``, with the ``reason``). A divergence that the closed forms
    know (``P`` without the moment ``-log q`` needs) is reported whatever
    ``method`` was asked for: the mean of samples of a quantity without an
    expectation is not an estimate. Arguments as :func:`entropy`; the
    Monte-Carlo estimate draws from ``P``.

    Examples
    --------
    >>> from scipy import stats
    >>> import crossentropy.continuous as cc
    >>> cc.cross_entropy(stats.uniform(0, 2), stats.uniform(0, 1)).value
    inf
    >>> print(f"{cc.cross_entropy(stats.t(5), stats.norm(0, 1)).value:.10f}")  # from t(5)'s variance, 5/3
    1.7522718666
    """
    known = _without_integrating(p, q, method, lambda: _closed_cross_entropy(p, q), "cross-entropy")
    if known is not None:
        return _scale(known, base)
    if method == "monte-carlo":
        return _scale(_mean_with_error(-q.logpdf(_samples(p, samples, seed))), base)
    return _scale(_quad(p, q, "cross", tol), base)


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

    Arguments as :func:`cross_entropy`; ``inf`` where ``H(P, Q)`` is and
    ``H(P)`` is finite. Numerical integration takes ``p log(p / q)`` itself
    (not the difference of two large integrals); a result below 0 by more
    than its error bound raises :class:`IntegrationError`, one within it is
    0. The Monte-Carlo mean of ``log p - log q`` is unbiased and can be
    slightly negative.

    Examples
    --------
    >>> from scipy import stats
    >>> import crossentropy.continuous as cc
    >>> print(f"{cc.kl_divergence(stats.expon(scale=1), stats.expon(scale=2)).value:.10f}")
    0.1931471806
    >>> print(f"{cc.kl_divergence(stats.cauchy(0, 1), stats.cauchy(2, 3)).value:.10f}")  # log(20 / 12)
    0.5108256238
    """
    known = _without_integrating(p, q, method, lambda: _closed_kl(p, q, tol), "KL divergence")
    if known is not None:
        return _scale(known, base)
    if method == "monte-carlo":
        x = _samples(p, samples, seed)
        return _scale(_mean_with_error(p.logpdf(x) - q.logpdf(x)), base)
    found = _quad(p, q, "kl", tol)
    if found.value < 0:
        if -found.value > found.error:
            raise IntegrationError(
                f"numerical integration gives KL(P || Q) = {found.value:.6g} (error {found.error:.3g}), below 0, "
                "which a KL divergence never is: the integral is not resolved"
            )
        found = found._replace(value=0.0)
    return _scale(found, base)


def _without_integrating(
    p: Any, q: Any, method: str, closed: Callable[[], Estimate | None], quantity: str
) -> Estimate | None:
    """The closed form (methods auto, closed-form), or an infinite value that the supports or the moments
    give for any method but quad's own divergence test; None when it has to be integrated or sampled."""
    _check_method(method)
    _pair(p, q)
    if method in ("auto", "closed-form"):
        found = closed()
        if found is not None:
            return found
        if method == "closed-form":
            raise InputError(f"no closed-form {quantity} for {_name(p)} and {_name(q)}")
    infinite = _known_infinite(p, q)
    if infinite is not None and (method == "monte-carlo" or infinite.method == "support"):
        return infinite
    return None


def _pair(p: Any, q: Any) -> None:
    """Both univariate (valid frozen distributions) or both multivariate normal."""
    if _is_mvn(p) != _is_mvn(q):
        raise InputError("p and q must both be univariate or both multivariate normal")
    if not _is_mvn(p):
        _frozen(p, "p")
        _frozen(q, "q")


def _closed_kl(p: Any, q: Any, tol: float) -> Estimate | None:
    """``H(P, Q) - H(P)`` from closed forms; ``inf`` with its reason when ``H(P, Q)`` is and ``H(P)`` is not."""
    h_pq = _closed_cross_entropy(p, q)
    if h_pq is None:
        return None
    if math.isinf(h_pq.value):
        if h_pq.method == "support":
            return h_pq
        h_p = _closed_entropy(p)
        if h_p is None:
            h_p = entropy(p, method="quad", tol=tol).value
        return h_pq if math.isfinite(h_p) else None
    h_p = _closed_entropy(p)
    if h_p is None:
        return None
    return _closed(max(h_pq.value - h_p, 0.0))


@refuses_masked_arrays
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


@refuses_masked_arrays
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
    except (TypeError, ValueError) as exc:
        raise InputError(f"{text!r}: {exc}") from None
    _frozen(frozen, repr(text))
    return frozen
