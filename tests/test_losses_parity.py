"""Every loss x convention x reduction against the library it names.

The references in ``references.py`` call the installed libraries (torch,
Keras 3 on jax, tf-keras with TensorFlow, scikit-learn, optax); the exact
convention is checked against a float64 NumPy oracle written for clarity.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import crossentropy as ce
import references
from optional import optional

sp = optional("scipy.special")

LOSSES = {
    "binary": ce.binary_cross_entropy,
    "categorical": ce.categorical_cross_entropy,
    "sparse": ce.sparse_categorical_cross_entropy,
    "binary_focal": ce.binary_focal_loss,
    "categorical_focal": ce.categorical_focal_loss,
}

OPTIONS = {
    "binary": [
        {},
        {"from_logits": True},
        {"sample_weight": True},
        {"label_smoothing": 0.1},
        {"from_logits": True, "pos_weight": True},
        {"soft": True},
        {"from_logits": True, "soft": True, "sample_weight": True},
    ],
    "categorical": [
        {},
        {"from_logits": True},
        {"class_weight": True},
        {"sample_weight": True},
        {"label_smoothing": 0.1},
        {"soft": True},
        {"from_logits": True, "label_smoothing": 0.2, "class_weight": True},
    ],
    "sparse": [
        {},
        {"from_logits": True},
        {"class_weight": True},
        {"sample_weight": True},
        {"label_smoothing": 0.1},
        {"ignore_index": True},
        {"from_logits": True, "ignore_index": True, "class_weight": True, "label_smoothing": 0.1},
        {"from_logits": True, "class_weight": True, "sample_weight": True},
    ],
    "binary_focal": [
        {},
        {"from_logits": True},
        {"alpha": 0.25},
        {"gamma": 0.5, "sample_weight": True},
        {"label_smoothing": 0.1},
        {"from_logits": True, "alpha": 0.7, "gamma": 3.0},
    ],
    "categorical_focal": [
        {},
        {"from_logits": True},
        {"alpha": 0.25},
        {"label_smoothing": 0.1, "gamma": 1.0},
    ],
}

CONVENTIONS = [c for c in ce.conventions.NAMES if c != "exact"]
REDUCTIONS = ["mean", "sum", "none"]
N, C = 8, 5


def _data(kind: str, opts: dict, dtype=np.float32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Inputs and keyword arguments for one case."""
    rng = np.random.default_rng(seed)
    from_logits = opts.get("from_logits", False)
    kwargs: dict = {"from_logits": from_logits}
    binary = kind.startswith("binary")
    if binary:
        shape = (N, 3)
        y = rng.integers(0, 2, shape).astype(dtype)
        if opts.get("soft"):
            y = rng.uniform(0, 1, shape).astype(dtype)
        x = rng.normal(0, 2, shape).astype(dtype)
        p = x if from_logits else (1 / (1 + np.exp(-x))).astype(dtype)
        if opts.get("pos_weight"):
            kwargs["pos_weight"] = np.array([0.5, 2.0, 3.0], dtype=dtype)
    else:
        x = rng.normal(0, 2, (N, C)).astype(dtype)
        p = x if from_logits else sp.softmax(x.astype(np.float64), -1).astype(dtype)
        labels = rng.integers(0, C, N)
        if kind == "sparse":
            if opts.get("ignore_index"):
                labels[[1, 4]] = -1
                kwargs["ignore_index"] = -1
            y = labels
        else:
            y = np.eye(C, dtype=dtype)[labels]
            if opts.get("soft"):
                y = sp.softmax(rng.normal(size=(N, C)), -1).astype(dtype)
        if opts.get("class_weight"):
            kwargs["class_weight"] = np.linspace(0.5, 2.5, C).astype(dtype)
    if opts.get("sample_weight"):
        kwargs["sample_weight"] = rng.uniform(0, 2, N if not binary else (N, 1)).astype(dtype)
    for key in ("label_smoothing", "alpha", "gamma"):
        if key in opts:
            kwargs[key] = opts[key]
    return y, p, kwargs


def _reference_kwargs(kind: str, kwargs: dict) -> dict:
    full = {
        "from_logits": False,
        "pos_weight": None,
        "sample_weight": None,
        "class_weight": None,
        "label_smoothing": 0.0,
        "ignore_index": None,
        "gamma": 2.0,
        "alpha": None,
    }
    full.update(kwargs)
    return full


def _tolerance(dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


CASES = [
    (kind, conv, reduction, i)
    for kind in LOSSES
    for conv in CONVENTIONS
    for reduction in REDUCTIONS
    for i in range(len(OPTIONS[kind]))
]


def _keras_sample_weight(conv, kind, kwargs):
    # Keras weights per-sample losses (after the mean over the last axis)
    if conv in ("keras", "tf-keras2") and kind.startswith("binary") and kwargs.get("sample_weight") is not None:
        kwargs["sample_weight"] = kwargs["sample_weight"][:, 0]


@pytest.mark.parametrize(("kind", "conv", "reduction", "option_index"), CASES)
def test_parity_with_the_named_library(kind, conv, reduction, option_index):
    opts = OPTIONS[kind][option_index]
    if conv == "sklearn" and opts.get("soft"):
        pytest.skip("scikit-learn's log_loss takes class labels, not soft targets")
    y, p, kwargs = _data(kind, opts)
    _keras_sample_weight(conv, kind, kwargs)
    ours_fn = LOSSES[kind]
    reference = references.REFERENCES.get((kind, conv))
    if reference is None:
        with pytest.raises(ce.InputError, match=f"convention {conv!r}"):
            ours_fn(y, p, convention=conv, reduction=reduction, **kwargs)
        return
    ref_kwargs = _reference_kwargs(kind, kwargs)
    if kind == "binary" and conv == "sklearn":
        y, p = y[:, 0], p[:, 0]
        if ref_kwargs["sample_weight"] is not None:
            ref_kwargs["sample_weight"] = ref_kwargs["sample_weight"][:, 0]
            kwargs["sample_weight"] = kwargs["sample_weight"][:, 0]
        if "pos_weight" in kwargs:
            kwargs["pos_weight"] = kwargs["pos_weight"][0]
            ref_kwargs["pos_weight"] = kwargs["pos_weight"]
    try:
        expected = reference(y, p, reduction=reduction, **ref_kwargs)
    except NotImplementedError:
        with pytest.raises(ce.InputError, match=f"convention {conv!r}"):
            ours_fn(y, p, convention=conv, reduction=reduction, **kwargs)
        return
    got = ours_fn(y, p, convention=conv, reduction=reduction, **kwargs)
    assert np.asarray(got).shape == expected.shape
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected, **_tolerance(np.float32))


# --- the exact convention against a float64 oracle ----------------------------------------------


def _oracle(
    kind,
    y,
    p,
    *,
    from_logits=False,
    pos_weight=None,
    sample_weight=None,
    class_weight=None,
    label_smoothing=0.0,
    ignore_index=None,
    gamma=2.0,
    alpha=None,
    reduction="mean",
):
    """The mathematics, in float64 NumPy, one formula per loss."""
    y = np.asarray(y, np.float64) if kind != "sparse" else np.asarray(y)
    p = np.asarray(p, np.float64)
    if kind.startswith("binary"):
        y = y * (1 - label_smoothing) + label_smoothing / 2
        prob = sp.expit(p) if from_logits else p
        log_p = -np.logaddexp(0, -p) if from_logits else np.log(prob)
        log_q = -np.logaddexp(0, p) if from_logits else np.log1p(-prob)
        pw = 1.0 if pos_weight is None else np.asarray(pos_weight)
        per = -(np.where(y == 0, 0, pw * y * log_p) + np.where(y == 1, 0, (1 - y) * log_q))
        if kind == "binary_focal":
            per = per * (y * (1 - prob) + (1 - y) * prob) ** gamma
            if alpha is not None:
                per = per * (alpha * y + (1 - alpha) * (1 - y))
        weight = np.ones_like(per) if sample_weight is None else np.broadcast_to(sample_weight, per.shape)
        denom = weight.sum()
    else:
        log_q = sp.log_softmax(p, -1) if from_logits else np.log(p)
        num_classes = p.shape[-1]
        cw = np.ones(num_classes) if class_weight is None else np.asarray(class_weight, np.float64)
        valid = np.ones(p.shape[0], bool)
        if kind == "sparse":
            valid = y != ignore_index if ignore_index is not None else valid
            y = np.eye(num_classes)[np.where(valid, y, 0)]
        target = y * (1 - label_smoothing) + label_smoothing / num_classes
        factor = target * cw
        if kind == "categorical_focal":
            factor = target * (1 - np.exp(log_q)) ** gamma * (1.0 if alpha is None else alpha)
        per = -np.where(factor == 0, 0, factor * log_q).sum(-1)
        per = np.where(valid, per, 0)
        weight = np.ones(p.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
        class_of_sample = (y * cw).sum(-1) if kind != "categorical_focal" else np.ones(p.shape[0])
        denom = (weight * class_of_sample * valid).sum()
    weighted = np.where(weight == 0, 0, per * weight)
    if reduction == "none":
        return weighted
    return weighted.sum() if reduction == "sum" else weighted.sum() / denom


@pytest.mark.parametrize(
    ("kind", "reduction", "option_index"),
    [(k, r, i) for k in LOSSES for r in REDUCTIONS for i in range(len(OPTIONS[k]))],
)
def test_exact_convention_matches_the_float64_oracle(kind, reduction, option_index):
    y, p, kwargs = _data(kind, OPTIONS[kind][option_index], dtype=np.float64, seed=option_index + 10)
    got = LOSSES[kind](y, p, reduction=reduction, **kwargs)
    expected = _oracle(kind, y, p, reduction=reduction, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


# --- float64 parity where the library computes in float64 -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "conv"),
    [
        ("binary", "torch"),
        ("sparse", "torch"),
        ("categorical", "torch"),
        ("binary", "optax"),
        ("sparse", "optax"),
        ("sparse", "sklearn"),
    ],
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_float64_parity(kind, conv, from_logits):
    y, p, kwargs = _data(kind, {"from_logits": from_logits}, dtype=np.float64, seed=3)
    expected = references.REFERENCES[(kind, conv)](y, p, reduction="none", **_reference_kwargs(kind, kwargs))
    got = LOSSES[kind](y, p, convention=conv, reduction="none", **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# --- the edge-case matrix ----------------------------------------------------------------------------

EDGE_PROBS = np.array([0.0, 1.0, 1e-45, 1 - 1e-8, 1e-7, 0.5], dtype=np.float64)
EDGE_LOGITS = np.array([1e4, -1e4, 0.0, 30.0, -30.0, 1.0], dtype=np.float64)


@pytest.mark.parametrize("conv", CONVENTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_edge_matrix(conv, dtype, from_logits):
    if conv in ("keras", "tf-keras2") and dtype == np.float64:
        pytest.skip("Keras computes in floatx = float32")
    values = (EDGE_LOGITS if from_logits else EDGE_PROBS).astype(dtype)
    p = np.repeat(values, 2)
    y = np.tile(np.array([0.0, 1.0], dtype=dtype), values.size)
    if conv == "sklearn":
        expected = np.array(
            [
                references.sklearn_binary(
                    y[i : i + 1],
                    p[i : i + 1],
                    from_logits=from_logits,
                    pos_weight=None,
                    sample_weight=None,
                    label_smoothing=0.0,
                    reduction="mean",
                )
                for i in range(p.size)
            ]
        )
        got = np.array(
            [
                ce.binary_cross_entropy(y[i : i + 1], p[i : i + 1], from_logits=from_logits, convention=conv)
                for i in range(p.size)
            ]
        )
    else:
        y2, p2 = y[:, None], p[:, None]
        kw = {"from_logits": from_logits, "pos_weight": None, "sample_weight": None, "label_smoothing": 0.0}
        expected = references.REFERENCES[("binary", conv)](y2, p2, reduction="none", **kw).reshape(-1)
        got = np.asarray(
            ce.binary_cross_entropy(y2, p2, from_logits=from_logits, convention=conv, reduction="none")
        ).reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=2e-6 if dtype == np.float32 else 1e-12, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("conv", ["torch", "keras", "tf-keras2", "optax", "sklearn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_edge_matrix(conv, dtype, from_logits):
    if conv in ("keras", "tf-keras2") and dtype == np.float64:
        pytest.skip("Keras computes in floatx = float32")
    if from_logits:
        rows = [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [30.0, -30.0, 1.0]]
    else:
        rows = [[1.0, 0.0, 0.0], [1e-45, 1 - 1e-8, 1e-8 - 1e-45], [0.5, 0.5, 0.0], [1e-7, 0.5, 0.5 - 1e-7]]
    p = np.asarray(rows, dtype=dtype)
    for labels in itertools.product(range(3), repeat=1):
        t = np.full(p.shape[0], labels[0])
        kw = {
            "from_logits": from_logits,
            "class_weight": None,
            "sample_weight": None,
            "label_smoothing": 0.0,
            "ignore_index": None,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = references.REFERENCES[("sparse", conv)](t, p, reduction="none", **kw)
            got = ce.sparse_categorical_cross_entropy(
                t, p, from_logits=from_logits, convention=conv, reduction="none", validate=False
            )
        np.testing.assert_allclose(
            got, expected, rtol=2e-6 if dtype == np.float32 else 1e-12, atol=1e-6, equal_nan=True
        )


# --- the seed texts ------------------------------------------------------------------------------------

SEED_Y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
SEED_P = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]


@pytest.mark.parametrize("conv", ce.conventions.NAMES)
def test_seed_ten_examples_0_247_nats_under_every_convention(conv):
    value = float(ce.binary_cross_entropy(SEED_Y, SEED_P, convention=conv))
    print(conv, value)
    assert f"{value:.3f}" == "0.247"
    # only TensorFlow 2's second epsilon inside the log moves it, by about 1e-7 / p
    assert value == pytest.approx(0.2469198908, abs=1e-9 if conv != "tf-keras2" else 1e-6)


def test_seed_ten_examples_keras_reports_0_247():
    keras = pytest.importorskip("keras")
    ref = float(keras.losses.binary_crossentropy(np.array(SEED_Y, float), np.array(SEED_P)))
    assert ref == pytest.approx(0.247, abs=5e-4)
    assert float(ce.binary_cross_entropy(SEED_Y, np.array(SEED_P, np.float32), convention="keras")) == pytest.approx(
        ref, rel=1e-6
    )


def test_seed_tf_keras2_raw_numpy_float64():
    value = ce.binary_cross_entropy([1, 0, 1], np.array([0.0, 0.0, 1.0]), convention="tf-keras2")
    assert value.dtype == np.float64
    assert float(value) == pytest.approx(5.141649490132791, rel=1e-15)
    # the seed's own NumPy formula: clip, then add epsilon inside each log
    y, p, eps = np.array([1.0, 0, 1]), np.clip([0.0, 0.0, 1.0], 1e-7, 1 - 1e-7), 1e-7
    assert float(value) == pytest.approx(float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))))


def test_seed_tf_keras2_float32_matches_tensorflow():
    tf_keras = pytest.importorskip("tf_keras")
    y, p = np.array([1, 1, 1], np.float32), np.array([1, 1, 0], np.float32)
    ref = float(tf_keras.losses.BinaryCrossentropy(from_logits=False)(y, p))
    assert ref == pytest.approx(5.1416497230529785, rel=1e-7)
    got = ce.binary_cross_entropy(y, p, convention="tf-keras2")
    assert got.dtype == np.float32
    assert float(got) == pytest.approx(ref, rel=1e-7)
    # Keras 3 clips only: -ln(1e-7) / 3
    assert float(ce.binary_cross_entropy(y, p, convention="keras")) == pytest.approx(5.3726985503, rel=1e-6)


def test_surprising_saturation_values():
    y, p = np.array([1.0, 1, 1], np.float32), np.array([1.0, 1, 0], np.float32)
    got = {c: float(ce.binary_cross_entropy(y, p, convention=c)) for c in ce.conventions.NAMES}
    assert got["exact"] == np.inf
    assert got["torch"] == pytest.approx(33.333332)
    assert got["keras"] == pytest.approx(5.3726983, rel=1e-6)
    assert got["tf-keras2"] == pytest.approx(5.1416497, rel=1e-6)
    assert got["sklearn"] == pytest.approx(5.3141284, rel=1e-6)
    assert np.isnan(got["optax"])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", ["binary", "categorical", "sparse"])
def test_keras_takes_sample_weight_with_a_trailing_axis_of_one(loss, reduction):
    """Keras squeezes (or adds) a trailing axis of length 1 on sample_weight; so does convention='keras'."""
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    sw = rng.random((4, 1)).astype(np.float32)
    p = rng.dirichlet(np.ones(3), size=4).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    y = np.eye(3, dtype=np.float32)[labels]
    keras_reduction = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}[reduction]
    if loss == "binary":
        ours = ce.binary_cross_entropy(y, p, sample_weight=sw, reduction=reduction, convention="keras")
        theirs = keras.losses.BinaryCrossentropy(reduction=keras_reduction)(y, p, sample_weight=sw)
    elif loss == "categorical":
        ours = ce.categorical_cross_entropy(y, p, sample_weight=sw, reduction=reduction, convention="keras")
        theirs = keras.losses.CategoricalCrossentropy(reduction=keras_reduction)(y, p, sample_weight=sw)
    else:
        ours = ce.sparse_categorical_cross_entropy(labels, p, sample_weight=sw, reduction=reduction, convention="keras")
        theirs = keras.losses.SparseCategoricalCrossentropy(reduction=keras_reduction)(labels, p, sample_weight=sw)
    theirs = np.asarray(theirs)
    assert np.shape(ours) == theirs.shape
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=2e-6, atol=1e-7)
