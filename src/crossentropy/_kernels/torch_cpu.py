"""The fused C kernels for CPU torch tensors (private): the same functions as :mod:`.triton_ce`.

CPU tensors are handed to the C kernels as pointers (no copy for
contiguous float32/float64 tensors; the fused loss of :func:`value_and_grad_`
through NumPy views); bfloat16 and float16 logits are
computed in float32 (as PyTorch accumulates them) and the gradient is
written back in their dtype. When a batch holds an invalid row (the kernel
refuses the whole batch), :mod:`.torch_ops` computes it instead, so invalid
rows get PyTorch's NaN and bad labels PyTorch's ``IndexError``.

Importing this module imports torch.
"""

from __future__ import annotations

import torch

from .. import _kernels as binding
from . import torch_ops

__all__ = ["NAME", "assert_labels", "row_stats", "softmax_grad", "value_and_grad_"]

NAME = "cpu"
assert_labels = torch_ops.assert_labels


def _work(logits: torch.Tensor) -> torch.Tensor:
    """The logits as a contiguous float32/float64 tensor (a view when they already are)."""
    return logits.detach().to(torch_ops.work_dtype(logits.dtype)).contiguous()


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
    """Per-row losses of CPU logits ``(n, V)``; with ``grad``, the gradient of ``scale_i * loss_i`` written into it.

    See :func:`.torch_ops.value_and_grad_` for the formula; ``grad`` may be
    the logits themselves (in place).
    """
    n, _v = logits.shape
    x = _work(logits)
    capped = None
    if softcap:
        capped = softcap * torch.tanh(x / softcap)
        x = capped
    direct = grad is not None and capped is None and grad.dtype == x.dtype and grad.is_contiguous()
    buffer = grad if direct else (torch.empty_like(x) if grad is not None else None)
    cw = None if class_weight is None else class_weight.detach().to(x.dtype).contiguous()
    row_scale = None
    if buffer is not None:
        row_scale = torch.broadcast_to(scale.detach().to(torch.float64), (n,)).contiguous().numpy()
    losses = binding.sparse(
        x.numpy(),
        labels.detach().contiguous().numpy(),
        ignore_index=ignore_index,
        class_weight=None if cw is None else cw.numpy(),
        label_smoothing=smoothing,
        z_loss=z_loss,
        grad_out=None if buffer is None else buffer.numpy(),
        row_scale=row_scale,
    )
    if losses is None:
        # an invalid row (or a layout the binding refused): PyTorch's numbers from plain torch operations
        return torch_ops.value_and_grad_(
            logits,
            labels,
            class_weight=class_weight,
            ignore_index=ignore_index,
            smoothing=smoothing,
            z_loss=z_loss,
            softcap=softcap,
            grad=grad,
            scale=scale,
            check_labels=check_labels,
        )
    if grad is not None and buffer is not grad:
        assert buffer is not None
        if capped is not None:
            buffer.mul_(1.0 - (capped / softcap) ** 2)
        grad.copy_(buffer)
    return torch.from_numpy(losses).to(x.dtype)


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _suffix(x: torch.Tensor) -> str:
    return "f32" if x.dtype == torch.float32 else "f64"


def row_stats(
    logits: torch.Tensor, *, class_weight: torch.Tensor | None, need_dsum: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: max ``m``, ``s = sum exp(x - m)`` and ``d = sum_j w_j (m - x_j)``; see :func:`.torch_ops.row_stats`."""
    n, v = logits.shape
    x = _work(logits)
    kernel = binding.raw(f"ce_row_stats_{_suffix(x)}")
    if v == 0 or kernel is None:
        return torch_ops.row_stats(logits, class_weight=class_weight, need_dsum=need_dsum)
    cw = None if class_weight is None else class_weight.detach().to(x.dtype).contiguous()
    stats = torch.empty((3 if need_dsum else 2, n), dtype=torch.float64)
    dsum = stats[2] if need_dsum else None
    bad = kernel(
        x.data_ptr(),
        n,
        v,
        _ptr(cw),
        int(need_dsum),
        _ptr(stats[0]),
        _ptr(stats[1]),
        _ptr(dsum),
        binding.threads_for(n * v),
    )
    if bad:  # a NaN or +inf logit: PyTorch's NaN for that row
        return torch_ops.row_stats(logits, class_weight=class_weight, need_dsum=need_dsum)
    stats = stats.to(x.dtype)
    return stats[0], stats[1].add_(1.0), stats[2] if need_dsum else torch.zeros_like(stats[0])


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
    x = _work(logits)
    kernel = binding.raw(f"ce_softmax_grad_{_suffix(x)}")
    if kernel is None:
        torch_ops.softmax_grad(
            logits, m, log_s, coef, target_col, target_coef, off=off, class_weight=class_weight, grad=grad
        )
        return
    direct = grad.dtype == x.dtype and grad.is_contiguous()
    buffer = grad if direct else torch.empty_like(x)
    per_row = torch.stack(
        [torch.broadcast_to(a.detach(), (n,)).to(torch.float64) for a in (m, log_s, coef, off, target_coef)]
    )
    cols = torch.broadcast_to(target_col.detach(), (n,)).to(torch.int64).contiguous()
    cw = None if class_weight is None else class_weight.detach().to(x.dtype).contiguous()
    kernel(
        x.data_ptr(),
        n,
        v,
        *(_ptr(row) for row in per_row[:4]),
        _ptr(cw),
        _ptr(cols),
        _ptr(per_row[4]),
        buffer.data_ptr(),
        binding.threads_for(n * v),
    )
    if buffer is not grad:
        grad.copy_(buffer)
