"""The adversarial input matrix: every public function against hostile inputs.

Each case is ``(function name, input name, call, expected)``: ``expected`` is
either the string ``"error"`` (an InputError whose message names an argument)
or a float64 oracle value computed without crossentropy. Shared by
tests/test_adversarial.py and benchmarks/reliability.py (which writes
docs/reliability.md from a run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special as sp

import crossentropy as ce

P = np.array([0.1, 0.4, 0.5])
Q = np.array([0.8, 0.15, 0.05])


@dataclass(frozen=True)
class Case:
    function: str
    input: str
    call: Callable[[], Any]
    expected: Any  # "error", or an oracle value (array_like), or "nan" when NaN is the right answer
    argument: str = ""  # the argument an error message must name


def _entropy(p):
    return -sp.xlogy(p, p).sum(-1)


def _ce(p, q):
    return -sp.xlogy(p, q).sum(-1)


def _kl(p, q):
    return sp.rel_entr(p, q).sum(-1)


def _js(p, q):
    m = (p + q) / 2
    return (_kl(p, m) + _kl(q, m)) / 2


def _sparse(t, x):
    return -(sp.log_softmax(np.asarray(x, float), -1)[np.arange(len(t)), t]).mean()


def _bce(y, p):
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(np.mean(-(sp.xlogy(y, p) + sp.xlogy(1 - y, 1 - p))))


def distribution_variants() -> list[tuple[str, Any, Any]]:
    """(name, p, expected entropy) for inputs standing in for a distribution."""
    strided = np.zeros((4, 6))
    strided[:, ::2] = P
    big = np.full(1_000_000, 1e-6)
    denormal = np.array([5e-324, 0.5, 0.5])
    pd = _pandas()
    variants: list[tuple[str, Any, Any]] = [
        ("NaN", np.array([0.1, np.nan, 0.9]), "error"),
        ("+inf", np.array([0.0, np.inf, 0.0]), "error"),
        ("-inf", np.array([1.0, -np.inf, 0.0]), "error"),
        ("negative zero", np.array([-0.0, 0.5, 0.5]), _entropy(np.array([0.0, 0.5, 0.5]))),
        ("denormal", denormal, _entropy(denormal)),
        ("just above 1", np.array([1 + 1e-12, 0.0, 0.0]), "error"),
        ("just below 0", np.array([-1e-300, 0.5, 0.5]), "error"),
        ("row sums to 1 + 1e-3", np.array([0.101, 0.4, 0.5]), "error"),
        ("row sums to 1 - 1e-3", np.array([0.099, 0.4, 0.5]), "error"),
        ("0-d array", np.array(0.5), "error"),
        ("empty event axis", np.empty((2, 0)), "error"),
        ("empty batch", np.empty((0, 3)), np.empty(0)),
        ("10^6 classes", big, np.log(1e6)),
        ("non-contiguous view", strided[:, ::2], _entropy(np.tile(P, (4, 1)))),
        ("broadcast view", np.broadcast_to(P, (5, 3)), _entropy(np.tile(P, (5, 1)))),
        ("bool one-hot", np.array([[True, False], [False, True]]), np.zeros(2)),
        ("integer one-hot", np.array([[0, 1, 0]]), np.zeros(1)),
        ("Python list", [0.1, 0.4, 0.5], _entropy(P)),
        ("float16", P.astype(np.float16), _entropy(P.astype(np.float16).astype(float))),
        ("strings", np.array(["a", "b"]), "error"),
        ("complex", np.array([0.5 + 0j, 0.5]), "error"),
    ]
    if pd is not None:
        variants.append(("pandas Series", pd.Series(P), _entropy(P)))
    return variants


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def cases() -> list[Case]:
    out: list[Case] = []
    for name, p, h in distribution_variants():
        out.append(Case("entropy", name, lambda p=p: ce.entropy(p), h, "p"))
        if isinstance(h, str):
            expected_pq: Any = "error"
        else:
            q = np.broadcast_to(np.asarray(p, float), np.shape(p))
            expected_pq = _ce(np.asarray(p, float), q)
        out.append(Case("cross_entropy", name, lambda p=p: ce.cross_entropy(p, p), expected_pq, "p"))
        out.append(
            Case(
                "kl_divergence",
                name,
                lambda p=p: ce.kl_divergence(p, p),
                expected_pq if isinstance(expected_pq, str) else np.zeros(np.shape(expected_pq)),
                "p",
            )
        )
        out.append(Case("perplexity", name, lambda p=p: ce.perplexity(p), h if isinstance(h, str) else np.exp(h), "p"))
    # mixed dtypes and broadcasting between P and Q
    out += [
        Case(
            "cross_entropy",
            "mixed float32/float64",
            lambda: ce.cross_entropy(P.astype(np.float32), Q),
            _ce(P.astype(np.float32).astype(float), Q),
        ),
        Case(
            "cross_entropy",
            "P (3,) against Q (4, 3)",
            lambda: ce.cross_entropy(P, np.tile(Q, (4, 1))),
            np.full(4, _ce(P, Q)),
        ),
        Case(
            "cross_entropy",
            "shapes that do not broadcast",
            lambda: ce.cross_entropy(P, np.ones((2, 2)) / 2),
            "error",
            "p",
        ),
        Case("js_divergence", "disjoint supports", lambda: ce.js_divergence([1.0, 0.0], [0.0, 1.0]), np.log(2)),
        Case("kl_divergence", "Q(x) = 0 where P(x) > 0", lambda: ce.kl_divergence([0.5, 0.5], [1.0, 0.0]), np.inf),
        Case("information", "NaN", lambda: ce.information([0.5, np.nan]), "error", "p"),
        Case("information", "zero", lambda: ce.information([0.0]), np.array([np.inf])),
        Case("information", "denormal", lambda: ce.information([5e-324]), -np.log(np.array([5e-324]))),
    ]
    out += _loss_cases()
    out += _joint_cases()
    out += _issue27_cases()
    return out


def _loss_cases() -> list[Case]:
    x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
    t = np.array([0, 1, 2])
    y, p = [1, 0, 1], [0.9, 0.2, 0.7]
    pd = _pandas()
    sparse = ce.sparse_categorical_cross_entropy
    cases = [
        Case(
            "sparse_categorical_cross_entropy",
            "label out of range",
            lambda: sparse([0, 3, 1], x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "negative label",
            lambda: sparse([0, -1, 1], x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "float labels",
            lambda: sparse([0.0, 1.0, 2.0], x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "bool labels",
            lambda: sparse([True, False, True], x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "mismatched lengths",
            lambda: sparse([0, 1], x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "NaN logit",
            lambda: sparse(t, np.where(x == 2.5, np.nan, x), from_logits=True),
            "error",
            "y_pred",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "+inf logit",
            lambda: sparse(t, np.where(x == 2.5, np.inf, x), from_logits=True),
            "error",
            "y_pred",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "-inf logit (masked)",
            lambda: sparse([0], [[0.0, -np.inf, 1.0]], from_logits=True),
            1.3132616875182228,
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "logits +-1e4",
            lambda: sparse([1], [[1e4, -1e4, 0.0]], from_logits=True),
            2e4,
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "non-contiguous logits",
            lambda: sparse(t, np.asfortranarray(x), from_logits=True),
            _sparse(t, x),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "float32 logits",
            lambda: sparse(t, x.astype(np.float32), from_logits=True),
            _sparse(t, x),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "Python lists",
            lambda: sparse(t.tolist(), x.tolist(), from_logits=True),
            _sparse(t, x),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "10^6 classes",
            lambda: sparse([0], np.zeros((1, 1_000_000)), from_logits=True),
            np.log(1e6),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "empty batch",
            lambda: sparse(np.empty(0, int), np.empty((0, 3)), from_logits=True),
            "nan",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "0-d logits",
            lambda: sparse(0, 1.0, from_logits=True),
            "error",
            "y_pred",
        ),
        Case(
            "binary_cross_entropy",
            "NaN probability",
            lambda: ce.binary_cross_entropy(y, [0.9, np.nan, 0.7]),
            "error",
            "y_pred",
        ),
        Case(
            "binary_cross_entropy",
            "probability 1 + 1e-12",
            lambda: ce.binary_cross_entropy(y, [0.9, 1 + 1e-12, 0.7]),
            "error",
            "y_pred",
        ),
        Case("binary_cross_entropy", "target 1.5", lambda: ce.binary_cross_entropy([1, 1.5, 0], p), "error", "y_true"),
        Case(
            "binary_cross_entropy",
            "negative zero",
            lambda: ce.binary_cross_entropy(y, [0.9, -0.0, 0.7]),
            _bce(y, [0.9, 0.0, 0.7]),
        ),
        Case(
            "binary_cross_entropy",
            "denormal probability",
            lambda: ce.binary_cross_entropy([1], [5e-324]),
            -np.log(5e-324),
        ),
        Case(
            "binary_cross_entropy",
            "+-inf logits",
            lambda: ce.binary_cross_entropy([1, 0], [np.inf, -np.inf], from_logits=True),
            0.0,
        ),
        Case(
            "binary_cross_entropy", "mismatched lengths", lambda: ce.binary_cross_entropy([1, 0], p), "error", "y_true"
        ),
        Case("binary_cross_entropy", "bool targets", lambda: ce.binary_cross_entropy(np.array(y, bool), p), _bce(y, p)),
        Case("binary_cross_entropy", "integer targets", lambda: ce.binary_cross_entropy(np.array(y), p), _bce(y, p)),
        Case("binary_cross_entropy", "0-d", lambda: ce.binary_cross_entropy(1, 0.5), np.log(2)),
        Case("binary_cross_entropy", "empty", lambda: ce.binary_cross_entropy([], []), "nan"),
        Case(
            "binary_cross_entropy",
            "broadcast view",
            lambda: ce.binary_cross_entropy(np.broadcast_to(1.0, (4,)), np.broadcast_to(0.5, (4,))),
            np.log(2),
        ),
        Case(
            "categorical_cross_entropy",
            "rows sum to 1 + 1e-3",
            lambda: ce.categorical_cross_entropy([[1, 0, 0]], [[0.501, 0.3, 0.2]]),
            "error",
            "y_pred",
        ),
        Case(
            "categorical_cross_entropy",
            "mismatched shapes",
            lambda: ce.categorical_cross_entropy([[1, 0]], [[0.5, 0.3, 0.2]]),
            "error",
            "y_true",
        ),
        Case("log_loss", "single class", lambda: ce.log_loss([1, 1], [0.5, 0.5]), "error", "classes"),
        Case(
            "log_loss",
            "strings",
            lambda: ce.log_loss(["a", "b"], [[0.9, 0.1], [0.2, 0.8]]),
            -(np.log(0.9) + np.log(0.8)) / 2,
        ),
        Case("binary_focal_loss", "NaN", lambda: ce.binary_focal_loss(y, [np.nan, 0.2, 0.7]), "error", "y_pred"),
        Case(
            "categorical_focal_loss",
            "empty class axis",
            lambda: ce.categorical_focal_loss(np.empty((2, 0)), np.empty((2, 0))),
            "error",
            "y_pred",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy",
            "label out of range",
            lambda: ce.grad.sparse_categorical_cross_entropy([5], [[0.0, 1.0]], from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "grad.binary_cross_entropy", "NaN", lambda: ce.grad.binary_cross_entropy([1.0], [np.nan]), "error", "y_pred"
        ),
    ]
    cases += _regression_cases(x)
    if pd is not None:
        cases.append(
            Case(
                "binary_cross_entropy",
                "pandas Series",
                lambda: ce.binary_cross_entropy(pd.Series(y), pd.Series(p)),
                _bce(y, p),
            )
        )
    return cases


def _regression_cases(x: np.ndarray) -> list[Case]:
    """Reproducers of issue 18 (silent wrong answers and API gaps), one case each."""
    sparse = ce.sparse_categorical_cross_entropy
    value_and_grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad
    reversed_out = np.empty_like(x)
    return [
        Case(
            "sparse_categorical_cross_entropy",
            "smoothing, 64 logits of 1e30 (no cancellation)",
            lambda: sparse([0], np.full((1, 64), 1e30), from_logits=True, label_smoothing=0.1),
            np.log(64),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "smoothing, float32 equal logits",
            lambda: sparse([0], np.zeros((1, 3), np.float32), from_logits=True, label_smoothing=0.1),
            np.log(3),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "smoothing, logits offset by 1e3",
            lambda: sparse([0, 1, 2], x + 1e3, from_logits=True, label_smoothing=0.2),
            _smoothed(np.array([0, 1, 2]), x, 0.2),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "ignore_index 2**64 (no integer wraps)",
            lambda: sparse([2, 0], x[:2], from_logits=True, ignore_index=2**64),
            _sparse(np.array([2, 0]), x[:2]),
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "uint64 label 2**64 - 1 with ignore_index -1",
            lambda: sparse(np.array([2**64 - 1, 0], np.uint64), x[:2], from_logits=True, ignore_index=-1),
            "error",
            "labels",
        ),
        Case(
            "sparse_categorical_cross_entropy",
            "masked array",
            lambda: sparse([0, 1, 2], np.ma.masked_array(x, mask=x > 2), from_logits=True),
            "error",
            "y_pred",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "class weights and a label out of range",
            lambda: value_and_grad([0, 7, 1], x, class_weight=[1.0, 2.0, 3.0]),
            "error",
            "labels",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "out= a reversed view",
            lambda: value_and_grad([0, 1, 2], x, out=reversed_out[::-1])[0],
            _sparse(np.array([0, 1, 2]), x),
        ),
    ]


def _smoothed(t: np.ndarray, x: np.ndarray, eps: float) -> float:
    log_q = sp.log_softmax(np.asarray(x, float), -1)
    return float(np.mean(-(1 - eps) * log_q[np.arange(len(t)), t] - eps * log_q.mean(-1)))


def _joint_cases() -> list[Case]:
    return [
        Case("joint_entropy", "negative cell", lambda: ce.joint_entropy([[0.6, -0.1], [0.5, 0.0]]), "error", "pxy"),
        Case("joint_entropy", "NaN cell", lambda: ce.joint_entropy([[0.5, np.nan], [0.5, 0.0]]), "error", "pxy"),
        Case("mutual_information", "table sums to 1.1", lambda: ce.mutual_information([[0.6, 0.5]]), "error", "pxy"),
        Case(
            "mutual_information_from_samples",
            "mismatched lengths",
            lambda: ce.mutual_information_from_samples([0, 1], [0]),
            "error",
            "label",
        ),
    ]


def _issue27_cases() -> list[Case]:
    """Reproducers of issue 27: masked arrays reaching a kernel, float32 binary CE of tiny probabilities, a
    non-floating ``out=``, and continuous distributions whose integrals diverge."""
    from scipy import stats

    import crossentropy.continuous as cc

    x = np.array([[2.0, 1.0, 0.1, -1.0], [0.5, 2.5, 0.3, 0.0], [1.0, 1.0, 1.0, 1.0], [0.2, 0.1, 3.0, 1.0]])
    t = np.array([0, 1, 2, 3])
    masked_t = np.ma.masked_array(t, mask=[0, 0, 1, 0])
    masked_w = np.ma.masked_array(np.ones(4), mask=[0, 1, 0, 0])
    sparse = ce.sparse_categorical_cross_entropy
    value_and_grad = ce.grad.sparse_categorical_cross_entropy_value_and_grad
    tiny = np.array([1e-20, 1e-14, 1e-16, 1e-30, 1e-45], np.float32)
    zeros = np.zeros(tiny.size, np.float32)
    c1, c2 = (0.0, 1.0), (2.0, 3.0)
    kl_cauchy = np.log(((c1[1] + c2[1]) ** 2 + (c1[0] - c2[0]) ** 2) / (4 * c1[1] * c2[1]))
    h_tiny = 0.5 * np.log(2 * np.pi * np.e) + np.log(1e-320)
    h_tiny_q = 0.5 * np.log(2 * np.pi * 4) + 1 / 8
    return [
        Case(sparse.__name__, "masked labels", lambda: sparse(masked_t, x, from_logits=True), "error", "labels"),
        Case(
            sparse.__name__,
            "masked class_weight",
            lambda: sparse(t, x, from_logits=True, class_weight=masked_w),
            "error",
            "class_weight",
        ),
        Case(
            sparse.__name__,
            "masked sample_weight",
            lambda: sparse(t, x, from_logits=True, sample_weight=masked_w),
            "error",
            "sample_weight",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy",
            "masked labels",
            lambda: ce.grad.sparse_categorical_cross_entropy(masked_t, x, from_logits=True),
            "error",
            "labels",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "masked labels",
            lambda: value_and_grad(masked_t, x),
            "error",
            "labels",
        ),
        Case(
            "categorical_cross_entropy",
            "masked class_weight",
            lambda: ce.categorical_cross_entropy(np.eye(4), x, from_logits=True, class_weight=masked_w),
            "error",
            "class_weight",
        ),
        Case(
            "binary_cross_entropy",
            "masked y_true",
            lambda: ce.binary_cross_entropy(np.ma.masked_array([1.0, 0.0], mask=[0, 1]), [0.9, 0.2]),
            "error",
            "y_true",
        ),
        Case("cross_entropy", "masked q", lambda: ce.cross_entropy(P, np.ma.masked_array(Q)), "error", "q"),
        Case(
            "log_loss",
            "masked y_true",
            lambda: ce.log_loss(np.ma.masked_array([0, 1], mask=[1, 0]), [[0.9, 0.1], [0.2, 0.8]]),
            "error",
            "y_true",
        ),
        Case(
            "entropy_from_samples",
            "masked samples",
            lambda: ce.entropy_from_samples(np.ma.masked_array([0, 1, 1], mask=[0, 0, 1])),
            "error",
            "samples",
        ),
        Case(
            "binary_cross_entropy",
            "float32, label 0, p from 1e-45 to 1e-14 (log of the loss: relative error shows)",
            lambda: np.log(ce.binary_cross_entropy(zeros, tiny, reduction="none").astype(np.float64)),
            np.log(-np.log1p(-tiny.astype(np.float64))),
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "out= int64",
            lambda: value_and_grad(t, x, out=np.empty(x.shape, np.int64)),
            "error",
            "out",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "out= float32 for float64 logits",
            lambda: value_and_grad(t, x, out=np.empty(x.shape, np.float32)),
            "error",
            "out",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "out= of another shape",
            lambda: value_and_grad(t, x, out=np.empty((2, *x.shape))),
            "error",
            "out",
        ),
        Case(
            "grad.sparse_categorical_cross_entropy_value_and_grad",
            "out= read-only",
            lambda: value_and_grad(t, x, out=np.broadcast_to(np.zeros(4), x.shape)),
            "error",
            "out",
        ),
        Case(
            "continuous.kl_divergence",
            "Cauchy against a normal",
            lambda: cc.kl_divergence(stats.cauchy(0, 1), stats.norm(0, 1)).value,
            np.inf,
        ),
        Case(
            "continuous.cross_entropy",
            "Cauchy against a normal",
            lambda: cc.cross_entropy(stats.cauchy(0, 1), stats.norm(0, 1)).value,
            np.inf,
        ),
        Case(
            "continuous.kl_divergence",
            "t(1) against a normal",
            lambda: cc.kl_divergence(stats.t(1), stats.norm()).value,
            np.inf,
        ),
        Case(
            "continuous.kl_divergence",
            "t(2) against a normal",
            lambda: cc.kl_divergence(stats.t(2), stats.norm()).value,
            np.inf,
        ),
        Case(
            "continuous.kl_divergence",
            "t(2) against a normal, by quadrature",
            lambda: cc.kl_divergence(stats.t(2), stats.norm(), method="quad").value,
            np.inf,
        ),
        Case(
            "continuous.kl_divergence",
            "two Cauchys",
            lambda: cc.kl_divergence(stats.cauchy(*c1), stats.cauchy(*c2)).value,
            kl_cauchy,
        ),
        Case("continuous.entropy", "scale 1e-320", lambda: cc.entropy(stats.norm(0, 1e-320)).value, h_tiny),
        Case(
            "continuous.kl_divergence",
            "P of scale 1e-320",
            lambda: cc.kl_divergence(stats.norm(0, 1e-320), stats.norm(1, 2)).value,
            h_tiny_q - h_tiny,
        ),
        Case(
            "continuous.kl_divergence",
            "t(2.01) by quadrature: a tail too slow for tol",
            lambda: cc.kl_divergence(stats.t(2.01), stats.norm(), method="quad").value,
            "error",
            "tol",
        ),
    ]


def run(case: Case) -> tuple[str, str]:
    """Run one case: ``("ok" | "wrong" | "bad error" | "crash", detail)``."""
    wants_error = isinstance(case.expected, str) and case.expected == "error"
    try:
        with np.errstate(all="ignore"):
            value = case.call()
    except ce.InputError as exc:
        if wants_error:
            named = not case.argument or case.argument in str(exc)
            return ("ok", str(exc)) if named else ("bad error", f"message does not name {case.argument}: {exc}")
        return "wrong", f"unexpected InputError: {exc}"
    except Exception as exc:  # the matrix exists to catch these
        return "crash", f"{type(exc).__name__}: {exc}"
    if wants_error:
        return "wrong", f"returned {value!r} instead of raising InputError"
    got = np.asarray(value, dtype=np.float64)
    if isinstance(case.expected, str) and case.expected == "nan":
        return ("ok", "nan") if np.all(np.isnan(got)) else ("wrong", f"{got!r} is not NaN")
    expected = np.asarray(case.expected, dtype=np.float64)
    if got.shape != expected.shape:
        return "wrong", f"shape {got.shape} != {expected.shape}"
    if np.isnan(got).any():
        return "wrong", f"silent NaN: {got!r}"
    rtol = 1e-3 if "float16" in case.input else 1e-6
    if not np.allclose(got, expected, rtol=rtol, atol=1e-12, equal_nan=False):
        return "wrong", f"{got!r} != {expected!r}"
    return "ok", ""
