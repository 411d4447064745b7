"""Vocabulary-parallel cross-entropy over ``torch.distributed``.

Each rank of a tensor-parallel group holds a contiguous slice of the
vocabulary (the last axis of the logits); slices may have different widths,
including zero. Every rank computes its slice's row statistics with the same
per-row kernels as the single-process loss (the C kernel for CPU shards,
Triton for CUDA shards, plain torch operations elsewhere): the maximum
``m``, ``s = sum exp(x - m)`` and, for label smoothing, ``d = sum_j w_j (m -
x_j)``. Two collectives on the logits' device combine them: a MAX of the
row maxima, then one SUM of the rescaled sums, the target's logit (non-zero
on the rank that owns the target), the smoothing sums and an invalid-row
count. The backward pass is local: the same kernel writes ``softmax -
target`` for the slice, into one new buffer or, with
``inplace_backward=True``, into the logits themselves.

The numbers are PyTorch's ``F.cross_entropy`` on the gathered logits, in the
logits' own dtype (float64 stays float64), with class weights, label
smoothing over the *global* vocabulary (so every rank computes the same
loss, unlike Megatron-LM), z-loss, and the three reductions. Labels outside
the vocabulary and NaN or ``+inf`` logits are errors on every rank at once,
never a silently wrong number or a rank left waiting.

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

from . import _dispatch_dropin
from ._kernels import rows
from ._validation import InputError, check_choice, check_nonnegative, check_unit_interval

__all__ = ["vocab_parallel_cross_entropy", "vocab_range"]


def vocab_range(local_size: int, group: Any = None, *, device: Any = "cpu") -> tuple[int, int, int]:
    """``(start, end, total)`` of this rank's vocabulary slice (one all-gather of the widths on ``device``)."""
    world = dist.get_world_size(group)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local_size], dtype=torch.int64, device=device), group=group)
    widths = [int(s.item()) for s in sizes]
    rank = dist.get_rank(group)
    start = sum(widths[:rank])
    return start, start + local_size, sum(widths)


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """Per-row losses of a vocabulary-sharded row; the backward pass is local to the shard.

    The statistics come from the shard's kernel and two all-reduces; what is
    made of them, loss and gradient, is the single-process formula
    (:mod:`crossentropy._kernels.rows`).
    """

    @staticmethod
    def forward(
        ctx: Any,
        shard: torch.Tensor,
        labels: torch.Tensor,
        class_weight: torch.Tensor | None,
        start: int,
        total: int,
        ignore_index: int | None,
        smoothing: float,
        z_loss: float,
        group: Any,
        inplace_backward: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kernel = _dispatch_dropin.vocab_shard_kernel(shard)
        local = shard.shape[-1]
        flat = labels.reshape(-1)
        x = shard.detach().reshape(flat.numel(), local)
        acc = rows.work_dtype(shard.dtype)
        cw_local = None if class_weight is None else class_weight[start : start + local]
        m, s, d = kernel.row_stats(x, class_weight=cw_local, need_dsum=smoothing > 0)
        bad = torch.isnan(m)
        big = torch.where(bad, -torch.inf, m)
        dist.all_reduce(big, op=dist.ReduceOp.MAX, group=group)
        safe_big = torch.where(big == -torch.inf, 0.0, big)
        mine = rows.targets(flat, ignore_index, start, local)  # the rows whose target is on this shard
        picked = rows.target_terms(x, mine, None, acc)[0]
        w_local = float(local) if cw_local is None else cw_local.to(acc).sum()
        scaled_s = torch.where(m == -torch.inf, 0.0, s * torch.exp(torch.where(bad, 0.0, m) - safe_big))
        gap = torch.where(m == -torch.inf, torch.inf, safe_big - m)
        scaled_d = d + torch.where(torch.as_tensor(w_local) == 0, 0.0, w_local * gap)
        stats = torch.stack([scaled_s, scaled_d, picked, bad.to(acc)])
        dist.all_reduce(stats, op=dist.ReduceOp.SUM, group=group)
        big_s, big_d, target_logit, bad_count = stats.unbind(0)
        log_s = torch.log(big_s)
        every = rows.targets(flat, ignore_index, 0, total)
        w_y = rows.class_weights(every, class_weight, acc)
        formula = rows.Formula.of(total, class_weight, acc, smoothing, z_loss)
        bad_label = every.valid & ~every.owned
        loss = rows.row_loss(
            big, log_s, big_d, target_logit, w_y, valid=every.valid, bad_label=bad_label, formula=formula
        )
        invalid = (bad_count > 0) | (big == -torch.inf)
        ctx.save_for_backward(shard, class_weight, big, log_s, w_y, mine.owned, mine.col, every.valid, bad_label)
        ctx.options = (start, formula, inplace_backward)
        ctx.mark_non_differentiable(invalid, w_y)
        return loss.reshape(labels.shape), invalid, w_y

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second derivative raises: never a gradient without a graph
    def backward(ctx: Any, grad_loss: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        shard, class_weight, big, log_s, w_y, owned, col, valid, bad_label = ctx.saved_tensors
        start, formula, inplace = ctx.options
        local = shard.shape[-1]
        n = valid.numel()
        kernel = _dispatch_dropin.vocab_shard_kernel(shard)
        r = rows.row_gradient(
            rows.row_scale(grad_loss.reshape(-1), n, "none", w_y, valid),
            big,
            log_s,
            w_y,
            bad_label=bad_label,
            formula=formula,
        )
        grad = shard.detach() if inplace else torch.empty_like(shard)
        cw_local = None if class_weight is None or not formula.smoothing else class_weight[start : start + local]
        kernel.softmax_grad(
            shard.detach().reshape(n, local),
            r.m,
            log_s,
            r.coef,
            torch.where(owned, col, -1),
            r.target_coef,
            off=r.off,
            class_weight=cw_local,
            grad=grad.reshape(n, local),
        )
        return grad, None, None, None, None, None, None, None, None, None


def vocab_parallel_cross_entropy(
    logits_shard: torch.Tensor,
    labels: torch.Tensor,
    group: Any = None,
    *,
    vocab_start: int | None = None,
    vocab_size: int | None = None,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
    inplace_backward: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    """Cross-entropy of logits whose vocabulary axis is split across the ranks of ``group``.

    Parameters
    ----------
    logits_shard : torch.Tensor
        This rank's logits ``(..., V_local)``: columns ``[vocab_start,
        vocab_start + V_local)`` of the full vocabulary (``V_local`` may be 0).
    labels : torch.Tensor
        Integer targets in ``[0, V)`` over the *full* vocabulary, shape
        ``logits_shard.shape[:-1]``, the same on every rank; ``ignore_index``
        entries are skipped (compared as integers of unbounded range: 300 is
        no uint8 label).
    group : ProcessGroup, optional
        The tensor-parallel group (default: the world).
    vocab_start, vocab_size : int, optional
        This rank's first column and the full vocabulary size; found with one
        all-gather of the slice widths (on the logits' device) when omitted.
    weight : torch.Tensor, optional
        Class weights for the *full* vocabulary ``(V,)``, as PyTorch's
        ``weight``: each target's loss is scaled by its class weight (inside
        the smoothing term too) and the mean divides by the summed weights.
    ignore_index : int, default -100
        Label value to skip (loss 0, excluded from the mean), as PyTorch.
    label_smoothing : float, default 0
        PyTorch's smoothing ``(1 - eps) onehot + eps / V`` over the full vocabulary.
    z_loss : float, default 0
        Coefficient of ``logsumexp(x)**2`` added per target (PaLM).
    reduction : {"mean", "sum", "none"}
        The mean is over non-ignored targets (NaN when all are ignored).
    inplace_backward : bool, default False
        Write the gradient into ``logits_shard`` itself (no new shard-sized
        buffer); the logits are overwritten by the backward pass.
    validate : bool, default True
        Check labels and logits (one host read per call); errors are raised
        on every rank together.

    Returns
    -------
    torch.Tensor
        The same value on every rank, equal to
        ``F.cross_entropy(gathered_logits, labels, ...)`` in the logits' dtype;
        differentiable with respect to ``logits_shard`` (once: asking autograd
        for a second derivative raises, it is never silently dropped).

    Raises
    ------
    InputError
        For labels out of range, NaN or ``+inf`` logits, a row whose logits
        are all ``-inf``, mismatched shapes or bad options.
    """
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    eps = check_unit_interval("label_smoothing", label_smoothing)
    z = check_nonnegative("z_loss", z_loss)
    if not dist.is_available() or not dist.is_initialized():
        raise InputError("vocab_parallel_cross_entropy needs an initialised torch.distributed process group")
    if tuple(labels.shape) != tuple(logits_shard.shape[:-1]):
        raise InputError(
            f"labels must have shape {tuple(logits_shard.shape[:-1])} (the logits without the "
            f"vocabulary axis), got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise InputError(f"labels must be integers, got {labels.dtype}")
    if vocab_start is None or vocab_size is None:
        start, _, total = vocab_range(logits_shard.shape[-1], group, device=logits_shard.device)
        vocab_start = start if vocab_start is None else vocab_start
        vocab_size = total if vocab_size is None else vocab_size
    if weight is not None:
        if tuple(weight.shape) != (vocab_size,):
            raise InputError(f"weight must have shape ({vocab_size},), one weight per class; got {tuple(weight.shape)}")
        weight = weight.to(logits_shard.device)
    labels, ignore = rows.index_labels(labels, ignore_index)  # compared as unbounded integers
    if validate:
        every = rows.targets(labels, ignore, 0, vocab_size)
        bad = every.valid & ~every.owned
        if bool(bad.any()):
            position = tuple(int(i) for i in bad.nonzero()[0])
            raise InputError(
                f"labels{list(position)} = {int(labels[position])} is out of range; labels must be in "
                f"[0, {vocab_size}) or equal ignore_index={ignore_index}"
            )
    losses, invalid, w_y = _VocabParallelCrossEntropy.apply(
        logits_shard, labels, weight, vocab_start, vocab_size, ignore, eps, z, group, inplace_backward
    )
    if validate:
        _raise_invalid(invalid, logits_shard)
    return rows.reduce(losses, reduction, w_y.reshape(losses.shape)).to(logits_shard.dtype)


def _raise_invalid(invalid: torch.Tensor, shard: torch.Tensor) -> None:
    """Raise on every rank for a row with a NaN or ``+inf`` logit on some rank, or only ``-inf`` logits."""
    if not bool(invalid.any()):
        return
    row = int(invalid.nonzero()[0, 0])
    local = shard.detach().reshape(invalid.numel(), shard.shape[-1])[row]
    here = (torch.isnan(local) | (local == torch.inf)).nonzero()
    where = f"; on this rank column {int(here[0, 0])} is {float(local[here[0, 0]])}" if here.numel() else ""
    raise InputError(
        f"logits row {row} holds a NaN or +inf logit or has only -inf logits (across the vocabulary shards){where}; "
        "logits must be finite or -inf, with at least one finite per row"
    )
