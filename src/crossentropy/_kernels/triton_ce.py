"""Triton kernels for CUDA tensors (private): fused sparse cross-entropy, and linear + cross-entropy.

``fused_cross_entropy`` reads each row of logits once (an online maximum and
sum of exponentials over vocabulary blocks, accumulated in float32 for
float32/bfloat16/float16 inputs, 64-bit row offsets) and, in the same
kernel, writes the gradient of the reduced loss, optionally into the logits
buffer itself. The backward pass only scales that gradient by the incoming
one, so nothing else is kept. ignore_index, label smoothing, class weights
(``weight``) and per-token weights, z-loss, logit soft-capping and the three
reductions are supported; the mean's denominator is computed on the device,
so there is no host synchronisation. The operation is registered as a torch
custom op with a fake implementation, so ``torch.compile(fullgraph=True)``
and CUDA graphs can trace it.

``linear_cross_entropy(hidden, weight, labels)`` never materialises the N x V
logits: it walks over row blocks, computes one block's logits with a matmul,
runs the fused kernel on it in place, and accumulates the gradients of
``hidden`` and ``weight`` from that block.

The same kernels run on the CPU with ``TRITON_INTERPRET=1`` (the tests).
Importing this module imports torch and triton.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from ..torch import _GradientsFromForward

__all__ = ["fused_cross_entropy", "linear_cross_entropy"]


@triton.jit  # type: ignore[untyped-decorator]
def _ce_kernel(
    logits_ptr: Any,
    row_stride: Any,
    labels_ptr: Any,
    class_weight_ptr: Any,
    token_weight_ptr: Any,
    loss_ptr: Any,
    grad_ptr: Any,
    grad_stride: Any,
    scale_ptr: Any,
    n_cols: Any,
    ignore_index: Any,
    smoothing: Any,
    z_loss: Any,
    softcap: Any,
    weight_sum: Any,
    HAS_CLASS_WEIGHT: tl.constexpr,
    HAS_TOKEN_WEIGHT: tl.constexpr,
    HAS_GRAD: tl.constexpr,
    SOFTCAP: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * row_stride
    label = tl.load(labels_ptr + row).to(tl.int64)
    valid = label != ignore_index
    m = -float("inf")
    s = 0.0
    sum_wx = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(base + cols, mask=mask, other=-float("inf")).to(tl.float32)
        if SOFTCAP:
            x = softcap * (2.0 * tl.sigmoid(2.0 * x / softcap) - 1.0)
            x = tl.where(mask, x, -float("inf"))
        block_max = tl.max(x, 0)
        new_m = tl.maximum(m, block_max)
        safe_m = tl.where(new_m == -float("inf"), 0.0, new_m)
        s = s * tl.exp(m - safe_m) + tl.sum(tl.exp(x - safe_m), 0)
        m = new_m
        if HAS_CLASS_WEIGHT:
            w = tl.load(class_weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            sum_wx += tl.sum(tl.where(mask & (w != 0), w * x, 0.0), 0)
        else:
            sum_wx += tl.sum(tl.where(mask, x, 0.0), 0)
    lse = m + tl.log(s)
    safe_label = tl.where(valid, label, 0)
    x_y = tl.load(base + safe_label).to(tl.float32)
    if SOFTCAP:
        x_y = softcap * (2.0 * tl.sigmoid(2.0 * x_y / softcap) - 1.0)
    w_y = 1.0
    if HAS_CLASS_WEIGHT:
        w_y = tl.load(class_weight_ptr + safe_label).to(tl.float32)
    token_w = 1.0
    if HAS_TOKEN_WEIGHT:
        token_w = tl.load(token_weight_ptr + row).to(tl.float32)
    loss = (1.0 - smoothing) * w_y * (lse - x_y) + z_loss * lse * lse
    if smoothing > 0:
        loss += smoothing / n_cols * (lse * weight_sum - sum_wx)
    loss = tl.where(valid, loss * token_w, 0.0)
    tl.store(loss_ptr + row, loss)
    if HAS_GRAD:
        scale = tl.load(scale_ptr) * token_w
        scale = tl.where(valid, scale, 0.0)
        coef = scale * ((1.0 - smoothing) * w_y + smoothing / n_cols * weight_sum + 2.0 * z_loss * lse)
        gbase = grad_ptr + row * grad_stride
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            raw = tl.load(base + cols, mask=mask, other=0.0).to(tl.float32)
            x = raw
            if SOFTCAP:
                x = softcap * (2.0 * tl.sigmoid(2.0 * raw / softcap) - 1.0)
            p = tl.exp(x - lse)
            w = 1.0
            if HAS_CLASS_WEIGHT:
                w = tl.load(class_weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            g = coef * p - scale * smoothing / n_cols * w
            g = tl.where(cols == label, g - scale * (1.0 - smoothing) * w_y, g)
            if SOFTCAP:
                t = x / softcap
                g = g * (1.0 - t * t)
            tl.store(gbase + cols, g.to(grad_ptr.dtype.element_ty), mask=mask)


def _block(n_cols: int) -> int:
    return max(16, min(8192 if not _interpreting() else 64, triton.next_power_of_2(n_cols)))


def _interpreting() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _denominator(
    labels: torch.Tensor,
    ignore_index: int,
    class_weight: torch.Tensor | None,
    token_weight: torch.Tensor | None,
    reduction: str,
) -> torch.Tensor:
    """What the mean divides by, on the device (sum of the weights of the non-ignored targets)."""
    if reduction != "mean":
        return torch.ones((), dtype=torch.float32, device=labels.device)
    valid = labels != ignore_index
    w = valid.to(torch.float32)
    if class_weight is not None:
        w = w * class_weight.float()[torch.where(valid, labels, 0)]
    if token_weight is not None:
        w = w * token_weight.float()
    return w.sum()


def _launch(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    token_weight: torch.Tensor | None,
    ignore_index: int,
    smoothing: float,
    z_loss: float,
    softcap: float,
    grad: torch.Tensor | None,
    scale: torch.Tensor,
) -> torch.Tensor:
    n, v = logits.shape
    loss = torch.empty(n, dtype=torch.float32, device=logits.device)
    weight_sum = float(v) if class_weight is None else 0.0
    if class_weight is not None and smoothing > 0:
        weight_sum = float(class_weight.float().sum())  # a host read only with smoothing and class weights
    if n:
        _ce_kernel[(n,)](
            logits,
            logits.stride(0),
            labels,
            class_weight if class_weight is not None else logits,
            token_weight if token_weight is not None else logits,
            loss,
            grad if grad is not None else logits,
            grad.stride(0) if grad is not None else 0,
            scale,
            v,
            ignore_index,
            smoothing,
            z_loss,
            softcap or 1.0,
            weight_sum,
            HAS_CLASS_WEIGHT=class_weight is not None,
            HAS_TOKEN_WEIGHT=token_weight is not None,
            HAS_GRAD=grad is not None,
            SOFTCAP=bool(softcap),
            BLOCK=_block(v),
        )
    return loss


@torch.library.custom_op("crossentropy::fused_cross_entropy", mutates_args=())
def _fused_op(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    token_weight: torch.Tensor | None,
    ignore_index: int,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    scale = 1.0 / _denominator(labels, ignore_index, class_weight, token_weight, reduction)
    grad = torch.empty_like(logits) if want_grad else logits.new_empty((0, logits.shape[1]))
    losses = _launch(
        logits,
        labels,
        class_weight,
        token_weight,
        ignore_index,
        smoothing,
        z_loss,
        softcap,
        grad if want_grad else None,
        scale.reshape(1).float(),
    )
    if reduction == "none":
        out = losses
    else:
        out = losses.sum() * (scale if reduction == "mean" else 1.0)
    return out.to(logits.dtype), grad


@_fused_op.register_fake
def _(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    token_weight: torch.Tensor | None,
    ignore_index: int,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
    want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    out = logits.new_empty(labels.shape) if reduction == "none" else logits.new_empty(())
    grad = torch.empty_like(logits) if want_grad else logits.new_empty((0, logits.shape[1]))
    return out, grad


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    ctx.save_for_backward(output[1])
    ctx.reduction = inputs[8]


def _backward(ctx: Any, grad_out: torch.Tensor, _grad_grad: torch.Tensor) -> tuple[Any, ...]:
    (grad,) = ctx.saved_tensors
    g = grad_out.float()
    scaled = grad * (g.unsqueeze(-1) if ctx.reduction == "none" else g)
    return scaled.to(grad.dtype), None, None, None, None, None, None, None, None, None


_fused_op.register_autograd(_backward, setup_context=_setup_context)


def fused_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    token_weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sparse cross-entropy of logits ``(N, V)`` with the fused Triton kernel.

    Same numbers as ``F.cross_entropy`` (class weights ``weight``, the mean
    over the summed weights of non-ignored targets), plus ``token_weight``,
    ``z_loss * logsumexp**2`` and soft-capping ``softcap * tanh(x / softcap)``.
    """
    want_grad = logits.requires_grad and torch.is_grad_enabled()
    out, _ = _fused_op(
        logits.contiguous(),
        labels.contiguous(),
        weight,
        token_weight,
        ignore_index,
        float(label_smoothing),
        float(z_loss),
        float(softcap),
        reduction,
        want_grad,
    )
    return out


def fused_value_and_grad_(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """The loss, with the gradient of the reduced loss written **into** ``logits`` (in place)."""
    scale = 1.0 / _denominator(labels, ignore_index, None, None, reduction)
    losses = _launch(
        logits, labels, None, None, ignore_index, label_smoothing, 0.0, 0.0, logits, scale.reshape(1).float()
    )
    return losses if reduction == "none" else losses.sum() * (scale if reduction == "mean" else 1.0)


class _LinearCrossEntropy(_GradientsFromForward):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        labels: torch.Tensor,
        ignore_index: int,
        smoothing: float,
        reduction: str,
        chunk: int,
    ) -> torch.Tensor:
        n = hidden.shape[0]
        scale = 1.0 / _denominator(labels, ignore_index, None, None, reduction)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk):
            end = min(n, start + chunk)
            logits = hidden[start:end] @ weight.t()
            losses = _launch(
                logits,
                labels[start:end],
                None,
                None,
                ignore_index,
                smoothing,
                0.0,
                0.0,
                logits,
                scale.reshape(1).float(),
            )
            total += losses.sum()
            grad_hidden[start:end] = logits @ weight
            grad_weight += (logits.t() @ hidden[start:end]).float()
            del logits
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return (total * scale if reduction == "mean" else total).to(hidden.dtype)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T, labels)`` without the N x V logits.

    Row blocks of ``chunk_size`` (default: about 256 MiB of logits) are
    projected, reduced by the fused kernel in place and turned into the
    gradients of ``hidden`` and ``weight`` at once; memory is the gradient
    buffers plus one block. ``reduction`` is ``"mean"`` or ``"sum"``.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError("linear_cross_entropy supports reduction='mean' or 'sum'")
    v = weight.shape[0]
    chunk = chunk_size or max(1, (256 << 20) // max(1, v * hidden.element_size()))
    return _LinearCrossEntropy.apply(
        hidden, weight, labels, ignore_index, float(label_smoothing), reduction, int(chunk)
    )
