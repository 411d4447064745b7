"""Autograd plumbing shared by the fused kernels (private): two torch custom ops and their drivers.

Both paths, the C kernel on CPU tensors (:mod:`.torch_cpu`) and Triton on
CUDA tensors (:mod:`.triton_ce`), as well as plain torch operations
(:mod:`.torch_ops`), offer the same per-row function ``value_and_grad_``.
This module turns it into two operations that autograd and
``torch.compile`` understand, whichever kernel runs underneath (the caller,
:mod:`crossentropy._dispatch`, names the kernel module):

- ``crossentropy::sparse_cross_entropy``: cross-entropy of logits ``(n, V)``
  with integer labels; the forward pass keeps only each row's maximum and
  log-sum-exp (the kernels' row statistics), the backward pass writes
  ``softmax - target`` from them in one pass (as Cut Cross-Entropy does), so
  no ``n x V`` buffer lives between the two;
- ``crossentropy::linear_cross_entropy``: ``cross_entropy(hidden @ weight.T
  + bias, labels)`` over row blocks, so the ``n x V`` logits never exist:
  each block's logits are computed, turned into their gradient in place by
  the kernel, and folded into the gradients of ``hidden``, ``weight`` and
  ``bias``. Without a gradient to compute (``torch.no_grad()`` or no input
  requiring one) each block costs one matrix product and no gradient buffer
  is allocated. With ``reduction="none"`` the backward pass recomputes the
  blocks, scaled by the incoming per-row gradient.

Both are registered with fake (meta) implementations, so
``torch.compile(fullgraph=True)`` traces them without a graph break, and
neither reads a value back to the host. Importing this module imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

import torch

from ._memory import advise_huge_pages
from .torch_ops import work_dtype

__all__ = ["linear_cross_entropy", "sparse_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


def _kernel(name: str) -> Any:
    """The kernel module ``crossentropy._kernels.<name>`` (already imported by the dispatcher)."""
    return importlib.import_module(f"{__package__}.{name}")


def _huge(out: torch.Tensor) -> torch.Tensor:
    """``out``, a new tensor not written yet; on the CPU a large one is advised onto huge pages (:mod:`._memory`)."""
    if out.device.type == "cpu":
        advise_huge_pages(out.data_ptr(), out.untyped_storage().nbytes())
    return out


def _denominator(
    labels: torch.Tensor, n_cols: int, ignore_index: int | None, class_weight: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """What PyTorch's mean divides by: the summed class weights of the non-ignored targets (on the device)."""
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    w = valid.to(dtype)
    if class_weight is not None:
        w = w * class_weight.to(dtype)[labels.clamp(0, max(n_cols - 1, 0))]
    return w.sum()


def _reduced(losses: torch.Tensor, reduction: str, scale: torch.Tensor) -> torch.Tensor:
    if reduction == "none":
        return losses
    total = losses.sum()
    return total * scale if reduction == "mean" else total


# --- sparse cross-entropy of logits ----------------------------------------------------------------------


def _capped(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """``softcap * tanh(x / softcap)`` in the accumulation dtype (the logits themselves without a cap)."""
    if not softcap:
        return logits
    x = logits.to(work_dtype(logits.dtype))
    return softcap * torch.tanh(x / softcap)


def _row_terms(
    x: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    ignore_index: int | None,
    acc: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: whether it counts, whether its label is in range, its target's logit and class weight."""
    n, v = x.shape
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    in_range = (labels >= 0) & (labels < v)
    safe = torch.where(valid & in_range, labels, 0).long()
    x_y = x.gather(-1, safe.unsqueeze(-1)).squeeze(-1).to(acc)
    w_y = torch.ones(n, dtype=acc, device=x.device) if class_weight is None else class_weight.to(acc)[safe]
    return valid, in_range, x_y, w_y


def _sparse_forward(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
    check_labels: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _n, v = logits.shape
    acc = work_dtype(logits.dtype)
    run = _kernel(kernel)
    if check_labels:
        run.assert_labels(labels, v, ignore_index)
    x = _capped(logits, softcap)
    m, s, d = run.row_stats(x, class_weight=class_weight, need_dsum=smoothing > 0)
    log_s = torch.log(s)
    lse = m + log_s
    valid, in_range, x_y, w_y = _row_terms(x, labels, class_weight, ignore_index, acc)
    losses = (1.0 - smoothing) * w_y * ((m - x_y) + log_s) + z_loss * lse * lse
    if smoothing > 0:
        w_sum = float(v) if class_weight is None else class_weight.to(acc).sum()
        losses = losses + smoothing / v * (w_sum * log_s + d)
    losses = torch.where(valid, torch.where(in_range, losses, torch.nan), 0.0)
    scale = torch.ones((), dtype=acc, device=logits.device)
    if reduction == "mean":
        scale = 1.0 / _denominator(labels, v, ignore_index, class_weight, acc)
    return _reduced(losses, reduction, scale).to(logits.dtype), m, log_s


_sparse_op = torch.library.custom_op("crossentropy::sparse_cross_entropy", _sparse_forward, mutates_args=())


@_sparse_op.register_fake
def _(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
    check_labels: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = logits.new_empty(labels.shape) if reduction == "none" else logits.new_empty(())
    stats = logits.new_empty(labels.shape, dtype=work_dtype(logits.dtype))
    return out, stats, torch.empty_like(stats)


def _sparse_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    logits, labels, class_weight, kernel, ignore, smoothing, z_loss, softcap, reduction, _ = inputs
    ctx.save_for_backward(logits, labels, class_weight, output[1], output[2])
    ctx.options = (kernel, ignore, smoothing, z_loss, softcap, reduction)
    ctx.mark_non_differentiable(output[1], output[2])


def _sparse_grad(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    m: torch.Tensor,
    log_s: torch.Tensor,
    grad_out: torch.Tensor,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
) -> torch.Tensor:
    """``g_i (A_i softmax_i - a_i)`` from the saved row statistics: one pass, one new buffer."""
    n, v = logits.shape
    acc = m.dtype
    x = _capped(logits, softcap)
    valid, _, _, w_y = _row_terms(x, labels, class_weight, ignore_index, acc)
    g = torch.broadcast_to(grad_out.to(acc), (n,))
    if reduction == "mean":
        g = g / _denominator(labels, v, ignore_index, class_weight, acc)
    g = torch.where(valid, g, 0.0)  # ignored rows have no gradient, even when every row is ignored (0 / 0)
    w_sum = float(v) if class_weight is None else class_weight.to(acc).sum()
    lse = m + log_s
    coef = g * ((1.0 - smoothing) * w_y + smoothing / v * w_sum + 2.0 * z_loss * lse)
    grad = _huge(torch.empty_like(x if softcap else logits))
    _kernel(kernel).softmax_grad(
        x,
        m,
        log_s,
        coef,
        torch.where(valid, labels, -1),
        g * (1.0 - smoothing) * w_y,
        off=g * smoothing / v,
        class_weight=class_weight,
        grad=grad,
    )
    if softcap:
        grad = (grad * (1.0 - (x / softcap) ** 2)).to(logits.dtype)
    return grad


_sparse_grad_op = torch.library.custom_op("crossentropy::sparse_cross_entropy_backward", _sparse_grad, mutates_args=())


@_sparse_grad_op.register_fake
def _(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    m: torch.Tensor,
    log_s: torch.Tensor,
    grad_out: torch.Tensor,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    z_loss: float,
    softcap: float,
    reduction: str,
) -> torch.Tensor:
    return torch.empty_like(logits)


def _sparse_backward_with(grad: Any) -> Any:
    """The backward pass, computing the gradient with ``grad`` (the custom op when traced, else the function)."""

    def backward(ctx: Any, grad_out: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        logits, labels, class_weight, m, log_s = ctx.saved_tensors
        return (grad(logits, labels, class_weight, m, log_s, grad_out, *ctx.options), *([None] * 9))

    return backward


_sparse_op.register_autograd(_sparse_backward_with(_sparse_grad_op), setup_context=_sparse_setup)


class _SparseFunction(torch.autograd.Function):
    """The same operation as an autograd Function, for eager calls (see :func:`_eager`)."""

    forward = staticmethod(_sparse_forward)
    setup_context = staticmethod(_sparse_setup)
    backward = staticmethod(_sparse_backward_with(_sparse_grad))


def _eager() -> bool:
    """Outside ``torch.compile`` the operations run as plain autograd Functions.

    A registered custom op imports ``torch._dynamo`` (and with it Triton) on
    its first eager call; Triton's LLVM clashes with the one jaxlib and
    TensorFlow load, which aborts a process that imported either first. The
    Functions share the ops' forward, context and backward code, so both
    compute the same thing; the ops are what ``torch.compile`` traces.
    """
    return not torch.compiler.is_compiling()


def sparse_cross_entropy(
    kernel: str,
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    reduction: str = "mean",
    check_labels: bool = False,
) -> torch.Tensor:
    """Cross-entropy of logits ``(n, V)`` with labels ``(n,)`` on kernel module ``kernel``; differentiable.

    The forward pass reads the logits once for each row's maximum and
    log-sum-exp and keeps only those (two numbers per row); the backward pass
    writes ``softmax - target``, scaled by the incoming gradient, in one pass.
    The mean divides by the summed class weights of the non-ignored targets
    (PyTorch's rule); ``check_labels`` raises PyTorch's error for a label out
    of range, otherwise such a row's loss is NaN.
    """
    op: Any = _SparseFunction.apply if _eager() else _sparse_op
    out, _, _ = op(
        logits.contiguous(),
        labels.contiguous(),
        class_weight,
        kernel,
        ignore_index,
        float(label_smoothing),
        float(z_loss),
        float(softcap),
        reduction,
        check_labels,
    )
    return cast(torch.Tensor, out)


# --- linear + cross-entropy, blocked over rows -----------------------------------------------------------


def _linear_forward(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    row_scale: torch.Tensor | None,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    softcap: float,
    reduction: str,
    chunk: int,
    grad_hidden: bool,
    grad_weight: bool,
    check_labels: bool,
    upcast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n, v = hidden.shape[0], weight.shape[0]
    acc = work_dtype(hidden.dtype)
    run = _kernel(kernel).value_and_grad_
    # upcast: the blocks' products in float32 for bfloat16/float16 inputs (PyTorch's "accurate" policy, its
    # default on the CPU), at the cost of one float32 copy of the weight
    w = weight.to(acc) if upcast else weight
    b = None if bias is None else bias.to(w.dtype)
    if row_scale is not None:
        scale = row_scale.to(acc)
    elif reduction == "mean":
        scale = 1.0 / _denominator(labels, v, ignore_index, class_weight, acc)
    else:
        scale = torch.ones((), dtype=acc, device=hidden.device)
    want = grad_hidden or grad_weight
    g_hidden = _huge(torch.empty_like(hidden)) if grad_hidden else hidden.new_empty((0,))
    g_weight = (
        _huge(torch.empty(weight.shape, dtype=acc, device=weight.device)) if grad_weight else weight.new_empty((0,))
    )
    g_bias = (
        torch.zeros(v, dtype=acc, device=weight.device) if grad_weight and bias is not None else weight.new_empty((0,))
    )
    if grad_weight and n == 0:
        g_weight.zero_()
    losses = torch.empty(n, dtype=acc, device=hidden.device)
    # one buffer for every block's logits (and, in place, their gradient): a new N x V allocation per block
    # would be page-faulted in again each time
    buffer = _huge(torch.empty((min(chunk, n), v), dtype=w.dtype, device=hidden.device))
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        block = hidden[start:end].to(w.dtype)
        logits = buffer[: end - start]
        torch.mm(block, w.t(), out=logits)
        if b is not None:
            logits += b
        losses[start:end] = run(
            logits,
            labels[start:end],
            class_weight=class_weight,
            ignore_index=ignore_index,
            smoothing=smoothing,
            z_loss=0.0,
            softcap=softcap,
            grad=logits if want else None,
            scale=scale[start:end] if scale.ndim else scale,
            check_labels=check_labels,
        )
        if grad_hidden:
            if g_hidden.dtype == logits.dtype:
                torch.mm(logits, w, out=g_hidden[start:end])
            else:
                g_hidden[start:end] = logits @ w
        if grad_weight:
            if g_weight.dtype != logits.dtype:  # low-precision weights: accumulate the blocks' products in float32
                product = (logits.t() @ block).to(acc)
                if start == 0:
                    g_weight.copy_(product)
                else:
                    g_weight.add_(product)
            elif start == 0:
                torch.mm(logits.t(), block, out=g_weight)
            else:
                g_weight.addmm_(logits.t(), block)
            if bias is not None:
                g_bias += logits.sum(0).to(acc)
    out = _reduced(losses, "none" if row_scale is not None else reduction, scale)
    return out, g_hidden, g_weight.to(weight.dtype), g_bias.to(weight.dtype)


_linear_op = torch.library.custom_op("crossentropy::linear_cross_entropy", _linear_forward, mutates_args=())


@_linear_op.register_fake
def _(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None,
    row_scale: torch.Tensor | None,
    kernel: str,
    ignore_index: int | None,
    smoothing: float,
    softcap: float,
    reduction: str,
    chunk: int,
    grad_hidden: bool,
    grad_weight: bool,
    check_labels: bool,
    upcast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    per_row = reduction == "none" or row_scale is not None
    acc = work_dtype(hidden.dtype)
    out = hidden.new_empty(labels.shape, dtype=acc) if per_row else hidden.new_empty((), dtype=acc)
    g_hidden = torch.empty_like(hidden) if grad_hidden else hidden.new_empty((0,))
    g_weight = torch.empty_like(weight) if grad_weight else weight.new_empty((0,))
    g_bias = weight.new_empty((weight.shape[0],)) if grad_weight and bias is not None else weight.new_empty((0,))
    return out, g_hidden, g_weight, g_bias


def _linear_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    hidden, weight, bias, labels, class_weight, _, kernel, ignore, smoothing, softcap, reduction, chunk = inputs[:12]
    ctx.per_row = reduction == "none"
    ctx.has_bias = bias is not None
    ctx.options = (kernel, ignore, smoothing, softcap, chunk, inputs[15])
    if ctx.per_row:  # the gradients depend on the incoming one per row: recompute them in the backward pass
        ctx.save_for_backward(hidden, weight, bias, labels, class_weight)
    else:
        ctx.save_for_backward(*output[1:])
    ctx.mark_non_differentiable(*output[1:])


def _linear_backward_with(recompute: Any) -> Any:
    """The backward pass; with ``reduction="none"`` it recomputes the blocks with ``recompute`` (the custom op
    when traced, else the function)."""

    def backward(ctx: Any, grad_out: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        return _linear_backward(ctx, grad_out, recompute)

    return backward


def _linear_backward(ctx: Any, grad_out: torch.Tensor, recompute: Any) -> tuple[Any, ...]:
    if not ctx.per_row:
        g_hidden, g_weight, g_bias = (g * grad_out.to(g.dtype) if g.numel() else None for g in ctx.saved_tensors)
    else:
        hidden, weight, bias, labels, class_weight = ctx.saved_tensors
        kernel, ignore, smoothing, softcap, chunk, upcast = ctx.options
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        _, g_hidden, g_weight, g_bias = recompute(
            hidden,
            weight,
            bias,
            labels,
            class_weight,
            grad_out,
            kernel,
            ignore,
            smoothing,
            softcap,
            "none",
            chunk,
            need_hidden,
            need_weight,
            False,
            upcast,
        )
        g_hidden, g_weight, g_bias = (g if g.numel() else None for g in (g_hidden, g_weight, g_bias))
    return (g_hidden, g_weight, g_bias if ctx.has_bias else None, *([None] * 13))


_linear_op.register_autograd(_linear_backward_with(_linear_op), setup_context=_linear_setup)


class _LinearFunction(torch.autograd.Function):
    """The same operation as an autograd Function, for eager calls (see :func:`_eager`)."""

    forward = staticmethod(_linear_forward)
    setup_context = staticmethod(_linear_setup)
    backward = staticmethod(_linear_backward_with(_linear_forward))


def linear_cross_entropy(
    kernel: str,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    softcap: float = 0.0,
    reduction: str = "mean",
    chunk: int,
    check_labels: bool = False,
    upcast: bool = False,
) -> torch.Tensor:
    """``cross_entropy(hidden @ weight.T + bias, labels)`` over row blocks of ``chunk`` on kernel module ``kernel``.

    ``hidden`` is ``(n, D)``, ``weight`` ``(V, D)``, ``labels`` ``(n,)``;
    differentiable with respect to ``hidden``, ``weight`` and ``bias``.
    ``upcast`` computes the products of bfloat16/float16 inputs in float32.
    """
    grad_on = torch.is_grad_enabled()
    need_hidden = grad_on and hidden.requires_grad
    need_weight = grad_on and (weight.requires_grad or (bias is not None and bias.requires_grad))
    per_row = reduction == "none"
    op: Any = _LinearFunction.apply if _eager() else _linear_op
    out, *_ = op(
        hidden.contiguous(),
        weight.contiguous(),
        bias,
        labels.contiguous(),
        class_weight,
        None,
        kernel,
        ignore_index,
        float(label_smoothing),
        float(softcap),
        reduction,
        int(chunk),
        need_hidden and not per_row,
        need_weight and not per_row,
        check_labels,
        upcast,
    )
    return cast(torch.Tensor, out)
