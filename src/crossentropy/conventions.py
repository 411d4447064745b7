"""The named conventions: what each library really computes, by name.

Every loss takes ``convention=``. The default, ``"exact"``, is the mathematics:
``0 * log 0 = 0``, ``-log 0 = inf``, no epsilon, weighted means ``sum(w*l) /
sum(w)``. The others reproduce a library's number for the same call, including
its clipping, renormalisation, label-smoothing formula and what its mean
divides by:

=============  =====================================  ======================================
name           library                                 signature difference
=============  =====================================  ======================================
``exact``      (the mathematics)                       no epsilon; NaN-free masked products
``torch``      PyTorch 2.x ``torch.nn.functional``     log clamped at -100 in BCE; mean / N
``keras``      Keras 3 (jax and TF backends)           clip to [1e-7, 1 - 1e-7]; renormalise
``tf-keras2``  TensorFlow 2 ``tf.keras`` (tf-keras)    clip *and* add 1e-7 inside the log
``sklearn``    scikit-learn ``log_loss``               clip to [eps, 1 - eps] of the dtype
``optax``      optax 0.2 losses                        no clipping; ``0 * -inf`` gives NaN
=============  =====================================  ======================================

Each convention is an object of this module with a docstring giving its
formulas; :func:`get` looks one up by name and :data:`NAMES` lists them.
Options a library does not have (``z_loss`` outside ``exact``, label
smoothing in PyTorch's BCE, ...) raise :class:`~crossentropy.InputError`
rather than being silently approximated.

Examples
--------
>>> import crossentropy as ce
>>> for name in ce.conventions.NAMES:
...     loss = ce.binary_cross_entropy([1, 1, 1], [1.0, 1.0, 0.0], convention=name)
...     print(f"{name:9s} {loss:.7f}")
exact     inf
torch     33.3333333
keras     5.3726986
tf-keras2 5.1416495
sklearn   12.0145511
optax     nan
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any, ClassVar

from ._special import log_sigmoid, log_softmax, xlogy_from_log
from ._validation import InputError

Array = Any

__all__ = [
    "ALL",
    "EXACT",
    "KERAS",
    "NAMES",
    "OPTAX",
    "SKLEARN",
    "TF_KERAS2",
    "TORCH",
    "Convention",
    "get",
]


def _clip(xp: ModuleType, x: Array, lo: float, hi: float, dtype: Any) -> Array:
    """Clip ``x`` to bounds rounded to ``dtype`` first, as the library does.

    Keras computes ``1 - 1e-7`` in the input's dtype: in float16 it rounds to
    1 and the upper clip does nothing. Rounding the bounds reproduces that.
    """
    lo_r = float(xp.asarray(lo, dtype=dtype))
    hi_r = float(xp.asarray(hi, dtype=dtype))
    return xp.clip(x, lo_r, hi_r)


class Convention:
    """One library's way of computing cross-entropy.

    Subclasses set the class attributes and override the small methods below;
    the losses in :mod:`crossentropy` compose them, so a convention is a
    handful of formulas, never a copy of a loss.

    Attributes
    ----------
    name : str
        The value of ``convention=`` that selects it.
    library : str
        The library and version it reproduces.
    epsilon : float or None
        The clipping constant, if any (``None`` for dtype-dependent or none).
    sum_check : {"error", "warn", "ignore"}
        What happens when probability rows do not sum to 1.
    unsupported : frozenset of str
        Loss options the library does not have; using one raises InputError.
    """

    name: ClassVar[str]
    library: ClassVar[str]
    epsilon: ClassVar[float | None] = None
    sum_check: ClassVar[str] = "ignore"
    unsupported: ClassVar[frozenset[str]] = frozenset()
    default_ignore_index: ClassVar[int | None] = None

    fused: ClassVar[frozenset[str]] = frozenset({"sparse"})
    """The fused kernels whose per-sample loss is this convention's (the dispatcher reads it):
    ``"sparse"`` (integer labels, from logits), ``"soft"`` (soft targets, from logits),
    ``"binary"`` (elementwise binary cross-entropy). The conventions that differ from
    ``"exact"`` only in their reductions share its per-sample kernels."""

    gradient_from_logits: ClassVar[bool] = True
    """The losses from logits have a closed form gradient (no clipping in the log-softmax)."""

    gradient_from_probabilities: ClassVar[bool] = False
    """The losses from probabilities have a closed form gradient (no clipping)."""

    plain_log_softmax: ClassVar[bool] = True
    """Logits become log-probabilities by the plain log-softmax (see :meth:`log_softmax`)."""

    def __repr__(self) -> str:
        return f"<convention {self.name!r}: {self.library}>"

    def require(self, loss: str, **options: bool) -> None:
        """Raise InputError for each option in use that the library lacks.

        ``loss`` names the loss (``"binary"``, ``"binary_probabilities"``,
        ``"categorical"``, ``"sparse"``, ``"binary_focal"``,
        ``"categorical_focal"``); ``options`` maps option names
        (``"label_smoothing"``, ``"z_loss"``, ...) to whether the caller used
        them. An entry of :attr:`unsupported` is a loss, an option, or
        ``"<loss>:<option>"``; the loss ``"binary_probabilities"`` also
        matches entries for ``"binary"``.
        """
        losses = {loss, "binary"} if loss == "binary_probabilities" else {loss}
        if losses & self.unsupported:
            raise InputError(
                f"convention {self.name!r} ({self.library}) has no {loss.replace('_', ' ')} loss; "
                "use convention='exact'"
            )
        for option, used in options.items():
            keys = {option} | {f"{name}:{option}" for name in losses}
            if used and keys & self.unsupported:
                raise InputError(
                    f"convention {self.name!r} ({self.library}) has no {option} for {loss}; "
                    f"use convention='exact' or leave {option} unset"
                )

    def require_gradient(self, from_logits: bool) -> None:
        """Raise InputError when the loss has no closed-form gradient here (its clipping is piecewise)."""
        if self.gradient_from_logits if from_logits else self.gradient_from_probabilities:
            return
        raise InputError(
            f"no closed-form gradient for convention {self.name!r} "
            f"{'from logits' if from_logits else 'from probabilities'}: its clipping is piecewise; "
            "use convention='exact' (or 'torch'/'optax' from logits), or autograd"
        )

    def match_sample_weight(self, xp: ModuleType, losses: Array, weight: Array) -> tuple[Array, Array]:
        """``(losses, sample_weight)`` brought to shapes that combine; by default both stay as given."""
        return losses, weight

    # --- from probabilities and logits to log-probabilities -----------------------------

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        """``(log p, log(1 - p))`` from probabilities; ``dtype`` is the input's."""
        return xp.log(p), xp.log1p(-p)

    def binary_log_sigmoids(self, xp: ModuleType, x: Array, dtype: Any) -> tuple[Array, Array]:
        """``(log sigmoid(x), log sigmoid(-x))`` from logits, without ``log(sigmoid)``."""
        return log_sigmoid(xp, x), log_sigmoid(xp, -x)

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        """Log-probabilities of a categorical prediction given as probabilities."""
        return xp.log(p)

    def log_softmax(self, xp: ModuleType, x: Array, axis: int, dtype: Any) -> Array:
        """Log-probabilities of a categorical prediction given as logits."""
        return log_softmax(xp, x, axis)

    def product(self, xp: ModuleType, y: Array, log_q: Array) -> Array:
        """``y * log_q``: exact with ``0 * log 0 = 0``, unless the library gives NaN."""
        return xlogy_from_log(xp, y, log_q)

    # --- label smoothing, class weights, reductions ----------------------------------------

    def smooth_binary(self, y: Array, eps: float) -> Array:
        """Binary label smoothing: ``y (1 - eps) + eps / 2``."""
        return y if eps == 0 else y * (1 - eps) + eps / 2

    def smooth_categorical(self, y: Array, eps: float, num_classes: int) -> Array:
        """Categorical label smoothing: ``y (1 - eps) + eps / C``."""
        return y if eps == 0 else y * (1 - eps) + eps / num_classes

    class_weight_as_sample_weight: ClassVar[bool] = False
    """Class weights act as per-sample weights ``w[label]`` (Keras ``fit``,
    scikit-learn ``compute_sample_weight``) instead of multiplying each class's
    term inside the sum (PyTorch ``weight``)."""

    binary_mean_over_last_axis: ClassVar[bool] = False
    """Binary losses are averaged over the last axis per sample first (Keras)."""

    def denominator_terms(self, kind: str, weights: Array, valid: Array) -> Array:
        """Each loss value's share of what ``reduction="mean"`` divides by.

        ``kind`` is ``"binary"``, ``"categorical"`` or ``"sparse"``;
        ``weights`` are the per-loss weights (sample times class weight, 0 for
        ignored entries) and ``valid`` is 1 for each loss value that is not
        ignored, 0 otherwise. The mean divides by the sum of the terms: the
        exact convention by the total weight, others by the count.
        """
        return weights

    focal_logits_as_probabilities: ClassVar[bool] = False
    """The binary focal loss from logits applies the sigmoid and then the
    probability path, clipping included (Keras)."""

    empty_mean_is_zero: ClassVar[bool] = False
    """A mean over no weight is 0 (Keras' ``divide_no_nan``) rather than NaN."""

    def check_sums(self, message: str) -> bool:
        """Whether to raise for rows that do not sum to 1 (warns when ``"warn"``)."""
        if self.sum_check == "warn":
            warnings.warn(message, UserWarning, stacklevel=4)
        return self.sum_check == "error"


class _Exact(Convention):
    """The mathematics, with no epsilon.

    - Binary: ``l = -(w+ y log p + (1 - y) log(1 - p))`` with ``log1p`` for
      ``log(1 - p)``; from logits ``log p = log_sigmoid(x)``,
      ``log(1 - p) = log_sigmoid(-x)``.
    - Categorical: ``l_i = -sum_c w_c y'_ic log q_ic`` with ``0 log 0 = 0``
      (also for ``-inf`` logits), ``y' = (1 - eps) y + eps / C``.
    - Mean: ``sum_i s_i l_i / sum_i s_i c_i`` with ``s`` the sample weights and
      ``c_i = sum_c w_c y_ic`` the class weight of sample ``i`` (PyTorch's
      weighted mean for class-index targets). NaN when the total weight is 0.
    - Rows of probabilities must sum to 1 (``InputError`` otherwise).
    - ``z_loss`` adds ``z * logsumexp(x)**2`` per sample (PaLM).
    """

    name = "exact"
    library = "the mathematics"
    sum_check = "error"
    fused = frozenset({"sparse", "soft", "binary"})
    gradient_from_probabilities = True


class _Torch(Convention):
    """PyTorch 2.x ``torch.nn.functional`` (checked against torch 2.13).

    - ``binary_cross_entropy``: each log term clamped at -100:
      ``-(y max(log p, -100) + (1 - y) max(log1p(-p), -100))``; the largest
      element loss is 100. No ``pos_weight`` and no label smoothing.
    - ``binary_cross_entropy_with_logits``: ``(1 - y) x - (1 + (pw - 1) y)
      log_sigmoid(x)``; ``x = +-inf`` gives NaN. No clamp.
    - ``cross_entropy``: log-softmax of the logits; probabilities are taken as
      ``F.cross_entropy(log(p), target)``. Smoothing ``(1 - eps) y + eps / C``
      with class weights inside the smoothing term. ``0 * -inf`` is NaN for
      probability targets.
    - Means: class-index targets divide by ``sum w[y_i]`` over non-ignored
      targets (as ``exact``); probability targets and BCE divide by ``N`` even
      with weights. ``ignore_index`` defaults to -100.
    - ``sample_weight`` plays BCE's ``weight``; for ``cross_entropy`` (which
      has none) it multiplies each sample's loss and its class weight in the
      denominator.
    """

    name = "torch"
    library = "PyTorch 2.x"
    default_ignore_index = -100
    unsupported = frozenset(
        {
            "z_loss",
            "binary:label_smoothing",
            "binary_focal",
            "categorical_focal",
            "binary_probabilities:pos_weight",
        }
    )

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        return xp.clip(xp.log(p), -100.0, None), xp.clip(xp.log1p(-p), -100.0, None)

    def binary_log_sigmoids(self, xp: ModuleType, x: Array, dtype: Any) -> tuple[Array, Array]:
        ls = log_sigmoid(xp, x)
        return ls, ls - x

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        return log_softmax(xp, xp.log(p), axis)

    def product(self, xp: ModuleType, y: Array, log_q: Array) -> Array:
        return y * log_q

    def denominator_terms(self, kind: str, weights: Array, valid: Array) -> Array:
        return weights if kind == "sparse" else valid


class _Keras(Convention):
    """Keras 3 (checked against keras 3.15 on the jax backend).

    - Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7``
      (bounds rounded to the input dtype: no upper clip in float16).
    - Binary: ``-(y log p' + (1 - y) log(1 - p'))``, then the mean over the
      last axis per sample; from logits the exact log-sigmoid form (the jax and
      TensorFlow backends; the numpy backend clips sigmoid(x) instead).
    - Categorical and sparse: renormalise ``p / sum(p)``, then clip, then
      ``-sum(y log p')``; from logits ``log_softmax``. ``0 * -inf`` is NaN.
    - Label smoothing: binary ``y (1 - eps) + eps / 2``, categorical
      ``y (1 - eps) + eps / C``; the sparse loss has none.
    - Mean (``sum_over_batch_size``): ``sum(s l) / N``, ignored entries
      (``ignore_class``) excluded from ``N``; a mean over nothing is 0.
    - ``class_weight`` acts as in ``Model.fit``: sample weight ``w[label]``.
    """

    name = "keras"
    library = "Keras 3"
    epsilon = 1e-7
    unsupported = frozenset({"z_loss", "pos_weight", "sparse:label_smoothing"})
    class_weight_as_sample_weight = True
    binary_mean_over_last_axis = True
    focal_logits_as_probabilities = True
    empty_mean_is_zero = True
    gradient_from_logits = False

    def match_sample_weight(self, xp: ModuleType, losses: Array, weight: Array) -> tuple[Array, Array]:
        """Keras' ``squeeze_or_expand_to_same_rank``: ranks that differ by a trailing axis of length 1 are
        matched by adding that axis to a 1-D side or removing it from the other."""
        if losses.ndim == weight.ndim + 1 and losses.shape[-1] == 1:
            if weight.ndim == 1:
                return losses, xp.expand_dims(weight, axis=-1)
            return xp.squeeze(losses, axis=-1), weight
        if weight.ndim == losses.ndim + 1 and weight.shape[-1] == 1:
            if losses.ndim == 1:
                return xp.expand_dims(losses, axis=-1), weight
            return losses, xp.squeeze(weight, axis=-1)
        return losses, weight

    def _clip(self, xp: ModuleType, p: Array, dtype: Any) -> Array:
        assert self.epsilon is not None
        return _clip(xp, p, self.epsilon, 1 - self.epsilon, dtype)

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        pc = self._clip(xp, p, dtype)
        return xp.log(pc), xp.log(1 - pc)

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        return xp.log(self._clip(xp, p / xp.sum(p, axis=axis, keepdims=True), dtype))

    def product(self, xp: ModuleType, y: Array, log_q: Array) -> Array:
        return y * log_q

    def denominator_terms(self, kind: str, weights: Array, valid: Array) -> Array:
        return valid


class _TfKeras2(_Keras):
    """TensorFlow 2's Keras 2 (``tf.keras`` before Keras 3; checked with tf-keras 2.21).

    As :data:`KERAS`, except:

    - Binary from probabilities adds epsilon again inside each log:
      ``-(y log(p' + eps) + (1 - y) log(1 - p' + eps))``, so ``p = 0`` with
      ``y = 1`` costs ``-log(2e-7) = 15.4249`` instead of 16.1181.
    - Sparse from probabilities clips the raw probabilities, takes the log
      and applies ``sparse_softmax_cross_entropy_with_logits``: the
      renormalisation comes after the clip.
    """

    name = "tf-keras2"
    library = "TensorFlow 2 tf.keras (Keras 2)"

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        assert self.epsilon is not None
        pc = self._clip(xp, p, dtype)
        return xp.log(pc + self.epsilon), xp.log(1 - pc + self.epsilon)

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        if sparse:
            return log_softmax(xp, xp.log(self._clip(xp, p, dtype)), axis)
        return super().log_probs(xp, p, axis, dtype, sparse=sparse)


class _Sklearn(Convention):
    """scikit-learn ``log_loss`` (checked against scikit-learn 1.9).

    - Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps`` the machine
      epsilon of the input dtype (2.2e-16 for float64, 1.19e-7 for float32);
      a binary prediction ``p`` is the two columns ``[1 - p, p]``, each clipped.
    - ``-sum_c y_c log p'_c`` with ``0 log 0 = 0``; no renormalisation, but a
      ``UserWarning`` when rows do not sum to 1.
    - Mean: ``np.average(l, weights=s)`` (``sum(s l) / sum(s)``); class
      weights become sample weights ``w[label]`` (``compute_sample_weight``).
    - Logits (which scikit-learn never takes) are turned into probabilities
      first with the sigmoid or softmax.
    - No label smoothing, ``pos_weight``, ``ignore_index``, ``z_loss`` or focal loss.
    """

    name = "sklearn"
    library = "scikit-learn log_loss"
    sum_check = "warn"
    unsupported = frozenset(
        {"z_loss", "label_smoothing", "ignore_index", "pos_weight", "binary_focal", "categorical_focal"}
    )
    class_weight_as_sample_weight = True
    fused = frozenset()
    gradient_from_logits = False
    plain_log_softmax = False

    def _eps(self, xp: ModuleType, dtype: Any) -> float:
        return float(xp.finfo(dtype).eps)

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        eps = self._eps(xp, dtype)
        return xp.log(_clip(xp, p, eps, 1 - eps, dtype)), xp.log(_clip(xp, 1 - p, eps, 1 - eps, dtype))

    def binary_log_sigmoids(self, xp: ModuleType, x: Array, dtype: Any) -> tuple[Array, Array]:
        return self.binary_log_probs(xp, 1 / (1 + xp.exp(-x)), dtype)

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        eps = self._eps(xp, dtype)
        return xp.log(_clip(xp, p, eps, 1 - eps, dtype))

    def log_softmax(self, xp: ModuleType, x: Array, axis: int, dtype: Any) -> Array:
        return self.log_probs(xp, xp.exp(log_softmax(xp, x, axis)), axis, dtype, sparse=False)


class _Optax(Convention):
    """optax 0.2 losses (checked against optax 0.2.8).

    - ``sigmoid_binary_cross_entropy``: ``-y log_sigmoid(x) - (1 - y)
      log_sigmoid(-x)``; ``x = +inf`` with ``y = 1`` is NaN. Probabilities are
      taken as their logits ``log p - log(1 - p)``, so 0 and 1 give NaN or inf.
    - ``softmax_cross_entropy``: ``-sum(y log_softmax(x))``; ``0 * -inf`` is
      NaN; probabilities are passed as ``log p``.
      ``softmax_cross_entropy_with_integer_labels``: ``logsumexp(x) - x[y]``.
    - ``sigmoid_focal_loss``: BCE times ``(1 - p_t)**gamma``, alpha-balanced.
    - optax returns per-example losses; ``mean`` is ``jnp.mean(w * l)``
      (``sum / N``). Smoothing is ``optax.smooth_labels``:
      ``(1 - a) y + a / C``.
    - No class weights, ``pos_weight``, ``ignore_index``, ``z_loss``,
      binary label smoothing or categorical focal loss.
    """

    name = "optax"
    library = "optax 0.2"
    unsupported = frozenset(
        {
            "class_weight",
            "pos_weight",
            "ignore_index",
            "z_loss",
            "binary:label_smoothing",
            "binary_focal:label_smoothing",
            "categorical_focal",
        }
    )

    def binary_log_probs(self, xp: ModuleType, p: Array, dtype: Any) -> tuple[Array, Array]:
        return xp.log(p), xp.log1p(-p)

    def log_probs(self, xp: ModuleType, p: Array, axis: int, dtype: Any, *, sparse: bool) -> Array:
        return log_softmax(xp, xp.log(p), axis)

    def product(self, xp: ModuleType, y: Array, log_q: Array) -> Array:
        return y * log_q

    def denominator_terms(self, kind: str, weights: Array, valid: Array) -> Array:
        return valid


EXACT = _Exact()
TORCH = _Torch()
KERAS = _Keras()
TF_KERAS2 = _TfKeras2()
SKLEARN = _Sklearn()
OPTAX = _Optax()

ALL: tuple[Convention, ...] = (EXACT, TORCH, KERAS, TF_KERAS2, SKLEARN, OPTAX)
"""Every convention, the exact one first."""

NAMES: tuple[str, ...] = tuple(c.name for c in ALL)
"""The accepted values of ``convention=``."""


def get(convention: str | Convention) -> Convention:
    """The :class:`Convention` named ``convention`` (or the object itself).

    Raises
    ------
    InputError
        For an unknown name, listing the known ones.
    """
    if isinstance(convention, Convention):
        return convention
    for c in ALL:
        if c.name == convention:
            return c
    raise InputError(f"convention must be one of {', '.join(map(repr, NAMES))}; got {convention!r}")
