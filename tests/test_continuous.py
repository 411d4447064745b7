"""Continuous distributions: closed forms, integration, Monte Carlo, the CLI parser."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import crossentropy as ce
from optional import given, st

stats = pytest.importorskip("scipy.stats")
cc = pytest.importorskip("crossentropy.continuous")

FAMILIES = [
    (stats.norm(0.3, 1.7), stats.norm(-1, 0.8)),
    (stats.expon(scale=2.0), stats.expon(scale=0.5)),
    (stats.expon(loc=1.0, scale=2.0), stats.expon(loc=0.5, scale=1.5)),
    (stats.gamma(2.5, scale=1.5), stats.gamma(1.3, scale=3.0)),
    (stats.beta(2.0, 3.0), stats.beta(0.7, 1.8)),
    (stats.uniform(0.2, 0.5), stats.uniform(0.0, 1.0)),
    (stats.laplace(0.5, 1.2), stats.laplace(-1.0, 0.7)),
]


@pytest.mark.parametrize(("p", "q"), FAMILIES, ids=lambda d: d.dist.name)
def test_closed_forms_match_scipy_and_numerical_integration(p, q):
    h = cc.entropy(p)
    assert h.method == "closed-form"
    assert h.value == pytest.approx(float(p.entropy()), rel=1e-12, abs=1e-12)
    h_quad = cc.entropy(p, method="quad")
    assert h_quad.value == pytest.approx(h.value, rel=1e-8, abs=1e-8)
    closed = cc.cross_entropy(p, q)
    numeric = cc.cross_entropy(p, q, method="quad")
    assert closed.method == "closed-form"
    assert numeric.value == pytest.approx(closed.value, rel=1e-7, abs=1e-7)
    kl = cc.kl_divergence(p, q)
    assert kl.value == pytest.approx(closed.value - h.value, rel=1e-12, abs=1e-12)
    assert cc.kl_divergence(p, q, method="quad").value == pytest.approx(kl.value, rel=1e-6, abs=1e-8)
    assert kl.value >= 0


def test_multivariate_normal_closed_form_against_scipy_and_monte_carlo():
    p = stats.multivariate_normal([0.0, 1.0], [[2.0, 0.3], [0.3, 1.0]])
    q = stats.multivariate_normal([0.5, 0.0], [[1.0, -0.2], [-0.2, 1.5]])
    assert cc.entropy(p).value == pytest.approx(float(p.entropy()), rel=1e-12)
    closed = cc.cross_entropy(p, q)
    mc = cc.cross_entropy(p, q, method="monte-carlo", samples=200_000, seed=1)
    assert abs(mc.value - closed.value) < 4 * mc.error
    assert cc.kl_divergence(p, p).value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("p", "q"), FAMILIES[:5], ids=lambda d: d.dist.name)
def test_monte_carlo_within_four_standard_errors(p, q):
    for func in (cc.cross_entropy, cc.kl_divergence):
        closed = func(p, q)
        mc = func(p, q, method="monte-carlo", samples=50_000, seed=7)
        assert mc.method == "monte-carlo"
        assert mc.error > 0
        assert abs(mc.value - closed.value) < 4 * mc.error, func.__name__


def test_samples_and_log_densities_only():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, size=100_000)
    p, q = stats.gamma(2.0), stats.gamma(3.0, scale=0.5)
    est = cc.monte_carlo_cross_entropy(x, q.logpdf)
    assert abs(est.value - cc.cross_entropy(p, q).value) < 4 * est.error
    kl = cc.monte_carlo_kl_divergence(x, p.logpdf, q.logpdf)
    assert abs(kl.value - cc.kl_divergence(p, q).value) < 4 * kl.error


def test_numerical_integration_for_a_family_without_closed_form():
    p, q = stats.logistic(0, 1), stats.norm(0, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = cc.cross_entropy(p, q)
    assert est.method == "quad"
    assert est.error < 1e-8
    mc = cc.cross_entropy(p, q, method="monte-carlo", samples=200_000)
    assert abs(mc.value - est.value) < 4 * mc.error
    assert cc.entropy(p).value == pytest.approx(float(p.entropy()), rel=1e-9)


def test_integration_warns_when_its_error_exceeds_tol():
    with pytest.warns(cc.IntegrationWarning):
        cc.entropy(stats.t(1.5), method="quad", tol=1e-300)


def test_different_supports_give_infinite_kl():
    assert cc.kl_divergence(stats.uniform(0, 2), stats.uniform(0, 1)).value == math.inf
    assert cc.cross_entropy(stats.expon(loc=0), stats.expon(loc=1)).value == math.inf
    assert cc.kl_divergence(stats.norm(), stats.expon()).value == math.inf
    assert cc.kl_divergence(stats.uniform(0.2, 0.5), stats.uniform(0, 1)).value == pytest.approx(math.log(2))


def test_differential_entropy_can_be_negative_and_bits():
    assert cc.entropy(stats.uniform(0, 0.25), base=2).value == pytest.approx(-2.0)
    assert cc.entropy(stats.norm(0, 1), base=2).value == pytest.approx(cc.entropy(stats.norm(0, 1)).value / math.log(2))


@given(st.floats(-5, 5), st.floats(0.1, 5), st.floats(-5, 5), st.floats(0.1, 5))
@pytest.mark.slow
def test_property_identity_for_normals(m1, s1, m2, s2):
    p, q = stats.norm(m1, s1), stats.norm(m2, s2)
    h_pq, h_p, kl = cc.cross_entropy(p, q).value, cc.entropy(p).value, cc.kl_divergence(p, q).value
    assert h_pq == pytest.approx(h_p + kl, rel=1e-12, abs=1e-12)
    assert kl >= 0


@pytest.mark.parametrize(
    ("text", "mean"),
    [("norm(1, 2)", 1.0), ("gamma(2, scale=3)", 6.0), (" expon( loc = 1 ) ", 2.0), ("beta(2,2)", 0.5)],
)
def test_parse_distribution(text, mean):
    assert float(cc.parse_distribution(text).mean()) == pytest.approx(mean)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(1)", "unknown continuous distribution 'foo'"),
        ("binom(3, 0.5)", "unknown continuous distribution 'binom'"),
        ("norm(0, -1)", "norm"),
        ("norm(__import__('os'))", "is not a number"),
        ("norm", "write it like norm"),
        ("norm(loc=1, 2)", "positional argument follows a keyword"),
    ],
)
def test_parse_distribution_errors(text, message):
    with pytest.raises(ce.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cc.parse_distribution(text)


def test_bad_arguments():
    with pytest.raises(ce.InputError, match="frozen SciPy"):
        cc.entropy([0.5, 0.5])
    with pytest.raises(ce.InputError, match="method must be one of"):
        cc.entropy(stats.norm(), method="simpson")
    with pytest.raises(ce.InputError, match="no closed-form entropy"):
        cc.entropy(stats.logistic(), method="closed-form")


def test_compare_continuous_cli(capsys, tmp_path):
    import json

    from crossentropy.cli import main

    plot = tmp_path / "densities.png"
    assert main(["compare", "--continuous", "norm(0,1)", "norm(1,2)", "--format", "json", "--plot", str(plot)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["KL(P||Q)"]["value"] == pytest.approx(math.log(2) + 2 / 8 - 0.5)
    assert plot.stat().st_size > 5000
    assert main(["compare", "--continuous", "norm(0,1)", "nope(1)"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown continuous distribution 'nope'" in err
