"""Vocabulary-parallel cross-entropy over ``torch.distributed``.

Each rank of a tensor-parallel group holds a contiguous slice of the
vocabulary (the last axis of the logits); slices may have different widths.
The standard algorithm combines the slices with two all-reduces per call:
the row maximum (MAX), then one SUM of the stacked sum of exponentials, the
target's shifted logit (non-zero on the rank that owns the target) and, for
label smoothing, the sum of shifted logits. The backward pass is local:
``softmax - target`` on each rank's slice, no collective.

Unlike Megatron-LM's version, label smoothing uses the *global* vocabulary
size and sum, so every rank computes the same loss, equal to PyTorch's
``F.cross_entropy(..., label_smoothing=eps)`` on the gathered logits; and
labels outside the vocabulary are errors, not silently wrong.

Importing this module imports torch.

Examples
--------
In each of ``world_size`` processes after ``torch.distributed.init_process_group``::

    from crossentropy.distributed import vocab_parallel_cross_entropy
    loss = vocab_parallel_cross_entropy(logits_shard, labels, ignore_index=-100, label_smoothing=0.1)
    loss.backward()
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from ._validation import InputError, check_choice, check_unit_interval

__all__ = ["vocab_parallel_cross_entropy", "vocab_range"]


def vocab_range(local_size: int, group: Any = None) -> tuple[int, int, int]:
    """``(start, end, total)`` of this rank's vocabulary slice (one all-gather of the widths)."""
    world = dist.get_world_size(group)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local_size], dtype=torch.int64), group=group)
    widths = [int(s.item()) for s in sizes]
    rank = dist.get_rank(group)
    start = sum(widths[:rank])
    return start, start + local_size, sum(widths)


class _VocabParallelCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        logits: torch.Tensor,
        labels: torch.Tensor,
        start: int,
        total: int,
        ignore_index: int,
        smoothing: float,
        group: Any,
    ) -> torch.Tensor:
        x = logits.float()
        local = x.shape[-1]
        row_max = x.max(dim=-1).values
        dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=group)
        shifted = x - row_max.unsqueeze(-1)
        exp = shifted.exp()
        valid = labels != ignore_index
        owned = valid & (labels >= start) & (labels < start + local)
        index = torch.where(owned, labels - start, torch.zeros_like(labels)).unsqueeze(-1)
        picked = torch.gather(shifted, -1, index).squeeze(-1)
        target = torch.where(owned, picked, torch.zeros_like(picked))
        stats = torch.stack([exp.sum(-1), target, shifted.sum(-1)], dim=-1)
        dist.all_reduce(stats, op=dist.ReduceOp.SUM, group=group)
        sum_exp, target_logit, sum_shifted = stats.unbind(-1)
        log_sum = sum_exp.log()
        loss = (1.0 - smoothing) * (log_sum - target_logit)
        if smoothing:
            loss = loss + smoothing / total * (total * log_sum - sum_shifted)
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        ctx.save_for_backward(exp / sum_exp.unsqueeze(-1), owned, index, valid)
        ctx.smoothing, ctx.total = smoothing, total
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[Any, ...]:
        softmax, owned, index, valid = ctx.saved_tensors
        grad = softmax - ctx.smoothing / ctx.total
        grad.scatter_add_(-1, index, -(1.0 - ctx.smoothing) * owned.to(grad.dtype).unsqueeze(-1))
        grad = grad * (grad_loss * valid).unsqueeze(-1)
        return grad, None, None, None, None, None, None


def vocab_parallel_cross_entropy(
    logits_shard: torch.Tensor,
    labels: torch.Tensor,
    group: Any = None,
    *,
    vocab_start: int | None = None,
    vocab_size: int | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of logits whose vocabulary axis is split across the ranks of ``group``.

    Parameters
    ----------
    logits_shard : torch.Tensor
        This rank's logits ``(..., V_local)``: columns ``[vocab_start,
        vocab_start + V_local)`` of the full vocabulary.
    labels : torch.Tensor
        Integer targets in ``[0, V)`` over the *full* vocabulary, shape
        ``logits_shard.shape[:-1]``; ``ignore_index`` entries are skipped.
    group : ProcessGroup, optional
        The tensor-parallel group (default: the world).
    vocab_start, vocab_size : int, optional
        This rank's first column and the full vocabulary size; found with one
        all-gather of the slice widths when omitted.
    ignore_index : int, default -100
        Label value to skip (loss 0, excluded from the mean), as PyTorch.
    label_smoothing : float, default 0
        PyTorch's smoothing ``(1 - eps) onehot + eps / V`` over the full vocabulary.
    reduction : {"mean", "sum", "none"}
        The mean is over non-ignored targets (NaN when all are ignored).

    Returns
    -------
    torch.Tensor
        The same value on every rank, equal to
        ``F.cross_entropy(gathered_logits, labels, ...)``; differentiable.

    Raises
    ------
    InputError
        For labels out of range, mismatched shapes or bad options.
    """
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    eps = check_unit_interval("label_smoothing", label_smoothing)
    if not dist.is_available() or not dist.is_initialized():
        raise InputError("vocab_parallel_cross_entropy needs an initialised torch.distributed process group")
    if tuple(labels.shape) != tuple(logits_shard.shape[:-1]):
        raise InputError(
            f"labels must have shape {tuple(logits_shard.shape[:-1])} (the logits without the "
            f"vocabulary axis), got {tuple(labels.shape)}"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise InputError(f"labels must be integers, got {labels.dtype}")
    if vocab_start is None or vocab_size is None:
        start, _, total = vocab_range(logits_shard.shape[-1], group)
        vocab_start = start if vocab_start is None else vocab_start
        vocab_size = total if vocab_size is None else vocab_size
    labels = labels.long()
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= vocab_size))
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        raise InputError(
            f"labels{list(position)} = {int(labels[position])} is out of range; labels must be in "
            f"[0, {vocab_size}) or equal ignore_index={ignore_index}"
        )
    losses = _VocabParallelCrossEntropy.apply(logits_shard, labels, vocab_start, vocab_size, ignore_index, eps, group)
    if reduction == "none":
        return losses.to(logits_shard.dtype)
    total_loss = losses.sum()
    if reduction == "sum":
        return total_loss.to(logits_shard.dtype)
    count = (labels != ignore_index).sum()
    return (total_loss / count).to(logits_shard.dtype)
