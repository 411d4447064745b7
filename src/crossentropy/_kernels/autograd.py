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

What a row's loss and gradient are made of (ignored rows, class weights,
smoothing, z-loss, the mean's denominator) is :mod:`.rows`, shared with the
plain-torch kernel and the vocabulary-parallel loss. The kernels compute
numbers, not graphs: when autograd records the backward pass itself
(``create_graph=True``: double backward, gradient penalties,
meta-gradients), both backward passes return the gradient of
:func:`.torch_ops.reference`, the same loss in plain torch operations, which
autograd can differentiate again. Under ``torch.func`` transforms the
dispatcher does not use these operations at all.

Both are registered with fake (meta) implementations, so
``torch.compile(fullgraph=True)`` traces them without a graph break, and
neither reads a value back to the host. Importing this module imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

import torch

from . import rows, torch_ops
from ._memory import advise_huge_pages
from .rows import work_dtype

__all__ = ["linear_cross_entropy", "sparse_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")

_KERNELS: dict[str, Any] = {}


def _kernel(name: str) -> Any:
    """The kernel module ``crossentropy._kernels.<name>`` (already imported by the dispatcher)."""
    module = _KERNELS.get(name)
    if module is None:
        module = _KERNELS[name] = importlib.import_module(f"{__package__}.{name}")
    return module


def _huge(out: torch.Tensor) -> torch.Tensor:
    """``out``, a new tensor not written yet; on the CPU a large one is advised onto huge pages (:mod:`._memory`)."""
    if out.device.type == "cpu":
        advise_huge_pages(out.data_ptr(), out.untyped_storage().nbytes())
    return out


def _differentiable(
    loss_of: Any, inputs: tuple[torch.Tensor | None, ...], grad_out: torch.Tensor
) -> tuple[torch.Tensor | None, ...]:
    """The gradients of ``loss_of(*inputs)`` (the plain-torch :func:`.torch_ops.reference`) with their own graph.

    The backward passes call this when autograd records the backward pass
    itself (``create_graph=True``: double backward, gradient penalties,
    meta-gradients): the fused kernels compute numbers, not graphs, so the
    gradient then comes from torch operations that autograd can
    differentiate again.
    """
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    with torch.enable_grad():
        loss = loss_of(*inputs)
        found = iter(torch.autograd.grad(loss, wanted, grad_out.to(loss.dtype), create_graph=True, allow_unused=True))
    return tuple(next(found) if t is not None and t.requires_grad else None for t in inputs)


# --- sparse cross-entropy of logits ----------------------------------------------------------------------


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
    t = rows.targets(labels, ignore_index, 0, v)
    bad_label = t.valid & ~t.owned
    if check_labels:
        rows.check_targets(labels, bad_label)
    x = rows.capped(logits, softcap)
    m, s, d = _kernel(kernel).row_stats(x, class_weight=class_weight, need_dsum=smoothing > 0)
    log_s = torch.log(s)
    x_y, w_y = rows.target_terms(x, t, class_weight, acc)
    formula = rows.Formula.of(v, class_weight, acc, smoothing, z_loss)
    checked = None if check_labels else bad_label  # the check raised for any bad label
    losses = rows.row_loss(m, log_s, d, x_y, w_y, valid=t.valid, bad_label=checked, formula=formula)
    return rows.reduce(losses, reduction, w_y).to(logits.dtype), m, log_s


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
    t = rows.targets(labels, ignore_index, 0, v)
    x = rows.capped(logits, softcap)
    w_y = rows.class_weights(t, class_weight, acc)
    r = rows.row_gradient(
        rows.row_scale(grad_out, n, reduction, w_y, t.valid),
        m,
        log_s,
        w_y,
        bad_label=t.valid & ~t.owned,
        formula=rows.Formula.of(v, class_weight, acc, smoothing, z_loss),
    )
    grad = _huge(torch.empty_like(x if softcap else logits))
    _kernel(kernel).softmax_grad(
        x,
        r.m,
        log_s,
        r.coef,
        torch.where(t.owned, t.col, -1),
        r.target_coef,
        off=r.off,
        class_weight=class_weight if smoothing else None,  # they enter the gradient through smoothing only
        grad=grad,
    )
    return rows.uncapped(grad, x, softcap).to(logits.dtype)


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
    """The backward pass, computing the gradient with ``grad`` (the custom op when traced, else the function);
    with ``create_graph=True``, from :func:`.torch_ops.reference` (see :func:`_differentiable`)."""

    def backward(ctx: Any, grad_out: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        logits, labels, class_weight, m, log_s = ctx.saved_tensors
        if torch.is_grad_enabled():
            _, ignore, smoothing, z_loss, softcap, reduction = ctx.options

            def loss_of(x: torch.Tensor) -> torch.Tensor:
                return torch_ops.reference(
                    x,
                    labels,
                    class_weight=class_weight,
                    ignore_index=ignore,
                    smoothing=smoothing,
                    z_loss=z_loss,
                    softcap=softcap,
                    reduction=reduction,
                )

            (g,) = _differentiable(loss_of, (logits,), grad_out)
            return (g, *([None] * 9))
        return (grad(logits, labels, class_weight, m, log_s, grad_out, *ctx.options), *([None] * 9))

    return backward


_sparse_op.register_autograd(_sparse_backward_with(_sparse_grad_op), setup_context=_sparse_setup)


def _function(name: str, forward: Any, setup: Any, backward: Any) -> Any:
    """The same operation as an autograd Function, for eager calls (see :func:`_eager`).

    Its ``forward`` takes the context itself and calls the op's forward and
    context set-up: a Function with a separate ``setup_context`` binds its
    arguments with :func:`inspect.signature` on every call, which costs more
    than a small cross-entropy.
    """

    def function_forward(ctx: Any, *inputs: Any) -> Any:
        output = forward(*inputs)
        setup(ctx, inputs, output)
        return output

    members = {"forward": staticmethod(function_forward), "backward": staticmethod(backward)}
    return type(name, (torch.autograd.Function,), {"__doc__": _function.__doc__, **members})


_SparseFunction = _function("_SparseFunction", _sparse_forward, _sparse_setup, _sparse_backward_with(_sparse_grad))


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
    of range, otherwise such a row's loss is NaN. Labels of any integer dtype
    are compared with ``ignore_index`` as integers of unbounded range.
    """
    labels, ignore_index = rows.index_labels(labels, ignore_index)
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
        scale = 1.0 / rows.denominator(rows.class_weights(rows.targets(labels, ignore_index, 0, v), class_weight, acc))
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
            if bias is not None:  # summed in float32 across the blocks, whatever the logits' dtype
                g_bias += logits.sum(0, dtype=acc)
    if row_scale is not None or reduction == "none":
        out = losses
    else:
        out = losses.sum() * scale if reduction == "mean" else losses.sum()
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
    ctx.reduction = reduction
    ctx.computed = (inputs[12], inputs[13])  # whether the forward pass computed the gradients of hidden, weight
    ctx.options = (kernel, ignore, smoothing, softcap, chunk, inputs[15])
    # the inputs too: with reduction="none" the backward pass recomputes the blocks, scaled per row by the
    # incoming gradient, and with create_graph=True it differentiates the plain-torch loss
    ctx.save_for_backward(hidden, weight, bias, labels, class_weight, *output[1:])
    ctx.mark_non_differentiable(*output[1:])


def _linear_backward_with(recompute: Any) -> Any:
    """The backward pass; with ``reduction="none"`` it recomputes the blocks with ``recompute`` (the custom op
    when traced, else the function)."""

    def backward(ctx: Any, grad_out: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        return _linear_backward(ctx, grad_out, recompute)

    return backward


def _scaled(g: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """``g * grad_out`` for a gradient ``g`` computed for an incoming 1, keeping ``g``'s exact zeros.

    An ignored row's gradient is 0 whatever comes in, as in PyTorch: an
    infinite or NaN incoming gradient (``loss / num_items_in_batch`` with no
    item in the batch) must leave a fully ignored batch's gradients 0, not
    NaN. On the CPU, where reading the scalar costs no synchronisation, a
    finite one (the usual case) takes the plain product.
    """
    scale = grad_out.to(g.dtype)
    if g.device.type == "cpu" and not torch.compiler.is_compiling() and bool(torch.isfinite(scale).all()):
        return g * scale
    return torch.where(g == 0, g, g * scale)


def _linear_backward(ctx: Any, grad_out: torch.Tensor, recompute: Any) -> tuple[Any, ...]:
    hidden, weight, bias, labels, class_weight, g_hidden, g_weight, g_bias = ctx.saved_tensors
    kernel, ignore, smoothing, softcap, chunk, upcast = ctx.options
    grads: tuple[torch.Tensor | None, ...]
    if torch.is_grad_enabled():  # create_graph=True: a gradient autograd can differentiate again

        def loss_of(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return torch_ops.linear_reference(
                h,
                w,
                b,
                labels,
                class_weight=class_weight,
                ignore_index=ignore,
                smoothing=smoothing,
                softcap=softcap,
                reduction=ctx.reduction,
                upcast=upcast,
            )

        grads = _differentiable(loss_of, (hidden, weight, bias), grad_out)
    elif ctx.reduction != "none":
        has_hidden, has_weight = ctx.computed
        grads = (
            _scaled(g_hidden, grad_out) if has_hidden else None,
            _scaled(g_weight, grad_out) if has_weight else None,
            _scaled(g_bias, grad_out) if has_weight and bias is not None else None,
        )
    else:
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
        grads = (
            g_hidden if need_hidden else None,
            g_weight if need_weight else None,
            g_bias if need_weight and bias is not None else None,
        )
    return (*grads, *([None] * 13))


_linear_op.register_autograd(_linear_backward_with(_linear_op), setup_context=_linear_setup)


_LinearFunction = _function("_LinearFunction", _linear_forward, _linear_setup, _linear_backward_with(_linear_forward))


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
    Labels of any integer dtype are compared with ``ignore_index`` as integers
    of unbounded range.
    """
    labels, ignore_index = rows.index_labels(labels, ignore_index)
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
