"""Knowledge distillation in PyTorch: KL either way and the generalised JSD between two models, fused.

:func:`distillation_loss` compares a student's logits with a teacher's,
:func:`linear_distillation_loss` the same from both models' hidden states
and LM-head weights without ever holding either model's ``N x V`` logits,
and :func:`kl_div` / :class:`KLDivLoss` are PyTorch's own KL loss, for one
import to serve every loss. :mod:`crossentropy.torch` re-exports all four.

This is a module of its own, not part of :mod:`crossentropy.torch`, because
it is a different contract: ``crossentropy.torch`` reproduces PyTorch's
losses, while the distillation losses have no PyTorch original. They follow
the mathematics by default (``convention="exact"``) and reproduce TRL,
Liger-Kernel and torchtune by name, and they bring their own conventions
table, input checks and errors (:class:`crossentropy.InputError`).

The divergences, for one row with ``T`` the temperature,
``P_t = softmax(teacher / T)`` and ``P_s = softmax(student / T)``:

- ``"forward_kl"``: ``KL(P_t || P_s) = sum_x P_t(x) log(P_t(x) / P_s(x))``,
  mode covering (the student is pushed to put mass wherever the teacher has
  some);
- ``"reverse_kl"``: ``KL(P_s || P_t)``, mode seeking (the student may drop
  teacher modes, never put mass where the teacher has none);
- ``"jsd"``: ``beta KL(P_t || M) + (1 - beta) KL(P_s || M)`` with
  ``M = beta P_t + (1 - beta) P_s``: bounded, between the two; ``beta`` 0
  or 1 gives 0 exactly.

What runs underneath is chosen by :mod:`crossentropy._dispatch`: the fused C
kernel on CPU tensors, Triton on CUDA tensors, plain torch operations
elsewhere; one pass over both rows computes both log-sum-exps and the
divergence, and the backward pass writes the student's gradient in one more.
Nothing is read back to the host, so the losses compile with
``torch.compile(fullgraph=True)`` and never synchronise. Importing this
module imports torch.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import _dispatch
from ._validation import InputError

__all__ = [
    "CONVENTIONS",
    "DIVERGENCES",
    "KLDivLoss",
    "distillation_loss",
    "kl_div",
    "linear_distillation_loss",
]

_dispatch.prepare_distillation()

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class DistillationConvention:
    """How a library defines the distillation losses, as data (the divergences themselves are exact).

    ``endpoints``: ``divergence="jsd"`` with ``beta`` 0 or 1 means the forward
    or the reverse KL (TRL and Liger compute those there), not 0;
    ``jsd``: the library has a JSD loss; ``forward_as_cross_entropy``: the
    "forward KL" is the cross-entropy ``H(P_t, P_s) = KL(P_t || P_s) + H(P_t)``
    (torchtune); ``mean``: what ``reduction="mean"`` divides by, ``"kept"``
    (the rows kept; NaN when none), ``"kept_or_one"`` (at least 1: 0 when
    none) or ``"trl"`` (``"kept_or_one"`` with labels, else the logits' first
    dimension, as TRL's ``batchmean``).
    """

    name: str
    endpoints: bool
    jsd: bool
    forward_as_cross_entropy: bool
    mean: str


CONVENTIONS = {
    c.name: c
    for c in (
        DistillationConvention("exact", endpoints=False, jsd=True, forward_as_cross_entropy=False, mean="kept"),
        DistillationConvention("trl", endpoints=True, jsd=True, forward_as_cross_entropy=False, mean="trl"),
        DistillationConvention("liger", endpoints=True, jsd=True, forward_as_cross_entropy=False, mean="kept_or_one"),
        DistillationConvention(
            "torchtune", endpoints=False, jsd=False, forward_as_cross_entropy=True, mean="kept_or_one"
        ),
    )
}
"""The named conventions of :func:`distillation_loss` (see docs/distillation.md for each library's formulas)."""


# --- input checks ------------------------------------------------------------------------------------------


def _tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _floating(name: str, value: object) -> torch.Tensor:
    x = _tensor(name, value)
    if not x.is_floating_point():
        raise InputError(f"{name} must hold floating-point values (logits), got dtype {x.dtype}")
    return x


def _options(divergence: object, beta: object, temperature: object, reduction: object, convention: object) -> Any:
    """The checked options: ``(convention, divergence, beta, temperature)``, the JSD endpoints resolved."""
    if divergence not in DIVERGENCES:
        raise InputError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}; got {divergence!r}")
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}")
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise InputError(f"convention must be one of {', '.join(map(repr, CONVENTIONS))}; got {convention!r}")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= float(beta) <= 1.0:
        raise InputError(f"beta must be a number in [0, 1]; got {beta!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise InputError(f"temperature must be a finite number > 0; got {temperature!r}")
    if not (math.isfinite(float(temperature)) and float(temperature) > 0):
        raise InputError(f"temperature must be a finite number > 0; got {temperature!r}")
    rules = CONVENTIONS[convention]
    if divergence == "jsd" and not rules.jsd:
        raise InputError(
            f"convention {convention!r} has no Jensen-Shannon loss (torchtune's SymmetricKLLoss is "
            "beta * forward_kl + (1 - beta) * reverse_kl: compute the two divergences and add them)"
        )
    if divergence == "jsd" and rules.endpoints and float(beta) in (0.0, 1.0):
        divergence = "forward_kl" if float(beta) == 0.0 else "reverse_kl"
    return rules, divergence, float(beta), float(temperature)


def _labels(labels: object, shape: tuple[int, ...], device: torch.device, ignore_index: object) -> torch.Tensor:
    """The rows kept (``labels != ignore_index``), flattened; ``shape`` is the logits' shape without the vocabulary."""
    y = _tensor("labels", labels)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InputError(f"labels must hold integers, got dtype {y.dtype}")
    if tuple(y.shape) != shape:
        raise InputError(
            f"labels has shape {tuple(y.shape)}; it must be the logits' shape without the last axis, {shape}"
        )
    if y.device != device:
        raise InputError(f"labels is on {y.device}, the logits on {device}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise InputError(f"ignore_index must be an integer; got {ignore_index!r}")
    return (y != ignore_index).reshape(-1)


def _reduce(
    values: torch.Tensor,
    aux: torch.Tensor,
    keep: torch.Tensor | None,
    shape: tuple[int, ...],
    rules: DistillationConvention,
    divergence: str,
    reduction: str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The convention's per-row value, then the reduction, in the student's dtype."""
    if rules.forward_as_cross_entropy and divergence == "forward_kl":
        values = values + aux
    if reduction == "none":
        return values.reshape(shape[:-1]).to(dtype)
    total = values.sum()
    if reduction == "sum":
        return total.to(dtype)
    return (total / _denominator(keep, shape, rules, values)).to(dtype)


def _denominator(
    keep: torch.Tensor | None, shape: tuple[int, ...], rules: DistillationConvention, like: torch.Tensor
) -> torch.Tensor | float:
    """What the convention's mean divides by (a tensor when it depends on the labels: no host read)."""
    if keep is None:
        rows = shape[0] if rules.mean == "trl" else math.prod(shape[:-1])
        return float(rows) if rules.mean == "kept" else float(max(rows, 1))
    kept = keep.sum().to(like.dtype)
    return kept if rules.mean == "kept" else kept.clamp_min(1.0)


# --- the losses --------------------------------------------------------------------------------------------


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    labels: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    convention: str = "exact",
) -> torch.Tensor:
    """Divergence of the student's next-token distributions from the teacher's, row by row.

    With ``P_t = softmax(teacher_logits / T)`` and ``P_s = softmax(student_logits / T)``
    along the last axis: ``"forward_kl"`` is ``KL(P_t || P_s)``,
    ``"reverse_kl"`` is ``KL(P_s || P_t)`` and ``"jsd"`` is
    ``beta KL(P_t || M) + (1 - beta) KL(P_s || M)``, ``M = beta P_t + (1 - beta) P_s``.

    Parameters
    ----------
    student_logits : torch.Tensor
        ``(..., V)`` logits of the model being trained; the gradient flows
        to it alone.
    teacher_logits : torch.Tensor
        ``(..., V)`` logits of the teacher (same shape; any floating dtype,
        without gradient).
    divergence : {"forward_kl", "reverse_kl", "jsd"}
        The divergence.
    beta : float, default 0.5
        The JSD's mixture weight of the teacher, in [0, 1].
    temperature : float, default 1.0
        Both logits are divided by it (> 0); no ``T**2`` factor is applied.
    labels : torch.Tensor, optional
        Integer tensor of shape ``...``: rows whose label equals
        ``ignore_index`` are left out.
    ignore_index : int, default -100
        The label value of the rows left out.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the rows kept (NaN when none is, as PyTorch's
        losses), ``"sum"`` adds them, ``"none"`` returns one value per row
        (shape ``...``; 0 for the rows left out).
    convention : {"exact", "trl", "liger", "torchtune"}
        ``"exact"`` is the mathematics; the others reproduce that library's
        number and gradient for the same call (see Notes).

    Returns
    -------
    torch.Tensor
        The loss, in ``student_logits``' dtype (computed in float64 when
        either input is float64, else in float32).

    Raises
    ------
    InputError
        For logits that are not floating tensors, shapes or vocabularies that
        differ, a temperature that is not a finite number > 0, ``beta``
        outside [0, 1], labels of the wrong shape or dtype, or an unknown
        divergence, reduction or convention.

    Notes
    -----
    The conventions (formulas in docs/distillation.md):

    - ``"trl"``: ``trl.experimental.gkd.GKDTrainer.generalized_jsd_loss``
      (``reduction="mean"`` is its ``"batchmean"``: the sum over the kept
      rows divided by their number, at least 1, or without labels by the
      logits' first dimension); ``"jsd"`` with ``beta`` 0 or 1 is the forward
      or the reverse KL, as in TRL.
    - ``"liger"``: Liger-Kernel's ``LigerFusedLinearJSDLoss`` (soft loss
      only: ``weight_hard_loss=0, weight_soft_loss=1``): the mean over the
      kept rows (at least 1); ``beta`` 0 or 1 as TRL's.
    - ``"torchtune"``: ``ForwardKLLoss`` (the cross-entropy
      ``H(P_t, P_s) = KL(P_t || P_s) + H(P_t)``, same gradient) and
      ``ReverseKLLoss``: the mean over the kept rows (0 when none); torchtune
      has no JSD and no temperature (the logits are divided by ``T`` here).

    With ``reduction="none"`` every convention returns its per-row values.
    Logits of ``-inf`` (masked classes) keep their exact meaning under every
    convention: terms with probability 0 count 0, and the divergence is
    ``+inf`` where one side has mass the other lacks.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import distillation_loss
    >>> teacher = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], dtype=torch.float64)
    >>> student = torch.tensor([[1.0, 1.5, 0.2], [0.4, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    >>> loss = distillation_loss(student, teacher)
    >>> print(f"{loss.item():.6f}")
    0.161206
    >>> reference = torch.nn.functional.kl_div(
    ...     student.log_softmax(-1), teacher.log_softmax(-1), reduction="batchmean", log_target=True
    ... )
    >>> bool(torch.isclose(loss, reference))
    True
    >>> print(f"{distillation_loss(student, teacher, divergence='jsd', beta=0.0).item():.1f}")
    0.0
    """
    student = _floating("student_logits", student_logits)
    teacher = _floating("teacher_logits", teacher_logits)
    rules, divergence, beta, temperature = _options(divergence, beta, temperature, reduction, convention)
    shape = tuple(student.shape)
    if student.ndim == 0 or teacher.ndim == 0:
        raise InputError("student_logits and teacher_logits need a vocabulary axis (the last); got a 0-d tensor")
    if student.shape[-1] != teacher.shape[-1]:
        raise InputError(
            f"the vocabularies differ: student_logits has {student.shape[-1]} classes, "
            f"teacher_logits {teacher.shape[-1]}"
        )
    if tuple(teacher.shape) != shape:
        raise InputError(f"teacher_logits has shape {tuple(teacher.shape)}, student_logits {shape}: they must match")
    if shape[-1] == 0:
        raise InputError("student_logits has an empty vocabulary axis (the last axis has length 0)")
    if teacher.device != student.device:
        raise InputError(f"teacher_logits is on {teacher.device}, student_logits on {student.device}")
    keep = None if labels is None else _labels(labels, shape[:-1], student.device, ignore_index)
    v = shape[-1]
    values, aux = _dispatch.torch_distillation(
        student.reshape(-1, v),
        teacher.reshape(-1, v),
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        keep=keep,
    )
    return _reduce(values, aux, keep, shape, rules, divergence, reduction, student.dtype)


def _accurate(device: torch.device) -> bool:
    """bfloat16/float16 products in float32 on the CPU, in the inputs' dtype on accelerators (PyTorch's "auto")."""
    return device.type == "cpu"


def _linear_shapes(
    student_input: object,
    student_weight: object,
    teacher_input: object,
    teacher_weight: object,
    student_bias: object,
    teacher_bias: object,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The checked arguments of :func:`linear_distillation_loss`."""
    h_s, w_s = _floating("student_input", student_input), _floating("student_weight", student_weight)
    h_t, w_t = _floating("teacher_input", teacher_input), _floating("teacher_weight", teacher_weight)
    b_s = None if student_bias is None else _floating("student_bias", student_bias)
    b_t = None if teacher_bias is None else _floating("teacher_bias", teacher_bias)
    for name, w in (("student_weight", w_s), ("teacher_weight", w_t)):
        if w.ndim != 2:
            raise InputError(f"{name} must be a (vocabulary, hidden) matrix; got shape {tuple(w.shape)}")
    if w_s.shape[0] != w_t.shape[0]:
        raise InputError(
            f"the vocabularies differ: student_weight has {w_s.shape[0]} rows, teacher_weight {w_t.shape[0]}"
        )
    if w_s.shape[0] == 0:
        raise InputError("student_weight has no rows (an empty vocabulary)")
    for name, h, w in (("student_input", h_s, w_s), ("teacher_input", h_t, w_t)):
        if h.ndim == 0 or h.shape[-1] != w.shape[1]:
            raise InputError(
                f"{name} has shape {tuple(h.shape)}; its last axis must be the hidden size {w.shape[1]} of its weight"
            )
    if h_s.shape[:-1] != h_t.shape[:-1]:
        raise InputError(
            f"student_input {tuple(h_s.shape)} and teacher_input {tuple(h_t.shape)} must have the same leading shape"
        )
    for name, b in (("student_bias", b_s), ("teacher_bias", b_t)):
        if b is not None and tuple(b.shape) != (w_s.shape[0],):
            raise InputError(f"{name} must have shape ({w_s.shape[0]},), one value per class; got {tuple(b.shape)}")
    for name, t in (("student_weight", w_s), ("teacher_input", h_t), ("teacher_weight", w_t), ("student_bias", b_s)):
        if t is not None and t.device != h_s.device:
            raise InputError(f"{name} is on {t.device}, student_input on {h_s.device}")
    if b_t is not None and b_t.device != h_s.device:
        raise InputError(f"teacher_bias is on {b_t.device}, student_input on {h_s.device}")
    return h_s, w_s, h_t, w_t, b_s, b_t


def linear_distillation_loss(
    student_input: torch.Tensor,
    student_weight: torch.Tensor,
    teacher_input: torch.Tensor,
    teacher_weight: torch.Tensor,
    *,
    student_bias: torch.Tensor | None = None,
    teacher_bias: torch.Tensor | None = None,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    labels: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    convention: str = "exact",
) -> torch.Tensor:
    """:func:`distillation_loss` of ``student_input @ student_weight.T + student_bias`` against the teacher's.

    The same loss, from both models' last hidden states ``(..., D_s)`` and
    ``(..., D_t)`` (same leading shape) and LM heads ``(V, D_s)`` and
    ``(V, D_t)``, computed over row blocks: neither model's ``N x V`` logits
    ever exist. Each block's student logits become their gradient in place,
    folded at once into the gradients of ``student_input``, ``student_weight``
    and ``student_bias`` (the teacher's arguments get none). Under
    ``torch.no_grad()`` each block costs two matrix products. bfloat16 and
    float16 products are computed in float32 on the CPU (PyTorch's "auto"
    policy of ``linear_cross_entropy``). The other keywords are
    :func:`distillation_loss`'s.

    Raises
    ------
    InputError
        As :func:`distillation_loss`, and for weights that are not matrices,
        hidden sizes that do not match their weight, leading shapes that
        differ, or biases of the wrong shape.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import distillation_loss, linear_distillation_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> h_s, w_s = torch.randn(6, 4, generator=g), torch.randn(9, 4, generator=g, requires_grad=True)
    >>> h_t, w_t = torch.randn(6, 8, generator=g), torch.randn(9, 8, generator=g)
    >>> fused = linear_distillation_loss(h_s, w_s, h_t, w_t, divergence="reverse_kl")
    >>> naive = distillation_loss(h_s @ w_s.T, h_t @ w_t.T, divergence="reverse_kl")
    >>> bool(torch.isclose(fused, naive))
    True
    """
    h_s, w_s, h_t, w_t, b_s, b_t = _linear_shapes(
        student_input, student_weight, teacher_input, teacher_weight, student_bias, teacher_bias
    )
    rules, divergence, beta, temperature = _options(divergence, beta, temperature, reduction, convention)
    shape = (*h_s.shape[:-1], w_s.shape[0])
    keep = None if labels is None else _labels(labels, shape[:-1], h_s.device, ignore_index)
    n = math.prod(shape[:-1])
    options: dict[str, Any] = {
        "student_bias": b_s,
        "teacher_bias": b_t,
        "divergence": divergence,
        "beta": beta,
        "temperature": temperature,
        "keep": keep,
        "upcast": _accurate(h_s.device),
    }
    hidden_s, hidden_t = h_s.reshape(n, h_s.shape[-1]), h_t.reshape(n, h_t.shape[-1])
    if reduction == "none":
        values, aux = _dispatch.torch_linear_distillation(hidden_s, w_s, hidden_t, w_t, **options)
        return _reduce(values, aux, keep, shape, rules, divergence, reduction, h_s.dtype)
    # the sum, its gradients computed block by block in the forward pass; the mean divides it afterwards
    ones = torch.ones((), dtype=torch.float64, device=h_s.device)
    value, aux = _dispatch.torch_linear_distillation(hidden_s, w_s, hidden_t, w_t, row_scale=ones, **options)
    total: torch.Tensor = value + aux if rules.forward_as_cross_entropy and divergence == "forward_kl" else value
    if reduction == "mean":
        total = total / _denominator(keep, shape, rules, total)
    return total.to(h_s.dtype)


# --- PyTorch's KL loss ---------------------------------------------------------------------------------------

# PyTorch's own, as nll_loss and the binary losses in crossentropy.torch: an elementwise product and a sum of
# log-probabilities the caller already holds, with nothing of two models' logits to fuse (that is
# distillation_loss). Being PyTorch's own objects, they have its signature, values, gradients, warnings (the
# "mean" reduction's) and errors, and compile as it does (tests/test_torch_dropin.py checks all of it).
kl_div = F.kl_div
KLDivLoss = torch.nn.KLDivLoss
