"""Why classification trains with cross-entropy: small NumPy trainers, two losses.

Logistic regression, softmax regression and a one-hidden-layer MLP, trained
by (mini-)batch gradient descent with either cross-entropy or squared error
on the predicted probabilities, with no deep-learning framework. The
cross-entropy gradient with respect to the logits comes from
:mod:`crossentropy.grad` (``p - y``); squared error's carries the extra
softmax (or sigmoid) Jacobian, ``p (1 - p)`` in the binary case, which
vanishes when the model is confidently wrong. Everything is deterministic
given ``seed``.

Examples
--------
>>> import numpy as np
>>> from crossentropy.learn import train
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 2))
>>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
>>> history = train(X[:150], y[:150], X[150:], y[150:], model="logistic", loss="ce", epochs=30, lr=0.5)
>>> history.test_accuracy[-1] > 0.9
True
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import grad
from ._validation import InputError, check_choice
from .losses import binary_cross_entropy, sparse_categorical_cross_entropy

Array = np.ndarray[Any, Any]

__all__ = ["History", "Model", "load_dataset", "train"]

MODELS = ("logistic", "softmax", "mlp")
LOSSES = ("ce", "mse")
DATASETS = ("breast_cancer", "digits", "iris", "wine")
MAX_SEED = 2**32 - 1
"""The largest seed: scikit-learn's ``random_state`` takes ``[0, 2**32 - 1]``."""


@dataclass
class Model:
    """Weights of a logistic, softmax or one-hidden-layer model.

    ``layers`` is a list of ``(W, b)`` pairs; a hidden layer uses ``tanh``.
    ``binary`` models have one output logit (sigmoid), others one per class.
    """

    layers: list[tuple[Array, Array]]
    binary: bool

    def forward(self, X: Array) -> tuple[Array, list[Array]]:
        """The output logits and the activations of each layer's input."""
        inputs = [X]
        h = X
        for i, (W, b) in enumerate(self.layers):
            z = h @ W + b
            if i < len(self.layers) - 1:
                h = np.tanh(z)
                inputs.append(h)
            else:
                h = z
        return (h[:, 0] if self.binary else h), inputs

    def probabilities(self, X: Array) -> Array:
        """P(class 1) for binary models, else the softmax over classes."""
        z, _ = self.forward(X)
        if self.binary:
            return np.asarray(1 / (1 + np.exp(-z)))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def predict(self, X: Array) -> Array:
        """Predicted class labels."""
        p = self.probabilities(X)
        return (p >= 0.5).astype(np.int64) if self.binary else np.argmax(p, axis=1)


def _init(model: str, n_features: int, n_classes: int, hidden: int, rng: np.random.Generator) -> Model:
    binary = model == "logistic"
    if binary and n_classes != 2:
        raise InputError(f"the logistic model is binary, but the data have {n_classes} classes; use softmax or mlp")
    outputs = 1 if binary else n_classes
    sizes = [n_features, hidden, outputs] if model == "mlp" else [n_features, outputs]
    layers = [
        (rng.normal(0.0, 1.0 / math.sqrt(fan_in), (fan_in, fan_out)), np.zeros(fan_out))
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]
    return Model(layers, binary)


def _saturate(model: Model, X: Array, y: Array, n_classes: int, scale: float) -> None:
    """Point the output layer away from each example's class, confidently.

    The output weights of class ``c`` become ``-scale`` times the mean input
    (last hidden activation) of class ``c``'s examples, so each example's own
    class gets a strongly negative logit: the model starts confidently wrong.
    """
    _, inputs = model.forward(X)
    h = inputs[-1]
    means = np.stack([h[y == c].mean(axis=0) for c in range(n_classes)], axis=1)
    W, b = model.layers[-1]
    if model.binary:
        W = (-scale * (means[:, 1] - means[:, 0]))[:, None]
    else:
        W = -scale * (means - means.mean(axis=1, keepdims=True))
    model.layers[-1] = (W, np.zeros_like(b))


def loss_value(model: Model, X: Array, y: Array, loss: str) -> float:
    """The training loss: mean cross-entropy, or mean squared error of the probabilities."""
    z, _ = model.forward(X)
    if loss == "ce":
        if model.binary:
            return float(binary_cross_entropy(y.astype(float), z, from_logits=True))
        return float(sparse_categorical_cross_entropy(y, z, from_logits=True))
    p = model.probabilities(X)
    target = y.astype(float) if model.binary else np.eye(p.shape[1])[y]
    err = (p - target) ** 2
    return float(err.mean() if model.binary else err.sum(axis=1).mean())


def logit_gradient(model: Model, z: Array, y: Array, loss: str) -> Array:
    """dLoss/dlogits of the batch mean, in closed form.

    Cross-entropy: ``(p - y) / N`` from :mod:`crossentropy.grad`. Squared
    error ``mean_i sum_c (p_ic - y_ic)**2``: the softmax Jacobian applied to
    ``2 (p - y) / N``, i.e. ``2 p (1 - p) (p - y) / N`` for a sigmoid.
    """
    if loss == "ce":
        if model.binary:
            return np.asarray(grad.binary_cross_entropy(y.astype(float), z, from_logits=True))
        return np.asarray(grad.sparse_categorical_cross_entropy(y, z, from_logits=True))
    n = z.shape[0]
    if model.binary:
        p = 1 / (1 + np.exp(-z))
        return np.asarray(2 * (p - y) * p * (1 - p) / n)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g_p = 2 * (p - np.eye(p.shape[1])[y]) / n
    return np.asarray(p * (g_p - (p * g_p).sum(axis=1, keepdims=True)))


def gradients(model: Model, X: Array, y: Array, loss: str) -> list[tuple[Array, Array]]:
    """Gradients of the batch-mean loss with respect to every ``(W, b)``, by backpropagation."""
    z, inputs = model.forward(X)
    g = logit_gradient(model, z, y, loss)
    g = g[:, None] if model.binary else g
    out: list[tuple[Array, Array]] = []
    for i in range(len(model.layers) - 1, -1, -1):
        W, _ = model.layers[i]
        h = inputs[i]
        out.append((h.T @ g, g.sum(axis=0)))
        if i > 0:
            g = (g @ W.T) * (1 - h**2)
    return out[::-1]


@dataclass
class History:
    """Per-epoch record of one training run (epoch 0 is the initial model)."""

    model: str
    loss: str
    train_loss: list[float] = field(default_factory=list)
    test_cross_entropy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    gradient_norm: list[float] = field(default_factory=list)

    def epochs_to(self, accuracy: float) -> int | None:
        """The first epoch whose test accuracy reaches ``accuracy`` (None if never)."""
        return next((i for i, a in enumerate(self.test_accuracy) if a >= accuracy), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "loss": self.loss,
            "train_loss": self.train_loss,
            "test_cross_entropy": self.test_cross_entropy,
            "test_accuracy": self.test_accuracy,
            "gradient_norm": self.gradient_norm,
        }


def train(
    X_train: Array,
    y_train: Array,
    X_test: Array,
    y_test: Array,
    *,
    model: str = "softmax",
    loss: str = "ce",
    epochs: int = 50,
    lr: float = 0.1,
    batch_size: int | None = None,
    hidden: int = 32,
    init: str = "random",
    saturation: float = 3.0,
    seed: int = 0,
) -> History:
    """Train one model with one loss; record the learning curve.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : array_like
        Features (rows) and integer class labels ``0..C-1``.
    model : {"logistic", "softmax", "mlp"}
        Logistic regression (binary only), softmax regression, or a
        one-hidden-layer ``tanh`` MLP with a softmax (or sigmoid) output.
    loss : {"ce", "mse"}
        Cross-entropy, or squared error of the predicted probabilities.
    epochs : int
        Passes over the training data.
    lr : float
        Gradient-descent step size.
    batch_size : int, optional
        Mini-batch size; ``None`` for full-batch gradient descent.
    hidden : int
        Hidden units of the MLP.
    init : {"random", "saturated"}
        ``"saturated"`` starts from confidently wrong output weights.
    saturation : float
        How confident the saturated start is (the output weight scale).
    seed : int
        Seed of the initial weights and the mini-batch order.

    Returns
    -------
    History
        Train loss, test cross-entropy, test accuracy and the norm of the
        loss gradient at epochs ``0..epochs``.
    """
    check_choice("model", model, MODELS)
    check_choice("loss", loss, LOSSES)
    check_choice("init", init, ("random", "saturated"))
    if epochs < 0 or not (lr > 0 and math.isfinite(lr)):
        raise InputError(f"epochs must be >= 0 and lr a finite number > 0; got epochs={epochs}, lr={lr}")
    if model == "mlp" and hidden < 1:
        raise InputError(f"hidden must be >= 1 (units of the MLP's hidden layer), got {hidden}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be >= 1 (or None for the full batch), got {batch_size}")
    if not math.isfinite(saturation):
        raise InputError(f"saturation must be a finite number, got {saturation}")
    _check_seed(seed)
    Xtr, Xte = np.asarray(X_train, dtype=float), np.asarray(X_test, dtype=float)
    ytr, yte = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    rng = np.random.default_rng(seed)
    net = _init(model, Xtr.shape[1], n_classes, hidden, rng)
    if init == "saturated":
        _saturate(net, Xtr, ytr, n_classes, saturation)
    history = History(model, loss)

    def record() -> None:
        history.train_loss.append(loss_value(net, Xtr, ytr, loss))
        history.test_cross_entropy.append(loss_value(net, Xte, yte, "ce"))
        history.test_accuracy.append(float((net.predict(Xte) == yte).mean()))
        history.gradient_norm.append(
            float(math.sqrt(sum(float((gW**2).sum() + (gb**2).sum()) for gW, gb in gradients(net, Xtr, ytr, loss))))
        )

    record()
    size = batch_size or Xtr.shape[0]
    for _ in range(epochs):
        order = rng.permutation(Xtr.shape[0]) if batch_size else np.arange(Xtr.shape[0])
        for start in range(0, Xtr.shape[0], size):
            idx = order[start : start + size]
            steps = gradients(net, Xtr[idx], ytr[idx], loss)
            net.layers = [(W - lr * gW, b - lr * gb) for (W, b), (gW, gb) in zip(net.layers, steps, strict=True)]
        record()
    return history


def _check_seed(seed: int) -> None:
    """InputError unless ``seed`` is an integer in ``[0, 2**32 - 1]`` (what NumPy and scikit-learn take)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")


def load_dataset(name: str, *, test_size: float = 0.3, seed: int = 0) -> tuple[Array, Array, Array, Array]:
    """A data set that ships with scikit-learn, split and standardised.

    Returns ``X_train, X_test, y_train, y_test``; the features are scaled
    with the training split's mean and standard deviation.
    """
    check_choice("dataset", name, DATASETS)
    _check_seed(seed)
    if not 0 < test_size < 1:
        raise InputError(f"test_size must be a fraction in (0, 1), got {test_size}")
    try:
        from sklearn import datasets
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise InputError("the training demo needs scikit-learn: pip install 'crossentropy[learn]'") from None
    data = getattr(datasets, f"load_{name}")()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_size, random_state=seed, stratify=data.target
    )
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test
