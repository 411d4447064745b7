"""Closed-form gradients of the losses with respect to the prediction.

Each function has the same name and arguments as its loss and returns the
gradient of that loss with respect to ``y_pred`` (the probabilities, or the
logits with ``from_logits=True``), with ``y_pred``'s shape:

- binary, from logits: ``w (sigmoid(x) (w+ y + 1 - y) - w+ y)``, which is
  ``sigmoid(x) - y`` without weights;
- categorical and sparse, from logits: ``w (sum_c a_c softmax(x) - a)`` with
  ``a_c = w_c y'_c`` the weighted, smoothed targets (``softmax - onehot`` in
  the plain case), plus ``2 z logsumexp(x) softmax(x)`` for the z-loss;
- from probabilities: ``-a / q`` (0 where ``a`` is 0).

``w`` is the sample weight divided by what the mean divides by, so the
result is the gradient of the reduced loss; with ``reduction="none"`` it is
the gradient of each sample's (weighted) loss with respect to its own row.

Closed forms exist for the conventions without clipping: ``"exact"`` and,
from logits, ``"torch"`` and ``"optax"`` (which differ from ``"exact"`` only
in what their mean divides by). Clipped conventions raise
:class:`~crossentropy.InputError`; differentiate them with autograd.

Each gradient lives beside its loss (:mod:`crossentropy.losses`); this module
is their public name.

Examples
--------
>>> import numpy as np
>>> import crossentropy as ce
>>> logits = np.array([[2.0, 1.0, 0.1]])
>>> print(ce.grad.sparse_categorical_cross_entropy([0], logits, from_logits=True).round(6))
[[-0.340999  0.242433  0.098566]]
>>> e = np.exp(logits)
>>> print((e / e.sum() - [1, 0, 0]).round(6))
[[-0.340999  0.242433  0.098566]]
"""

from __future__ import annotations

from .losses import binary_cross_entropy_grad as binary_cross_entropy
from .losses import binary_focal_loss_grad as binary_focal_loss
from .losses import categorical_cross_entropy_grad as categorical_cross_entropy
from .losses import categorical_focal_loss_grad as categorical_focal_loss
from .losses import sparse_categorical_cross_entropy_grad as sparse_categorical_cross_entropy
from .losses import sparse_categorical_cross_entropy_value_and_grad

__all__ = [
    "binary_cross_entropy",
    "binary_focal_loss",
    "categorical_cross_entropy",
    "categorical_focal_loss",
    "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy_value_and_grad",
]
