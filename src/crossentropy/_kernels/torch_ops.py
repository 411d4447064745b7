"""The per-row cross-entropy pieces in plain torch operations (private).

The same functions as the fused kernels (:mod:`.torch_cpu` for the C kernel,
:mod:`.triton_ce` for Triton), written with torch operations: what the torch
integrations run where no fused kernel applies (another device, kernels not
built), and what the C path falls back to for a batch holding invalid rows.
What is made of the statistics is :mod:`.rows`, shared with every torch path.
Numbers follow PyTorch: a row with a NaN or ``+inf`` logit, or only ``-inf``
logits, has a NaN loss (0 where ignored) and a NaN gradient (ignored or not);
a label outside ``[0, V)`` that is not ignored gives a NaN row, or PyTorch's
error with ``check_labels``.

:func:`reference` is the whole loss in differentiable torch operations: the
fused operations' backward pass differentiates it when a gradient must itself
be differentiable (``create_graph=True``), and the dispatcher runs it under
``torch.func`` transforms, which the fused kernels cannot see through.

Importing this module imports torch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import rows
from .rows import work_dtype

__all__ = [
    "NAME",
    "assert_labels",
    "linear_reference",
    "reference",
    "row_stats",
    "softmax_grad",
    "value_and_grad_",
    "work_dtype",
]

NAME = "reference"


def assert_labels(labels: torch.Tensor, n_cols: int, ignore_index: int | None) -> None:
    """PyTorch's target check: ``IndexError`` on the CPU, a device-side assertion elsewhere (no sync)."""
    labels, ignore = rows.index_labels(labels, ignore_index)
    t = rows.targets(labels, ignore, 0, n_cols)
    rows.check_targets(labels, t.valid & ~t.owned)


def row_stats(
    logits: torch.Tensor, *, class_weight: torch.Tensor | None, need_dsum: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: ``m = max x`` (NaN for a row with NaN or ``+inf``), ``s = sum exp(x - m)`` (0 for a row of
    ``-inf``) and ``d = sum_j w_j (m - x_j)`` (0 unless ``need_dsum``).

    Differentiable with respect to the logits (the maximum is a constant
    shift, so ``m + log s`` has the log-sum-exp's derivatives).
    """
    n, v = logits.shape
    x = logits.to(work_dtype(logits.dtype))
    if v == 0:
        zeros = x.new_zeros(n)
        return torch.full_like(zeros, -torch.inf), zeros, zeros
    m = x.detach().amax(dim=-1)  # NaN where a logit is NaN
    safe_m = torch.where(torch.isfinite(m), m, 0.0).unsqueeze(-1)
    s = torch.exp(x - safe_m).sum(-1)
    d = torch.zeros_like(m)
    if need_dsum:
        w = torch.ones(v, dtype=x.dtype, device=x.device) if class_weight is None else class_weight.to(x.dtype)
        d = torch.where(w != 0, w * (safe_m - x), 0.0).sum(-1)
    return torch.where(torch.isnan(m) | (m == torch.inf), torch.nan, m), s, d


def _softmax_grad(
    x: torch.Tensor,
    m: torch.Tensor,
    log_s: torch.Tensor,
    coef: torch.Tensor,
    target_col: torch.Tensor,
    target_coef: torch.Tensor,
    off: torch.Tensor,
    class_weight: torch.Tensor | None,
) -> torch.Tensor:
    """``coef_i softmax_ij - off_i w_j``, minus ``target_coef_i`` at ``target_col_i`` where that is a column;
    exact zeros for rows whose three coefficients are 0."""
    v = x.shape[-1]
    g = coef.unsqueeze(-1) * torch.exp((x - m.unsqueeze(-1)) - log_s.unsqueeze(-1))
    if class_weight is None:
        g = g - off.unsqueeze(-1)
    else:  # off is 0 without smoothing, where an infinite weight must not make NaN
        g = g - torch.where(off.unsqueeze(-1) == 0, 0.0, off.unsqueeze(-1) * class_weight.to(x.dtype))
    owned = (target_col >= 0) & (target_col < v)
    g = g.scatter_add(-1, torch.where(owned, target_col, 0).long().unsqueeze(-1), (-target_coef * owned).unsqueeze(-1))
    silent = (coef == 0) & (off == 0) & (target_coef == 0)
    return torch.where(silent.unsqueeze(-1), 0.0, g)


def softmax_grad(
    logits: torch.Tensor,
    m: torch.Tensor,
    log_s: torch.Tensor,
    coef: torch.Tensor,
    target_col: torch.Tensor,
    target_coef: torch.Tensor,
    *,
    off: torch.Tensor,
    class_weight: torch.Tensor | None,
    grad: torch.Tensor,
) -> None:
    """Write ``coef_i exp(x_ij - m_i - log_s_i) - off_i w_j`` (minus ``target_coef_i`` at ``target_col_i``)."""
    n, v = logits.shape
    if not (n and v):
        return
    x = logits.detach().to(work_dtype(logits.dtype))
    grad.copy_(_softmax_grad(x, m, log_s, coef, target_col, target_coef, off, class_weight))


class _Parts(NamedTuple):
    """What the gradient of :func:`_row_losses` needs besides the logits."""

    t: rows.Targets
    bad_label: torch.Tensor
    m: torch.Tensor
    log_s: torch.Tensor
    w_y: torch.Tensor
    formula: rows.Formula


def _row_losses(
    x: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int | None,
    class_weight: torch.Tensor | None,
    smoothing: float,
    z_loss: float,
) -> tuple[torch.Tensor, _Parts]:
    """Per-row losses of (capped) logits ``x`` in their accumulation dtype, differentiable, NaN for a counted
    label out of range; ``labels`` and ``ignore_index`` as :func:`.rows.index_labels` leaves them."""
    v = x.shape[-1]
    t = rows.targets(labels, ignore_index, 0, v)
    m, s, d = row_stats(x, class_weight=class_weight, need_dsum=smoothing > 0)
    x_y, w_y = rows.target_terms(x, t, class_weight, x.dtype)
    parts = _Parts(
        t, t.valid & ~t.owned, m, torch.log(s), w_y, rows.Formula.of(v, class_weight, x.dtype, smoothing, z_loss)
    )
    losses = rows.row_loss(m, parts.log_s, d, x_y, w_y, valid=t.valid, bad_label=parts.bad_label, formula=parts.formula)
    return losses, parts


def value_and_grad_(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weight: torch.Tensor | None,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    grad: torch.Tensor | None,
    scale: torch.Tensor,
    check_labels: bool,
) -> torch.Tensor:
    """Per-row losses of logits ``(n, V)``; with ``grad``, the gradient of ``scale_i * loss_i`` written into it.

    ``(1 - eps) w_y (-log q_y) + eps / V sum_c w_c (-log q_c) + z lse^2`` per
    row (0 where ignored), in float64 for float64 logits and float32
    otherwise. ``grad`` may be the logits themselves.
    """
    n = logits.shape[0]
    labels, ignore = rows.index_labels(labels, ignore_index)
    cw = None if class_weight is None else class_weight.detach()
    x = rows.capped(logits.detach().to(work_dtype(logits.dtype)), softcap)
    loss, p = _row_losses(x, labels, ignore, cw, smoothing, z_loss)
    if check_labels:
        rows.check_targets(labels, p.bad_label)
    if grad is not None:
        g = torch.where(p.t.valid, torch.broadcast_to(scale.detach().to(x.dtype), (n,)), 0.0)
        r = rows.row_gradient(g, p.m, p.log_s, p.w_y, bad_label=p.bad_label, formula=p.formula)
        target_col = torch.where(p.t.owned, p.t.col, -1)
        values = _softmax_grad(x, r.m, p.log_s, r.coef, target_col, r.target_coef, r.off, cw if smoothing else None)
        grad.copy_(rows.uncapped(values, x, softcap))
    return loss


def reference(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weight: torch.Tensor | None,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
) -> torch.Tensor:
    """The reduced (or per-row) loss of logits ``(n, V)``, differentiable to any order, in the accumulation dtype.

    A counted label out of range gives a NaN row (no value is read back, so
    this runs under ``torch.func.vmap`` too).
    """
    labels, ignore = rows.index_labels(labels, ignore_index)
    x = rows.capped(logits.to(work_dtype(logits.dtype)), softcap)
    losses, parts = _row_losses(x, labels, ignore, class_weight, smoothing, z_loss)
    return rows.reduce(losses, reduction, parts.w_y)


def linear_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    class_weight: torch.Tensor | None,
    ignore_index: int | None,
    smoothing: float,
    softcap: float,
    reduction: str,
    upcast: bool,
) -> torch.Tensor:
    """:func:`reference` of the logits ``hidden @ weight.T + bias`` (all ``N x V`` of them; ``upcast``: the
    product of bfloat16/float16 inputs in float32), differentiable to any order."""
    w = weight.to(work_dtype(weight.dtype)) if upcast else weight
    logits = torch.nn.functional.linear(hidden.to(w.dtype), w, None if bias is None else bias.to(w.dtype))
    return reference(
        logits,
        labels,
        class_weight=class_weight,
        ignore_index=ignore_index,
        smoothing=smoothing,
        z_loss=0.0,
        softcap=softcap,
        reduction=reduction,
    )
