"""Token statistics of CUDA tensors by a Triton kernel (private): the same function as :mod:`.stats_torch`.

One program per row reads the row once, a vocabulary block at a time (64-bit
row offsets), keeping an online maximum ``m``, the sum ``s`` of
``exp(z)`` over ``z = (x - m) / T != 0``, the count of ``z == 0`` (the
maximum's own terms, kept apart so that ``log(1 + rest)`` stays accurate when
one class holds nearly all the mass), ``u = sum exp(z) z`` and the number of
logits ranked ahead of the target's; when the maximum grows by ``d``
(``delta = d / T``) the sums so far become ``exp(-delta) s`` and
``exp(-delta) (u - delta s)``. Then ``lse = m / T + log s``,
``logprob = (x_t - m) / T - log s``, ``entropy = log s - u / s`` and
``top1 = 1 / s``. A target is used as an address only when it is in range;
a row whose target is out of range (the caller's device-side assertion has
failed then) gets NaN statistics and rank 0. Accumulation is in float32 for
float32/bfloat16/float16 logits and in float64 for float64 logits; nothing
is read back to the host. The kernel runs on the CPU with
``TRITON_INTERPRET=1`` (the tests); it is a module of its own, beside the
cross-entropy kernels of :mod:`.triton_ce`, because it shares none of their
code. Importing this module imports torch and triton.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import triton
import triton.language as tl

from . import stats_torch
from .torch_ops import work_dtype

__all__ = ["NAME", "token_statistics"]

NAME = "triton"

fp64 = tl.float64  # annotations are strings here (PEP 563): Triton reads "fp64" from them, the linters this name


# the temperature and its inverse are passed as float64 (Triton's default for a Python float is float32) and
# cast to the accumulation dtype in the kernel
@triton.jit  # type: ignore[untyped-decorator]
def _token_stats_kernel(
    logits_ptr: Any,
    row_stride: Any,
    targets_ptr: Any,
    logprob_ptr: Any,
    entropy_ptr: Any,
    rank_ptr: Any,
    top1_ptr: Any,
    lse_ptr: Any,
    n_cols: Any,
    ignore_index: Any,
    inv_t_: fp64,  # type: ignore[valid-type]
    HAS_IGNORE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * row_stride
    target = tl.load(targets_ptr + row).to(tl.int64)
    if HAS_IGNORE:
        ignored = target == ignore_index
    else:
        ignored = target != target
    inside = (target >= 0) & (target < n_cols) & ~ignored
    safe = tl.where(inside, target, 0)
    inv_t = (inv_t_ + tl.zeros((), tl.float64)).to(ACC)
    x_t = tl.load(base + safe).to(ACC)
    m = tl.full((), -float("inf"), ACC)
    s = tl.zeros((), ACC)
    ties = tl.zeros((), ACC)
    u = tl.zeros((), ACC)
    ahead = tl.zeros((), tl.int64)
    bad = tl.zeros((), tl.int32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(base + cols, mask=mask, other=-float("inf")).to(ACC)
        x_nan = x != x
        bad = bad | tl.max((x_nan | (x == float("inf"))).to(tl.int32), 0)
        # torch's descending stable order, NaN first: before the target's column x >= x_t counts, from it x > x_t
        t_nan = (tl.zeros([BLOCK], ACC) + x_t) != x_t  # x_t is NaN, as a block (the interpreter mixes no scalar in)
        up = tl.where(cols < safe, tl.where(t_nan, x_nan, ~(x < x_t)), ~t_nan & ~(x <= x_t))
        ahead += tl.sum((up & mask).to(tl.int64), 0)
        new_m = tl.maximum(m, tl.max(x, 0))
        grew = new_m > m
        delta = tl.where(grew & (m != -float("inf")), (new_m - m) * inv_t, 0.0)
        scale = tl.exp(-delta)
        total = s + ties
        s = tl.where(grew, total * scale, s)
        u = tl.where(grew, (u - delta * total) * scale, u)
        ties = tl.where(grew, 0.0, ties)
        m = tl.where(grew, new_m, m)
        z = (x - tl.where(m == -float("inf"), 0.0, m)) * inv_t
        live = mask & (z != -float("inf"))
        zc = tl.where(live, z, 0.0)
        e = tl.where(live & (zc != 0.0), tl.exp(zc), 0.0)
        s += tl.sum(e, 0)
        u += tl.sum(e * zc, 0)
        ties += tl.sum((live & (zc == 0.0)).to(ACC), 0)
    rest = s + (ties - 1.0)
    one_rest = 1.0 + rest
    log_s = tl.log(one_rest) + (rest - (one_rest - 1.0)) / one_rest  # log1p(rest), corrected for 1 + rest's rounding
    undefined = (bad != 0) | (m == -float("inf")) | (m == float("inf")) | ~inside
    nan = float("nan")
    logprob = tl.where(undefined, nan, (x_t - m) * inv_t - log_s)
    entropy = tl.where(undefined, nan, log_s - u / one_rest)
    top1 = tl.where(undefined, nan, 1.0 / one_rest)
    lse = tl.where(undefined, nan, m * inv_t + log_s)
    tl.store(logprob_ptr + row, tl.where(ignored, 0.0, logprob))
    tl.store(entropy_ptr + row, tl.where(ignored, 0.0, entropy))
    tl.store(top1_ptr + row, tl.where(ignored, 0.0, top1))
    tl.store(lse_ptr + row, tl.where(ignored, 0.0, lse))
    tl.store(rank_ptr + row, tl.where(inside, 1 + ahead, 0))


def _block(n_cols: int) -> int:
    limit = 64 if os.environ.get("TRITON_INTERPRET", "0") == "1" else 4096
    return max(16, min(limit, int(triton.next_power_of_2(max(n_cols, 1)))))


def token_statistics(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None, temperature: float
) -> stats_torch.Statistics:
    """``(logprob, entropy, rank, top1, lse)`` of logits ``(n, V)`` with checked int64 targets ``(n,)``."""
    n, v = logits.shape
    acc = work_dtype(logits.dtype)
    if v == 0:
        return stats_torch.zeros_for(targets, acc)
    out = [torch.empty(n, dtype=acc, device=logits.device) for _ in range(4)]
    rank = torch.empty(n, dtype=torch.int64, device=logits.device)
    if n == 0:
        return out[0], out[1], rank, out[2], out[3]
    finfo = torch.finfo(acc)
    inv_t = min(max(1.0 / temperature, finfo.tiny), finfo.max)  # 1 / T within the accumulation dtype's range
    x = logits.contiguous()
    _token_stats_kernel[(n,)](
        x,
        x.stride(0),
        targets.contiguous(),
        *out[:2],
        rank,
        *out[2:],
        v,
        0 if ignore_index is None else ignore_index,
        inv_t,
        HAS_IGNORE=ignore_index is not None,
        ACC=tl.float64 if acc == torch.float64 else tl.float32,
        BLOCK=_block(v),
    )
    return out[0], out[1], rank, out[2], out[3]
