"""Triton kernels of the distillation divergences for CUDA tensors (private): the functions of :mod:`.kl_ops`.

One program per row pair. ``_distill_kernel`` reads both rows once for their
online maxima and sums of exponentials (after the temperature), then again
for the divergence (forward KL, reverse KL or the generalised JSD; see
:mod:`.kl_ops` for the formulas) and, with a gradient to compute, writes the
student's gradient: in the same pass for the forward KL, in a third pass for
the others (their gradient needs the row's total). ``_distill_grad_kernel``
recomputes the gradient from the saved row statistics in one pass (the
backward pass). The JSD's log-ratios against the mixture are formed from the
difference of the log-probabilities with ``log1p``/``expm1`` (written here
with Kahan's corrections, which the interpreter can run), so they keep their
accuracy where the two distributions nearly agree. A row with a NaN or
``+inf`` logit, or ``-inf`` logits only, gets NaN; nothing is read back to
the host. Accumulation is in float32 (float64 when either side is float64).

:func:`forward_` and :func:`backward_` are the launchers, with the
signatures of :mod:`.kl_ops` and :mod:`.kl_cpu`. The same kernels run on the
CPU with ``TRITON_INTERPRET=1`` (the tests). Importing this module imports
torch and triton.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import triton
import triton.language as tl

from . import kl_ops

__all__ = ["NAME", "backward_", "forward_"]

NAME = "triton"

fp64 = tl.float64  # annotations are strings here (PEP 563): Triton reads "fp64" from them, the linters this name
KINDS = {"forward_kl": 0, "reverse_kl": 1, "jsd": 2}


@triton.jit  # type: ignore[untyped-decorator]
def _log1p(a: Any) -> Any:
    """``log(1 + a)``, accurate for small ``a`` (Kahan: ``log(u) a / (u - 1)``, ``u = 1 + a`` rounded)."""
    u = 1.0 + a
    safe = tl.where(u == 1.0, 2.0, u)
    return tl.where(u == 1.0, a, tl.log(safe) * (a / (safe - 1.0)))


@triton.jit  # type: ignore[untyped-decorator]
def _expm1(x: Any) -> Any:
    """``exp(x) - 1`` for ``x <= 0``, accurate for small ``x`` (Kahan: ``(u - 1) x / log(u)``, ``u = exp(x)``)."""
    u = tl.exp(x)
    exact = (u == 1.0) | (u == 0.0)
    safe = tl.where(exact, 0.5, u)
    return tl.where(u == 1.0, x, tl.where(u == 0.0, -1.0, (safe - 1.0) * (x / tl.log(safe))))


@triton.jit  # type: ignore[untyped-decorator]
def _side_stats(base: Any, n_cols: Any, k: Any, ACC: tl.constexpr, BLOCK: tl.constexpr) -> Any:
    """``(m, ls, bad)`` of one row of logits: max of ``x k``, ``log sum exp(x k - m)``, NaN/+inf/all -inf seen."""
    m = tl.full((), -float("inf"), ACC)
    s = tl.zeros((), ACC)
    bad = tl.zeros((), tl.int32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(base + cols, mask=cols < n_cols, other=-float("inf")).to(ACC) * k
        bad = bad | tl.max(((x != x) | (x == float("inf"))).to(tl.int32), 0)
        new_m = tl.maximum(m, tl.max(x, 0))
        safe_m = tl.where(new_m == -float("inf"), 0.0, new_m)
        s = s * tl.exp(m - safe_m) + tl.sum(tl.exp(x - safe_m), 0)
        m = new_m
    bad = bad | (m == -float("inf")).to(tl.int32)
    return m, tl.log(s), bad


@triton.jit  # type: ignore[untyped-decorator]
def _sides(
    s_base: Any,
    t_base: Any,
    cols: Any,
    n_cols: Any,
    k: Any,
    ms: Any,
    lss: Any,
    mt: Any,
    lst: Any,
    PROBS: tl.constexpr,
    ACC: tl.constexpr,
) -> Any:
    """``(lp_s, p_s, lp_t, p_t)`` of a block of the row pair (0 probabilities past the row's end)."""
    mask = cols < n_cols
    zs = (tl.load(s_base + cols, mask=mask, other=-float("inf")).to(ACC) * k - ms) - lss
    if PROBS:
        pt = tl.load(t_base + cols, mask=mask, other=0.0).to(ACC)
        zt = tl.log(pt)
    else:
        zt = (tl.load(t_base + cols, mask=mask, other=-float("inf")).to(ACC) * k - mt) - lst
        pt = tl.exp(zt)
    return zs, tl.exp(zs), zt, pt


@triton.jit  # type: ignore[untyped-decorator]
def _jsd_ratios(d: Any, beta: Any) -> Any:
    """``(lp_t - log M, lp_s - log M)`` from ``d = lp_s - lp_t`` (see :func:`.kl_ops.jsd_ratios`)."""
    neg = d <= 0.0
    c = tl.where(neg, 1.0 - beta, beta)
    a = -tl.abs(d)
    low = tl.where(neg, beta, 1.0 - beta) + c * tl.exp(a)  # 1 + c expm1(a), accurate where it is below 1/2
    r = tl.where(low < 0.5, -tl.log(tl.where(low < 0.5, low, 1.0)), -_log1p(c * _expm1(a)))
    return tl.where(neg, r, r - d), tl.where(neg, r + d, r)


@triton.jit  # type: ignore[untyped-decorator]
def _grad_row(
    s_base: Any,
    t_base: Any,
    g_base: Any,
    n_cols: Any,
    k: Any,
    beta: Any,
    ms: Any,
    lss: Any,
    mt: Any,
    lst: Any,
    a: Any,
    g: Any,
    KIND: tl.constexpr,
    PROBS: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    """The gradient of ``g / k`` times the row pair's divergence (``g`` includes ``k``), from its statistics."""
    silent = g == 0.0
    if KIND == 2:
        silent = silent | (beta == 0.0) | (beta == 1.0)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        zs, ps, zt, pt = _sides(s_base, t_base, cols, n_cols, k, ms, lss, mt, lst, PROBS, ACC)
        if KIND == 0:
            out = g * (ps - pt)
        elif KIND == 1:
            out = tl.where(ps == 0.0, 0.0, g * (ps * ((zs - zt) - a)))
            out = tl.where(a == float("inf"), float("nan"), out)
        else:
            _, s_ratio = _jsd_ratios(zs - zt, beta)
            out = tl.where(ps == 0.0, 0.0, (g * (1.0 - beta)) * (ps * (s_ratio - a)))
        out = tl.where(silent, 0.0, out)
        tl.store(g_base + cols, out.to(g_base.dtype.element_ty), mask=cols < n_cols)


# the scalar options are passed as float64 (Triton's default for a Python float is float32, which would round
# beta and the temperature for float64 rows) and cast to the accumulation dtype in the kernel
@triton.jit  # type: ignore[untyped-decorator]
def _distill_kernel(
    s_ptr: Any,
    s_stride: Any,
    t_ptr: Any,
    t_stride: Any,
    keep_ptr: Any,
    coef_ptr: Any,
    coef_stride: Any,
    values_ptr: Any,
    aux_ptr: Any,
    stats_ptr: Any,
    grad_ptr: Any,
    grad_stride: Any,
    n_cols: Any,
    beta_: fp64,  # type: ignore[valid-type]
    k_: fp64,  # type: ignore[valid-type]
    KIND: tl.constexpr,
    PROBS: tl.constexpr,
    HAS_KEEP: tl.constexpr,
    HAS_GRAD: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    beta = (beta_ + tl.zeros((), tl.float64)).to(ACC)
    k = (k_ + tl.zeros((), tl.float64)).to(ACC)
    s_base = s_ptr + row * s_stride
    t_base = t_ptr + row * t_stride
    kept = tl.full((), 1, tl.int1)
    if HAS_KEEP:
        kept = tl.load(keep_ptr + row) != 0
    ms, lss, bad = _side_stats(s_base, n_cols, k, ACC, BLOCK)
    mt = tl.zeros((), ACC)
    lst = tl.zeros((), ACC)
    if not PROBS:
        mt, lst, bad_t = _side_stats(t_base, n_cols, k, ACC, BLOCK)
        bad = bad | bad_t
    ms = tl.where(bad != 0, float("nan"), ms)  # NaN rows: every value and gradient below is NaN
    g = tl.zeros((), ACC)
    if HAS_GRAD:
        g = tl.where(kept, tl.load(coef_ptr + row * coef_stride).to(ACC) * k, 0.0)
    value = tl.zeros((), ACC)
    aux = tl.zeros((), ACC)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        zs, ps, zt, pt = _sides(s_base, t_base, cols, n_cols, k, ms, lss, mt, lst, PROBS, ACC)
        if KIND == 0:
            v = tl.where(pt == 0.0, 0.0, pt * (zt - zs))
            a = tl.where(pt == 0.0, 0.0, -(pt * zt))
            if HAS_GRAD:
                out = tl.where(g == 0.0, 0.0, g * (ps - pt))
                tl.store(grad_ptr + row * grad_stride + cols, out.to(grad_ptr.dtype.element_ty), mask=cols < n_cols)
        elif KIND == 1:
            v = tl.where(ps == 0.0, 0.0, ps * (zs - zt))
            a = v
        else:
            t_ratio, s_ratio = _jsd_ratios(zs - zt, beta)
            a = tl.where(ps == 0.0, 0.0, ps * s_ratio)
            v = beta * tl.where(pt == 0.0, 0.0, pt * t_ratio) + (1.0 - beta) * a
        value += tl.sum(v, 0)
        aux += tl.sum(a, 0)
    if KIND == 2:
        zero = (beta == 0.0) | (beta == 1.0)  # exactly 0, NaN for the invalid rows only (ms is NaN there)
        value = tl.where(zero, ms * 0.0, value)
        aux = tl.where(zero, ms * 0.0, aux)
    tl.store(values_ptr + row, tl.where(kept, value, 0.0))
    tl.store(aux_ptr + row, tl.where(kept, aux, 0.0))
    tl.store(stats_ptr + 4 * row, ms)
    tl.store(stats_ptr + 4 * row + 1, lss)
    tl.store(stats_ptr + 4 * row + 2, mt)
    tl.store(stats_ptr + 4 * row + 3, lst)
    if HAS_GRAD and KIND != 0:
        _grad_row(
            s_base,
            t_base,
            grad_ptr + row * grad_stride,
            n_cols,
            k,
            beta,
            ms,
            lss,
            mt,
            lst,
            aux,
            g,
            KIND,
            PROBS,
            ACC,
            BLOCK,
        )


@triton.jit  # type: ignore[untyped-decorator]
def _distill_grad_kernel(
    s_ptr: Any,
    s_stride: Any,
    t_ptr: Any,
    t_stride: Any,
    keep_ptr: Any,
    coef_ptr: Any,
    coef_stride: Any,
    aux_ptr: Any,
    stats_ptr: Any,
    grad_ptr: Any,
    grad_stride: Any,
    n_cols: Any,
    beta_: fp64,  # type: ignore[valid-type]
    k_: fp64,  # type: ignore[valid-type]
    KIND: tl.constexpr,
    PROBS: tl.constexpr,
    HAS_KEEP: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    beta = (beta_ + tl.zeros((), tl.float64)).to(ACC)
    k = (k_ + tl.zeros((), tl.float64)).to(ACC)
    g = tl.load(coef_ptr + row * coef_stride).to(ACC) * k
    if HAS_KEEP:
        g = tl.where(tl.load(keep_ptr + row) != 0, g, 0.0)
    _grad_row(
        s_ptr + row * s_stride,
        t_ptr + row * t_stride,
        grad_ptr + row * grad_stride,
        n_cols,
        k,
        beta,
        tl.load(stats_ptr + 4 * row).to(ACC),
        tl.load(stats_ptr + 4 * row + 1).to(ACC),
        tl.load(stats_ptr + 4 * row + 2).to(ACC),
        tl.load(stats_ptr + 4 * row + 3).to(ACC),
        tl.load(aux_ptr + row).to(ACC),
        g,
        KIND,
        PROBS,
        ACC,
        BLOCK,
    )


def _block(n_cols: int) -> int:
    limit = 64 if os.environ.get("TRITON_INTERPRET", "0") == "1" else 4096
    return max(16, min(limit, int(triton.next_power_of_2(max(n_cols, 1)))))


def _acc(*dtypes: torch.dtype) -> tuple[Any, torch.dtype]:
    """The accumulation dtype: float64 when either side is float64, float32 otherwise (Triton and torch names)."""
    work = kl_ops.work_dtype(*dtypes)
    return (tl.float64, work) if work == torch.float64 else (tl.float32, work)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """Rows with unit stride along the vocabulary (the kernels take a row stride)."""
    return x if x.stride(-1) == 1 else x.contiguous()


def _coef(coef: torch.Tensor, work: torch.dtype) -> tuple[torch.Tensor, int]:
    coef = coef.detach().to(work).contiguous()
    return coef, 1 if coef.ndim else 0


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
    """See :func:`.kl_ops.forward_`; ``stats`` are the kernel's row statistics (NaN for invalid rows)."""
    n, v = student.shape
    acc, work = _acc(student.dtype, teacher.dtype)
    values = torch.empty(n, dtype=work, device=student.device)
    aux, stats = torch.empty_like(values), torch.empty((n, 4), dtype=work, device=student.device)
    if n == 0:
        return values, aux, stats
    s, t = _rows(student.detach()), _rows(teacher.detach())
    has_grad = grad is not None and coef is not None
    c, c_stride = _coef(coef, work) if has_grad and coef is not None else (values, 0)
    _distill_kernel[(n,)](
        s,
        s.stride(0),
        t,
        t.stride(0),
        keep if keep is not None else values,
        c,
        c_stride,
        values,
        aux,
        stats,
        grad if has_grad else values,
        grad.stride(0) if has_grad and grad is not None else 0,
        v,
        float(beta),
        1.0 / temperature,
        KIND=KINDS[divergence],
        PROBS=teacher_probs,
        HAS_KEEP=keep is not None,
        HAS_GRAD=has_grad,
        ACC=acc,
        BLOCK=_block(v),
    )
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
    """See :func:`.kl_ops.backward_`: one pass from the saved statistics."""
    n, v = student.shape
    if not (n and v):
        return
    acc, work = _acc(student.dtype, teacher.dtype)
    s, t = _rows(student.detach()), _rows(teacher.detach())
    c, c_stride = _coef(coef, work)
    _distill_grad_kernel[(n,)](
        s,
        s.stride(0),
        t,
        t.stride(0),
        keep if keep is not None else c,
        c,
        c_stride,
        aux.detach().to(work),
        stats.detach().to(work),
        grad,
        grad.stride(0),
        v,
        float(beta),
        1.0 / temperature,
        KIND=KINDS[divergence],
        PROBS=teacher_probs,
        HAS_KEEP=keep is not None,
        ACC=acc,
        BLOCK=_block(v),
    )
