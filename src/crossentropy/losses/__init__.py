"""The cross-entropy loss family, one module per family, each loss beside its closed-form gradient.

- :mod:`.binary`: binary cross-entropy and the binary focal loss;
- :mod:`.categorical`: categorical cross-entropy (one-hot or soft targets)
  and the categorical focal loss;
- :mod:`.sparse`: cross-entropy with integer labels, scikit-learn's log loss,
  and the fused value-and-gradient.

Every loss is the same skeleton: parse and check the inputs
(:mod:`._inputs`), turn the prediction into log-probabilities the way the
convention does (:mod:`crossentropy.conventions`), combine them with the
(smoothed, weighted) targets, then reduce (:mod:`._reduction`). Fused kernels
are chosen by :mod:`crossentropy._dispatch`, never here.
"""

from __future__ import annotations

from .binary import binary_cross_entropy, binary_cross_entropy_grad, binary_focal_loss, binary_focal_loss_grad
from .categorical import (
    categorical_cross_entropy,
    categorical_cross_entropy_grad,
    categorical_focal_loss,
    categorical_focal_loss_grad,
)
from .sparse import (
    log_loss,
    sparse_categorical_cross_entropy,
    sparse_categorical_cross_entropy_grad,
    sparse_categorical_cross_entropy_value_and_grad,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_focal_loss",
    "binary_focal_loss_grad",
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "categorical_focal_loss",
    "categorical_focal_loss_grad",
    "log_loss",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_grad",
    "sparse_categorical_cross_entropy_value_and_grad",
]
