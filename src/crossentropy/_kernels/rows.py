"""The cross-entropy of one row from its statistics, in torch operations: written once for every torch path.

Every torch path computes a row's loss and gradient from the same few
numbers: the row's maximum ``m``, ``s = sum_j exp(x_j - m)``, for label
smoothing ``d = sum_j w_j (m - x_j)``, the target's logit ``x_y`` and class
weight ``w_y``. Where those numbers come from differs (the C kernel, Triton,
plain torch operations, an all-reduce over vocabulary shards); what is made of
them is here, and nowhere else in torch code:

- :func:`index_labels`: labels as int64 and an ``ignore_index`` that can equal
  one of them, compared as integers of unbounded range (``-100`` is never a
  uint8 label, ``300`` never uint8 label 44);
- :func:`targets`: which rows count, which own their target's column, and
  where to read it;
- :func:`row_loss`: ``(1 - eps) w_y (lse - x_y) + eps / V (W log s + d) + z lse^2``
  with ``lse = m + log s`` and ``W = sum_j w_j``, 0 where ignored, NaN for a
  label out of range (every term is non-negative, so smoothing never
  cancels);
- :func:`denominator` and :func:`reduce`: PyTorch's reductions (the mean
  divides by the summed class weights of the counted rows);
- :func:`row_gradient`: the gradient's per-row coefficients ``coef``,
  ``target_coef`` and ``off`` of ``coef softmax(x) - off w - target_coef
  onehot(y)``, which the kernels' ``softmax_grad`` write; NaN for a row whose
  log-sum-exp is not finite, ignored or not (PyTorch's ``log_softmax``
  backward gives NaN there whatever the incoming gradient).

The C and Triton kernels hold the same formula in their own languages (their
module docstrings say so); ``tests/test_implementations.py`` runs every case
through every implementation. Importing this module imports torch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._validation import ignored

__all__ = [
    "Formula",
    "RowGradient",
    "Targets",
    "capped",
    "check_targets",
    "class_weights",
    "denominator",
    "index_labels",
    "reduce",
    "row_gradient",
    "row_loss",
    "row_scale",
    "target_terms",
    "targets",
    "uncapped",
    "work_dtype",
]


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 logits are computed in float64, every other floating dtype in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def index_labels(labels: torch.Tensor, ignore_index: int | None) -> tuple[torch.Tensor, int | None]:
    """``(labels as int64, ignore_index)``, with ``ignore_index`` None when no label of ``labels``' dtype can
    equal it (:func:`crossentropy._validation.ignored`): afterwards int64 comparisons are exact."""
    if ignore_index is not None and ignored(torch, labels, ignore_index) is None:
        ignore_index = None
    return labels.long(), ignore_index


class Targets(NamedTuple):
    """Per row: ``valid`` (not ignored), ``owned`` (valid, and the target is one of this block's columns
    ``[start, start + width)``) and ``col`` (the target's column in the block where owned, else 0)."""

    valid: torch.Tensor
    owned: torch.Tensor
    col: torch.Tensor


def targets(labels: torch.Tensor, ignore_index: int | None, start: int, width: int) -> Targets:
    """The :class:`Targets` of int64 ``labels`` (from :func:`index_labels`) for columns ``[start, start + width)``."""
    col = labels - start if start else labels
    owned = (col >= 0) & (col < width)
    if ignore_index is None:
        return Targets(torch.ones_like(owned), owned, torch.where(owned, col, 0))
    valid = labels != ignore_index
    owned = owned & valid
    return Targets(valid, owned, torch.where(owned, col, 0))


def check_targets(labels: torch.Tensor, bad: torch.Tensor) -> None:
    """PyTorch's error for a counted label out of range (``bad``): ``IndexError`` on the CPU, a device-side
    assertion elsewhere (no host synchronisation)."""
    if labels.device.type != "cpu":
        torch._assert_async(~bad.any(), "cross_entropy: a target is out of bounds")
        return
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise IndexError(f"Target {int(labels[first])} is out of bounds.")


def capped(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """``softcap * tanh(x / softcap)`` in the accumulation dtype (the logits themselves without a cap)."""
    if not softcap:
        return logits
    return softcap * torch.tanh(logits.to(work_dtype(logits.dtype)) / softcap)


def uncapped(grad: torch.Tensor, x: torch.Tensor, softcap: float) -> torch.Tensor:
    """The gradient with respect to the logits from the one with respect to the capped logits ``x``."""
    return grad * (1.0 - (x / softcap) ** 2) if softcap else grad


def target_terms(
    x: torch.Tensor, t: Targets, class_weight: torch.Tensor | None, acc: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_y, w_y)``: each row's target logit and class weight, 0 where the row does not own its target."""
    if x.shape[-1] == 0:  # a shard without columns owns no target
        x_y = torch.zeros(t.col.shape, dtype=acc, device=x.device)
    else:
        x_y = torch.where(t.owned, x.gather(-1, t.col.unsqueeze(-1)).squeeze(-1).to(acc), 0.0)
    return x_y, class_weights(t, class_weight, acc)


def class_weights(t: Targets, class_weight: torch.Tensor | None, acc: torch.dtype) -> torch.Tensor:
    """``w_y`` of each row that owns its target (1 without class weights), 0 elsewhere, so that an ignored
    row's weight, even an infinite one, never reaches its loss, gradient or the mean's denominator."""
    if class_weight is None:
        return t.owned.to(acc)
    return torch.where(t.owned, class_weight.to(acc)[t.col], 0.0)


class Formula(NamedTuple):
    """The options of the row formula: the number of classes ``V``, ``W = sum_j w_j`` (used only with
    smoothing), the label smoothing ``eps``, the z-loss coefficient ``z``, and whether there are class
    weights (without, ``w_y`` is 1 wherever a row counts, and the loss skips the product)."""

    n_classes: int
    w_sum: torch.Tensor | float
    smoothing: float
    z_loss: float
    weighted: bool = True

    @classmethod
    def of(
        cls, n_classes: int, class_weight: torch.Tensor | None, acc: torch.dtype, smoothing: float, z_loss: float
    ) -> Formula:
        """The options for ``n_classes`` classes with these class weights (``W`` is summed only for smoothing:
        an infinite class weight must not reach rows through ``0 * W``)."""
        weighted = class_weight is not None
        if not smoothing:
            return cls(n_classes, 0.0, smoothing, z_loss, weighted)
        w_sum = float(n_classes) if class_weight is None else class_weight.to(acc).sum()
        return cls(n_classes, w_sum, smoothing, z_loss, weighted)


def row_loss(
    m: torch.Tensor,
    log_s: torch.Tensor,
    d: torch.Tensor | None,
    x_y: torch.Tensor,
    w_y: torch.Tensor,
    *,
    valid: torch.Tensor,
    bad_label: torch.Tensor | None,
    formula: Formula,
) -> torch.Tensor:
    """Per-row losses from the statistics (``d`` is used only with smoothing); 0 where not ``valid``,
    NaN where ``bad_label`` (a counted row whose label is out of range)."""
    eps, z = formula.smoothing, formula.z_loss
    losses = (m - x_y) + log_s
    if formula.weighted:
        losses = losses * w_y
    if eps:
        losses = (1.0 - eps) * losses
    if z:
        lse = m + log_s
        losses = losses + z * lse * lse
    if eps:
        assert d is not None
        losses = losses + eps / formula.n_classes * (formula.w_sum * log_s + d)
    if bad_label is not None:
        losses = torch.where(bad_label, torch.nan, losses)
    return torch.where(valid, losses, 0.0)


def denominator(w_y: torch.Tensor) -> torch.Tensor:
    """What PyTorch's mean divides by: the summed class weights of the counted rows (their number without)."""
    return w_y.sum()


def reduce(losses: torch.Tensor, reduction: str, w_y: torch.Tensor) -> torch.Tensor:
    """PyTorch's reduction of per-row losses (the mean over an empty or fully ignored batch is NaN)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / denominator(w_y) if reduction == "mean" else total


def row_scale(grad_out: torch.Tensor, n: int, reduction: str, w_y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``g_i``: the incoming gradient of each row's loss (divided by the mean's denominator), 0 where ignored,
    even when every row is ignored (0 / 0)."""
    g = torch.broadcast_to(grad_out.to(w_y.dtype), (n,))
    if reduction == "mean":
        g = g / denominator(w_y)
    return torch.where(valid, g, 0.0)


class RowGradient(NamedTuple):
    """What the kernels' ``softmax_grad`` writes ``coef softmax(x) - off w - target_coef onehot(y)`` from: the
    row maxima ``m`` (NaN for a row whose gradient is NaN, so that every kernel writes NaN there) and the
    three per-row coefficients."""

    m: torch.Tensor
    coef: torch.Tensor
    target_coef: torch.Tensor
    off: torch.Tensor


def row_gradient(
    g: torch.Tensor,
    m: torch.Tensor,
    log_s: torch.Tensor,
    w_y: torch.Tensor,
    *,
    bad_label: torch.Tensor | None,
    formula: Formula,
) -> RowGradient:
    """The :class:`RowGradient` for incoming row gradients ``g`` (from :func:`row_scale`).

    A row's gradient is NaN where its log-sum-exp is not finite (a NaN or
    ``+inf`` logit, or only ``-inf`` ones), ignored or not, as PyTorch's
    ``log_softmax`` backward gives, and where ``bad_label`` (a counted row
    whose label is out of range).
    """
    eps, z, v = formula.smoothing, formula.z_loss, formula.n_classes
    lse = m + log_s
    target_coef = g * ((1.0 - eps) * w_y)
    coef = target_coef
    if eps:
        coef = coef + g * (eps / v * formula.w_sum)
    if z:
        coef = coef + g * (2.0 * z * lse)
    poison = ~torch.isfinite(lse) if bad_label is None else ~torch.isfinite(lse) | bad_label
    off = g * (eps / v) if eps else torch.zeros_like(g)
    return RowGradient(torch.where(poison, torch.nan, m), torch.where(poison, torch.nan, coef), target_coef, off)
