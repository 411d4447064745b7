"""The fused C kernel of the distillation divergences for CPU tensors (private): the functions of :mod:`.kl_ops`.

CPU tensors are handed to the C kernel (``ce_distill``) as NumPy views: no
copy for contiguous float32/float64 rows of one dtype; bfloat16 and float16
rows, and a teacher of another dtype, are converted to the work dtype
(float64 when either side is float64, else float32) first. One pass over each
row pair computes both log-sum-exps, the divergence and, when asked, the
student's gradient; the backward pass recomputes the gradient from the saved
row statistics. A batch holding an invalid row (the kernel refuses the whole
batch) is computed by :mod:`.kl_ops` instead, which gives those rows NaN.

Importing this module imports torch.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _kernels as binding
from . import kl_ops

__all__ = ["NAME", "backward_", "forward_"]

NAME = "cpu"


def _rows(x: torch.Tensor, work: torch.dtype) -> torch.Tensor:
    """``x`` as a contiguous tensor of the work dtype (a view when it already is one)."""
    return x.detach().to(work).contiguous()


def _host(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> np.ndarray:
    return x.detach().to(dtype).contiguous().numpy()


def _buffer(grad: torch.Tensor, work: torch.dtype) -> torch.Tensor:
    """Where the kernel writes the gradient: ``grad`` itself when it has the work dtype and layout."""
    return grad if grad.dtype == work and grad.is_contiguous() else torch.empty(grad.shape, dtype=work)


def forward_(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
    keep: torch.Tensor | None,
    coef: torch.Tensor | None = None,
    grad: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """See :func:`.kl_ops.forward_`; ``stats`` are the C kernel's row statistics (NaN after a fallback)."""
    n, _v = student.shape
    work = kl_ops.work_dtype(student.dtype, teacher.dtype)
    s, t = _rows(student, work), _rows(teacher, work)
    buffer = None if grad is None else _buffer(grad, work)
    found = binding.distill(
        s.numpy(),
        t.numpy(),
        divergence=divergence,
        beta=beta,
        inv_temperature=1.0 / temperature,
        teacher_probs=teacher_probs,
        keep=None if keep is None else _host(keep, torch.uint8),
        coef=None if coef is None else np.broadcast_to(_host(coef), (n,)),
        grad_out=None if buffer is None else buffer.numpy(),
    )
    if found is None:
        # an invalid row (or a layout the binding refused): NaN rows from plain torch operations
        values, aux, stats = kl_ops.forward_(
            student,
            teacher,
            divergence=divergence,
            beta=beta,
            temperature=temperature,
            teacher_probs=teacher_probs,
            keep=keep,
            coef=coef,
            grad=grad,
        )
        return values, aux, torch.full_like(stats, torch.nan)
    if grad is not None and buffer is not grad:
        assert buffer is not None
        grad.copy_(buffer)
    values, aux, stats = (torch.from_numpy(a).to(work) for a in found)
    return values, aux, stats


def backward_(
    student: torch.Tensor,
    teacher: torch.Tensor,
    stats: torch.Tensor,
    aux: torch.Tensor,
    coef: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
    keep: torch.Tensor | None,
    grad: torch.Tensor,
) -> None:
    """See :func:`.kl_ops.backward_`; recomputed from the C kernel's statistics (by :mod:`.kl_ops` after a
    forward pass that fell back to it)."""
    n, v = student.shape
    if not (n and v):
        return
    work = kl_ops.work_dtype(student.dtype, teacher.dtype)
    s, t = _rows(student, work), _rows(teacher, work)
    buffer = _buffer(grad, work)
    # CPU tensors: reading the statistics costs no device synchronisation
    written = not bool(stats.isnan().any()) and binding.distill_grad(
        s.numpy(),
        t.numpy(),
        _host(stats),
        _host(aux),
        np.broadcast_to(_host(coef), (n,)),
        divergence=divergence,
        beta=beta,
        inv_temperature=1.0 / temperature,
        teacher_probs=teacher_probs,
        keep=None if keep is None else _host(keep, torch.uint8),
        grad_out=buffer.numpy(),
    )
    if not written:
        kl_ops.backward_(
            student,
            teacher,
            stats,
            aux,
            coef,
            divergence=divergence,
            beta=beta,
            temperature=temperature,
            teacher_probs=teacher_probs,
            keep=keep,
            grad=grad,
        )
    elif buffer is not grad:
        grad.copy_(buffer)
