"""One input, six conventions: why PyTorch, Keras, TensorFlow 2, scikit-learn and optax disagree."""

import numpy as np

import crossentropy as ce

y = np.array([1.0, 1.0, 1.0], dtype=np.float32)
p = np.array([1.0, 1.0, 0.0], dtype=np.float32)  # one confident miss
for convention in ce.conventions.NAMES:
    print(
        f"{convention:9s} {ce.binary_cross_entropy(y, p, convention=convention):10.6f}  "
        f"({ce.conventions.get(convention).library})"
    )
