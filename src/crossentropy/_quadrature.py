"""Integrals over a distribution's support that tell a divergent integral from a convergent one.

``scipy.integrate.quad`` over an infinite interval maps it onto a finite one
and samples the integrand at a few points; an integrand that does not decay
(``-p log q`` of a Cauchy ``p`` against a normal ``q`` tends to a constant)
fools it into a finite value with a small error estimate. So the support is
cut here into pieces that grow geometrically from the median toward each
infinite end (widths ``w, 2w, 4w, ...``) and halve toward each finite end,
and ``quad`` integrates each piece, where the integrand is bounded and its
error estimate can be trusted. Each side of the median is then:

- **convergent** once, beyond the bulk of ``P`` (at most 5% of its mass
  further out), the pieces shrink geometrically and the remainder they
  predict (``|last| r / (1 - r)`` for the ratio ``r`` of successive pieces)
  is below the tolerance: ``quad`` adds the rest of the side, and twice the
  predicted remainder is added to the error;
- **divergent** when, beyond the tail of ``P`` (at most 1e-3 of its mass
  further out), the pieces keep one sign and stop shrinking (each at least
  ``1 - 1e-6`` times the one before) four times in a row. For an eventually
  monotone integrand, as those of the SciPy families are, a piece
  ``[x, 2x]`` is about ``x f(x)``: pieces that do not shrink mean ``x f(x)``
  does not tend to 0, and the integral diverges (Cauchy's condensation test;
  ``1/x`` tails, ``1/(x - a)`` poles at a finite end). A tail must decay more
  slowly than ``x**-(1 + 1.4e-6)`` to be called divergent;
- **undecided** otherwise (pieces that shrink too slowly to reach the
  tolerance within 200 pieces, a tail like ``1/x**1.01``, or a finite end the
  floating-point numbers cannot approach any closer):
  :class:`IntegrationError`, never a number whose error is not known.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ._validation import InputError

MAX_PIECES = 200
"""Pieces per side of the median before the integral is declared undecided."""
FLAT = 1 - 1e-6
"""A ratio of successive pieces at least this large means the pieces do not shrink."""
RUN = 4
"""Successive ratios of at least FLAT that make a side divergent."""
TAIL_MASS = 1e-3
"""The mass of P beyond a piece below which the piece is in the tail (divergence needs it)."""
BULK_MASS = 0.05
"""The mass of P beyond a piece below which the side may be declared convergent."""


class IntegrationError(InputError):
    """Numerical integration could not reach the requested tolerance, or could not tell whether it converges.

    Raised instead of returning a number whose error is not known: a tail that
    decays too slowly for the tolerance, a log-density that cannot be
    evaluated where the other density has mass, or a divergence of both signs.
    It is an :class:`~crossentropy.InputError`, so the command line reports it
    on one line.
    """


class Integral(NamedTuple):
    """An integral's value and error estimate; ``divergent`` says why the value is infinite ("" if it is not)."""

    value: float
    error: float
    divergent: str = ""


def _half_width(p: Any) -> float:
    """The first piece's width: half the interquartile range of ``p``."""
    return (float(p.ppf(0.75)) - float(p.ppf(0.25))) / 2


def _breakpoints(centre: float, end: float, width: float) -> Iterator[float]:
    """The ends of the pieces from ``centre`` toward ``end``: widths doubling, then halving toward a finite end."""
    toward = 1.0 if end > centre else -1.0
    x, step = centre, width
    while math.isinf(end) or abs(end - x) > 2 * step:
        nxt = x + toward * step
        if not math.isfinite(nxt) or nxt == x:
            return
        yield nxt
        x, step = nxt, step * 2
    while True:
        nxt = x + (end - x) / 2
        if nxt in (x, end):
            return
        yield nxt
        x = nxt


def _piece(integrand: Callable[[float], float], a: float, b: float, tol: float) -> tuple[float, float]:
    """``quad`` over the piece between ``a`` and ``b`` (in either order); a non-finite result is an error."""
    from scipy import integrate

    lo, hi = min(a, b), max(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the error estimate is checked by the callers
        value, error = integrate.quad(integrand, lo, hi, limit=200, epsabs=tol, epsrel=1e-12)
    if not (math.isfinite(value) and math.isfinite(error)):
        raise IntegrationError(f"the integrand is not finite on [{lo:.6g}, {hi:.6g}]: {value} (error {error})")
    return float(value), float(error)


def _same_sign(values: list[float]) -> bool:
    return all(v > 0 for v in values) or all(v < 0 for v in values)


def _lasting(pieces: list[float]) -> bool:
    """Whether the last piece did not shrink: of the sign of the one before, and at least ``FLAT`` times it."""
    if len(pieces) < 2 or not _same_sign(pieces[-2:]):
        return False
    return abs(pieces[-1]) >= FLAT * abs(pieces[-2])


def _shrink_ratio(pieces: list[float]) -> float | None:
    """The ratio ``r < 1`` by which the last three pieces shrink (0 if the last two are 0), else None."""
    if len(pieces) < 3:
        return None
    a, b, c = pieces[-3:]
    if b == 0 and c == 0:
        return 0.0
    if not (_same_sign([a, b, c]) and abs(b) < abs(a) and abs(c) < abs(b)):
        return None
    return max(abs(b) / abs(a), abs(c) / abs(b))


def _room(a: float, end: float) -> bool:
    """Whether ``[a, end]`` holds floating-point numbers for quad to sample (always for an infinite end)."""
    return math.isinf(end) or abs(end - a) > 4 * math.ulp(max(abs(a), abs(end)))


def _side(
    integrand: Callable[[float], float],
    mass_beyond: Callable[[float], float],
    centre: float,
    end: float,
    width: float,
    tol: float,
) -> Integral:
    """The integral from ``centre`` to ``end`` (either side), piece by piece."""
    where = {math.inf: "+inf", -math.inf: "-inf"}.get(end, f"{end:.6g}")
    total, error = 0.0, 0.0
    pieces: list[float] = []
    a = centre
    lasting = 0  # successive pieces that do not tend to 0
    for b in _breakpoints(centre, end, width):
        value, err = _piece(integrand, a, b, tol / 64)
        total, error, a = total + value, error + err, b
        pieces.append(value)
        lasting = lasting + 1 if _lasting(pieces) else 0
        if lasting >= RUN and (len(pieces) >= 40 or mass_beyond(b) <= TAIL_MASS):
            reason = f"the integrand does not decay toward {where}: the integral diverges"
            return Integral(math.copysign(math.inf, value), 0.0, reason)
        ratio = _shrink_ratio(pieces)
        remainder = math.inf if ratio is None or lasting else abs(value) * ratio / (1 - ratio)
        if remainder <= tol / 16 * max(1.0, abs(total)) and mass_beyond(b) <= BULK_MASS:
            # quad adds the rest; its estimate can miss most of a power tail's remainder, so twice the
            # predicted one (the ratio of a tail like log(x) / x**1.5 creeps up) is added to the error
            rest, rest_err = _piece(integrand, a, end, tol / 64) if _room(a, end) else (0.0, 0.0)
            return Integral(total + rest, error + rest_err + 2 * remainder)
        if len(pieces) >= MAX_PIECES:
            raise IntegrationError(
                f"numerical integration does not converge toward {where} within tol={tol:.3g}: after "
                f"{len(pieces)} pieces the last is {value:.3g} and they shrink too slowly (a heavy tail); the "
                "integral may be finite, but not to that tolerance"
            )
    last = f"{pieces[-1]:.3g}" if pieces else "?"
    raise IntegrationError(
        f"numerical integration does not converge toward {where} within tol={tol:.3g}: the last piece is {last} "
        "where floating-point numbers cannot come closer to the end (a singularity there)"
    )


def integrate(integrand: Callable[[float], float], p: Any, tol: float) -> Integral:
    """``int integrand(x) dx`` over the support of the frozen distribution ``p``, split at its median.

    Returns the value with its error estimate, or an infinite value with the
    reason; raises :class:`IntegrationError` when the error estimate exceeds
    ``tol`` (absolute, relative to the value above 1) or divergence cannot be
    told from slow convergence.
    """
    lo, hi = (float(v) for v in p.support())
    centre = float(p.median())
    if not math.isfinite(centre):
        raise IntegrationError(f"the median of the distribution is {centre}: cannot place the integration")
    w = _half_width(p)
    if not (math.isfinite(w) and w > 64 * math.ulp(centre)):
        raise IntegrationError(
            f"the distribution's width {w:.3g} is below the floating-point resolution at its median {centre:.6g}"
        )
    right = _side(integrand, lambda x: float(p.sf(x)), centre, hi, w, tol)
    left = _side(integrand, lambda x: float(p.cdf(x)), centre, lo, w, tol)
    value = right.value + left.value
    if math.isnan(value):
        raise IntegrationError("the integral diverges to +inf on one side of the median and to -inf on the other")
    if math.isinf(value):
        return Integral(value, 0.0, right.divergent or left.divergent)
    error = right.error + left.error
    if not error <= tol * max(1.0, abs(value)):
        raise IntegrationError(
            f"numerical integration's error estimate {error:.3g} exceeds tol={tol:.3g} (value {value:.10g})"
        )
    return Integral(value, error)
