"""The per-row cross-entropy pieces in plain torch operations (private).

The same three functions as the fused kernels (:mod:`.torch_cpu` for the C
kernel, :mod:`.triton_ce` for Triton), written with torch operations: what
the torch integrations run where no fused kernel applies (another device,
kernels not built), and what the C path falls back to for a batch holding
invalid rows. Numbers follow PyTorch: ``log_softmax`` of NaN or ``+inf``
logits is NaN, so such rows get NaN losses and gradients; a label outside
``[0, V)`` that is not ignored gives a NaN row, or PyTorch's error with
``check_labels``.

Importing this module imports torch.
"""

from __future__ import annotations

import torch

__all__ = ["NAME", "assert_labels", "row_stats", "softmax_grad", "value_and_grad_", "work_dtype"]

NAME = "reference"


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 logits are computed in float64, every other floating dtype in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def assert_labels(labels: torch.Tensor, n_cols: int, ignore_index: int | None) -> None:
    """PyTorch's target check: ``IndexError`` on the CPU, a device-side assertion elsewhere (no sync)."""
    ok = (labels >= 0) & (labels < n_cols)
    if ignore_index is not None:
        ok = ok | (labels == ignore_index)
    if labels.device.type != "cpu":
        torch._assert_async(ok.all(), "cross_entropy: a target is out of bounds")
        return
    bad = (~ok).nonzero()
    if bad.numel():
        raise IndexError(f"Target {int(labels[int(bad[0, 0])])} is out of bounds.")


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
    n, v = logits.shape
    work = work_dtype(logits.dtype)
    x = logits.detach().to(work)
    if check_labels:
        assert_labels(labels, v, ignore_index)
    if softcap:
        x = softcap * torch.tanh(x / softcap)
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    in_range = (labels >= 0) & (labels < v)
    safe = torch.where(valid & in_range, labels, 0).long()
    log_q = torch.log_softmax(x, dim=-1)
    w = None if class_weight is None else class_weight.detach().to(work)
    w_y = torch.ones(n, dtype=work, device=x.device) if w is None else w[safe]
    loss = -(1.0 - smoothing) * w_y * log_q.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    if smoothing:
        terms = -log_q if w is None else -log_q * w
        loss = loss + smoothing / v * terms.sum(-1)
    lse = torch.logsumexp(x, dim=-1)
    if z_loss:
        loss = loss + z_loss * lse * lse
    loss = torch.where(valid, torch.where(in_range, loss, torch.nan), 0.0)
    if grad is not None:
        s = torch.broadcast_to(scale.to(work), (n,)) * valid.to(work)
        w_sum = float(v) if w is None else w.sum()
        coef = s * ((1.0 - smoothing) * w_y + smoothing / v * w_sum + 2.0 * z_loss * lse)
        g = coef.unsqueeze(-1) * log_q.exp() - (s * smoothing / v).unsqueeze(-1) * (1.0 if w is None else w)
        g = g.scatter_add(-1, safe.unsqueeze(-1), (-s * (1.0 - smoothing) * w_y).unsqueeze(-1))
        g = torch.where((valid & ~in_range).unsqueeze(-1), torch.nan, g)
        if softcap:
            g = g * (1.0 - (x / softcap) ** 2)
        grad.copy_(g)
    return loss


def row_stats(
    logits: torch.Tensor, *, class_weight: torch.Tensor | None, need_dsum: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: ``m = max x`` (NaN for a row with NaN or ``+inf``), ``s = sum exp(x - m)`` (0 for a row of
    ``-inf``) and ``d = sum_j w_j (m - x_j)`` (0 unless ``need_dsum``)."""
    n, v = logits.shape
    x = logits.detach().to(work_dtype(logits.dtype))
    if v == 0:
        zeros = x.new_zeros(n)
        return torch.full_like(zeros, -torch.inf), zeros, zeros
    m = x.amax(dim=-1)
    bad = torch.isnan(x).any(-1) | (m == torch.inf)
    safe_m = torch.where(torch.isfinite(m), m, 0.0)
    s = torch.exp(x - safe_m.unsqueeze(-1)).sum(-1)
    d = torch.zeros_like(m)
    if need_dsum:
        w = torch.ones(v, dtype=x.dtype, device=x.device) if class_weight is None else class_weight.to(x.dtype)
        gap = torch.where(x == -torch.inf, torch.inf, safe_m.unsqueeze(-1) - x)
        d = torch.where(w != 0, w * gap, 0.0).sum(-1)
    return torch.where(bad, torch.nan, m), s, d


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
    g = coef.unsqueeze(-1) * torch.exp((x - m.unsqueeze(-1)) - log_s.unsqueeze(-1))
    g = g - off.unsqueeze(-1) * (1.0 if class_weight is None else class_weight.to(x.dtype))
    owned = (target_col >= 0) & (target_col < v)
    g = g.scatter_add(-1, torch.where(owned, target_col, 0).long().unsqueeze(-1), (-target_coef * owned).unsqueeze(-1))
    silent = (coef == 0) & (off == 0) & (target_coef == 0)
    grad.copy_(torch.where(silent.unsqueeze(-1), 0.0, g))
