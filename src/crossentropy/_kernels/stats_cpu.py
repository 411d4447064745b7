"""Token statistics of CPU tensors by the C kernel (private): the same function as :mod:`.stats_torch`.

The kernel (``ce_token_stats`` in ``cpu_template.h``) reads each row once,
block by block while the block is in L1: the block's maximum and the count of
logits ranked ahead of the target's in one sweep, then the sums of
``exp(z)`` and ``exp(z) z`` (``z = (x - max) / T``) in a second sweep from L1,
with the running maximum rescaling what was summed before it grew; the
statistics follow from the row's maximum and these sums. Contiguous float32
and float64 logits are handed to it as NumPy views, without a copy; other
logits (bfloat16, float16, or not contiguous) are first copied to float32 (or
float64) in one torch call, into memory advised onto huge pages
(:mod:`._memory`). One call, not a chunk at a time: torch's threads spin for a
while after each of its parallel operations, and alternating them with the
kernel's own threads on the same cores was measured several times slower.
Where the kernel does not apply (no compiled library, zero classes) the plain
torch operations of :mod:`.stats_torch` compute the statistics instead.

Importing this module imports torch.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _kernels as binding
from . import stats_torch
from ._memory import advise_huge_pages
from .torch_ops import work_dtype

__all__ = ["NAME", "token_statistics"]

NAME = "cpu"


def token_statistics(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None, temperature: float
) -> stats_torch.Statistics:
    """``(logprob, entropy, rank, top1, lse)`` of CPU logits ``(n, V)`` with checked int64 targets ``(n,)``."""
    acc = work_dtype(logits.dtype)
    x = logits.detach()
    if x.dtype != acc or not x.is_contiguous():
        x = torch.empty(x.shape, dtype=acc)
        advise_huge_pages(x.data_ptr(), x.untyped_storage().nbytes())
        x.copy_(logits)
    labels: np.ndarray = targets.detach().to(torch.int64).contiguous().numpy()
    found = binding.token_statistics(x.numpy(), labels, ignore_index=ignore_index, temperature=temperature)
    if found is None:
        return stats_torch.token_statistics(logits, targets, ignore_index=ignore_index, temperature=temperature)
    logprob, entropy, rank, top1, lse = (torch.from_numpy(a) for a in found)
    return logprob.to(acc), entropy.to(acc), rank, top1.to(acc), lse.to(acc)
