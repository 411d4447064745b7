"""The float32 vector primitives of the JSD kernels (cpu.c) against mpmath, on every compiled instruction set.

The fused float32 JSD computes, per element, ``expm1(-|d|)`` (with ``exp(-|d|)``
from the same range reduction), a ``log1p`` and from them the log-ratios
against the mixture, ``lp_t - log M`` and ``lp_s - log M`` for
``d = lp_s - lp_t``. ``_kernels.vector_math`` runs them on an array; here
each is checked point by point against a 100-bit mpmath evaluation, over
their whole domains (tiny, moderate and huge arguments, subnormal results,
the endpoints).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from crossentropy import _kernels
from optional import optional

mpmath = optional("mpmath")

EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)


def _isas() -> list[str]:
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    return list(_kernels.describe()["variants_supported"])


def _exact(fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    with mpmath.workprec(100):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in x])


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units of the last place of float32(want) (normal results)."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)


def test_expm1_and_exp_to_about_one_ulp():
    """expm1(x) and exp(x) for x <= 0 from one range reduction: within 1 ulp; -inf gives -1 and 0."""
    x = np.concatenate([-np.logspace(-38, np.log10(104.0), 3000), np.linspace(-0.4, 0.0, 500)]).astype(np.float32)
    want_m1, want_e = _exact(mpmath.expm1, x), _exact(mpmath.exp, x)
    normal = want_e >= TINY32
    for isa in _isas():
        with _kernels.use_isa(isa):
            m1, e = _kernels.vector_math("expm1", x)
            inf_m1, inf_e = _kernels.vector_math("expm1", np.array([-np.inf, 0.0], np.float32))
        assert _ulps(m1, want_m1).max() <= 1.0, isa
        assert _ulps(e[normal], want_e[normal]).max() <= 1.0, isa
        # subnormal results: rounded once (half a subnormal step)
        assert np.abs(e[~normal] - want_e[~normal]).max() <= np.finfo(np.float32).smallest_subnormal, isa
        assert inf_m1.tolist() == [-1.0, 0.0], isa
        assert inf_e.tolist() == [0.0, 1.0], isa


def test_log1p_to_about_two_ulps():
    """log1p(u) for u in [-1, 0]: within 2.5 ulps, tiny arguments included; -1 gives log(FLT_MIN), not -inf."""
    u = np.concatenate(
        [-np.logspace(-38, 0, 3000), -1.0 + np.logspace(-7.2, -0.1, 300), np.linspace(-1.0, 0.0, 500)[1:]]
    ).astype(np.float32)
    u = u[u > -1.0]
    want = _exact(mpmath.log1p, u)
    for isa in _isas():
        with _kernels.use_isa(isa):
            got, _ = _kernels.vector_math("log1p", u)
            end, _ = _kernels.vector_math("log1p", np.array([-1.0, 0.0], np.float32))
        assert _ulps(got, want).max() <= 2.5, isa
        assert abs(float(end[0]) - math.log(TINY32)) <= float(np.spacing(np.float32(87.0))), isa
        assert end[1] == 0.0, isa


@pytest.mark.parametrize("beta", [0.5, 0.3, 1e-3, 0.999])
def test_jsd_log_ratios_keep_float32_accuracy(beta):
    """lp_t - log M and lp_s - log M from d = lp_s - lp_t: error within 2 eps (|lp_t - log M| + |d|), the accuracy of
    the formula's own roundings, for |d| from 1e-30 to 160 and beta near 0 and 1 (where 1 + c expm1(-|d|) is
    small and is computed as (1 - c) + c exp(-|d|))."""
    d = np.concatenate([np.logspace(-30, 2.2, 800), -np.logspace(-30, 2.2, 800), [0.0]]).astype(np.float32)
    with mpmath.workprec(100):
        b = mpmath.mpf(beta)
        want_t = np.array([float(-mpmath.log1p((1 - b) * mpmath.expm1(mpmath.mpf(float(v))))) for v in d])
        want_s = np.array([float(-mpmath.log1p(b * mpmath.expm1(-mpmath.mpf(float(v))))) for v in d])
    scale = 2.0 * EPS32 * (np.abs(want_t) + np.abs(d.astype(np.float64)))
    for isa in _isas():
        with _kernels.use_isa(isa):
            t_ratio, s_ratio = _kernels.vector_math("jsd_ratios", d, beta)
        assert np.all(np.abs(t_ratio - want_t) <= scale), isa
        assert np.all(np.abs(s_ratio - want_s) <= scale), isa
        assert t_ratio[-1] == 0.0, isa
        assert s_ratio[-1] == 0.0, isa
