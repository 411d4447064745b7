"""Token statistics in plain torch operations (private): the reference of the fused kernels, and their checks.

The same function as :mod:`.stats_cpu` (the C kernel) and :mod:`.triton_stats`
(Triton), ``token_statistics(logits, targets, *, ignore_index, temperature)``,
written with torch operations on ``N x V`` temporaries: what runs where no
fused kernel applies (another device, ``meta`` tensors, kernels not built).
It lives apart from :mod:`.torch_ops` because it is a no-gradient pass with
its own outputs, not a piece of the cross-entropy losses.

For each row ``x`` of logits, ``q = softmax(x / T)`` and its target ``t``:

- ``logprob = log q_t``; ``entropy = -sum_j q_j log q_j`` (``0 log 0 = 0``);
- ``rank = 1 + #{j: x_j > x_t} + #{j < t: x_j == x_t}``, the target's place in
  ``torch.argsort(x, descending=True, stable=True)`` (1 = the argmax), where
  NaN sorts first and NaNs tie; it does not depend on ``T``;
- ``top1 = max_j q_j``; ``lse = logsumexp(x / T)``.

A row whose target equals ``ignore_index`` gets zeros and rank 0. A row
holding NaN or ``+inf``, or only ``-inf``, has no softmax: its four float
statistics are NaN (its rank is still counted). Accumulation is in float64
for float64 logits and in float32 otherwise; the rank is int64.

:func:`check_targets` is every path's check of the targets: on the CPU it
raises :class:`~crossentropy._validation.TargetIndexError` naming the first
bad position, elsewhere it is a device-side assertion (no host
synchronisation).

Importing this module imports torch.
"""

from __future__ import annotations

import math

import torch

from .._validation import first_bad, target_out_of_range
from .torch_ops import work_dtype

__all__ = ["NAME", "Statistics", "check_targets", "rank_of", "token_statistics", "zeros_for"]

NAME = "reference"

Statistics = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(logprob, entropy, rank, top1, lse)``, each of the targets' shape."""


def check_targets(targets: torch.Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Every target lies in ``[0, num_classes)`` or equals ``ignore_index``.

    On the CPU a bad target raises
    :class:`~crossentropy._validation.TargetIndexError` naming its position in
    ``targets`` (of any shape); on other devices a device-side assertion fails
    instead, so that nothing is read back to the host.
    """
    ok = (targets >= 0) & (targets < num_classes)
    if ignore_index is not None:
        ok = ok | (targets == ignore_index)
    if targets.device.type != "cpu":
        torch._assert_async(ok.all(), "token_statistics: a target is out of range [0, V) and not ignore_index")
        return
    if bool(ok.all()):
        return
    index, value = first_bad(~ok, targets)
    raise target_out_of_range(index, int(value), num_classes, ignore_index)


def zeros_for(targets: torch.Tensor, dtype: torch.dtype) -> Statistics:
    """The statistics of positions that are all ignored: zeros (floats in ``dtype``) and rank 0."""
    floats = [torch.zeros(targets.shape, dtype=dtype, device=targets.device) for _ in range(4)]
    rank = torch.zeros(targets.shape, dtype=torch.int64, device=targets.device)
    return floats[0], floats[1], rank, floats[2], floats[3]


def rank_of(x: torch.Tensor, x_t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 + #{j: x_j ahead of x_t}`` per row in the order of ``argsort(descending=True, stable=True)``.

    ``x`` is ``(n, V)``, ``x_t`` and ``target`` ``(n,)``; NaN is ahead of every number and NaNs tie.
    """
    nan, nan_t = torch.isnan(x), torch.isnan(x_t).unsqueeze(-1)
    t = x_t.unsqueeze(-1)
    ahead = (x > t) | (nan & ~nan_t)
    tied = (x == t) | (nan & nan_t)
    before = torch.arange(x.shape[-1], device=x.device) < target.unsqueeze(-1)
    return 1 + ahead.sum(-1) + (tied & before).sum(-1)


def token_statistics(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None, temperature: float
) -> Statistics:
    """``(logprob, entropy, rank, top1, lse)`` of logits ``(n, V)`` with int64 targets ``(n,)`` (see the module).

    The kernels' formulas: with ``m = max x`` and ``z = (x - m) / T``,
    ``s = sum exp(z) = 1 + rest`` where ``rest`` leaves out one of the
    maximum's terms (``log s = log1p(rest)`` keeps its accuracy when one class
    holds nearly all the mass), ``u = sum exp(z) z``; then ``lse = m / T +
    log s``, ``logprob = (x_t - m) / T - log s``, ``entropy = log s - u / s``
    and ``top1 = 1 / s``. The targets must have been checked
    (:func:`check_targets`); a target out of range gets NaN statistics and
    rank 0 here.
    """
    v = logits.shape[1]
    acc = work_dtype(logits.dtype)
    if v == 0:
        return zeros_for(targets, acc)
    x = logits.detach().to(acc)
    valid = torch.ones_like(targets, dtype=torch.bool) if ignore_index is None else targets != ignore_index
    inside = valid & (targets >= 0) & (targets < v)
    safe = torch.where(inside, targets, 0)
    x_t = x.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    rank = torch.where(inside, rank_of(x, x_t, safe), 0)
    m = x.amax(-1)
    z = (x - torch.where(torch.isfinite(m), m, 0.0).unsqueeze(-1)) / temperature
    tie, live = z == 0, z > -math.inf
    e = torch.where(live & ~tie, torch.exp(z), 0.0)
    rest = e.sum(-1) + (tie.sum(-1) - 1)
    log_s = torch.log1p(rest)
    u = torch.where(e > 0, e * z, 0.0).sum(-1)
    logprob = (x_t - m) / temperature - log_s
    entropy = log_s - u / (1.0 + rest)
    top1 = 1.0 / (1.0 + rest)
    lse = m / temperature + log_s
    undefined = torch.isnan(x).any(-1) | ~torch.isfinite(m) | ~inside
    out = [torch.where(valid, torch.where(undefined, math.nan, f), 0.0) for f in (logprob, entropy, top1, lse)]
    return out[0], out[1], rank, out[2], out[3]
