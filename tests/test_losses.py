"""The losses under the exact convention: semantics, backends, gradients, errors."""

from __future__ import annotations

import math

import array_api_compat
import numpy as np
import pytest

import crossentropy as ce
from optional import given, hnp, optional, st

sp = optional("scipy.special")

L = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
T = np.array([0, 1, 2])
W = np.array([1.0, 2.0, 3.0])


def _rng_case(seed=0, n=6, c=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, (n, c))
    return x, rng.integers(0, c, n), sp.softmax(x, -1)


# --- exact semantics --------------------------------------------------------------------------


def test_sparse_equals_categorical_with_one_hot_and_log_loss():
    x, t, p = _rng_case()
    onehot = np.eye(4)[t]
    for kwargs in ({}, {"class_weight": [*W.tolist(), 0.5]}, {"label_smoothing": 0.2}):
        a = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, **kwargs)
        b = ce.categorical_cross_entropy(onehot, x, from_logits=True, **kwargs)
        assert float(a) == pytest.approx(float(b), rel=1e-14)
    assert float(ce.log_loss(t, p, labels=range(4))) == pytest.approx(
        float(ce.sparse_categorical_cross_entropy(t, p)), rel=1e-14
    )


def test_binary_equals_two_column_categorical():
    rng = np.random.default_rng(1)
    y = rng.uniform(size=20)
    p = rng.uniform(0.01, 0.99, size=20)
    two = ce.categorical_cross_entropy(np.stack([1 - y, y], -1), np.stack([1 - p, p], -1), reduction="none")
    np.testing.assert_allclose(ce.binary_cross_entropy(y, p, reduction="none"), two, rtol=1e-13)


def test_all_ignored_and_empty_batches():
    ignored = np.full(3, -100)
    assert math.isnan(ce.sparse_categorical_cross_entropy(ignored, L, from_logits=True, ignore_index=-100))
    assert (
        float(ce.sparse_categorical_cross_entropy(ignored, L, from_logits=True, ignore_index=-100, reduction="sum"))
        == 0.0
    )
    empty = np.empty((0, 3))
    assert math.isnan(ce.sparse_categorical_cross_entropy(np.empty(0, int), empty, from_logits=True))
    assert float(ce.sparse_categorical_cross_entropy(np.empty(0, int), empty, from_logits=True, reduction="sum")) == 0.0
    assert ce.categorical_cross_entropy(empty, empty, reduction="none").shape == (0,)
    assert math.isnan(ce.binary_cross_entropy(np.empty(0), np.empty(0)))
    # keras divides with divide_no_nan
    assert (
        float(
            ce.sparse_categorical_cross_entropy(
                np.full(3, -1), L, from_logits=True, ignore_index=-1, convention="keras"
            )
        )
        == 0.0
    )


def test_zero_total_weight_is_nan_and_zero_weight_hides_inf():
    assert math.isnan(ce.binary_cross_entropy([1.0, 0.0], [0.5, 0.5], sample_weight=[0.0, 0.0]))
    assert float(ce.binary_cross_entropy([1.0, 1.0], [0.0, 0.5], sample_weight=[0.0, 1.0])) == pytest.approx(
        math.log(2)
    )


def test_weighted_mean_is_sum_wl_over_sum_w():
    got = ce.sparse_categorical_cross_entropy(T, L, from_logits=True, class_weight=W, sample_weight=[1.0, 0.5, 2.0])
    per = -sp.log_softmax(L, -1)[np.arange(3), T]
    s = np.array([1.0, 0.5, 2.0])
    assert float(got) == pytest.approx((s * W[T] * per).sum() / (s * W[T]).sum(), rel=1e-14)


def test_masked_logits_and_extreme_logits():
    assert float(ce.sparse_categorical_cross_entropy([0], [[0.0, -np.inf, 1.0]], from_logits=True)) == pytest.approx(
        1.3132616875182228, rel=1e-15
    )
    assert ce.sparse_categorical_cross_entropy([1], [[0.0, -np.inf, 1.0]], from_logits=True) == np.inf
    # -inf with label smoothing: the smoothing mass reaches the masked class
    assert (
        ce.sparse_categorical_cross_entropy([0], [[0.0, -np.inf, 1.0]], from_logits=True, label_smoothing=0.1) == np.inf
    )
    assert float(ce.categorical_cross_entropy([[1.0, 0.0, 0.0]], [[0.0, -np.inf, 1.0]], from_logits=True)) == (
        pytest.approx(1.3132616875182228)
    )
    assert float(ce.sparse_categorical_cross_entropy([0], [[1e4, -1e4, 0.0]], from_logits=True)) == 0.0
    assert float(ce.sparse_categorical_cross_entropy([1], [[1e4, -1e4, 0.0]], from_logits=True)) == 2e4
    assert float(ce.binary_cross_entropy([1.0, 0.0], [1e4, -1e4], from_logits=True)) == 0.0
    assert float(ce.binary_cross_entropy([0.0], [1e4], from_logits=True)) == 1e4
    assert float(ce.binary_cross_entropy([1.0, 0.0], [np.inf, -np.inf], from_logits=True)) == 0.0
    assert ce.binary_cross_entropy([0.0], [np.inf], from_logits=True) == np.inf


def test_binary_zero_and_one_probabilities():
    assert float(ce.binary_cross_entropy([1.0, 0.0], [1.0, 0.0])) == 0.0
    assert ce.binary_cross_entropy([1.0], [0.0]) == np.inf
    assert float(ce.binary_cross_entropy([1.0], [1e-45], validate=False)) == pytest.approx(-math.log(1e-45))
    assert float(ce.binary_cross_entropy([0.0], [1e-300])) == pytest.approx(1e-300)


def test_z_loss_adds_squared_logsumexp():
    z = 1e-3
    got = ce.sparse_categorical_cross_entropy(T, L, from_logits=True, z_loss=z, reduction="none")
    base = ce.sparse_categorical_cross_entropy(T, L, from_logits=True, reduction="none")
    np.testing.assert_allclose(got, base + z * sp.logsumexp(L, -1) ** 2, rtol=1e-14)


def test_pos_weight_broadcasts_per_column():
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    x = np.array([[0.3, -1.0], [2.0, 0.5]])
    got = ce.binary_cross_entropy(y, x, from_logits=True, pos_weight=[2.0, 3.0], reduction="none")
    pw = np.array([2.0, 3.0])
    expected = -(pw * y * -np.logaddexp(0, -x) + (1 - y) * -np.logaddexp(0, x))
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_class_axis():
    x, t, _ = _rng_case(3)
    a = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
    b = ce.sparse_categorical_cross_entropy(t, x.T, axis=0, from_logits=True, reduction="none")
    np.testing.assert_allclose(a, b, rtol=1e-15)
    y = np.eye(4)[t]
    np.testing.assert_allclose(ce.categorical_cross_entropy(y.T, x.T, axis=0, from_logits=True, reduction="none"), a)
    x3 = np.random.default_rng(4).normal(size=(2, 5, 3))
    t3 = np.random.default_rng(5).integers(0, 5, (2, 3))
    a3 = ce.sparse_categorical_cross_entropy(t3, x3, axis=1, from_logits=True, reduction="none")
    np.testing.assert_allclose(a3, -sp.log_softmax(x3, 1)[np.arange(2)[:, None], t3, np.arange(3)], rtol=1e-14)


def test_focal_reduces_to_cross_entropy_at_gamma_zero():
    x, t, p = _rng_case(6)
    y = np.eye(4)[t]
    assert float(ce.categorical_focal_loss(y, p, gamma=0.0)) == pytest.approx(
        float(ce.categorical_cross_entropy(y, p)), rel=1e-14
    )
    yb = (x > 0).astype(float)
    assert float(ce.binary_focal_loss(yb, x, gamma=0.0, from_logits=True)) == pytest.approx(
        float(ce.binary_cross_entropy(yb, x, from_logits=True)), rel=1e-14
    )


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_low_precision_dtypes_are_kept(dtype):
    x = L.astype(dtype)
    assert ce.sparse_categorical_cross_entropy(T, x, from_logits=True).dtype == np.dtype(dtype)
    assert ce.binary_cross_entropy(np.array([1, 0], dtype), np.array([0.3, 0.2], dtype)).dtype == np.dtype(dtype)
    assert float(ce.sparse_categorical_cross_entropy(T, x, from_logits=True)) == pytest.approx(0.5785639, rel=2e-3)


def test_bfloat16_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor(L, dtype=torch.bfloat16)
    got = ce.sparse_categorical_cross_entropy(torch.tensor(T), x, from_logits=True)
    assert got.dtype == torch.bfloat16
    assert float(got) == pytest.approx(float(torch.nn.functional.cross_entropy(x.float(), torch.tensor(T))), rel=1e-2)


# --- backends -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_losses_on_every_backend(xp):
    x, t, p = _rng_case(7)
    y = np.eye(4)[t]
    yb = (x > 0).astype(float)
    cases = [
        (ce.binary_cross_entropy, (yb, x), {"from_logits": True, "sample_weight": np.linspace(0.5, 1.5, 4)}),
        (ce.binary_cross_entropy, (yb, sp.expit(x)), {"label_smoothing": 0.1}),
        (ce.categorical_cross_entropy, (y, x), {"from_logits": True, "class_weight": np.arange(1.0, 5.0)}),
        (ce.categorical_cross_entropy, (y, p), {"reduction": "none"}),
        (ce.sparse_categorical_cross_entropy, (t, x), {"from_logits": True, "label_smoothing": 0.1, "z_loss": 1e-2}),
        (ce.sparse_categorical_cross_entropy, (t, p), {"reduction": "sum"}),
        (ce.binary_focal_loss, (yb, x), {"from_logits": True, "alpha": 0.25}),
        (ce.categorical_focal_loss, (y, p), {}),
        (ce.grad.sparse_categorical_cross_entropy, (t, x), {"from_logits": True, "class_weight": np.arange(1.0, 5.0)}),
        (ce.grad.binary_cross_entropy, (yb, x), {"from_logits": True}),
        (ce.grad.categorical_focal_loss, (y, x), {"from_logits": True}),
    ]
    for func, args, kwargs in cases:
        converted = [xp.asarray(a, dtype="int64" if a.dtype.kind == "i" else "float64") for a in args]
        kw = {k: xp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        got = func(*converted, **kw)
        assert array_api_compat.array_namespace(got) is array_api_compat.array_namespace(converted[1])
        np.testing.assert_allclose(
            xp.to_numpy(got), func(*args, **kwargs), rtol=1e-12, atol=1e-15, err_msg=func.__name__
        )


def test_log_loss_keeps_the_array_kind():
    torch = pytest.importorskip("torch")
    got = ce.log_loss(["a", "b", "b"], torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]], dtype=torch.float64))
    assert isinstance(got, torch.Tensor)
    assert float(got) == pytest.approx(0.2283930, rel=1e-6)


# --- gradients ------------------------------------------------------------------------------------

GRAD_CASES = [
    ("binary", {"from_logits": True}),
    ("binary", {"from_logits": True, "pos_weight": "pw", "sample_weight": "sw", "label_smoothing": 0.1}),
    ("binary", {}),
    ("categorical", {"from_logits": True, "class_weight": "cw", "label_smoothing": 0.2}),
    ("categorical", {"sample_weight": "sw"}),
    ("sparse", {"from_logits": True}),
    (
        "sparse",
        {
            "from_logits": True,
            "class_weight": "cw",
            "ignore_index": -1,
            "label_smoothing": 0.1,
            "z_loss": 0.01,
            "sample_weight": "sw",
        },
    ),
    ("sparse", {"class_weight": "cw"}),
    ("binary_focal", {"from_logits": True, "alpha": 0.25}),
    ("binary_focal", {"gamma": 1.5}),
    ("binary_focal", {"from_logits": True, "gamma": 0.5, "label_smoothing": 0.1}),
    ("categorical_focal", {"from_logits": True, "alpha": 0.5}),
    ("categorical_focal", {"gamma": 3.0, "label_smoothing": 0.1}),
]

LOSS = {
    "binary": (ce.binary_cross_entropy, ce.grad.binary_cross_entropy),
    "categorical": (ce.categorical_cross_entropy, ce.grad.categorical_cross_entropy),
    "sparse": (ce.sparse_categorical_cross_entropy, ce.grad.sparse_categorical_cross_entropy),
    "binary_focal": (ce.binary_focal_loss, ce.grad.binary_focal_loss),
    "categorical_focal": (ce.categorical_focal_loss, ce.grad.categorical_focal_loss),
}


def _grad_inputs(kind, opts, seed=0):
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    x = rng.normal(0, 1.5, (n, c))
    logits = opts.get("from_logits", False)
    kwargs = dict(opts)
    if kind.startswith("binary"):
        y = rng.uniform(size=(n, c)) if "label_smoothing" in opts else (rng.uniform(size=(n, c)) > 0.5) * 1.0
        pred = x if logits else sp.expit(x)
    else:
        labels = rng.integers(0, c, n)
        if opts.get("ignore_index") == -1:
            labels[2] = -1
        y = labels if kind == "sparse" else np.eye(c)[labels]
        pred = x if logits else sp.softmax(x, -1)
    replacements = {
        "pw": rng.uniform(0.5, 2, c),
        "cw": rng.uniform(0.5, 2, c),
        "sw": rng.uniform(0.5, 2, (n, 1) if kind.startswith("binary") else n),
    }
    for k, v in list(kwargs.items()):
        if isinstance(v, str):
            kwargs[k] = replacements[v]
    return y, pred, kwargs


def _distribution_fd(loss, y, pred, kwargs, logits, h=1e-6):
    """Central finite differences; for probabilities, along directions that keep rows summing to 1."""
    g = np.zeros_like(pred)
    for idx in np.ndindex(*pred.shape):
        step = np.zeros_like(pred)
        step[idx] = h
        g[idx] = (
            float(loss(y, pred + step, validate=False, **kwargs))
            - float(loss(y, pred - step, validate=False, **kwargs))
        ) / (2 * h)
    return g


@pytest.mark.parametrize(("kind", "opts"), GRAD_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_matches_finite_differences(kind, opts, reduction):
    y, pred, kwargs = _grad_inputs(kind, opts)
    loss, grad = LOSS[kind]
    kwargs["reduction"] = reduction
    got = grad(y, pred, validate=False, **kwargs)
    expected = _distribution_fd(loss, y, pred, kwargs, opts.get("from_logits", False))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("kind", "opts"), GRAD_CASES)
def test_grad_matches_torch_autograd(kind, opts):
    torch = pytest.importorskip("torch")
    y, pred, kwargs = _grad_inputs(kind, opts, seed=1)
    loss, grad = LOSS[kind]
    x = torch.tensor(pred, requires_grad=True)
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    loss(torch.tensor(y), x, validate=False, **tkw).backward()
    np.testing.assert_allclose(grad(y, pred, validate=False, **kwargs), x.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_grad_reduction_none_is_per_sample():
    x, t, _ = _rng_case(8)
    g = ce.grad.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
    np.testing.assert_allclose(g, sp.softmax(x, -1) - np.eye(4)[t], rtol=1e-13, atol=1e-15)


def test_grad_matches_torch_own_cross_entropy():
    torch = pytest.importorskip("torch")
    x, t, _ = _rng_case(9)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(
        xt, torch.tensor(t), weight=torch.tensor([*W.tolist(), 0.7], dtype=torch.float64), label_smoothing=0.15
    ).backward()
    got = ce.grad.sparse_categorical_cross_entropy(
        t, x, from_logits=True, class_weight=[*W.tolist(), 0.7], label_smoothing=0.15, convention="torch"
    )
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    xb = torch.tensor(x, requires_grad=True)
    yb = torch.tensor((x > 0) * 1.0)
    torch.nn.functional.binary_cross_entropy_with_logits(
        xb, yb, pos_weight=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    ).backward()
    got = ce.grad.binary_cross_entropy(
        yb.numpy(), x, from_logits=True, pos_weight=[1.0, 2.0, 3.0, 4.0], convention="torch"
    )
    np.testing.assert_allclose(got, xb.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_jax_grad_and_jit_of_losses():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x, t, _ = _rng_case(10)

    def f(z):
        return ce.sparse_categorical_cross_entropy(
            jnp.asarray(t), z, from_logits=True, label_smoothing=0.1, validate=False
        )

    expected = ce.grad.sparse_categorical_cross_entropy(t, x, from_logits=True, label_smoothing=0.1)
    np.testing.assert_allclose(jax.grad(f)(jnp.asarray(x)), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jax.jit(f)(jnp.asarray(x)), f(jnp.asarray(x)), rtol=1e-15)
    # value checks are skipped (not failed) while tracing
    np.testing.assert_allclose(
        jax.jit(lambda z: ce.binary_cross_entropy(jnp.ones(4), z, from_logits=True))(jnp.asarray(x[0])),
        ce.binary_cross_entropy(np.ones(4), x[0], from_logits=True),
        rtol=1e-15,
    )


def test_grad_refuses_clipped_conventions():
    with pytest.raises(ce.InputError, match="no closed-form gradient for convention 'keras'"):
        ce.grad.binary_cross_entropy([1.0], [0.5], convention="keras")
    with pytest.raises(ce.InputError, match="from probabilities"):
        ce.grad.sparse_categorical_cross_entropy([0], [[0.5, 0.5]], convention="torch")


# --- properties ----------------------------------------------------------------------------------

logit_rows = st.integers(1, 6).flatmap(
    lambda c: st.tuples(
        hnp.arrays(np.float64, (4, c), elements=st.floats(-50, 50)),
        hnp.arrays(np.int64, 4, elements=st.integers(0, c - 1)),
    )
)


@given(logit_rows, st.floats(-1e3, 1e3))
def test_property_shift_invariance(case, shift):
    x, t = case
    a = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
    b = ce.sparse_categorical_cross_entropy(t, x + shift, from_logits=True, reduction="none")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


@given(logit_rows, st.randoms(use_true_random=False))
@pytest.mark.slow
def test_property_class_permutation(case, rnd):
    x, t = case
    perm = list(range(x.shape[1]))
    rnd.shuffle(perm)
    inverse = np.argsort(perm)
    a = ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none")
    b = ce.sparse_categorical_cross_entropy(inverse[t], x[:, perm], from_logits=True, reduction="none")
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


@given(logit_rows, st.integers(1, 3), hnp.arrays(np.float64, 4, elements=st.floats(0.1, 10)))
def test_property_batch_splitting(case, cut, weights):
    x, t = case
    whole = float(ce.sparse_categorical_cross_entropy(t, x, from_logits=True, sample_weight=weights))
    parts = [(slice(0, cut), weights[:cut].sum()), (slice(cut, 4), weights[cut:].sum())]
    means = [
        float(ce.sparse_categorical_cross_entropy(t[s], x[s], from_logits=True, sample_weight=weights[s]))
        for s, _ in parts
    ]
    combined = sum(m * w for m, (_, w) in zip(means, parts, strict=True)) / weights.sum()
    assert combined == pytest.approx(whole, rel=1e-12, abs=1e-12)


@given(logit_rows)
def test_property_cross_entropy_at_least_entropy_of_targets(case):
    x, t = case
    assert np.all(ce.sparse_categorical_cross_entropy(t, x, from_logits=True, reduction="none") >= 0)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda: ce.sparse_categorical_cross_entropy([0, 3, 1], L, from_logits=True),
            r"labels\[1\] = 3 is out of range; labels must be in \[0, 3\)",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy([0, -1, 1], L, from_logits=True),
            r"labels\[1\] = -1 is out of range",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy([0, -1, 7], L, from_logits=True, ignore_index=-1),
            r"labels\[2\] = 7 is out of range; labels must be in \[0, 3\) or equal ignore_index=-1",
        ),
        (lambda: ce.sparse_categorical_cross_entropy([0.0, 1.0, 2.0], L, from_logits=True), r"labels must be integers"),
        (
            lambda: ce.sparse_categorical_cross_entropy([0, 1], L, from_logits=True),
            r"labels must have y_pred's shape without the class axis",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy([[0], [1], [2]], L, from_logits=True),
            r"expected \(3,\), got \(3, 1\)",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, class_weight=[1.0, -2.0, 1.0]),
            r"class_weight\[1\] = -2; weights must be finite and non-negative",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, class_weight=[1.0, 2.0]),
            r"class_weight must have shape \(3,\)",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, sample_weight=[1.0, np.nan, 1.0]),
            r"sample_weight\[1\] = nan",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, sample_weight=[1.0, 1.0]),
            r"sample_weight of shape \(2,\) does not broadcast",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, label_smoothing=1.5),
            r"label_smoothing must lie in \[0, 1\]",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, label_smoothing=-0.1),
            r"label_smoothing must lie in \[0, 1\]",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, convention="pytorch"),
            r"convention must be one of 'exact', 'torch'",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, reduction="avg"),
            r"reduction must be one of 'mean', 'sum', 'none'",
        ),
        (lambda: ce.sparse_categorical_cross_entropy(T, sp.softmax(L, -1), z_loss=0.1), r"z_loss needs logits"),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, z_loss=-1.0),
            r"z_loss must be a finite number >= 0",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, z_loss=0.1, convention="torch"),
            r"convention 'torch' \(PyTorch 2.x\) has no z_loss",
        ),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, L, from_logits=True, ignore_index=1.5),
            r"ignore_index must be an integer",
        ),
        (lambda: ce.sparse_categorical_cross_entropy(T, [[0.5, 0.6, 0.0]] * 3), r"y_pred\[0, :\] sums to 1.1"),
        (
            lambda: ce.sparse_categorical_cross_entropy(T, [[0.5, np.nan, 0.5]] * 3, from_logits=True),
            r"y_pred\[0, 1\] = nan is NaN",
        ),
        (lambda: ce.binary_cross_entropy([1.0, 0.0], [0.5, 1.5]), r"y_pred\[1\] = 1.5 is greater than 1"),
        (lambda: ce.binary_cross_entropy([1.0, 2.0], [0.5, 0.5]), r"y_true\[1\] = 2 is greater than 1"),
        (lambda: ce.binary_cross_entropy([1.0, 0.0], [0.5, 0.5, 0.5]), r"shapes must match: y_true \(2,\)"),
        (lambda: ce.binary_cross_entropy([1.0], [np.nan], from_logits=True), r"y_pred\[0\] = nan is NaN"),
        (
            lambda: ce.binary_cross_entropy([1.0], [0.5], label_smoothing=0.1, convention="torch"),
            r"convention 'torch' .* has no label_smoothing",
        ),
        (
            lambda: ce.binary_cross_entropy([1.0], [0.5], pos_weight=2.0, convention="torch"),
            r"convention 'torch' .* has no pos_weight",
        ),
        (lambda: ce.binary_cross_entropy([1.0], ["x"]), r"y_pred must be numeric"),
        (lambda: ce.binary_focal_loss([1.0], [0.5], gamma=-1.0), r"gamma must be a finite number >= 0"),
        (lambda: ce.binary_focal_loss([1.0], [0.5], alpha=1.5), r"alpha must lie in \[0, 1\]"),
        (lambda: ce.binary_focal_loss([1.0], [0.5], convention="torch"), r"has no binary focal loss"),
        (
            lambda: ce.categorical_focal_loss([[1.0, 0.0]], [[0.5, 0.5]], convention="optax"),
            r"has no categorical focal loss",
        ),
        (lambda: ce.categorical_cross_entropy([[1.0, 0.0]], [[0.5, 0.5, 0.0]]), r"shapes must match"),
        (lambda: ce.categorical_cross_entropy([[0.6, 0.6]], [[0.5, 0.5]]), r"y_true\[0, :\] sums to 1.2"),
        (lambda: ce.categorical_cross_entropy(np.empty((2, 0)), np.empty((2, 0))), r"empty class axis"),
        (lambda: ce.log_loss([1, 1], [0.5, 0.5]), r"needs at least two classes"),
        (lambda: ce.log_loss([0, 2], [[0.5, 0.5], [0.5, 0.5]], labels=[0, 1]), r"y_true\[1\] = 2 is not one"),
        (lambda: ce.log_loss([0, 1], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]), r"one column per class \(2"),
        (lambda: ce.log_loss([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]]), r"y_true has 3 samples but y_pred has 2"),
        (lambda: ce.log_loss([], np.empty((0, 2)), labels=[0, 1]), r"empty sample"),
        (lambda: ce.log_loss([0, 1], [[0.5, 0.5], [0.2, 0.2]]), r"y_pred\[1, :\] sums to 0.4"),
    ],
)
def test_loss_errors_name_the_argument(call, pattern):
    with pytest.raises(ce.InputError, match=pattern):
        call()


def test_sklearn_convention_warns_for_unnormalised_rows():
    with pytest.warns(UserWarning, match="do not sum to one"):
        value = ce.log_loss([0, 1], [[0.5, 0.3], [0.2, 0.2]], convention="sklearn")
    assert float(value) == pytest.approx(1.1512925, rel=1e-7)


def test_mixed_libraries_in_a_loss_are_an_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ce.InputError, match="different libraries"):
        ce.sparse_categorical_cross_entropy(torch.tensor(T), np.asarray(L), from_logits=True)
