"""The reference libraries, called the way a user of each would call them.

Each function takes NumPy inputs and the options of a ``crossentropy`` loss
and returns the library's own number (as float64 NumPy), or raises
``NotImplementedError`` for an option the library does not have. The parity
tests compare these with ``crossentropy`` under the matching convention.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}


def _np(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# --- PyTorch ---------------------------------------------------------------------------------


def torch_binary(y, p, *, from_logits, pos_weight, sample_weight, label_smoothing, reduction, **_):
    if label_smoothing:
        raise NotImplementedError
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = torch.from_numpy
    w = None if sample_weight is None else t(np.broadcast_to(sample_weight, p.shape).copy()).to(t(p).dtype)
    if from_logits:
        pw = None if pos_weight is None else t(np.asarray(pos_weight)).to(t(p).dtype)
        out = F.binary_cross_entropy_with_logits(t(p), t(y), weight=w, pos_weight=pw, reduction=reduction)
    else:
        if pos_weight is not None:
            raise NotImplementedError
        out = F.binary_cross_entropy(t(p), t(y), weight=w, reduction=reduction)
    return _np(out)


def _torch_class_first(x):
    return np.moveaxis(x, -1, 1) if x.ndim > 1 else x


def torch_categorical(y, p, *, from_logits, class_weight, sample_weight, label_smoothing, reduction, **_):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy
    logits = t(p) if from_logits else torch.log(t(p))
    w = None if class_weight is None else t(np.asarray(class_weight, dtype=p.dtype))
    per = torch.nn.functional.cross_entropy(
        t(_torch_class_first(logits.numpy())),
        t(_torch_class_first(y)),
        weight=w,
        label_smoothing=label_smoothing,
        reduction="none",
    ).numpy()
    if sample_weight is not None:
        per = per * sample_weight
    if reduction == "none":
        return _np(per)
    return _np(per.sum() if reduction == "sum" else per.sum() / per.size)


def torch_sparse(labels, p, *, from_logits, class_weight, sample_weight, label_smoothing, ignore_index, reduction, **_):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy
    logits = t(p) if from_logits else torch.log(t(p))
    w = None if class_weight is None else t(np.asarray(class_weight, dtype=p.dtype))
    ii = -100 if ignore_index is None else ignore_index
    x = t(_torch_class_first(logits.numpy()))
    tl = t(labels.astype(np.int64))
    if sample_weight is None:
        return _np(
            torch.nn.functional.cross_entropy(
                x, tl, weight=w, ignore_index=ii, label_smoothing=label_smoothing, reduction=reduction
            )
        )
    # torch has no per-sample weight for cross_entropy: the documented extension is
    # sum(s * l) / sum(s * w[y]) over non-ignored samples
    per = torch.nn.functional.cross_entropy(
        x, tl, weight=w, ignore_index=ii, label_smoothing=label_smoothing, reduction="none"
    ).numpy()
    per = per * sample_weight
    if reduction == "none":
        return _np(per)
    if reduction == "sum":
        return _np(per.sum())
    cw = np.ones(p.shape[-1]) if class_weight is None else np.asarray(class_weight)
    valid = labels != ii
    return _np(per.sum() / (sample_weight * cw[np.where(valid, labels, 0)] * valid).sum())


# --- Keras 3 and tf.keras 2 ----------------------------------------------------------------


def _keras(tf2: bool):
    if tf2:
        return pytest.importorskip("tf_keras")
    return pytest.importorskip("keras")


def _keras_reduction(tf2: bool, reduction: str):
    return KERAS_REDUCTION[reduction]


def _class_sample_weight(y_onehot_or_labels, class_weight, sample_weight, sparse):
    """Keras ``fit(class_weight=...)`` turns class weights into sample weights."""
    if class_weight is None:
        return sample_weight
    cls = y_onehot_or_labels if sparse else np.argmax(y_onehot_or_labels, axis=-1)
    sw = np.asarray(class_weight)[cls]
    return sw if sample_weight is None else sw * sample_weight


def keras_binary(y, p, *, from_logits, pos_weight, sample_weight, label_smoothing, reduction, tf2=False, **_):
    if pos_weight is not None:
        raise NotImplementedError
    k = _keras(tf2)
    loss = k.losses.BinaryCrossentropy(
        from_logits=from_logits, label_smoothing=label_smoothing, reduction=_keras_reduction(tf2, reduction)
    )
    return _np(loss(y, p, sample_weight=sample_weight))


def keras_categorical(y, p, *, from_logits, class_weight, sample_weight, label_smoothing, reduction, tf2=False, **_):
    k = _keras(tf2)
    loss = k.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=label_smoothing, reduction=_keras_reduction(tf2, reduction)
    )
    return _np(loss(y, p, sample_weight=_class_sample_weight(y, class_weight, sample_weight, False)))


def keras_sparse(
    labels,
    p,
    *,
    from_logits,
    class_weight,
    sample_weight,
    label_smoothing,
    ignore_index,
    reduction,
    tf2=False,
    **_,
):
    if label_smoothing:
        raise NotImplementedError
    k = _keras(tf2)
    kwargs: dict[str, Any] = {"from_logits": from_logits, "reduction": _keras_reduction(tf2, reduction)}
    if ignore_index is not None:
        kwargs["ignore_class"] = ignore_index
    loss = k.losses.SparseCategoricalCrossentropy(**kwargs)
    sw = _class_sample_weight(np.where(labels == ignore_index, 0, labels), class_weight, sample_weight, True)
    return _np(loss(labels, p, sample_weight=sw))


def keras_binary_focal(y, p, *, from_logits, gamma, alpha, sample_weight, label_smoothing, reduction, tf2=False, **_):
    k = _keras(tf2)
    loss = k.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        reduction=_keras_reduction(tf2, reduction),
    )
    return _np(loss(y, p, sample_weight=sample_weight))


def keras_categorical_focal(
    y, p, *, from_logits, gamma, alpha, sample_weight, label_smoothing, reduction, tf2=False, **_
):
    k = _keras(tf2)
    loss = k.losses.CategoricalFocalCrossentropy(
        alpha=1.0 if alpha is None else alpha,
        gamma=gamma,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        reduction=_keras_reduction(tf2, reduction),
    )
    return _np(loss(y, p, sample_weight=sample_weight))


# --- scikit-learn ------------------------------------------------------------------------------


def _sklearn_reduce(per_sample_fn, labels, proba, sample_weight, reduction):
    log_loss = pytest.importorskip("sklearn.metrics").log_loss

    if reduction == "none":
        per = [
            log_loss(labels[i : i + 1], proba[i : i + 1], labels=list(range(proba.shape[1])))
            for i in range(len(labels))
        ]
        return _np(per) * (1 if sample_weight is None else sample_weight)
    return _np(
        log_loss(
            labels,
            proba,
            sample_weight=sample_weight,
            normalize=reduction == "mean",
            labels=list(range(proba.shape[1])),
        )
    )


def sklearn_binary(y, p, *, from_logits, pos_weight, sample_weight, label_smoothing, reduction, **_):
    if pos_weight is not None or label_smoothing or not np.all((y == 0) | (y == 1)) or p.ndim != 1:
        raise NotImplementedError
    proba = 1 / (1 + np.exp(-p)) if from_logits else p
    return _sklearn_reduce(
        None, y.astype(int), np.stack([1 - proba, proba], -1).astype(p.dtype), sample_weight, reduction
    )


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sklearn_sparse(
    labels, p, *, from_logits, class_weight, sample_weight, label_smoothing, ignore_index, reduction, **_
):
    if label_smoothing or ignore_index is not None or p.ndim != 2:
        raise NotImplementedError
    proba = _softmax(p) if from_logits else p
    sw = _class_sample_weight(labels, class_weight, sample_weight, True)
    return _sklearn_reduce(None, labels, proba, sw, reduction)


def sklearn_categorical(y, p, **kw):
    if not np.all((y == 0) | (y == 1)):
        raise NotImplementedError
    kw["ignore_index"] = None
    return sklearn_sparse(np.argmax(y, -1), p, **kw)


# --- optax ------------------------------------------------------------------------------------


def _optax():
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    return optax, jnp


def _optax_reduce(per, sample_weight, reduction):
    per = _np(per)
    if sample_weight is not None:
        per = per * sample_weight
    if reduction == "none":
        return per
    return _np(per.sum() if reduction == "sum" else per.mean())


def optax_binary(y, p, *, from_logits, pos_weight, sample_weight, label_smoothing, reduction, **_):
    if pos_weight is not None or label_smoothing:
        raise NotImplementedError
    optax, jnp = _optax()
    x = p if from_logits else np.log(p) - np.log1p(-p)
    return _optax_reduce(optax.sigmoid_binary_cross_entropy(jnp.asarray(x), jnp.asarray(y)), sample_weight, reduction)


def optax_categorical(y, p, *, from_logits, class_weight, sample_weight, label_smoothing, reduction, **_):
    if class_weight is not None:
        raise NotImplementedError
    optax, jnp = _optax()
    x = jnp.asarray(p if from_logits else np.log(p))
    labels = jnp.asarray(y)
    if label_smoothing:
        labels = optax.smooth_labels(labels, label_smoothing)
    return _optax_reduce(optax.softmax_cross_entropy(x, labels), sample_weight, reduction)


def optax_sparse(labels, p, *, from_logits, class_weight, sample_weight, label_smoothing, ignore_index, reduction, **_):
    if class_weight is not None or ignore_index is not None:
        raise NotImplementedError
    optax, jnp = _optax()
    x = jnp.asarray(p if from_logits else np.log(p))
    if label_smoothing:
        onehot = np.eye(p.shape[-1], dtype=p.dtype)[labels]
        per = optax.softmax_cross_entropy(x, optax.smooth_labels(jnp.asarray(onehot), label_smoothing))
    else:
        per = optax.softmax_cross_entropy_with_integer_labels(x, jnp.asarray(labels))
    return _optax_reduce(per, sample_weight, reduction)


def optax_binary_focal(y, p, *, from_logits, gamma, alpha, sample_weight, label_smoothing, reduction, **_):
    if label_smoothing:
        raise NotImplementedError
    optax, jnp = _optax()
    x = p if from_logits else np.log(p) - np.log1p(-p)
    per = optax.sigmoid_focal_loss(jnp.asarray(x), jnp.asarray(y), alpha=alpha, gamma=gamma)
    return _optax_reduce(per, sample_weight, reduction)


REFERENCES = {
    ("binary", "torch"): torch_binary,
    ("categorical", "torch"): torch_categorical,
    ("sparse", "torch"): torch_sparse,
    ("binary", "keras"): keras_binary,
    ("categorical", "keras"): keras_categorical,
    ("sparse", "keras"): keras_sparse,
    ("binary_focal", "keras"): keras_binary_focal,
    ("categorical_focal", "keras"): keras_categorical_focal,
    ("binary", "tf-keras2"): lambda *a, **k: keras_binary(*a, tf2=True, **k),
    ("categorical", "tf-keras2"): lambda *a, **k: keras_categorical(*a, tf2=True, **k),
    ("sparse", "tf-keras2"): lambda *a, **k: keras_sparse(*a, tf2=True, **k),
    ("binary_focal", "tf-keras2"): lambda *a, **k: keras_binary_focal(*a, tf2=True, **k),
    ("categorical_focal", "tf-keras2"): lambda *a, **k: keras_categorical_focal(*a, tf2=True, **k),
    ("binary", "sklearn"): sklearn_binary,
    ("categorical", "sklearn"): sklearn_categorical,
    ("sparse", "sklearn"): sklearn_sparse,
    ("binary", "optax"): optax_binary,
    ("categorical", "optax"): optax_categorical,
    ("sparse", "optax"): optax_sparse,
    ("binary_focal", "optax"): optax_binary_focal,
}
