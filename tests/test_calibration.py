"""Temperature scaling: exact against scipy.optimize, anchored to netcal and scikit-learn, every edge case named."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from crossentropy.calibration import apply_temperature, fit_temperature
from optional import given, optional, settings, st

special = optional("scipy.special")
optimize = optional("scipy.optimize")


# --- an independent reference: scipy.optimize on the mean loss, written with scipy.special ---------------


def _two_columns(kind: str, values: np.ndarray) -> np.ndarray:
    """Softmax logits of any input: a 1-D binary logit z is [0, z]; probabilities become their logs."""
    values = np.asarray(values, dtype=float)
    if kind == "probs":
        with np.errstate(divide="ignore"):
            return np.log(np.stack([1 - values, values], axis=1) if values.ndim == 1 else values)
    return np.stack([np.zeros_like(values), values], axis=1) if values.ndim == 1 else values


def _objective(labels, logits, weights):
    """Mean loss of softmax(b * logits), its derivative and second derivative in b (scipy.special only)."""
    rows = np.arange(len(labels))
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    finite = np.where(np.isfinite(logits), logits, 0.0)
    label = logits[rows, labels]

    def loss(b):
        return float(w @ (special.logsumexp(b * logits, axis=1) - b * label))

    def moments(b):
        s = special.softmax(b * logits, axis=1)
        mean = (s * finite).sum(axis=1)
        return mean, (s * (finite - mean[:, None]) ** 2).sum(axis=1)

    def slope(b):
        return float(w @ (moments(b)[0] - label))

    return loss, slope


def scipy_temperature(labels, logits, weights=None):
    """T = 1 / b minimising the mean loss, by scipy.optimize.minimize (L-BFGS-B, restarted until it stops moving)."""
    loss, slope = _objective(np.asarray(labels), logits, weights)
    x = np.array([1.0])
    for _ in range(8):  # each restart drops L-BFGS-B's curvature memory and its stopping test on the loss's change
        result = optimize.minimize(
            lambda v: (loss(v[0]), np.array([slope(v[0])])),
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=[(1e-8, 1e8)],
            options={"gtol": 1e-15, "ftol": 0.0, "maxiter": 1000},
        )
        moved = abs(result.x[0] - x[0]) > 1e-15 * abs(x[0])
        x = result.x
        if not moved:
            break
    return 1.0 / float(x[0])


def root_temperature(labels, logits, weights=None):
    """T = 1 / b where the derivative of the mean loss is 0, by scipy.optimize.brentq to the last bits."""
    _, slope = _objective(np.asarray(labels), logits, weights)
    lo, hi = 1e-3, 1e3
    assert slope(lo) < 0 < slope(hi)
    return 1.0 / optimize.brentq(slope, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def mean_loss(labels, kind, values, temperature, weights=None):
    """Mean cross-entropy (nats) of the calibrated probabilities, by the library's own loss."""
    probs = apply_temperature(np.asarray(values, dtype=float), temperature, from_logits=kind == "logits")
    if probs.ndim == 1:
        return float(ce.binary_cross_entropy(np.asarray(labels, dtype=float), probs, sample_weight=weights))
    return float(ce.sparse_categorical_cross_entropy(np.asarray(labels), probs, sample_weight=weights))


# --- the data sets: scikit-learn's built-in ones with a classifier, and synthetic ones -------------------------


def _sklearn_case(dataset: str, model: str):
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    if model == "naive-bayes":
        probs = GaussianNB().fit(X_fit, y_fit).predict_proba(X_cal)
        return y_cal, "probs", probs[:, 1] if probs.shape[1] == 2 else probs, None
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=100, max_iter=5000)).fit(X_fit, y_fit)
    return y_cal, "logits", classifier.decision_function(X_cal), None


def _synthetic_case(name: str):
    rng = np.random.default_rng(sum(map(ord, name)))
    true_logits = rng.normal(size=(3000, 5)) * 1.5
    u = rng.uniform(size=(3000, 1))
    probs = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = (u > np.cumsum(probs, axis=1)).sum(axis=1)
    if name == "overconfident":
        return labels, "logits", 3.0 * true_logits, None
    if name == "underconfident":
        return labels, "logits", 0.3 * true_logits, None
    if name == "weighted":
        return labels, "logits", 2.0 * true_logits, rng.uniform(0, 3, size=3000)
    if name == "binary-probs":
        p1 = 1 / (1 + np.exp(-2.5 * (true_logits[:, 0] - true_logits[:, 1])))
        return (labels == 0).astype(int), "probs", p1, rng.integers(0, 4, size=3000).astype(float)
    raise AssertionError(name)


CASES = {
    "iris-naive-bayes": lambda: _sklearn_case("iris", "naive-bayes"),
    "wine-naive-bayes": lambda: _sklearn_case("wine", "naive-bayes"),
    "breast_cancer-naive-bayes-binary": lambda: _sklearn_case("breast_cancer", "naive-bayes"),
    "breast_cancer-logistic-binary": lambda: _sklearn_case("breast_cancer", "logistic"),
    "digits-logistic": lambda: _sklearn_case("digits", "logistic"),
    "overconfident": lambda: _synthetic_case("overconfident"),
    "underconfident": lambda: _synthetic_case("underconfident"),
    "weighted": lambda: _synthetic_case("weighted"),
    "binary-probs-weighted": lambda: _synthetic_case("binary-probs"),
}


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    return CASES[request.param]()


def _fit(labels, kind, values, weights):
    return fit_temperature(labels, **{kind: values}, sample_weight=weights)


def test_equals_scipy_optimize_minimisation(case):
    labels, kind, values, weights = case
    fitted = _fit(labels, kind, values, weights)
    reference = scipy_temperature(labels, _two_columns(kind, values), weights)
    assert 0 < fitted < math.inf
    assert fitted == pytest.approx(reference, rel=1e-8)
    # and no temperature does better: the loss at T is at most the loss at scipy's answer
    assert (
        mean_loss(labels, kind, values, fitted, weights) <= mean_loss(labels, kind, values, reference, weights) + 1e-15
    )


def test_is_the_root_of_the_derivative_to_the_last_bits(case):
    labels, kind, values, weights = case
    fitted = _fit(labels, kind, values, weights)
    assert fitted == pytest.approx(root_temperature(labels, _two_columns(kind, values), weights), rel=1e-12)


def test_direction_over_and_underconfident():
    over, under = _synthetic_case("overconfident"), _synthetic_case("underconfident")
    assert _fit(*over) == pytest.approx(3.0, rel=0.1)  # the logits were three times too large
    assert _fit(*under) == pytest.approx(0.3, rel=0.1)  # ... and 0.3 times too small


def test_held_out_loss_goes_down_and_the_argmax_stays():
    labels, kind, values, _ = _synthetic_case("overconfident")
    fitted = fit_temperature(labels[:1500], logits=values[:1500])
    before = mean_loss(labels[1500:], kind, values[1500:], 1.0)
    after = mean_loss(labels[1500:], kind, values[1500:], fitted)
    assert after < before - 0.05
    calibrated = apply_temperature(values, fitted, from_logits=True)
    assert np.array_equal(calibrated.argmax(axis=1), values.argmax(axis=1))


# --- anchors: netcal and scikit-learn ----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:independent is deprecated:DeprecationWarning")  # pyro, inside netcal
def test_anchored_to_netcal_temperature_scaling():
    """netcal fits softmax(log(p) * w) (sigmoid(logit(p) * w) for 1-D input) and calls w its temperature: w = 1 / T."""
    scaling = pytest.importorskip("netcal.scaling")
    for name in ("wine-naive-bayes", "binary-probs-weighted"):
        labels, _, probs, _ = CASES[name]()
        netcal = scaling.TemperatureScaling()
        netcal.fit(np.asarray(probs, dtype=np.float64), np.asarray(labels))
        fitted = fit_temperature(labels, probs=probs)
        # netcal clips p to [eps, 1 - eps] and stops scipy's default minimiser early: agreement to 1e-4
        assert float(np.ravel(netcal.temperature)[0]) == pytest.approx(1 / fitted, rel=1e-4), name


def _identity_classifier():
    """A fitted scikit-learn classifier whose decision function is the first column of X."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Identity(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def decision_function(self, X):
            X = np.asarray(X, dtype=float)
            return X[:, 0] if len(self.classes_) == 2 else X

        def predict(self, X):
            scores = self.decision_function(X)
            return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)]

    return Identity()


def _calibrated(method, X, y, sample_weight=None):
    calibration = pytest.importorskip("sklearn.calibration")
    frozen = pytest.importorskip("sklearn.frozen")
    model = frozen.FrozenEstimator(_identity_classifier().fit(X, y))
    return calibration.CalibratedClassifierCV(model, method=method).fit(X, y, sample_weight=sample_weight)


def test_anchored_to_scikit_learn_temperature_method():
    """CalibratedClassifierCV(method="temperature") on the same logits gives the same probabilities."""
    sklearn = pytest.importorskip("sklearn")
    if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 8):
        pytest.skip(f"scikit-learn {sklearn.__version__} has no method='temperature' (added in 1.8)")
    for name in ("digits-logistic", "breast_cancer-logistic-binary"):
        labels, _, logits, _ = CASES[name]()
        X = logits.reshape(len(labels), -1)
        sklearn_model = _calibrated("temperature", X, labels)
        ours = apply_temperature(logits, fit_temperature(labels, logits=logits), from_logits=True)
        theirs = sklearn_model.predict_proba(X)
        theirs = theirs[:, 1] if logits.ndim == 1 else theirs
        # scikit-learn minimises over log(1 / T) with minimize_scalar: about 1e-8 in T, less in the probabilities
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9, err_msg=name)


def _platt(X, y, sample_weight=None):
    """Slope and bias of scikit-learn's sigmoid calibration, P(y=1) = sigmoid(slope * z + bias), from its output."""
    model = _calibrated("sigmoid", X, y, sample_weight)
    p0, p1 = model.predict_proba(np.array([[0.0], [1.0]]))[:, 1]
    bias = special.logit(p0)
    return special.logit(p1) - bias, bias


def test_scikit_learn_sigmoid_is_platt_scaling_a_temperature_plus_a_bias():
    """Platt scaling fits sigmoid(a z + b); temperature scaling is its a = 1 / T with b = 0.

    Two differences: the bias b (so Platt can also move the threshold), and Platt's targets
    (N+ + 1) / (N+ + 2) and 1 / (N- + 2) in place of 1 and 0. On data symmetric under
    z -> -z, y -> 1 - y the best b is 0, and with Platt's targets given as sample weights
    (a soft target t is a row of label 1 with weight t beside one of label 0 with weight 1 - t)
    the two fits coincide. On a shifted (biased) model Platt's extra parameter wins.
    """
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(3)
    z = rng.normal(size=400) * 2
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-z / 2))).astype(int)  # logits twice too large: T = 2
    z, y = np.concatenate([z, -z]), np.concatenate([y, 1 - y])
    slope, bias = _platt(z[:, None], y)
    assert abs(bias) < 1e-6
    n_pos, n_neg = y.sum(), (1 - y).sum()
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    fitted = fit_temperature(
        np.concatenate([np.ones_like(y), np.zeros_like(y)]),
        logits=np.concatenate([z, z]),
        sample_weight=np.concatenate([target, 1 - target]),
    )
    assert slope == pytest.approx(1 / fitted, rel=1e-5)
    assert fitted == pytest.approx(2.0, rel=0.25)
    # a biased model: every logit 1.5 too high
    shifted = z + 1.5
    slope, bias = _platt(shifted[:, None], y)
    fitted = fit_temperature(y, logits=shifted)
    platt = float(ce.binary_cross_entropy(y.astype(float), special.expit(slope * shifted + bias)))
    assert bias < -0.5
    assert platt < mean_loss(y, "logits", shifted, fitted) - 0.01


# --- edge cases: the limits, weights, masked classes --------------------------------------------------------


def test_separable_rows_return_zero_and_apply_gives_the_hard_argmax():
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.5, 0.5, 2.0]])
    assert fit_temperature([0, 1, 2], logits=logits) == 0.0
    assert fit_temperature([1, 0, 1], logits=[2.0, -1.0, 0.5]) == 0.0  # binary
    hard = apply_temperature(logits, 0.0, from_logits=True)
    np.testing.assert_array_equal(hard, np.eye(3))
    # a tie at the top is shared, and still separable (the label is among the largest)
    assert fit_temperature([0, 1], logits=[[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]]) == 0.0
    np.testing.assert_array_equal(
        apply_temperature(np.array([[1.0, 1.0, 0.0]]), 0.0, from_logits=True), [[0.5, 0.5, 0]]
    )
    # the loss keeps falling as T -> 0
    losses = [mean_loss([0, 1, 2], "logits", logits, t) for t in (1.0, 0.1, 0.01)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[2] < 1e-40


def test_predictions_no_better_than_uniform_return_infinity():
    logits = np.array([[0.0, 2.0], [3.0, 0.0], [1.0, 0.0]])
    assert fit_temperature([0, 1, 1], logits=logits) == math.inf
    np.testing.assert_array_equal(apply_temperature(logits, math.inf, from_logits=True), np.full((3, 2), 0.5))
    # infinity is uniform over the classes the model allows: a ruled-out class stays at 0
    np.testing.assert_array_equal(
        apply_temperature(np.array([[0.0, -math.inf, 5.0]]), math.inf, from_logits=True), [[0.5, 0.0, 0.5]]
    )


def test_constant_predictions():
    # equal logits in every row: no temperature changes anything; T = 1 leaves them as they are
    assert fit_temperature([0, 1, 2, 1], logits=np.zeros((4, 3))) == 1.0
    assert fit_temperature([0, 1, 1], probs=[0.5, 0.5, 0.5]) == 1.0
    assert fit_temperature([0, 1], logits=[[0.0, -math.inf], [-math.inf, 1.0]]) == 1.0  # one finite class per row
    # the same non-uniform prediction in every row: T matches the frequencies as closely as a power of p can
    p = np.tile([0.7, 0.2, 0.1], (10, 1))
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    fitted = fit_temperature(labels, probs=p)
    assert fitted == pytest.approx(scipy_temperature(labels, np.log(p)), rel=1e-8)
    assert fitted > 1  # 0.7 for a class seen half of the time: overconfident


def test_all_one_class():
    """Temperature has no bias term: a single class in the labels is not a special case (Platt's prior would be)."""
    p = np.array([0.9, 0.8, 0.4, 0.6, 0.3])
    labels = np.ones(5, dtype=int)
    fitted = fit_temperature(labels, probs=p)
    assert fitted == pytest.approx(scipy_temperature(labels, _two_columns("probs", p)), rel=1e-8)
    assert fit_temperature(labels[:3], probs=[0.9, 0.8, 0.6]) == 0.0  # every row already leans to class 1
    assert fit_temperature(np.zeros(3, dtype=int), logits=np.array([[1.0, 0.0], [2.0, 0.5], [0.3, 0.0]])) == 0.0


def test_sample_weights_are_row_counts_and_their_scale_does_not_matter():
    labels, _, logits, _ = _synthetic_case("overconfident")
    labels, logits = labels[:300], logits[:300]
    counts = np.arange(300) % 4
    weighted = fit_temperature(labels, logits=logits, sample_weight=counts)
    repeated = fit_temperature(np.repeat(labels, counts), logits=np.repeat(logits, counts, axis=0))
    assert weighted == pytest.approx(repeated, rel=1e-12)
    assert fit_temperature(labels, logits=logits, sample_weight=7.5 * counts) == pytest.approx(weighted, rel=1e-12)
    # a row of weight 0 takes no part, even one whose label has probability 0
    probs = np.array([[0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [1.0, 0.0]])
    with_zero = fit_temperature([0, 1, 1, 1], probs=probs, sample_weight=[1, 1, 1, 0])
    assert with_zero == pytest.approx(fit_temperature([0, 1, 1], probs=probs[:3]), rel=1e-14)


def test_masked_classes_and_certain_binary_predictions():
    logits = np.array([[2.0, -math.inf, 0.0], [0.0, 1.0, -math.inf], [0.5, 0.0, 1.0]])
    labels = [0, 1, 0]
    fitted = fit_temperature(labels, logits=logits)
    assert fitted == pytest.approx(scipy_temperature(np.array(labels), logits), rel=1e-8)
    # a binary logit of +-inf is a certain prediction: right, it costs nothing at any T and changes nothing
    z = np.array([1.0, -2.0, 0.5, 3.0])
    y = np.array([1, 1, 0, 0])
    with_certain = fit_temperature(np.append(y, [1, 0]), logits=np.append(z, [math.inf, -math.inf]))
    assert with_certain == pytest.approx(fit_temperature(y, logits=z), rel=1e-14)
    np.testing.assert_array_equal(apply_temperature(np.array([math.inf, -math.inf]), 2.0, from_logits=True), [1, 0])


def test_binary_input_is_the_two_class_problem():
    labels, _, p, weights = _synthetic_case("binary-probs")
    one = fit_temperature(labels, probs=p, sample_weight=weights)
    two = fit_temperature(labels, probs=np.stack([1 - p, p], axis=1), sample_weight=weights)
    z = np.log(p) - np.log1p(-p)
    assert one == pytest.approx(two, rel=1e-12)
    assert fit_temperature(labels, logits=z, sample_weight=weights) == pytest.approx(one, rel=1e-10)
    np.testing.assert_allclose(
        apply_temperature(p, one), apply_temperature(np.stack([1 - p, p], axis=1), one)[:, 1], rtol=1e-12
    )


@settings(max_examples=40)
@given(
    scale=st.floats(0.05, 20.0),
    shift=st.floats(-50.0, 50.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_temperature_scales_with_the_logits_and_ignores_their_shift(scale, shift, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(60, 4))
    labels = rng.integers(0, 4, size=60)
    logits[np.arange(60), labels] += 1.0  # informative, not separable
    fitted = fit_temperature(labels, logits=logits)
    if not 0 < fitted < math.inf:
        pytest.skip(f"this draw is at a limit (T = {fitted})")
    assert fit_temperature(labels, logits=scale * logits + shift) == pytest.approx(scale * fitted, rel=1e-11)


# --- apply_temperature on every array library ---------------------------------------------------------------


def test_apply_temperature_on_each_array_library(xp):
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    expected = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(axis=1, keepdims=True)
    for dtype, rtol in (("float64", 1e-14), ("float32", 1e-6)):
        z = xp.asarray(logits, dtype)
        out = apply_temperature(z, 2.5, from_logits=True)
        assert out.dtype == z.dtype
        assert type(out) is type(z)
        np.testing.assert_allclose(xp.to_numpy(out), expected, rtol=rtol)
        p = xp.asarray(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), dtype)
        np.testing.assert_allclose(xp.to_numpy(apply_temperature(p, 2.5)), expected, rtol=10 * rtol)
    binary = apply_temperature(xp.asarray([2.0, -1.0, 0.0]), 0.5, from_logits=True)
    np.testing.assert_allclose(xp.to_numpy(binary), 1 / (1 + np.exp(-np.array([4.0, -2.0, 0.0]))), rtol=1e-14)


def test_fit_takes_any_array_library(xp):
    labels, _, logits, weights = _synthetic_case("weighted")
    expected = fit_temperature(labels, logits=logits, sample_weight=weights)
    got = fit_temperature(xp.asarray(labels, "int64"), logits=xp.asarray(logits), sample_weight=xp.asarray(weights))
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-14)


# --- bad input: InputError naming the argument and the first bad position ------------------------------------


GOOD = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": [0, 1, 1]}, "exactly one of logits= and probs="),
        ({"labels": [0, 1, 1], "logits": GOOD, "probs": GOOD}, "exactly one of logits= and probs="),
        ({"labels": [0], "logits": np.zeros((1, 2, 2))}, "logits must be 1-D (binary) or 2-D"),
        ({"labels": [], "logits": np.zeros((0, 2))}, "at least one row"),
        ({"labels": [0, 0], "logits": np.zeros((2, 1))}, "logits has 1 column(s)"),
        ({"labels": [0, 1], "logits": GOOD}, "labels must have shape (3,)"),
        ({"labels": [0, 2, 1], "logits": GOOD}, "labels[1] = 2; labels must be whole numbers in [0, 2)"),
        ({"labels": [0, 1, 0.5], "logits": GOOD}, "labels[2] = 0.5"),
        ({"labels": [0, 1, 2], "logits": [0.5, 1.0, -1.0]}, "labels[2] = 2; labels must be 0 or 1"),
        ({"labels": [0, 1, 1], "logits": [[0.0, 1.0], [np.nan, 0.0], [1.0, 0.0]]}, "logits[1, 0] = nan is NaN"),
        ({"labels": [0, 1, 1], "logits": [[0.0, 1.0], [0.0, np.inf], [1.0, 0.0]]}, "logits[1, 1] = inf is +inf"),
        ({"labels": [0, 1], "logits": [[0.0, 1.0], [-np.inf, -np.inf]]}, "logits[1, :] are all -inf"),
        ({"labels": [0, 1], "probs": [[0.5, 0.5], [1.2, -0.2]]}, "probs[1, 0] = 1.2 is greater than 1"),
        ({"labels": [0, 1], "probs": [[0.5, 0.5], [0.6, 0.6]]}, "probs[1, :] sums to 1.2"),
        ({"labels": [0, 1], "probs": [0.5, 1.5]}, "probs[1] = 1.5"),
        (
            {"labels": [0, 1], "probs": [[0.5, 0.5], [1.0, 0.0]]},
            "probs[1, 1]: the label of row 1 (class 1) has probability 0",
        ),
        ({"labels": [1, 0], "probs": [0.5, 1.0]}, "probs[1]: the label of row 1 (class 0) has probability 0"),
        ({"labels": [1, 0], "logits": [0.5, np.inf]}, "logits[1]: the label of row 1 (class 0) has probability 0"),
        ({"labels": [0, 1, 1], "logits": GOOD, "sample_weight": [1, -1, 1]}, "sample_weight[1] = -1"),
        ({"labels": [0, 1, 1], "logits": GOOD, "sample_weight": [1, np.inf, 1]}, "sample_weight[1] = inf"),
        ({"labels": [0, 1, 1], "logits": GOOD, "sample_weight": [0, 0, 0]}, "sample_weight: every weight is 0"),
        ({"labels": [0, 1, 1], "logits": GOOD, "sample_weight": [1, 1]}, "sample_weight must have shape (3,)"),
        ({"labels": ["a", "b", "c"], "logits": GOOD}, "labels must be numeric"),
    ],
)
def test_fit_refuses_bad_input_naming_the_argument(kwargs, message):
    labels = kwargs.pop("labels")
    with pytest.raises(ce.InputError) as info:
        fit_temperature(labels, **kwargs)
    assert message in str(info.value)


def test_a_real_classifier_with_zero_probabilities_is_refused_with_its_row():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.naive_bayes import GaussianNB

    X, y = load_digits(return_X_y=True)
    probs = GaussianNB().fit(X[::2], y[::2]).predict_proba(X[1::2])
    row = int(np.argmax(probs[np.arange(len(probs)), y[1::2]] == 0))
    with pytest.raises(ce.InputError, match=rf"probs\[{row}, {y[1::2][row]}\]: the label of row {row}"):
        fit_temperature(y[1::2], probs=probs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((GOOD, -1.0), {"from_logits": True}, "a temperature must be >= 0"),
        ((GOOD, math.nan), {"from_logits": True}, "a temperature must be >= 0"),
        ((GOOD, "2"), {"from_logits": True}, "temperature must be a number"),
        ((GOOD, True), {"from_logits": True}, "temperature must be a number"),
        ((np.float64(0.5), 1.0), {}, "y_pred must be 1-D (binary) or 2-D"),
        ((np.array([[0.5, np.nan]]), 1.0), {"from_logits": True}, "y_pred[0, 1] = nan is NaN"),
        ((np.array([[0.5, 0.6]]), 1.0), {}, "y_pred[0, :] sums to 1.1"),
        ((np.array([0.5, -0.1]), 1.0), {}, "y_pred[1] = -0.1 is negative"),
    ],
)
def test_apply_refuses_bad_input_naming_the_argument(args, kwargs, message):
    with pytest.raises(ce.InputError) as info:
        apply_temperature(*args, **kwargs)
    assert message in str(info.value)


def test_low_precision_inputs_are_read_and_checked_with_their_own_tolerance():
    torch = pytest.importorskip("torch")
    labels, _, logits, _ = _synthetic_case("overconfident")
    expected = fit_temperature(labels, logits=logits.astype(np.float32).astype(np.float64))
    for dtype in (torch.bfloat16, torch.float16):
        z = torch.tensor(logits, dtype=dtype)
        fitted = fit_temperature(torch.tensor(labels), logits=z)
        assert fitted == pytest.approx(fit_temperature(labels, logits=z.float().numpy().astype(np.float64)), rel=1e-14)
        assert fitted == pytest.approx(expected, rel=0.02)
    # bfloat16 probabilities sum to 1 only within bfloat16's rounding: accepted, as the library's losses accept them
    p = torch.softmax(torch.tensor(logits[:50]), dim=1).to(torch.bfloat16)
    assert abs(float(p.float().sum(dim=1).sub(1).abs().max())) > 1e-4
    assert 0 < fit_temperature(torch.tensor(labels[:50]), probs=p) < math.inf
