"""Triton kernels for CUDA tensors (private): fused sparse cross-entropy and its two-phase pieces.

Three kernels share one row-statistics routine (an online maximum ``m``, sum
of exponentials ``s = sum exp(x - m)`` and, for label smoothing, the
non-negative sum ``d = sum_j w_j (m - x_j)``, over vocabulary blocks, with
64-bit row offsets):

- ``_ce_kernel``: per row, the loss and (optionally) the gradient of
  ``scale_i * loss_i``, written into a separate buffer or the logits
  themselves;
- ``_row_stats_kernel``: the statistics alone (one vocabulary shard of the
  vocabulary-parallel loss);
- ``_softmax_grad_kernel``: ``coef_i softmax(x)_ij - off_i w_j``, minus
  ``target_coef_i`` at ``target_col_i``, from given statistics.

The loss is ``(1 - eps) w_y (lse - x_y) + eps / V (W log s + d) + z lse^2``
with ``lse = m + log s`` and ``W = sum_j w_j``: every term is non-negative,
so label smoothing never cancels (``lse V - sum x`` would, catastrophically,
for large logits). Rows with a NaN or ``+inf`` logit, only ``-inf`` logits
or a label outside ``[0, V)`` that is not ignored get a NaN loss and a NaN
gradient row; the label is never used as an address unless it is in range.
Accumulation is in float32 for float32/bfloat16/float16 logits and in
float64 for float64 logits; no value is read back to the host.

:func:`value_and_grad_`, :func:`row_stats` and :func:`softmax_grad` are the
launchers, with the same signatures as :mod:`._kernels.torch_cpu` (the C
kernel's CPU glue), so the autograd plumbing (:mod:`._kernels.autograd`) and
the vocabulary-parallel path drive either one. The same kernels run on the
CPU with ``TRITON_INTERPRET=1`` (the tests). Importing this module imports
torch and triton.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import triton
import triton.language as tl

from . import torch_ops

__all__ = ["NAME", "assert_labels", "row_stats", "softmax_grad", "value_and_grad_"]

NAME = "triton"

assert_labels = torch_ops.assert_labels
fp64 = tl.float64  # annotations are strings here (PEP 563): Triton reads "fp64" from them, the linters this name


@triton.jit  # type: ignore[untyped-decorator]
def _load_row_block(base: Any, cols: Any, mask: Any, softcap: Any, SOFTCAP: tl.constexpr, ACC: tl.constexpr) -> Any:
    x = tl.load(base + cols, mask=mask, other=-float("inf")).to(ACC)
    if SOFTCAP:
        x = softcap * (2.0 * tl.sigmoid(2.0 * x / softcap) - 1.0)
        x = tl.where(mask, x, -float("inf"))
    return x


@triton.jit  # type: ignore[untyped-decorator]
def _row_statistics(
    base: Any,
    n_cols: Any,
    class_weight_ptr: Any,
    softcap: Any,
    HAS_CLASS_WEIGHT: tl.constexpr,
    NEED_DSUM: tl.constexpr,
    SOFTCAP: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> Any:
    """``(m, s, d, W, bad)`` of one row: max, sum exp(x - m), sum w (m - x), sum w, NaN/+inf seen."""
    m = tl.full((), -float("inf"), ACC)
    s = tl.zeros((), ACC)
    d = tl.zeros((), ACC)
    w_seen = tl.zeros((), ACC)
    bad = tl.zeros((), tl.int32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = _load_row_block(base, cols, mask, softcap, SOFTCAP, ACC)
        bad = bad | tl.max(((x != x) | (x == float("inf"))).to(tl.int32), 0)
        new_m = tl.maximum(m, tl.max(x, 0))
        safe_m = tl.where(new_m == -float("inf"), 0.0, new_m)
        s = s * tl.exp(m - safe_m) + tl.sum(tl.exp(x - safe_m), 0)
        if NEED_DSUM:
            if HAS_CLASS_WEIGHT:
                w = tl.load(class_weight_ptr + cols, mask=mask, other=0.0).to(ACC)
            else:
                w = tl.where(mask, 1.0, 0.0).to(ACC)
            grown = tl.where((w_seen != 0) & (new_m != m), w_seen * (new_m - m), 0.0)
            d = d + grown + tl.sum(tl.where(w != 0, w * (safe_m - x), 0.0), 0)
            w_seen = w_seen + tl.sum(w, 0)
        m = new_m
    return m, s, d, w_seen, bad


@triton.jit  # type: ignore[untyped-decorator]
def _write_grad_row(
    base: Any,
    gbase: Any,
    n_cols: Any,
    class_weight_ptr: Any,
    softcap: Any,
    m: Any,
    log_s: Any,
    coef: Any,
    off: Any,
    target: Any,
    target_coef: Any,
    poison: Any,
    HAS_CLASS_WEIGHT: tl.constexpr,
    SOFTCAP: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    """``coef softmax(x) - off w``, minus ``target_coef`` at ``target``; zeros when all three are 0; NaN if poison."""
    silent = (coef == 0) & (off == 0) & (target_coef == 0)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        raw = tl.load(base + cols, mask=mask, other=0.0).to(ACC)
        x = raw
        if SOFTCAP:
            x = softcap * (2.0 * tl.sigmoid(2.0 * raw / softcap) - 1.0)
        g = coef * tl.exp((x - m) - log_s)
        if HAS_CLASS_WEIGHT:  # off is 0 without smoothing, where an infinite weight must not make NaN
            w = tl.load(class_weight_ptr + cols, mask=mask, other=0.0).to(ACC)
            g = g - tl.where(off == 0, 0.0, off * w)
        else:
            g = g - off
        g = tl.where(cols == target, g - target_coef, g)
        if SOFTCAP:
            t = x / softcap
            g = g * (1.0 - t * t)
        g = tl.where(silent, 0.0, g)
        g = tl.where(poison, float("nan"), g)
        tl.store(gbase + cols, g.to(gbase.dtype.element_ty), mask=mask)


# the scalar options are passed as float64 (Triton's default for a Python float is float32, which would
# round label smoothing and z-loss for float64 logits) and cast to the accumulation dtype in the kernel
@triton.jit  # type: ignore[untyped-decorator]
def _ce_kernel(
    logits_ptr: Any,
    row_stride: Any,
    labels_ptr: Any,
    class_weight_ptr: Any,
    loss_ptr: Any,
    grad_ptr: Any,
    grad_stride: Any,
    scale_ptr: Any,
    scale_stride: Any,
    n_cols: Any,
    ignore_index: Any,
    smoothing_: fp64,  # type: ignore[valid-type]
    z_loss_: fp64,  # type: ignore[valid-type]
    softcap_: fp64,  # type: ignore[valid-type]
    HAS_IGNORE: tl.constexpr,
    HAS_CLASS_WEIGHT: tl.constexpr,
    HAS_GRAD: tl.constexpr,
    NEED_DSUM: tl.constexpr,
    SOFTCAP: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    smoothing = (smoothing_ + tl.zeros((), tl.float64)).to(ACC)
    z_loss = (z_loss_ + tl.zeros((), tl.float64)).to(ACC)
    softcap = (softcap_ + tl.zeros((), tl.float64)).to(ACC)
    base = logits_ptr + row * row_stride
    label = tl.load(labels_ptr + row).to(tl.int64)
    valid = label == label
    if HAS_IGNORE:
        valid = label != ignore_index
    in_range = (label >= 0) & (label < n_cols)
    m, s, d, w_sum, bad = _row_statistics(
        base, n_cols, class_weight_ptr, softcap, HAS_CLASS_WEIGHT, NEED_DSUM, SOFTCAP, ACC, BLOCK
    )
    log_s = tl.log(s)
    lse = m + log_s
    safe_label = tl.where(valid & in_range, label, 0)
    x_y = tl.load(base + safe_label).to(ACC)
    if SOFTCAP:
        x_y = softcap * (2.0 * tl.sigmoid(2.0 * x_y / softcap) - 1.0)
    w_y = tl.full((), 1.0, ACC)
    if HAS_CLASS_WEIGHT:
        w_y = tl.load(class_weight_ptr + safe_label).to(ACC)
    if not HAS_CLASS_WEIGHT:
        w_sum = tl.zeros((), ACC) + n_cols
    loss = (1.0 - smoothing) * w_y * ((m - x_y) + log_s) + z_loss * lse * lse
    if NEED_DSUM:
        loss += smoothing / n_cols * (w_sum * log_s + d)
    poison = (bad != 0) | (m == -float("inf")) | (valid & ~in_range)
    loss = tl.where(valid, tl.where(poison, float("nan"), loss), 0.0)
    tl.store(loss_ptr + row, loss)
    if HAS_GRAD:
        scale = tl.load(scale_ptr + row * scale_stride).to(ACC)
        scale = tl.where(valid, scale, 0.0)
        coef = scale * ((1.0 - smoothing) * w_y + 2.0 * z_loss * lse)
        if NEED_DSUM:  # only with smoothing: 0 * an infinite class weight would make every row NaN
            coef += scale * (smoothing / n_cols * w_sum)
        _write_grad_row(
            base,
            grad_ptr + row * grad_stride,
            n_cols,
            class_weight_ptr,
            softcap,
            m,
            log_s,
            coef,
            scale * smoothing / n_cols,
            tl.where(valid, label, -1),
            scale * (1.0 - smoothing) * w_y,
            poison,
            HAS_CLASS_WEIGHT,
            SOFTCAP,
            ACC,
            BLOCK,
        )


@triton.jit  # type: ignore[untyped-decorator]
def _row_stats_kernel(
    logits_ptr: Any,
    row_stride: Any,
    class_weight_ptr: Any,
    m_ptr: Any,
    s_ptr: Any,
    d_ptr: Any,
    n_cols: Any,
    HAS_CLASS_WEIGHT: tl.constexpr,
    NEED_DSUM: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    m, s, d, _, bad = _row_statistics(
        logits_ptr + row * row_stride, n_cols, class_weight_ptr, 1.0, HAS_CLASS_WEIGHT, NEED_DSUM, False, ACC, BLOCK
    )
    tl.store(m_ptr + row, tl.where(bad != 0, float("nan"), m))
    tl.store(s_ptr + row, s)
    tl.store(d_ptr + row, d)


@triton.jit  # type: ignore[untyped-decorator]
def _softmax_grad_kernel(
    logits_ptr: Any,
    row_stride: Any,
    class_weight_ptr: Any,
    m_ptr: Any,
    log_s_ptr: Any,
    coef_ptr: Any,
    off_ptr: Any,
    target_ptr: Any,
    target_coef_ptr: Any,
    grad_ptr: Any,
    grad_stride: Any,
    n_cols: Any,
    HAS_CLASS_WEIGHT: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    _write_grad_row(
        logits_ptr + row * row_stride,
        grad_ptr + row * grad_stride,
        n_cols,
        class_weight_ptr,
        1.0,
        tl.load(m_ptr + row).to(ACC),
        tl.load(log_s_ptr + row).to(ACC),
        tl.load(coef_ptr + row).to(ACC),
        tl.load(off_ptr + row).to(ACC),
        tl.load(target_ptr + row).to(tl.int64),
        tl.load(target_coef_ptr + row).to(ACC),
        False,
        HAS_CLASS_WEIGHT,
        False,
        ACC,
        BLOCK,
    )


def _block(n_cols: int) -> int:
    limit = 64 if os.environ.get("TRITON_INTERPRET", "0") == "1" else 8192
    return max(16, min(limit, triton.next_power_of_2(max(n_cols, 1))))


def _acc(dtype: torch.dtype) -> tuple[Any, torch.dtype]:
    """The accumulation dtype: float64 for float64 logits, float32 otherwise (Triton and torch names)."""
    return (tl.float64, torch.float64) if dtype == torch.float64 else (tl.float32, torch.float32)


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
    """Per-row losses of logits ``(n, V)`` (unscaled; float64 for float64 logits, else float32).

    With ``grad`` (a buffer of the logits' shape, possibly the logits
    themselves), writes the gradient of ``scale_i * loss_i`` into it;
    ``scale`` is a 0-d or ``(n,)`` tensor on the logits' device.
    ``check_labels`` asserts on the device that labels are in range (PyTorch's
    behaviour; ``IndexError`` for CPU tensors under the interpreter); otherwise
    a bad label gives a NaN row.
    """
    n, v = logits.shape
    acc, acc_torch = _acc(logits.dtype)
    loss = torch.empty(n, dtype=acc_torch, device=logits.device)
    if check_labels:
        torch_ops.assert_labels(labels, v, ignore_index)
    if n == 0:
        return loss
    scale = scale.to(acc_torch)
    _ce_kernel[(n,)](
        logits,
        logits.stride(0),
        labels,
        class_weight if class_weight is not None else logits,
        loss,
        grad if grad is not None else logits,
        grad.stride(0) if grad is not None else 0,
        scale,
        scale.stride(0) if scale.ndim else 0,  # an expanded incoming gradient has stride 0
        v,
        0 if ignore_index is None else ignore_index,
        smoothing,
        z_loss,
        softcap or 1.0,
        HAS_IGNORE=ignore_index is not None,
        HAS_CLASS_WEIGHT=class_weight is not None,
        HAS_GRAD=grad is not None,
        NEED_DSUM=smoothing > 0,
        SOFTCAP=bool(softcap),
        ACC=acc,
        BLOCK=_block(v),
    )
    return loss


def row_stats(
    logits: torch.Tensor, *, class_weight: torch.Tensor | None, need_dsum: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row of ``(n, V)`` logits: ``m = max x`` (NaN for a row with NaN or +inf), ``s = sum exp(x - m)``
    (0 for a row of -inf) and ``d = sum_j w_j (m - x_j)`` (0 unless ``need_dsum``)."""
    n, v = logits.shape
    acc, acc_torch = _acc(logits.dtype)
    m, s, d = (torch.zeros(n, dtype=acc_torch, device=logits.device) for _ in range(3))
    if n and v:
        _row_stats_kernel[(n,)](
            logits,
            logits.stride(0),
            class_weight if class_weight is not None else logits,
            m,
            s,
            d,
            v,
            HAS_CLASS_WEIGHT=class_weight is not None,
            NEED_DSUM=need_dsum,
            ACC=acc,
            BLOCK=_block(v),
        )
    elif n:
        m.fill_(-float("inf"))
    return m, s, d


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
    acc, _ = _acc(logits.dtype)
    _softmax_grad_kernel[(n,)](
        logits,
        logits.stride(0),
        class_weight if class_weight is not None else logits,
        m,
        log_s,
        coef,
        off,
        target_col,
        target_coef,
        grad,
        grad.stride(0),
        v,
        HAS_CLASS_WEIGHT=class_weight is not None,
        ACC=acc,
        BLOCK=_block(v),
    )
