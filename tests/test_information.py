"""Information measures: seed numbers, oracles, backends, gradients, properties."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import crossentropy as ce
from optional import assume, given, hnp, optional, st

mpmath = optional("mpmath")
scipy = optional("scipy")
sp = optional("scipy.special")

P = [0.10, 0.40, 0.50]
Q = [0.80, 0.15, 0.05]
LN2 = math.log(2)


# --- the seed texts' numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "args", "base", "expected"),
    [
        (ce.cross_entropy, (P, Q), 2, 3.2879430946),
        (ce.cross_entropy, (P, Q), None, 2.2790284859),
        (ce.cross_entropy, (Q, P), 2, 2.9058316901),
        (ce.cross_entropy, (Q, P), None, 2.0141690432),
        (ce.cross_entropy, (P, P), 2, 1.3609640474),
        (ce.cross_entropy, (Q, Q), 2, 0.8841837198),
        (ce.entropy, (P,), 2, 1.3609640474),
        (ce.entropy, (Q,), 2, 0.8841837198),
        (ce.kl_divergence, (P, Q), 2, 1.9269790472),
        (ce.kl_divergence, (Q, P), 2, 2.0216479704),
        (ce.js_divergence, (P, Q), 2, 0.4202005704),
    ],
)
def test_seed_three_colour_example(func, args, base, expected):
    value = float(func(*args, base=base))
    print(f"{func.__name__}{args} base={base}: {value:.10f} (text: {expected})")
    assert value == pytest.approx(expected, abs=5e-11)


def test_seed_identity_h_pq_equals_h_p_plus_kl():
    assert float(ce.entropy(P) + ce.kl_divergence(P, Q)) == pytest.approx(float(ce.cross_entropy(P, Q)), rel=4e-16)


def test_seed_one_hot_labels_have_zero_entropy():
    labels = np.eye(5)
    h = ce.entropy(labels)
    assert np.all(h == 0.0)
    assert not np.any(np.signbit(h))


def test_seed_ten_binary_examples_mean_0_247_nats():
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    yhat = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
    per = ce.cross_entropy(np.stack([1 - y, y], -1), np.stack([1 - yhat, yhat], -1))
    expected = [0.2231, 0.1054, 0.1054, 0.5108, 0.2231, 0.1054, 0.5108, 0.2231, 0.1054, 0.3567]
    np.testing.assert_allclose(per, expected, atol=5e-5)
    assert float(per.mean()) == pytest.approx(0.2469198908, abs=5e-11)


def test_seed_surprise_in_bits():
    assert float(ce.information(1 / 8, base=2)) == 3.0
    assert float(ce.information(0.5, base=2)) == 1.0
    assert float(ce.information(1 / 280_000, base=2)) == pytest.approx(math.log2(280_000))


@pytest.mark.parametrize("k", range(0, 8))
def test_seed_uniform_over_2_to_k_classes_has_k_bits(k):
    n = 2**k
    assert float(ce.entropy(np.full(n, 1 / n), base=2)) == pytest.approx(k, abs=1e-13)


def test_seed_intuition_curve():
    # target [0, 1] against predicted [1 - p, p] for p = 1.0, 0.9, ..., 0.0
    ps = np.round(np.arange(10, -1, -1) / 10, 1)
    h = ce.cross_entropy([0.0, 1.0], np.stack([1 - ps, ps], -1))
    expected = [0, 0.1054, 0.2231, 0.3567, 0.5108, 0.6931, 0.9163, 1.2040, 1.6094, 2.3026]
    np.testing.assert_allclose(h[:-1], expected, atol=5e-5)
    assert h[-1] == np.inf


# --- oracles -----------------------------------------------------------------------------


def _rows(seed: int, n: int = 50, k: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.dirichlet(np.full(k, 0.5), size=n)
    x[::5, 0] = 0.0  # exact zeros
    return x / x.sum(-1, keepdims=True)


def test_oracle_scipy():
    p, q = _rows(1), _rows(2)
    np.testing.assert_allclose(ce.entropy(p), sp.entr(p).sum(-1), rtol=1e-14)
    np.testing.assert_allclose(ce.entropy(p), scipy.stats.entropy(p, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(ce.kl_divergence(p, q), sp.rel_entr(p, q).sum(-1), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(ce.cross_entropy(p, q), -sp.xlogy(p, q).sum(-1), rtol=1e-14)
    np.testing.assert_allclose(
        ce.js_divergence(p, q, base=2),
        scipy.spatial.distance.jensenshannon(p, q, axis=-1, base=2) ** 2,
        rtol=1e-12,
    )
    logits = np.random.default_rng(3).normal(size=(20, 6)) * 5
    np.testing.assert_allclose(
        ce.cross_entropy(p[:20, :6] / p[:20, :6].sum(-1, keepdims=True), logits, from_logits=True),
        -(p[:20, :6] / p[:20, :6].sum(-1, keepdims=True) * sp.log_softmax(logits, axis=-1)).sum(-1),
        rtol=1e-13,
    )
    np.testing.assert_allclose(
        ce.entropy(logits, from_logits=True),
        sp.entr(sp.softmax(logits, axis=-1)).sum(-1),
        rtol=1e-12,
        atol=1e-15,
    )


def _ulp_error(ours: float, exact: mpmath.mpf) -> float:
    if exact == 0:
        return 0.0 if ours == 0 else math.inf
    return float(abs(mpmath.mpf(ours) - exact) / mpmath.mpf(np.spacing(float(exact))))


def test_float64_accuracy_against_mpmath():
    mpmath.mp.prec = 200
    worst = {"entropy": 0.0, "cross_entropy": 0.0}
    for seed in range(20):
        p, q = _rows(seed, n=1, k=12)[0], _rows(seed + 100, n=1, k=12)[0]
        h = -mpmath.fsum(mpmath.mpf(x) * mpmath.log(x) for x in p if x > 0)
        hpq = -mpmath.fsum(mpmath.mpf(x) * mpmath.log(y) for x, y in zip(p, q, strict=True) if x > 0)
        worst["entropy"] = max(worst["entropy"], _ulp_error(float(ce.entropy(p)), h))
        worst["cross_entropy"] = max(worst["cross_entropy"], _ulp_error(float(ce.cross_entropy(p, q)), hpq))
    print(worst)
    assert max(worst.values()) <= 8


@pytest.mark.parametrize("scale", [1.0, 5.0, 30.0])
def test_entropy_from_logits_accuracy_against_mpmath(scale):
    # a dominant class makes the entropy tiny; log1p keeps its relative accuracy
    mpmath.mp.prec = 200
    worst = 0.0
    for seed in range(10):
        x = np.random.default_rng(seed).normal(size=6) * scale
        ex = [mpmath.exp(mpmath.mpf(v)) for v in x]
        s = mpmath.fsum(ex)
        exact = -mpmath.fsum(e / s * mpmath.log(e / s) for e in ex)
        worst = max(worst, _ulp_error(float(ce.entropy(x, from_logits=True)), exact))
    assert worst <= 64


def test_kl_accuracy_where_ratio_overflows():
    p = np.array([1.0, 0.0])
    q = np.array([5e-324, 1.0])
    assert float(ce.kl_divergence(p, q, validate=False)) == pytest.approx(-math.log(5e-324), rel=1e-15)


# --- exact conventions -------------------------------------------------------------------


def test_zero_q_with_positive_p_is_inf_and_zero_p_contributes_nothing():
    assert ce.cross_entropy([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert ce.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert float(ce.cross_entropy([1.0, 0.0], [1.0, 0.0])) == 0.0
    assert float(ce.kl_divergence([1.0, 0.0], [1.0, 0.0])) == 0.0
    assert ce.information(0.0) == np.inf
    assert float(ce.information(1.0)) == 0.0


def test_minus_inf_logits_are_masked_classes():
    assert float(ce.cross_entropy([1.0, 0.0, 0.0], [0.0, -np.inf, 1.0], from_logits=True)) == pytest.approx(
        1.3132616875182228
    )
    assert ce.cross_entropy([0.0, 1.0, 0.0], [0.0, -np.inf, 1.0], from_logits=True) == np.inf
    assert float(ce.entropy([0.0, -np.inf, 1.0], from_logits=True)) == pytest.approx(
        float(ce.entropy([0.0, 1.0], from_logits=True)), rel=1e-15
    )


def test_axis_keepdims_and_broadcasting():
    p = _rows(5, n=4, k=3)
    q = np.array(Q)
    out = ce.cross_entropy(p, q)
    assert out.shape == (4,)
    np.testing.assert_allclose(out, [ce.cross_entropy(r, q) for r in p])
    np.testing.assert_allclose(ce.cross_entropy(p.T, q[:, None], axis=0), out)
    assert ce.entropy(p, keepdims=True).shape == (4, 1)
    assert ce.kl_divergence(p.T, p.T, axis=0, keepdims=True).shape == (1, 4)


def test_lists_and_scalars_are_numpy():
    assert isinstance(ce.entropy([0.5, 0.5]), np.floating)
    assert isinstance(ce.information(0.5), np.floating)


def test_perplexity():
    assert float(ce.perplexity([0.25] * 4)) == pytest.approx(4.0)
    assert float(ce.perplexity(P, Q)) == pytest.approx(math.exp(2.2790284859), rel=1e-10)
    assert float(ce.perplexity([0.0, 0.0, 0.0], from_logits=True)) == pytest.approx(3.0)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_low_precision_returns_own_dtype(dtype):
    p = np.asarray(P, dtype=dtype)
    q = np.asarray(Q, dtype=dtype)
    for value in (ce.entropy(p), ce.cross_entropy(p, q), ce.kl_divergence(p, q), ce.information(p)):
        assert value.dtype == np.dtype(dtype)
    assert float(ce.cross_entropy(p, q)) == pytest.approx(2.2790284859, rel=1e-3 if dtype == "float16" else 1e-6)


def test_bfloat16_torch_accumulates_in_float32():
    torch = pytest.importorskip("torch")
    p = torch.full((4096,), 1 / 4096, dtype=torch.bfloat16)
    h = ce.entropy(p, validate=False)
    assert h.dtype == torch.bfloat16
    assert float(h) == pytest.approx(math.log(4096), rel=1e-2)


# --- every backend -----------------------------------------------------------------------


def test_backends_agree_and_return_their_own_kind(xp):
    p, q = _rows(7, n=6, k=4), _rows(8, n=6, k=4)
    logits = np.random.default_rng(9).normal(size=(6, 4))
    cases = [
        (ce.entropy, (p,), {}),
        (ce.entropy, (logits,), {"from_logits": True}),
        (ce.cross_entropy, (p, q), {"base": 2}),
        (ce.cross_entropy, (p, logits), {"from_logits": True}),
        (ce.kl_divergence, (p, q), {}),
        (ce.kl_divergence, (p, logits), {"from_logits": True}),
        (ce.js_divergence, (p, q), {}),
        (ce.js_divergence, (logits, p), {"from_logits": True}),
        (ce.information, (p,), {}),
        (ce.perplexity, (p, q), {}),
    ]
    for func, args, kwargs in cases:
        got = func(*(xp.asarray(a) for a in args), **kwargs)
        assert type(got) is type(xp.asarray([1.0])), func.__name__
        np.testing.assert_allclose(xp.to_numpy(got), func(*args, **kwargs), rtol=1e-13, err_msg=func.__name__)


def test_backend_errors_name_the_argument(xp):
    with pytest.raises(ce.InputError, match=r"q\[0\] = 1.5 is greater than 1"):
        ce.cross_entropy(xp.asarray([0.5, 0.5]), xp.asarray([1.5, -0.5]))


def test_torch_autograd_matches_closed_form():
    torch = pytest.importorskip("torch")
    p = torch.tensor(_rows(11, n=3, k=5))
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ce.cross_entropy(p, x, from_logits=True).sum().backward()
    torch.testing.assert_close(x.grad, torch.softmax(x.detach(), -1) - p, rtol=1e-12, atol=1e-14)
    assert torch.autograd.gradcheck(lambda z: ce.kl_divergence(p, z, from_logits=True), (x,))
    assert torch.autograd.gradcheck(lambda z: ce.entropy(z, from_logits=True), (x,))


def test_torch_gradient_is_finite_at_masked_entries():
    torch = pytest.importorskip("torch")
    p = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([0.0, -math.inf, 1.0], dtype=torch.float64, requires_grad=True)
    ce.cross_entropy(p, x, from_logits=True).backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(p.grad).all()
    q = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    ce.entropy(q).backward()
    assert torch.isfinite(q.grad).all()


@pytest.mark.slow
def test_jax_grad_and_jit():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    p = jnp.asarray(_rows(12, n=1, k=5)[0])
    x = jnp.asarray(np.random.default_rng(1).normal(size=5))

    def loss(z):
        return ce.cross_entropy(p, z, from_logits=True)

    np.testing.assert_allclose(jax.grad(loss)(x), jax.nn.softmax(x) - p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jax.jit(loss)(x), loss(x), rtol=1e-15)
    jitted = jax.jit(lambda a, b: ce.kl_divergence(a, b, validate=False))
    np.testing.assert_allclose(jitted(p, p), 0.0, atol=1e-15)


# --- properties --------------------------------------------------------------------------


def _distribution(k: int):
    return (
        hnp.arrays(np.float64, k, elements=st.floats(0, 1, allow_subnormal=False))
        .filter(lambda a: a.sum() > 1e-3)
        .map(lambda a: a / a.sum())
    )


pairs = st.integers(1, 12).flatmap(lambda k: st.tuples(_distribution(k), _distribution(k)))


@given(pairs)
def test_property_identities(pq):
    p, q = pq
    assume(abs(p.sum() - 1) < 1e-12 and abs(q.sum() - 1) < 1e-12)
    h, hpq, kl = ce.entropy(p), ce.cross_entropy(p, q), ce.kl_divergence(p, q)
    assert h >= 0
    assert h <= math.log(len(p)) + 1e-12
    assert kl >= 0
    assert hpq >= h - 1e-12  # Gibbs' inequality
    if np.isfinite(hpq):
        assert hpq == pytest.approx(h + kl, rel=1e-12, abs=1e-12)
    else:
        assert kl == np.inf
    assert float(ce.kl_divergence(p, p)) == 0.0
    assert 0 <= ce.js_divergence(p, q) <= LN2 + 1e-12
    assert float(ce.entropy(p, base=2)) == pytest.approx(float(h) / LN2, rel=1e-14, abs=1e-300)


@given(
    st.integers(1, 10).flatmap(lambda k: hnp.arrays(np.float64, k, elements=st.floats(-30, 30)).map(lambda a: a)),
    st.floats(-1e3, 1e3),
)
def test_property_logit_shift_invariance(x, c):
    p = np.full(x.shape, 1 / x.size)
    a = float(ce.cross_entropy(p, x, from_logits=True))
    b = float(ce.cross_entropy(p, x + c, from_logits=True))
    assert b == pytest.approx(a, rel=1e-9, abs=1e-9)
    assert float(ce.entropy(x + c, from_logits=True)) == pytest.approx(
        float(ce.entropy(x, from_logits=True)), rel=1e-9, abs=1e-9
    )


@given(pairs, st.floats(-50, 50), st.floats(-50, 50))
def test_property_divergences_of_logits_are_those_of_the_distributions(pq, shift_p, shift_q):
    """``from_logits=True`` (any shift of the logits) gives the divergences of the softmaxed distributions."""
    p, q = pq
    assume(abs(p.sum() - 1) < 1e-12 and abs(q.sum() - 1) < 1e-12)
    with np.errstate(divide="ignore"):
        logits_p, logits_q = np.log(p) + shift_p, np.log(q) + shift_q
    kl = float(ce.kl_divergence(p, logits_q, from_logits=True))
    assert kl == pytest.approx(float(ce.kl_divergence(p, q)), rel=1e-9, abs=1e-12)
    js = float(ce.js_divergence(logits_p, logits_q, from_logits=True))
    assert js == pytest.approx(float(ce.js_divergence(p, q)), rel=1e-9, abs=1e-12)
    assert float(ce.js_divergence(logits_p, logits_p, from_logits=True)) == 0.0


@given(pairs)
def test_property_kl_zero_only_when_equal(pq):
    p, q = pq
    kl = float(ce.kl_divergence(p, q))
    assert kl >= 0
    if np.array_equal(p, q):
        assert kl == 0
    elif np.max(np.abs(p - q)) > 1e-6:
        assert kl > 0


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: ce.entropy([0.5, float("nan")]), r"p\[1\] = nan is NaN"),
        (lambda: ce.entropy([1.2, -0.2]), r"p\[0\] = 1.2 is greater than 1"),
        (lambda: ce.cross_entropy([0.5, 0.5], [-0.1, 1.1]), r"q\[0\] = -0.1 is negative"),
        (lambda: ce.entropy([[0.5, 0.5], [0.5, 0.4]]), r"p\[1, :\] sums to 0.9, not 1 \(off by 0.1"),
        (lambda: ce.entropy([[0.5, 0.4], [0.5, 0.5]], axis=0), r"p\[:, 1\] sums to 0.9"),
        (
            lambda: ce.cross_entropy([0.5, 0.5], [0.2, 0.3, 0.5]),
            r"shapes do not broadcast: p \(2,\) and q \(3,\)",
        ),
        (lambda: ce.entropy(np.empty((3, 0))), r"p has an empty event axis"),
        (lambda: ce.entropy(0.5), r"p is 0-dimensional"),
        (lambda: ce.entropy(["a", "b"]), r"p must be numeric"),
        (lambda: ce.entropy([0.5, 0.5], base=1), r"base must be"),
        (lambda: ce.entropy([0.5, 0.5], base=-2), r"base must be"),
        (lambda: ce.entropy([0.5, 0.5], base="2"), r"base must be"),
        (lambda: ce.entropy([0.5, 0.5], axis=2), r"axis 2 is out of range for p"),
        (lambda: ce.entropy([0.5, 0.5], axis=1.0), r"axis must be an integer"),
        (
            lambda: ce.cross_entropy([0.5, 0.5], [0.0, float("inf")], from_logits=True),
            r"q\[1\] = inf is \+inf",
        ),
        (lambda: ce.cross_entropy([0.5, 0.5], [0.0, float("nan")], from_logits=True), r"q\[1\] = nan is NaN"),
        (lambda: ce.entropy([-np.inf, -np.inf], from_logits=True), r"p\[:\] are all -inf"),
        (lambda: ce.information([0.5, 2.0]), r"p\[1\] = 2 is greater than 1"),
        (lambda: ce.js_divergence([[0.5, 0.5]], [[0.5, 0.5, 0.0]]), r"shapes do not broadcast"),
        (lambda: ce.cross_entropy([[0.5, 0.5]], [[1.0], [1.0]]), r"event axis -1 must have the same length"),
        (lambda: ce.entropy([1 + 0j, 0j]), r"p must be numeric"),
    ],
)
def test_errors_name_argument_position_and_value(call, pattern):
    with pytest.raises(ce.InputError, match=pattern):
        call()


def test_input_error_is_a_value_error():
    assert issubclass(ce.InputError, ValueError)


def test_validate_false_skips_value_checks():
    assert np.isfinite(ce.cross_entropy([0.5, 0.4], [0.5, 0.5], validate=False))


def test_sum_tolerance_depends_on_dtype():
    off = np.array([0.5, 0.5 + 1e-5])
    with pytest.raises(ce.InputError):
        ce.entropy(off)
    ce.entropy(off.astype(np.float32))  # within sqrt(eps32) = 3.5e-4


def test_mixing_libraries_is_an_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ce.InputError, match="different libraries"):
        ce.cross_entropy(torch.tensor(P), np.asarray(Q))


def test_import_loads_no_optional_library():
    code = (
        "import sys, crossentropy, crossentropy.conventions;"
        "optional = ('torch', 'jax', 'matplotlib', 'pyarrow', 'numba', 'dask', 'triton', 'scipy', 'rich');"
        "print([m for m in optional if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
