"""The fused CPU kernels against the array-API reference path, in ulp."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _dispatch, _kernels
from optional import given, hnp, optional, st

sp = optional("scipy.special")

ULP = {np.float64: 2, np.float32: 4}
VARIANTS = _kernels.describe()["variants_supported"]  # every instruction-set variant this CPU runs


def test_kernels_are_built_and_used():
    # CI builds them on install; a machine without a C compiler runs the reference path only
    assert _kernels.available(), "the CPU kernels were not built (no C compiler at install time?)"
    x = np.zeros((2, 3))
    assert _dispatch.choose("sparse", x, ce.conventions.EXACT) == "cpu"
    with _dispatch.use("reference"):
        assert _dispatch.choose("sparse", x, ce.conventions.EXACT) == "reference"


def _ulps(a, b, dtype):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(dtype)).astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, np.abs(a - b) / scale)


def both_paths(func, *args, **kwargs):
    fast = func(*args, **kwargs)
    with _dispatch.use("reference"):
        reference = func(*args, **kwargs)
    return fast, reference


def assert_agree(func, *args, dtype=np.float64, terms=1, **kwargs):
    """Both paths agree within 2 ulp (float64) / 4 ulp (float32), plus log2(terms) ulp.

    The second part is the reference path's own error bound when it sums
    ``terms`` values pairwise (NumPy); the kernel's float64 sums are
    compensated, so it is the more accurate of the two (see
    test_kernel_float64_accuracy_against_mpmath).
    """
    fast, reference = both_paths(func, *args, **kwargs)
    worst = float(np.max(_ulps(fast, reference, dtype), initial=0.0))
    allowed = ULP[dtype] + np.log2(max(terms, 1))
    assert worst <= allowed, f"{func.__name__}: {worst:.1f} ulp (allowed {allowed:.1f})"
    return fast


rows = st.sampled_from([np.float64, np.float32]).flatmap(
    lambda dtype: st.tuples(
        st.just(dtype),
        st.integers(1, 40).flatmap(
            lambda c: st.tuples(
                hnp.arrays(dtype, (5, c), elements=st.floats(-30, 30, width=32)),
                hnp.arrays(np.int64, 5, elements=st.integers(0, c - 1)),
            )
        ),
    )
)


@given(rows, st.sampled_from([0.0, 0.1]), st.sampled_from([0.0, 1e-3]), st.booleans())
def test_property_sparse_kernel_matches_reference(case, smoothing, z, weighted):
    dtype, (x, t) = case
    kwargs = {"from_logits": True, "reduction": "none", "label_smoothing": smoothing, "z_loss": z}
    if weighted:
        kwargs["class_weight"] = np.linspace(0.5, 2.0, x.shape[1]).astype(dtype)
    assert_agree(ce.sparse_categorical_cross_entropy, t, x, dtype=dtype, terms=x.shape[1], **kwargs)


@pytest.mark.parametrize("isa", VARIANTS)
def test_kernel_float64_accuracy_against_mpmath(isa):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 150
    rng = np.random.default_rng(5)
    worst = 0.0
    for c in (3, 37, 300):
        x = rng.normal(0, 3, (40, c))
        t = rng.integers(0, c, 40)
        with _kernels.use_isa(isa):
            got = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
        for i in range(40):
            exact = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in x[i])) - mpmath.mpf(x[i, t[i]])
            worst = max(worst, float(abs(mpmath.mpf(got[i]) - exact) / mpmath.mpf(np.spacing(float(exact)))))
    assert worst <= 2.0, worst


@given(rows)
def test_property_grad_kernel_matches_reference(case):
    dtype, (x, t) = case
    fast, reference = both_paths(ce.grad.sparse_categorical_cross_entropy, t, x, from_logits=True)
    scale = np.abs(reference).max() + np.finfo(dtype).tiny
    assert np.max(np.abs(fast - reference)) <= 8 * np.finfo(dtype).eps * scale


@given(rows)
def test_property_information_kernels_match_reference(case):
    dtype, (x, _) = case
    p = sp.softmax(x.astype(np.float64), -1).astype(dtype)
    q = sp.softmax(x[::-1].astype(np.float64), -1).astype(dtype)
    p = p / p.sum(-1, keepdims=True, dtype=dtype)
    q = q / q.sum(-1, keepdims=True, dtype=dtype)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = {
            "entropy": np.abs(sp.xlogy(p64, p64)).sum(-1),
            "cross_entropy": np.abs(sp.xlogy(p64, q64)).sum(-1),
            # log(p / q) of a rounded ratio near 1 errs by eps absolute: a p * eps error per term
            "kl_divergence": np.abs(sp.rel_entr(p64, q64)).sum(-1) + p64.sum(-1),
        }
    for func, args in ((ce.entropy, (p,)), (ce.cross_entropy, (p, q)), (ce.kl_divergence, (p, q))):
        fast, reference = both_paths(func, *args, validate=False)
        # the reference rounds each term in the input dtype: bound by the size of the terms (cancellation in KL)
        bound = ULP[dtype] * np.spacing(np.abs(reference).astype(dtype)).astype(np.float64) + (
            4 * np.finfo(dtype).eps * magnitude[func.__name__]
        )
        assert np.all(np.abs(fast.astype(np.float64) - reference.astype(np.float64)) <= bound), func.__name__


@given(st.sampled_from([np.float64, np.float32]), st.integers(1, 200), st.booleans(), st.sampled_from([0.0, 0.2]))
def test_property_binary_kernel_matches_reference(dtype, n, logits, smoothing):
    rng = np.random.default_rng(n)
    y = (rng.uniform(size=n) > 0.5).astype(dtype)
    p = (rng.normal(0, 4, n) if logits else rng.uniform(0, 1, n)).astype(dtype)
    assert_agree(
        ce.binary_cross_entropy, y, p, dtype=dtype, from_logits=logits, label_smoothing=smoothing, reduction="none"
    )


def test_soft_target_kernel_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (64, 17))
    y = sp.softmax(rng.normal(size=(64, 17)), -1)
    for kwargs in ({}, {"label_smoothing": 0.1}, {"class_weight": rng.uniform(0.5, 2, 17)}):
        assert_agree(ce.categorical_cross_entropy, y, x, from_logits=True, reduction="none", terms=17, **kwargs)
        fast, ref = both_paths(ce.categorical_cross_entropy, y, x, from_logits=True, **kwargs)
        assert float(fast) == pytest.approx(float(ref), rel=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("convention", ["exact", "torch", "optax", "keras"])
def test_reductions_and_conventions_on_the_kernel_path(reduction, convention):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (50, 7)).astype(np.float32)
    t = rng.integers(0, 7, 50)
    t[3] = -1
    kwargs = {
        "from_logits": True,
        "reduction": reduction,
        "convention": convention,
        "sample_weight": rng.uniform(0, 2, 50).astype(np.float32),
        "ignore_index": -1,
    }
    if convention in ("exact", "torch", "keras"):
        kwargs["class_weight"] = rng.uniform(0.5, 2, 7).astype(np.float32)
    if convention == "optax":
        kwargs.pop("ignore_index")
        t[3] = 2
    fast = assert_agree(ce.sparse_categorical_cross_entropy, t, x, dtype=np.float32, **kwargs)
    assert np.asarray(fast).dtype == np.float32


def test_masked_and_extreme_logits_on_the_kernel_path():
    x = np.array([[0.0, -np.inf, 1.0], [1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    fast = assert_agree(ce.sparse_categorical_cross_entropy, np.array([0, 1, 1]), x, from_logits=True, reduction="none")
    assert fast[1] == 2e4
    fast = assert_agree(ce.sparse_categorical_cross_entropy, np.array([1, 0, 1]), x, from_logits=True, reduction="none")
    assert fast[0] == np.inf
    g = ce.grad.sparse_categorical_cross_entropy(np.array([0, 1, 1]), x, from_logits=True)
    assert np.isfinite(g).all()


def test_invalid_rows_fall_back_and_name_the_position():
    x = np.zeros((4, 3))
    x[2, 1] = np.nan
    with pytest.raises(ce.InputError, match=r"y_pred\[2, 1\] = nan is NaN"):
        ce.sparse_categorical_cross_entropy(np.zeros(4, int), x, from_logits=True)
    with pytest.raises(ce.InputError, match=r"labels\[1\] = 9 is out of range"):
        ce.sparse_categorical_cross_entropy(np.array([0, 9, 0, 0]), np.zeros((4, 3)), from_logits=True)
    with pytest.raises(ce.InputError, match=r"y_pred\[1\] = 1.5"):
        ce.binary_cross_entropy(np.zeros(3), np.array([0.5, 1.5, 0.5]))
    with pytest.raises(ce.InputError, match=r"p\[1, :\] sums to"):
        ce.entropy(np.array([[0.5, 0.5], [0.5, 0.6]]))
    value = ce.sparse_categorical_cross_entropy(np.zeros(4, int), x, from_logits=True, validate=False, reduction="none")
    assert np.isnan(value[2])
    assert np.isfinite(value[[0, 1, 3]]).all()


def test_value_and_grad_in_place_and_into_a_buffer():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 11)).astype(np.float32)
    t = rng.integers(0, 11, 32)
    kwargs = {"label_smoothing": 0.1, "z_loss": 1e-3, "class_weight": rng.uniform(0.5, 2, 11)}
    expected_loss = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, **kwargs)
    expected_grad = ce.grad.sparse_categorical_cross_entropy(t, x, from_logits=True, **kwargs)
    buffer = np.empty_like(x)
    loss, grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad(t, x, out=buffer, **kwargs)
    assert grad is buffer
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-8)
    logits = x.copy()
    loss, grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad(t, logits, out=logits, **kwargs)
    assert grad is logits
    np.testing.assert_allclose(logits, expected_grad, rtol=1e-5, atol=1e-8)
    with _dispatch.use("reference"):
        loss_ref, grad_ref = ce.grad.sparse_categorical_cross_entropy_value_and_grad(t, x, **kwargs)
    np.testing.assert_allclose(loss_ref, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(grad_ref, expected_grad, rtol=1e-5, atol=1e-8)


def test_in_place_with_a_bad_row_raises():
    x = np.zeros((3, 4))
    x[1, 2] = np.inf
    with pytest.raises(ce.InputError, match=r"y_pred\[1, 2\] = inf"):
        ce.grad.sparse_categorical_cross_entropy_value_and_grad(np.zeros(3, int), x, out=x)


@pytest.mark.slow
def test_thread_count_setting():
    code = (
        "import numpy as np, crossentropy as ce\n"
        "from crossentropy import _kernels\n"
        "print(_kernels.num_threads())\n"
        "x = np.random.default_rng(0).normal(size=(256, 64))\n"
        "print(float(ce.sparse_categorical_cross_entropy(np.zeros(256, int), x, from_logits=True)))\n"
    )
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "CROSSENTROPY_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outputs.append(proc.stdout.split())
    assert outputs[0][0] == "1"
    assert outputs[1][0] == "2"
    assert outputs[0][1] == outputs[1][1]  # rows are independent: same result with any thread count


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CROSSENTROPY_BACKEND", "reference", "reference"),
        ("CROSSENTROPY_BACKEND", "cpu", "cpu"),
        ("CROSSENTROPY_BACKEND", "auto", "cpu"),
        ("CROSSENTROPY_DISABLE_KERNELS", "1", "reference"),  # the older switch
    ],
)
def test_the_environment_forces_a_backend(variable, value, expected):
    code = (
        "import numpy as np, crossentropy as ce; from crossentropy import _dispatch; "
        "print(_dispatch.choose('sparse', np.zeros((2, 3)), ce.conventions.EXACT))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CROSSENTROPY_BACKEND", "CROSSENTROPY_DISABLE_KERNELS")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, variable: value}, check=True
    )
    assert proc.stdout.strip() == expected


def test_an_unknown_backend_in_the_environment_is_ignored_with_a_warning():
    code = "import warnings; warnings.simplefilter('error'); import crossentropy._dispatch"
    env = {**os.environ, "CROSSENTROPY_BACKEND": "gpu"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode != 0
    assert "CROSSENTROPY_BACKEND='gpu' ignored" in proc.stderr


def test_infinite_terms_stay_infinite_on_the_kernel_path():
    # regression: a compensated sum turned an infinite term into NaN
    p, q = np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])
    assert ce.kl_divergence(p, q)[0] == np.inf
    assert ce.cross_entropy(p, q)[0] == np.inf
    y, x = np.array([[0.5, 0.5, 0.0]]), np.array([[0.0, -np.inf, 1.0]])
    assert ce.categorical_cross_entropy(y, x, from_logits=True, reduction="none")[0] == np.inf


# --- every instruction-set variant this CPU runs -------------------------------------------------------


@pytest.mark.parametrize("isa", VARIANTS)
def test_each_variant_matches_the_reference(isa):
    rng = np.random.default_rng(7)
    with _kernels.use_isa(isa):
        assert _kernels.isa() == isa
        for dtype in (np.float64, np.float32):
            for c in (5, 37, 300, 5000):
                x = rng.normal(0, 4, (24, c)).astype(dtype)
                t = rng.integers(0, c, 24)
                for kwargs in ({}, {"label_smoothing": 0.1, "class_weight": rng.uniform(0.5, 2, c).astype(dtype)}):
                    assert_agree(
                        ce.sparse_categorical_cross_entropy,
                        t,
                        x,
                        dtype=dtype,
                        terms=c,
                        from_logits=True,
                        reduction="none",
                        **kwargs,
                    )
                fast, reference = both_paths(ce.grad.sparse_categorical_cross_entropy, t, x, from_logits=True)
                assert np.max(np.abs(fast - reference)) <= 8 * np.finfo(dtype).eps * np.abs(reference).max()
            p = sp.softmax(rng.normal(0, 3, (16, 50)), -1).astype(dtype)
            q = np.roll(p, 1, axis=1)
            for func, args in ((ce.entropy, (p,)), (ce.cross_entropy, (p, q)), (ce.kl_divergence, (p, q))):
                assert_agree(func, *args, dtype=dtype, terms=50, validate=False)
            y = (rng.uniform(size=300) > 0.5).astype(dtype)
            for logits, values in ((True, rng.normal(0, 10, 300)), (False, rng.uniform(0, 1, 300))):
                assert_agree(
                    ce.binary_cross_entropy, y, values.astype(dtype), dtype=dtype, from_logits=logits, reduction="none"
                )


# --- row statistics and the softmax gradient (the two-phase entries) ----------------------------------------


def _oracle_stats(x, w):
    x = x.astype(np.float64)
    mx = x.max(axis=1)
    with np.errstate(invalid="ignore"):
        total = np.exp(x - mx[:, None]).sum(axis=1)
        terms = np.where(w == 0, 0.0, np.where(np.isneginf(x), np.inf, w * (mx[:, None] - x)))
    total = np.where(np.isneginf(mx), 0.0, total)
    return mx, total, terms.sum(axis=1)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [1, 7, 64, 65, 3000, 5000])
@pytest.mark.parametrize("weighted", [False, True])
def test_row_stats_against_a_float64_oracle(isa, dtype, v, weighted):
    rng = np.random.default_rng(v)
    x = rng.normal(0, 5, (37, v)).astype(dtype)
    x[3, : v // 2] = -np.inf  # masked classes
    x[5] = -np.inf  # a shard holding none of the row's mass: valid here
    x[6] = x[6, 0]  # ties everywhere
    w = rng.uniform(0, 2, v).astype(dtype) if weighted else np.ones(v, dtype)
    if weighted:
        w[::3] = 0  # zero weights count 0, even on -inf logits
    with _kernels.use_isa(isa):
        mx, rest, dsum = _kernels.row_stats(x, class_weight=w if weighted else None, need_dsum=True)
        no_dsum = _kernels.row_stats(x)
    omx, ototal, odsum = _oracle_stats(x, w.astype(np.float64))
    assert np.array_equal(mx, omx)
    assert no_dsum is not None
    assert no_dsum[2] is None
    assert np.array_equal(no_dsum[1], rest)
    assert rest[5] == -1.0
    assert mx[5] == -np.inf
    assert dsum[5] == (np.inf if w.max() > 0 else 0.0)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(1.0 + rest, ototal, rtol=4 * eps, atol=0)
    finite = np.isfinite(odsum)
    assert np.array_equal(np.isfinite(dsum), finite)
    np.testing.assert_allclose(dsum[finite], odsum[finite], rtol=1e-12, atol=1e-300)
    assert (dsum >= 0).all()


def test_row_stats_rejects_nan_and_plus_inf():
    for bad in (np.nan, np.inf):
        x = np.zeros((3, 100))
        x[1, 5] = bad
        assert _kernels.row_stats(x) is None
        assert _kernels.row_stats(x[:, :10]) is None


def test_row_stats_keeps_log1p_accuracy_for_a_dominant_class():
    x = np.array([[0.0, -40.0, -45.0], [30.0, 0.0, 0.0]], np.float32)
    _, rest, _ = _kernels.row_stats(x)
    expected = [np.exp(-40.0) + np.exp(-45.0), 2 * np.exp(-30.0)]
    np.testing.assert_allclose(rest, expected, rtol=4 * np.finfo(np.float32).eps)


def _oracle_grad(x, mx, shift, coef, off, w, tcol, tcoef):
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        g = coef[:, None] * np.exp((x - mx[:, None]) - shift[:, None]) - off[:, None] * w[None, :]
    rows = np.flatnonzero((tcol >= 0) & (tcol < x.shape[1]))
    g[rows, tcol[rows]] -= tcoef[rows]
    return g


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [5, 64, 300, 4100])
def test_softmax_grad_against_a_float64_oracle(isa, dtype, v):
    rng = np.random.default_rng(v + 1)
    n = 40
    x = rng.normal(0, 3, (n, v)).astype(dtype)
    x[2, :3] = -np.inf
    w = rng.uniform(0.5, 2, v).astype(dtype)
    mx = x.astype(np.float64).max(axis=1)
    shift = np.log(np.exp(x.astype(np.float64) - mx[:, None]).sum(axis=1))
    coef = rng.uniform(0.5, 2, n)
    off = rng.uniform(0, 0.01, n)
    tcol = rng.integers(-2, v + 2, n)  # out-of-range targets subtract nothing
    tcoef = rng.uniform(0, 1, n)
    coef[7] = off[7] = tcoef[7] = 0.0  # an all-zero row: exact zeros, exp never evaluated
    mx[7] = np.nan
    grad = np.full_like(x, 7.0)
    with _kernels.use_isa(isa):
        assert _kernels.softmax_grad(x, mx, shift, coef, tcol, tcoef, off=off, class_weight=w, grad_out=grad)
    expected = _oracle_grad(x, mx, shift, coef, off, w.astype(np.float64), tcol, tcoef)
    expected[7] = 0.0
    assert np.all(grad[7] == 0)
    assert not np.signbit(grad[7]).any()
    tol = 6 * np.finfo(dtype).eps * (np.abs(coef) + np.abs(off) * 2 + tcoef)[:, None]
    assert np.all(np.abs(grad - expected) <= tol)
    in_place = x.copy()
    with _kernels.use_isa(isa):
        _kernels.softmax_grad(in_place, mx, shift, coef, tcol, tcoef, off=off, class_weight=w, grad_out=in_place)
    assert np.array_equal(in_place, grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [10, 1000])
def test_fused_gradient_equals_row_stats_plus_softmax_grad(dtype, v):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, (64, v)).astype(dtype)
    t = rng.integers(0, v, 64)
    fused = np.empty_like(x)
    loss = _kernels.sparse(x, t, ignore_index=None, class_weight=None, label_smoothing=0.0, z_loss=0.0, grad_out=fused)
    mx, rest, _ = _kernels.row_stats(x)
    shift = np.array([math.log1p(r) for r in rest])  # libm's, as the kernel's long rows use
    two_phase = np.empty_like(x)
    ones = np.ones(64)
    assert _kernels.softmax_grad(x, mx, shift, ones, t, ones, grad_out=two_phase)
    np.testing.assert_allclose(loss, (mx - x[np.arange(64), t]) + shift, rtol=2 * np.finfo(dtype).eps)
    if v > 64:  # long rows: the same log1p on both sides, so the same bits
        assert np.array_equal(fused, two_phase)
    else:
        np.testing.assert_allclose(fused, two_phase, rtol=0, atol=4 * np.finfo(dtype).eps)


# --- regressions from the hardening issue ---------------------------------------------------------------------


def test_label_smoothing_has_no_cancellation():
    s = ce.sparse_categorical_cross_entropy
    assert s([0], np.full((1, 64), 1e30), from_logits=True, label_smoothing=0.1) == pytest.approx(np.log(64), rel=1e-14)
    x32 = np.zeros((1, 3), np.float32)
    value = s([0], x32, from_logits=True, label_smoothing=0.1, reduction="none")
    assert value[0] == pytest.approx(np.log(3), rel=2 * float(np.finfo(np.float32).eps))
    rng = np.random.default_rng(4)
    for offset in (1e3, 1e6, -1e8):
        x = offset + rng.normal(0, 1, (30, 50))
        t = rng.integers(0, 50, 30)
        assert_agree(s, t, x, terms=50, from_logits=True, label_smoothing=0.1, reduction="none")
        assert_agree(
            s,
            t,
            x,
            terms=50,
            from_logits=True,
            label_smoothing=0.1,
            reduction="none",
            class_weight=rng.uniform(0.5, 2, 50),
        )


def test_ignore_index_and_labels_never_wrap():
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    s = ce.sparse_categorical_cross_entropy
    plain = s(np.array([2, 0]), x, from_logits=True)
    assert s(np.array([2, 0]), x, from_logits=True, ignore_index=2**64) == pytest.approx(plain, rel=1e-15)
    assert s(np.array([2, 0]), x, from_logits=True, ignore_index=-(2**64)) == pytest.approx(plain, rel=1e-15)
    huge = np.array([2**64 - 1, 0], dtype=np.uint64)
    kwargs = {"ignore_index": -1, "class_weight": None, "label_smoothing": 0.0, "z_loss": 0.0}
    assert _kernels.sparse(x, huge, **kwargs) is None
    with pytest.raises(ce.InputError, match="labels"):
        s(huge, x, from_logits=True, ignore_index=-1)
    with _dispatch.use("reference"), pytest.raises(ce.InputError, match="labels"):
        s(huge, x, from_logits=True, ignore_index=-1)


def test_masked_arrays_do_not_take_the_kernel_path():
    x = np.ma.masked_array(np.zeros((2, 3)), mask=[[0, 0, 0], [1, 1, 1]])
    assert not _kernels.usable(x)


def test_forcings_are_counted_and_auto_lifts_them():
    """``_dispatch.forcings`` counts the forcings in force (the drop-in's fast exit reads it); ``"auto"`` lifts
    the forcing inside its context without counting; an unknown backend is an InputError naming it."""
    base = _dispatch.forcings
    with _dispatch.use("reference"):
        assert _dispatch.forcings == base + 1
        assert _dispatch.forced() == "reference"
        with _dispatch.use("auto"):
            assert _dispatch.forcings == base + 1
            assert _dispatch.forced() is None
    assert _dispatch.forcings == base
    with pytest.raises(ce.InputError, match="backend must be one of"), _dispatch.use("gpu"):
        pass
    assert _dispatch.forcings == base


def test_a_forced_backend_is_per_thread():
    import threading

    seen = {}
    inside, checked = threading.Event(), threading.Event()
    x = np.zeros((2, 3))

    def other():
        inside.wait(10)
        seen["other"] = _dispatch.choose("sparse", x, ce.conventions.EXACT)
        checked.set()

    worker = threading.Thread(target=other)
    worker.start()
    with _dispatch.use("reference"):
        inside.set()
        checked.wait(10)
        seen["here"] = _dispatch.choose("sparse", x, ce.conventions.EXACT)
    worker.join(10)
    assert seen == {"other": "cpu", "here": "reference"}
    assert _dispatch.choose("sparse", x, ce.conventions.EXACT) == "cpu"


# --- the explicit-vector float32 paths: every tail length, NaN anywhere, the ulp bounds per variant ----------


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("v", [1, 3, 15, 16, 17, 63, 64, 65, 2047, 2048, 2049, 4097])
def test_float32_rows_flag_nan_and_inf_at_every_position(isa, v):
    rng = np.random.default_rng(v)
    positions = sorted({0, v // 2, v - 1})
    for bad in (np.nan, np.inf):
        for where in positions:
            for masked in (False, True):  # masked: every other value -inf (no finite maximum to subtract)
                x = np.full((3, v), -np.inf, np.float32) if masked else rng.normal(0, 3, (3, v)).astype(np.float32)
                x[1, where] = bad
                with _kernels.use_isa(isa):
                    assert _kernels.row_stats(x) is None, (bad, where, masked)
                    kwargs = {"ignore_index": None, "class_weight": None, "label_smoothing": 0.0, "z_loss": 0.0}
                    assert _kernels.sparse(x, np.zeros(3, np.int64), **kwargs) is None, (bad, where, masked)


@pytest.mark.parametrize("isa", VARIANTS)
def test_float32_kernels_within_their_ulp_bounds_against_mpmath(isa):
    """The float32 kernels' bounds of docs/accuracy.md, asserted per variant: sparse CE <= 2 ulp, the
    information measures and binary CE <= 1 ulp (float64 lanes), on odd lengths that exercise every tail."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 96
    rng = np.random.default_rng(11)

    def worst(got, exact):
        return max(
            float(abs(mpmath.mpf(float(g)) - e) / mpmath.mpf(float(np.spacing(np.float32(abs(float(e)))))))
            for g, e in zip(got, exact, strict=True)
        )

    with _kernels.use_isa(isa):
        for v, scale in ((7, 1.0), (37, 10.0), (301, 3.0), (2053, 3.0)):
            x = rng.normal(0, scale, (12, v)).astype(np.float32)
            t = rng.integers(0, v, 12)
            got = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
            exact = []
            for i in range(12):
                row = [mpmath.mpf(float(a)) for a in x[i]]
                exact.append(mpmath.log(mpmath.fsum(mpmath.exp(a) for a in row)) - row[t[i]])
            assert worst(got, exact) <= 2.0, (v, scale)
        p = sp.softmax(rng.normal(0, 3, (10, 53)), -1).astype(np.float32)
        q = np.roll(p, 3, axis=1)
        pm = [[mpmath.mpf(float(a)) for a in r] for r in p]
        qm = [[mpmath.mpf(float(a)) for a in r] for r in q]
        exact_h = [-mpmath.fsum(a * mpmath.log(a) for a in r if a) for r in pm]
        exact_x = [
            -mpmath.fsum(a * mpmath.log(b) for a, b in zip(r, s, strict=True) if a) for r, s in zip(pm, qm, strict=True)
        ]
        exact_kl = [
            mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(r, s, strict=True) if a)
            for r, s in zip(pm, qm, strict=True)
        ]
        assert worst(ce.entropy(p, validate=False), exact_h) <= 1.0
        assert worst(ce.cross_entropy(p, q, validate=False), exact_x) <= 1.0
        assert worst(ce.kl_divergence(p, q, validate=False), exact_kl) <= 1.0
        y = (rng.uniform(size=101) > 0.5).astype(np.float32)
        for logits, raw in ((False, rng.uniform(0, 1, 101)), (True, rng.normal(0, 10, 101))):
            xb = raw.astype(np.float32)
            got = ce.binary_cross_entropy(y, xb, from_logits=logits, reduction="none")
            exact = []
            for a, b in zip(y, xb, strict=True):
                a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
                if logits:
                    exact.append(a * mpmath.log(1 + mpmath.exp(-b)) + (1 - a) * mpmath.log(1 + mpmath.exp(b)))
                else:
                    exact.append(-(a * mpmath.log(b) if a else 0) - ((1 - a) * mpmath.log(1 - b) if a != 1 else 0))
            assert worst(got, exact) <= 1.0, logits


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize(("dtype", "bound", "smallest"), [(np.float32, 1.0, 1e-30), (np.float64, 2.0, 1e-300)])
def test_binary_kernel_tails_against_mpmath(isa, dtype, bound, smallest):
    """Issue 27: float32 binary CE with label 0 gave -0.0 for p = 1e-20 (1 - p rounded to 1 before the log).
    Probabilities and their complements down to ``smallest``, logits from 1e-30 to 1e4 in magnitude, both labels:
    within the bound of docs/accuracy.md, in every variant."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200  # 1 - 1e-300 needs 1000 bits: the oracle takes log1p(-p) instead
    rng = np.random.default_rng(27)
    tiny = 10 ** rng.uniform(math.log10(smallest), 0, 150)
    sign = np.where(rng.uniform(size=150) > 0.5, 1.0, -1.0)
    for logits, raw in ((False, np.concatenate([tiny, 1 - tiny])), (True, sign * 10 ** rng.uniform(-30, 4, 150))):
        x = raw.astype(dtype)
        y = (rng.uniform(size=x.size) > 0.5).astype(dtype)
        with _kernels.use_isa(isa):
            got = ce.binary_cross_entropy(y, x, from_logits=logits, reduction="none")
        for a, b, g in zip(y, x, got, strict=True):
            a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
            if logits:
                exact = a * mpmath.log1p(mpmath.exp(-b)) + (1 - a) * mpmath.log1p(mpmath.exp(b))
            else:
                exact = -(a * mpmath.log(b) if a else 0) - ((1 - a) * mpmath.log1p(-b) if a != 1 else 0)
            if not mpmath.isfinite(exact):
                assert g == float(exact), (a, b, g)
                continue
            ulp = float(np.spacing(dtype(abs(float(exact)))))
            assert float(abs(mpmath.mpf(float(g)) - exact)) <= bound * ulp, (float(a), float(b), float(g), exact)


def test_read_and_copy_floors():
    x = np.random.default_rng(0).uniform(size=200_003).astype(np.float32)
    assert _kernels.read_floor(x) == pytest.approx(float(x.sum(dtype=np.float64)), rel=1e-4)
    out = np.empty_like(x)
    _kernels.copy_floor(x, out)
    assert np.array_equal(out, x)
    with pytest.raises(ValueError, match="out must be"):
        _kernels.copy_floor(x, np.empty(3, np.float32))
