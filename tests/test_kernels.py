"""The fused CPU kernels against the array-API reference path, in ulp."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossentropy as ce
from crossentropy import _kernels

ULP = {np.float64: 2, np.float32: 4}


def test_kernels_are_built_and_used():
    # CI builds them on install; a machine without a C compiler runs the reference path only
    assert _kernels.available(), "the CPU kernels were not built (no C compiler at install time?)"
    assert _kernels.enabled()
    with _kernels.disabled():
        assert not _kernels.enabled()


def _ulps(a, b, dtype):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(dtype)).astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, np.abs(a - b) / scale)


def both_paths(func, *args, **kwargs):
    fast = func(*args, **kwargs)
    with _kernels.disabled():
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


def test_kernel_float64_accuracy_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 150
    rng = np.random.default_rng(5)
    worst = 0.0
    for c in (3, 37, 300):
        x = rng.normal(0, 3, (40, c))
        t = rng.integers(0, c, 40)
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
    with _kernels.disabled():
        loss_ref, grad_ref = ce.grad.sparse_categorical_cross_entropy_value_and_grad(t, x, **kwargs)
    np.testing.assert_allclose(loss_ref, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(grad_ref, expected_grad, rtol=1e-5, atol=1e-8)


def test_in_place_with_a_bad_row_raises():
    x = np.zeros((3, 4))
    x[1, 2] = np.inf
    with pytest.raises(ce.InputError, match=r"y_pred\[1, 2\] = inf"):
        ce.grad.sparse_categorical_cross_entropy_value_and_grad(np.zeros(3, int), x, out=x)


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


def test_disable_by_environment():
    code = "from crossentropy import _kernels; print(_kernels.enabled())"
    env = {**os.environ, "CROSSENTROPY_DISABLE_KERNELS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.strip() == "False"


def test_infinite_terms_stay_infinite_on_the_kernel_path():
    # regression: a compensated sum turned an infinite term into NaN
    p, q = np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])
    assert ce.kl_divergence(p, q)[0] == np.inf
    assert ce.cross_entropy(p, q)[0] == np.inf
    y, x = np.array([[0.5, 0.5, 0.0]]), np.array([[0.0, -np.inf, 1.0]])
    assert ce.categorical_cross_entropy(y, x, from_logits=True, reduction="none")[0] == np.inf
