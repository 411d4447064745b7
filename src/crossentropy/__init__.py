"""crossentropy: cross-entropy and the information measures around it, exactly.

Exact by default (``0 * log 0 = 0``, ``-log 0 = inf``, no hidden epsilon), with
every other library's clipping available by name, on any array API array.

>>> import crossentropy as ce
>>> print(f"{ce.cross_entropy([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], base=2):.3f}")
3.288
"""

from __future__ import annotations

from . import calibration, conventions, grad
from ._information import cross_entropy, entropy, information, js_divergence, kl_divergence, perplexity
from ._joint import (
    conditional_entropy,
    entropy_from_samples,
    joint_entropy,
    mutual_information,
    mutual_information_from_samples,
)
from ._validation import InputError
from .losses import (
    binary_cross_entropy,
    binary_focal_loss,
    categorical_cross_entropy,
    categorical_focal_loss,
    log_loss,
    sparse_categorical_cross_entropy,
)

__version__ = "0.1.0"

_SUBMODULES = ("continuous", "dask", "distributed", "io", "learn", "plot", "scoring", "torch", "transformers")


def __getattr__(name: str) -> object:
    """Import optional submodules (``ce.plot``, ``ce.torch``, ...) on first use."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "InputError",
    "__version__",
    "binary_cross_entropy",
    "binary_focal_loss",
    "calibration",
    "categorical_cross_entropy",
    "categorical_focal_loss",
    "conditional_entropy",
    "conventions",
    "cross_entropy",
    "entropy",
    "entropy_from_samples",
    "grad",
    "information",
    "joint_entropy",
    "js_divergence",
    "kl_divergence",
    "log_loss",
    "mutual_information",
    "mutual_information_from_samples",
    "perplexity",
    "sparse_categorical_cross_entropy",
]
