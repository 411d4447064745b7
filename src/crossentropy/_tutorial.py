"""The teaching texts' worked examples, recomputed and checked (``crossentropy tutorial``).

A module of its own because the tutorial is content: the explanations (in
English and Korean), each number the texts report with its unit, and the
computation that reproduces it with the library. A check passes when the
computed value agrees with the reported one to the digits the text gives.
How it is printed is :mod:`._lesson`'s business; its figures are
:mod:`._tutorial_figures`'.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import grad
from ._information import cross_entropy, entropy, information, js_divergence, kl_divergence
from .losses import binary_cross_entropy, categorical_cross_entropy, log_loss, sparse_categorical_cross_entropy

__all__ = ["UNITS", "Check", "Section", "sections"]

P = [0.10, 0.40, 0.50]
Q = [0.80, 0.15, 0.05]
COLOURS = ["red", "green", "blue"]
Y10 = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
P10 = [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3]

UNITS: dict[str, dict[str, str]] = {
    "bits": {"en": "bits", "ko": "비트"},
    "nats": {"en": "nats", "ko": "내트"},
    "epochs": {"en": "epochs", "ko": "에포크"},
    "share": {"en": "%", "ko": "%"},  # a fraction, shown in per cent
    "nats/logit": {"en": "nats per logit", "ko": "로짓당 내트"},  # a gradient of cross-entropy
    "/logit": {"en": "per logit", "ko": "로짓당"},  # a gradient of squared error (itself without a unit)
    "nats/weight": {"en": "nats per weight", "ko": "가중치당 내트"},
    "/weight": {"en": "per weight", "ko": "가중치당"},
}
"""The unit of each kind of number, in each language, keyed as :attr:`Check.unit` names it."""


@dataclass
class Check:
    """One number: what the library computes, its unit, and what the text reports.

    ``reported`` is the text's figure as written (``"3.288"``, ``"inf"``) or
    ``None`` for a number the text only describes; the tolerance is half a
    unit in its last written digit. ``unit`` is a key of :data:`UNITS`;
    ``infinite`` says in words what an infinite value means (an accuracy
    never reached), where ``∞`` alone would not.
    """

    label: dict[str, str]
    computed: float
    reported: str | None = None
    unit: str = "nats"
    infinite: dict[str, str] | None = None

    @property
    def tolerance(self) -> float:
        if self.reported is None or "." not in self.reported:
            return 0.5 if self.reported not in (None, "inf") else 0.0
        return 0.5 * 10.0 ** -len(self.reported.split(".")[1])

    @property
    def ok(self) -> bool | None:
        if self.reported is None:
            return None
        expected = float(self.reported)
        if math.isinf(expected) or math.isinf(self.computed):
            return expected == self.computed
        return abs(self.computed - expected) <= self.tolerance * (1 + 1e-9)


@dataclass
class Section:
    """One subject: its title, the teaching text it comes from, a short explanation and its numbers."""

    key: str
    title: dict[str, str]
    source: dict[str, str]
    text: dict[str, str]
    checks: list[Check] = field(default_factory=list)


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _c(en: str, ko: str, computed: Any, reported: str | None = None, unit: str = "nats") -> Check:
    return Check({"en": en, "ko": ko}, _f(computed), reported, unit)


def _bits(en: str, ko: str, computed: Any, reported: str | None = None) -> Check:
    return _c(en, ko, computed, reported, "bits")


SOURCES = {
    "000": {
        "en": "A gentle introduction to cross-entropy for machine learning (translated)",
        "ko": "머신러닝을 위한 교차 엔트로피에 대한 간략한 소개",
    },
    "001": {"en": "Understanding cross-entropy (a blog post)", "ko": "[DL] Cross-Entropy 이해하기"},
    "002": {
        "en": "Finding the binary cross-entropy loss with TensorFlow (a blog post)",
        "ko": "TensorFlow를 사용하여 이진 교차 엔트로피 손실 값 찾기",
    },
    "003": {
        "en": "Cross-entropy in deep learning (a blog post)",
        "ko": "크로스 엔트로피(Cross Entropy)에 대해 알아보기",
    },
    "004": {
        "en": "Surprise, information, entropy, cross-entropy and KL (a blog post)",
        "ko": "놀람의 정도, 정보량, 엔트로피, 교차 엔트로피, KL",
    },
}


def _gentle_introduction() -> Section:
    checks = [
        _bits("cross-entropy H(P, Q)", "교차 엔트로피 H(P, Q)", cross_entropy(P, Q, base=2), "3.2879430946"),
        _c("the same in nats", "같은 값을 내트로", cross_entropy(P, Q), "2.2790284859"),
        _bits("the roles swapped, H(Q, P)", "역할을 바꾼 H(Q, P)", cross_entropy(Q, P, base=2), "2.9058316901"),
        _c("the same in nats", "같은 값을 내트로", cross_entropy(Q, P), "2.0141690432"),
        _bits(
            "entropy of the truth, H(P) = H(P, P)", "정답의 엔트로피 H(P) = H(P, P)", entropy(P, base=2), "1.3609640474"
        ),
        _bits(
            "entropy of the model, H(Q) = H(Q, Q)", "모델의 엔트로피 H(Q) = H(Q, Q)", entropy(Q, base=2), "0.8841837198"
        ),
        _bits("KL divergence KL(P || Q)", "KL 발산 KL(P || Q)", kl_divergence(P, Q, base=2), "1.9269790472"),
        _bits("the other way, KL(Q || P)", "반대 방향 KL(Q || P)", kl_divergence(Q, P, base=2), "2.0216479704"),
        _bits(
            "Jensen-Shannon divergence JS(P, Q)", "젠슨-섀넌 발산 JS(P, Q)", js_divergence(P, Q, base=2), "0.4202005704"
        ),
        _bits(
            "H(P) + KL(P || Q): the cross-entropy again",
            "H(P) + KL(P || Q): 다시 교차 엔트로피",
            entropy(P, base=2) + kl_divergence(P, Q, base=2),
            "3.288",
        ),
        _c(
            "entropy of a one-hot label [0, 1, 0] (no epsilon needed)",
            "원-핫 레이블 [0, 1, 0]의 엔트로피 (엡실론 불필요)",
            entropy([0.0, 1.0, 0.0]),
            "0",
        ),
    ]
    per_example = cross_entropy(
        np.stack([1 - np.asarray(Y10), Y10], -1).astype(float), np.stack([1 - np.asarray(P10), P10], -1)
    )
    for i, (value, text) in enumerate(
        zip(
            per_example,
            ["0.2231", "0.1054", "0.1054", "0.5108", "0.2231", "0.1054", "0.5108", "0.2231", "0.1054", "0.3567"],
            strict=True,
        )
    ):
        checks.append(
            _c(
                f"example {i + 1}: class {Y10[i]}, predicted P(class 1) = {P10[i]}",
                f"예제 {i + 1}: 클래스 {Y10[i]}, 예측 P(클래스 1) = {P10[i]}",
                value,
                text,
            )
        )
    checks += [
        _c(
            "their mean: the binary cross-entropy",
            "그 평균: 이진 교차 엔트로피",
            binary_cross_entropy(Y10, P10),
            "0.2469198908",
        ),
        _c(
            "the same by Keras' rules (convention='keras', float32)",
            "Keras 방식으로 (convention='keras', float32)",
            binary_cross_entropy(Y10, np.asarray(P10, np.float32), convention="keras"),
            "0.247",
        ),
        _c("the log loss of the same predictions", "같은 예측의 로그 손실", log_loss(Y10, P10), "0.247"),
    ]
    curve = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    reported = ["0", "0.1054", "0.2231", "0.3567", "0.5108", "0.6931", "0.9163", "1.2040", "1.6094", "2.3026", "inf"]
    for q, text in zip(curve, reported, strict=True):
        checks.append(
            _c(
                f"true class given probability {q:.1f}",
                f"정답 클래스에 확률 {q:.1f}을 줄 때",
                cross_entropy([0.0, 1.0], [1 - q, q]),
                text,
            )
        )
    return Section(
        "000",
        {
            "en": "Surprise, entropy and cross-entropy: three colours, ten predictions",
            "ko": "놀라움, 엔트로피, 교차 엔트로피: 세 가지 색과 열 개의 예측",
        },
        SOURCES["000"],
        {
            "en": "Information h(x) = -log P(x); entropy H(P) = -sum P log P; cross-entropy H(P, Q) = -sum P log Q "
            "= H(P) + KL(P || Q). Neither H(P, Q) nor KL is symmetric. Three colour events, P = [0.10, 0.40, 0.50] "
            "and Q = [0.80, 0.15, 0.05]; then ten binary predictions, whose mean cross-entropy is the log loss, "
            "and the loss of one prediction as the probability of the true class falls from 1 to 0. "
            "One-hot labels have entropy exactly 0: 0 log 0 = 0 needs no epsilon.",
            "ko": "정보량 h(x) = -log P(x), 엔트로피 H(P) = -sum P log P, 교차 엔트로피 H(P, Q) = -sum P log Q "
            "= H(P) + KL(P || Q). H(P, Q)와 KL은 대칭이 아니다. 세 가지 색 사건 P = [0.10, 0.40, 0.50], "
            "Q = [0.80, 0.15, 0.05]; 이어서 열 개의 이진 예측과 그 평균 교차 엔트로피(로그 손실), 그리고 정답 "
            "클래스의 확률이 1에서 0으로 내려갈 때 예측 하나의 손실. "
            "원-핫 레이블의 엔트로피는 정확히 0이다: 0 log 0 = 0 이므로 엡실론이 필요 없다.",
        },
        checks,
    )


def _understanding() -> Section:
    checks = [
        _bits(
            f"largest entropy of {2**k} classes (uniform)",
            f"{2**k}개 클래스의 최대 엔트로피 (균등 분포)",
            entropy(np.full(2**k, 1 / 2**k), base=2),
            str(k),
        )
        for k in range(1, 6)
    ]
    checks.append(
        _bits(
            "entropy of a certain outcome [1, 0, 0]",
            "확실한 결과 [1, 0, 0]의 엔트로피",
            entropy([1.0, 0.0, 0.0], base=2),
            "0",
        )
    )
    checks.append(
        _bits(
            "H(P, Q) - H(P), which is KL(P || Q)",
            "H(P, Q) - H(P), 곧 KL(P || Q)",
            cross_entropy(P, Q, base=2) - entropy(P, base=2),
            "1.9269790472",
        )
    )
    logits = np.array([[2.0, 1.0, 0.1]])
    g = grad.sparse_categorical_cross_entropy([0], logits, from_logits=True)
    softmax = np.exp(logits) / np.exp(logits).sum()
    checks.append(
        _c(
            "largest gap between dCE/dz and softmax - one-hot",
            "dCE/dz와 softmax - 원핫의 최대 차이",
            np.abs(g - (softmax - [1, 0, 0])).max(),
            "0.000000000000",
            "nats/logit",
        )
    )
    p_true = 0.01
    checks.append(
        _c(
            f"gradient of cross-entropy, |dCE/dz|, when p(true) = {p_true}",
            f"p(정답) = {p_true}일 때 교차 엔트로피의 기울기 |dCE/dz|",
            abs(grad.binary_cross_entropy([1.0], [math.log(p_true / (1 - p_true))], from_logits=True)[0]),
            "0.99",
            "nats/logit",
        )
    )
    checks.append(
        _c(
            f"gradient of squared error, |dMSE/dz|, when p(true) = {p_true}",
            f"p(정답) = {p_true}일 때 제곱 오차의 기울기 |dMSE/dz|",
            2 * (1 - p_true) ** 2 * p_true,
            None,
            "/logit",
        )
    )
    return Section(
        "001",
        {
            "en": "Entropy's extremes, and the gradient that trains a classifier",
            "ko": "엔트로피의 최댓값과 최솟값, 그리고 분류기를 학습시키는 기울기",
        },
        SOURCES["001"],
        {
            "en": "Entropy is the expected surprise: largest (k bits) for the uniform distribution over 2^k classes, "
            "0 for a certain outcome. KL = cross-entropy - entropy >= 0, so with fixed labels minimising "
            "cross-entropy minimises KL. With softmax, dCE/dz = softmax - onehot; squared error's gradient carries "
            "an extra p (1 - p) that vanishes when the model is confidently wrong.",
            "ko": "엔트로피는 기대 놀라움이다: 2^k개 클래스의 균등 분포에서 최대(k 비트), 확실한 결과에서 0. "
            "KL = 교차 엔트로피 - 엔트로피 >= 0 이므로 레이블이 고정되면 교차 엔트로피 최소화는 KL 최소화와 같다. "
            "소프트맥스에서 dCE/dz = softmax - onehot; 제곱 오차의 기울기에는 p (1 - p)가 더 곱해져 "
            "모델이 확신에 차서 틀릴 때 사라진다.",
        },
        checks,
    )


RANDOM_EPOCHS = 60
SATURATED_EPOCHS = 100


@functools.cache
def training_runs() -> dict[str, Any] | None:
    """Softmax regression on digits with both losses, or None without scikit-learn.

    From a random start, :data:`RANDOM_EPOCHS` epochs; from a saturated
    (confidently wrong) start, :data:`SATURATED_EPOCHS`, the run that shows
    the point: cross-entropy recovers (90 % test accuracy near epoch 60) and
    squared error never does. The runs are deterministic, so they are
    computed once per process (for the checks and for the figures).
    """
    from . import learn
    from ._validation import InputError

    try:
        X_train, X_test, y_train, y_test = learn.load_dataset("digits", seed=0)
    except InputError:
        return None
    return {
        init: {
            loss: learn.train(
                X_train, y_train, X_test, y_test, model="softmax", loss=loss, epochs=epochs, lr=0.5, init=init, seed=0
            )
            for loss in ("ce", "mse")
        }
        for init, epochs in (("random", RANDOM_EPOCHS), ("saturated", SATURATED_EPOCHS))
    }


def _why_not_squared_error() -> Section:
    runs = training_runs()
    n = SATURATED_EPOCHS
    text = {
        "en": "Softmax regression on scikit-learn's digits, trained twice with the same steps: once with "
        "cross-entropy, whose gradient with respect to the logits is p - y, and once with squared error "
        "sum (p - y)^2, whose gradient is J_softmax^T 2(p - y) and shrinks with p (1 - p) when the model is "
        "confidently wrong. From a random start both learn, cross-entropy faster. From a saturated "
        "(confidently wrong) start the squared-error gradient is over a hundred times smaller: in "
        f"{n} epochs cross-entropy climbs from 0 to over 90 % test accuracy (crossing 90 % near epoch 60), "
        "while squared error stays at 0 (crossentropy train --init saturated --epochs 100).",
        "ko": "scikit-learn의 digits 데이터에서 소프트맥스 회귀를 같은 스텝으로 두 번 학습한다: 로짓에 대한 기울기가 "
        "p - y인 교차 엔트로피와, 기울기가 J_softmax^T 2(p - y)로 모델이 확신에 차서 틀릴 때 p (1 - p)만큼 줄어드는 "
        "제곱 오차 sum (p - y)^2. 무작위 시작점에서는 둘 다 학습되지만 교차 엔트로피가 더 빠르다. 포화된(확신에 찬 "
        f"오답) 시작점에서는 제곱 오차의 기울기가 백 배 이상 작다: {n} 에포크 동안 교차 엔트로피는 테스트 정확도 "
        "0에서 90% 이상으로 올라가고(에포크 60 근처에서 90%를 넘음) 제곱 오차는 0에 머문다 "
        "(crossentropy train --init saturated --epochs 100).",
    }
    title = {
        "en": "Why classifiers train with cross-entropy, not squared error",
        "ko": "분류기가 제곱 오차가 아닌 교차 엔트로피로 학습하는 이유",
    }
    source = {
        "en": f"{SOURCES['001']['en']}; the runs: crossentropy train",
        "ko": f"{SOURCES['001']['ko']}; 학습: crossentropy train",
    }
    if runs is None:
        note = {
            "en": " (Install scikit-learn, pip install 'crossentropy[learn]', to run this section.)",
            "ko": " (이 절을 실행하려면 scikit-learn을 설치하세요: pip install 'crossentropy[learn]')",
        }
        return Section("001-train", title, source, {k: text[k] + note[k] for k in text})
    rnd, sat = runs["random"], runs["saturated"]

    def epochs(h: Any) -> float:
        e = h.epochs_to(0.9)
        return math.inf if e is None else float(e)

    def never(within: int) -> dict[str, str]:
        return {"en": f"not within {within} epochs", "ko": f"{within} 에포크 안에 못 함"}

    def to_90(loss: dict[str, str], run: Any, within: int, start: dict[str, str]) -> Check:
        check = _c(
            f"{start['en']}: epochs to 90 % test accuracy, {loss['en']}",
            f"{start['ko']}: 테스트 정확도 90%까지 에포크, {loss['ko']}",
            epochs(run),
            None,
            "epochs",
        )
        check.infinite = never(within)
        return check

    ce_name, mse_name = {"en": "cross-entropy", "ko": "교차 엔트로피"}, {"en": "squared error", "ko": "제곱 오차"}
    random_start, saturated = {"en": "random start", "ko": "무작위 시작"}, {"en": "saturated start", "ko": "포화 시작"}
    checks = [
        to_90(ce_name, rnd["ce"], RANDOM_EPOCHS, random_start),
        to_90(mse_name, rnd["mse"], RANDOM_EPOCHS, random_start),
        _c(
            "saturated start: size of the first gradient, cross-entropy",
            "포화 시작: 첫 기울기의 크기, 교차 엔트로피",
            sat["ce"].gradient_norm[0],
            None,
            "nats/weight",
        ),
        _c(
            "saturated start: size of the first gradient, squared error",
            "포화 시작: 첫 기울기의 크기, 제곱 오차",
            sat["mse"].gradient_norm[0],
            None,
            "/weight",
        ),
        to_90(ce_name, sat["ce"], n, saturated),
        to_90(mse_name, sat["mse"], n, saturated),
        _c(
            f"saturated start: test accuracy after {n} epochs, cross-entropy",
            f"포화 시작: {n} 에포크 후 테스트 정확도, 교차 엔트로피",
            sat["ce"].test_accuracy[-1],
            None,
            "share",
        ),
        _c(
            f"saturated start: test accuracy after {n} epochs, squared error",
            f"포화 시작: {n} 에포크 후 테스트 정확도, 제곱 오차",
            sat["mse"].test_accuracy[-1],
            None,
            "share",
        ),
    ]
    return Section("001-train", title, source, text, checks)


def _tensorflow() -> Section:
    checks = [
        _c(
            "the text's NumPy code, y=[1,0,1], p=[0,0,1]: clip to [1e-7, 1 - 1e-7], add 1e-7 in each log",
            "원문의 NumPy 코드, y=[1,0,1], p=[0,0,1]: [1e-7, 1 - 1e-7]로 자르고 log 안에 1e-7을 더함",
            binary_cross_entropy([1, 0, 1], np.array([0.0, 0.0, 1.0]), convention="tf-keras2"),
            "5.141649490132791",
        ),
        _c(
            "tf.keras BinaryCrossentropy, y=[1,1,1], p=[1,1,0] (float32)",
            "tf.keras BinaryCrossentropy, y=[1,1,1], p=[1,1,0] (float32)",
            binary_cross_entropy(np.ones(3, np.float32), np.array([1, 1, 0], np.float32), convention="tf-keras2"),
            "5.1416497",
        ),
        _c(
            "clipping alone (Keras 3): the miss costs -ln(1e-7), shared by 3 examples",
            "자르기만 할 때 (Keras 3): 오답 하나의 -ln(1e-7)을 예제 3개로 나눔",
            binary_cross_entropy([1.0], [0.0], convention="keras") / 3,
            "5.3726985503",
        ),
        _c(
            "Keras 3 on y=[1,1,1], p=[1,1,0] (float32)",
            "Keras 3, y=[1,1,1], p=[1,1,0] (float32)",
            binary_cross_entropy(np.ones(3, np.float32), np.array([1, 1, 0], np.float32), convention="keras"),
            "5.3726983",
        ),
        _c(
            "the exact value, y=[1,1,1], p=[1,1,0] (no epsilon)",
            "정확한 값, y=[1,1,1], p=[1,1,0] (엡실론 없음)",
            binary_cross_entropy([1, 1, 1], [1.0, 1.0, 0.0]),
            "inf",
        ),
    ]
    return Section(
        "002",
        {
            "en": "Binary cross-entropy, and the epsilon TensorFlow adds",
            "ko": "이진 교차 엔트로피와 TensorFlow가 더하는 엡실론",
        },
        SOURCES["002"],
        {
            "en": "Binary cross-entropy is the mean of -(y log p + (1 - y) log(1 - p)). TensorFlow 2's Keras clips "
            "p to [1e-7, 1 - 1e-7] and "
            "then adds 1e-7 again inside each log, so a certain miss costs -ln(2e-7) = 15.42 instead of infinity.",
            "ko": "이진 교차 엔트로피는 -(y log p + (1 - y) log(1 - p))의 평균이다. TensorFlow 2의 Keras는 p를 "
            "[1e-7, 1 - 1e-7]로 자른 뒤 "
            "각 log 안에 1e-7을 다시 더하므로, 확실한 오답의 손실이 무한대가 아니라 -ln(2e-7) = 15.42가 된다.",
        },
        checks,
    )


def _deep_learning() -> Section:
    onehot = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3]])
    categorical = categorical_cross_entropy(onehot, probs)
    weights = np.array([1.0, 1.0, 3.0])
    checks = [
        _c(
            "binary cross-entropy of the ten predictions (sigmoid output)",
            "열 개 예측의 이진 교차 엔트로피 (시그모이드 출력)",
            binary_cross_entropy(Y10, P10),
            "0.2469198908",
        ),
        _c(
            "categorical cross-entropy, one-hot targets (softmax, 3 classes)",
            "범주형 교차 엔트로피, 원-핫 목표 (소프트맥스, 3 클래스)",
            categorical,
        ),
        _c(
            "sparse categorical, integer labels 0, 1, 2, 1: the same number",
            "희소 범주형, 정수 레이블 0, 1, 2, 1: 같은 값",
            sparse_categorical_cross_entropy([0, 1, 2, 1], probs),
        ),
        _c(
            "with class weights [1, 1, 3]: the rare class 2 costs more",
            "클래스 가중치 [1, 1, 3]: 드문 클래스 2의 비용이 커짐",
            sparse_categorical_cross_entropy([0, 1, 2, 1], probs, class_weight=weights),
        ),
    ]
    return Section(
        "003",
        {
            "en": "Binary, categorical and sparse: the three losses of deep learning",
            "ko": "이진, 범주형, 희소 범주형: 딥러닝의 세 가지 손실",
        },
        SOURCES["003"],
        {
            "en": "Binary cross-entropy pairs with a sigmoid output, categorical with softmax over 3+ classes, "
            "sparse categorical takes integer labels 0, 1, 2, ... and gives the same number as one-hot targets. "
            "Class weights make mistakes on a minority class cost more.",
            "ko": "이진 교차 엔트로피는 시그모이드 출력과, 범주형은 3개 이상 클래스의 소프트맥스와 함께 쓴다. "
            "희소 범주형은 정수 레이블 0, 1, 2, ...를 받으며 원-핫 목표와 같은 값을 준다. "
            "클래스 가중치는 소수 클래스의 오답 비용을 키운다.",
        },
        checks,
    )


def _information_entropy() -> Section:
    checks = [
        _c(
            "surprise of being struck by lightning (1 in 280,000)",
            "벼락 맞을 확률 (28만분의 1)의 놀라움",
            information(1 / 280_000, base=2),
            "18.1",
            "bits",
        ),
        _bits("surprise of a fair coin's heads", "동전 앞면의 놀라움", information(0.5, base=2), "1"),
        _bits("surprise of an event of probability 1/8", "확률 1/8인 사건의 놀라움", information(1 / 8, base=2), "3"),
        _c(
            "binary cross-entropy when the prediction equals the label",
            "예측이 레이블과 같을 때 이진 교차 엔트로피",
            binary_cross_entropy([1.0, 0.0], [1.0, 0.0]),
            "0",
        ),
        _c(
            "binary cross-entropy of prediction 0 for label 1 (exact)",
            "레이블 1에 예측 0의 이진 교차 엔트로피 (정확한 값)",
            binary_cross_entropy([1.0], [0.0]),
            "inf",
        ),
        _c(
            "the same with PyTorch's nn.BCELoss (logs clamped at -100)",
            "PyTorch nn.BCELoss로 (log를 -100에서 자름)",
            binary_cross_entropy([1.0], [0.0], convention="torch"),
            "100",
        ),
        _c("KL(P || P): no divergence from itself", "KL(P || P): 자기 자신과의 발산은 0", kl_divergence(P, P), "0"),
        _c(
            "KL(P || Q) - KL(Q || P): not symmetric",
            "KL(P || Q) - KL(Q || P): 대칭이 아님",
            kl_divergence(P, Q, base=2) - kl_divergence(Q, P, base=2),
            "-0.0946689232",
            "bits",
        ),
    ]
    return Section(
        "004",
        {
            "en": "Surprise in bits: lightning, a coin, and a loss that can be infinite",
            "ko": "비트로 잰 놀라움: 벼락, 동전, 그리고 무한대가 될 수 있는 손실",
        },
        SOURCES["004"],
        {
            "en": "Rare events surprise: being struck by lightning carries about 18 bits, a coin's heads 1 bit, an "
            "event of probability 1/8 exactly 3 bits. Binary cross-entropy is 0 when the prediction equals the "
            "label and infinite when the prediction is 0 for a positive label. KL is the expected difference of "
            "information: 0 for equal distributions, and not symmetric.",
            "ko": "드문 사건은 놀랍다: 벼락은 약 18비트, 동전 앞면은 1비트, 확률 1/8인 사건은 정확히 3비트. "
            "이진 교차 엔트로피는 예측이 레이블과 같으면 0, 양성 레이블에 0을 예측하면 무한대이다. "
            "KL은 정보량 차이의 기댓값으로, 같은 분포에서 0이고 대칭이 아니다.",
        },
        checks,
    )


def _continuous_and_joint() -> Section:
    from . import continuous as cc
    from ._joint import conditional_entropy, joint_entropy, mutual_information

    try:
        from scipy import stats
    except ImportError:
        stats = None
    checks: list[Check] = []
    if stats is not None:
        p, q = stats.norm(0, 1), stats.norm(1, 2)
        h_p, h_pq, kl = cc.entropy(p), cc.cross_entropy(p, q), cc.kl_divergence(p, q)
        checks += [
            _c("differential entropy of N(0, 1)", "N(0, 1)의 미분 엔트로피", h_p.value),
            _c("cross-entropy H(N(0, 1), N(1, 2))", "교차 엔트로피 H(N(0, 1), N(1, 2))", h_pq.value),
            _c("KL(N(0, 1) || N(1, 2))", "KL(N(0, 1) || N(1, 2))", kl.value),
            _c(
                "H(P, Q) - H(P) - KL(P || Q): the identity holds",
                "H(P, Q) - H(P) - KL(P || Q): 항등식이 성립",
                h_pq.value - h_p.value - kl.value,
                "0.000000000000",
            ),
            _c(
                "the same KL by numerical integration, minus the closed form",
                "같은 KL의 수치 적분에서 닫힌 형태를 뺀 값",
                cc.kl_divergence(p, q, method="quad").value - kl.value,
                "0.00000000",
            ),
            _c(
                "differential entropy of Uniform(0, 1/2): negative",
                "Uniform(0, 1/2)의 미분 엔트로피: 음수",
                cc.entropy(stats.uniform(0, 0.5)).value,
                "-0.6931471806",
            ),
        ]
    pxy = np.array([[0.4, 0.1], [0.1, 0.4]])
    h_xy = joint_entropy(pxy, base=2)
    h_x = joint_entropy(pxy, axes=0, base=2)
    h_y_given_x = conditional_entropy(pxy, target=1, given=0, base=2)
    checks += [
        _bits(
            "joint entropy H(X, Y) of [[0.4, 0.1], [0.1, 0.4]]",
            "[[0.4, 0.1], [0.1, 0.4]]의 결합 엔트로피 H(X, Y)",
            h_xy,
        ),
        _bits("entropy of X alone, H(X)", "X만의 엔트로피 H(X)", h_x),
        _bits("conditional entropy H(Y | X)", "조건부 엔트로피 H(Y | X)", h_y_given_x),
        _bits("mutual information I(X; Y)", "상호 정보량 I(X; Y)", mutual_information(pxy, base=2)),
        _bits(
            "chain rule: H(X) + H(Y | X) - H(X, Y) is 0",
            "연쇄 법칙: H(X) + H(Y | X) - H(X, Y)는 0",
            h_x + h_y_given_x - h_xy,
            "0.000000000000",
        ),
    ]
    return Section(
        "continuous",
        {
            "en": "Continuous distributions, and joint entropy versus cross-entropy",
            "ko": "연속 분포, 그리고 결합 엔트로피와 교차 엔트로피",
        },
        SOURCES["000"],
        {
            "en": "For continuous distributions the sums become integrals: H(P, Q) = -int p log q. Differential "
            "entropy can be negative. Joint entropy H(X, Y) shares the notation of cross-entropy H(P, Q) but is the "
            "entropy of ONE distribution over pairs (x, y); the chain rule H(X, Y) = H(X) + H(Y | X) holds, and "
            "mutual information I(X; Y) = H(X) + H(Y) - H(X, Y).",
            "ko": "연속 분포에서는 합이 적분이 된다: H(P, Q) = -int p log q. 미분 엔트로피는 음수일 수 있다. "
            "결합 엔트로피 H(X, Y)는 교차 엔트로피 H(P, Q)와 표기가 같지만 쌍 (x, y)에 대한 하나의 분포의 "
            "엔트로피이다. 연쇄 법칙 H(X, Y) = H(X) + H(Y | X)가 성립하고, 상호 정보량은 "
            "I(X; Y) = H(X) + H(Y) - H(X, Y)이다.",
        },
        checks,
    )


BUILDERS: list[Callable[[], Section]] = [
    _gentle_introduction,
    _understanding,
    _why_not_squared_error,
    _tensorflow,
    _deep_learning,
    _information_entropy,
    _continuous_and_joint,
]


def sections() -> list[Section]:
    """Every section of the tutorial, computed now, in the order of the teaching texts."""
    return [build() for build in BUILDERS]
