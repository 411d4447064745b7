"""Autograd plumbing of the distillation divergences (private): two torch custom ops and their drivers.

The plain-torch path (:mod:`.kl_ops`), the C kernel on CPU tensors
(:mod:`.kl_cpu`) and Triton on CUDA tensors (:mod:`.triton_kl`) offer the
same two per-row functions, ``forward_`` and ``backward_``. This module
turns them into operations that autograd and ``torch.compile`` understand,
whichever kernel runs underneath (the caller, :mod:`crossentropy._dispatch`,
names the kernel module):

- ``crossentropy::distill``: the per-row divergence of two models' logits
  ``(n, V)`` (forward KL, reverse KL or the generalised JSD, after a
  temperature), differentiable with respect to the student's logits only.
  The forward pass keeps four numbers per row (both maxima and log-sums of
  exponentials) and one auxiliary value; the backward pass recomputes the
  student's gradient from them in one pass over both rows, so no ``n x V``
  buffer lives between the two.
- ``crossentropy::linear_distill``: the same from hidden states and LM-head
  weights, ``student_input @ student_weight.T + student_bias`` against the
  teacher's, over row blocks, so neither model's ``n x V`` logits exist:
  each block's student logits are turned into their gradient in place by the
  kernel and folded at once into the gradients of ``student_input``,
  ``student_weight`` and ``student_bias``. With a per-row output (no
  reduction) the backward pass recomputes the blocks, scaled by the incoming
  per-row gradient.

Both are registered with fake (meta) implementations, so
``torch.compile(fullgraph=True)`` traces them without a graph break, and
neither reads a value back to the host. A separate module from
:mod:`.autograd` (the cross-entropy operations) because it shares none of
their state or code paths, only the pattern. Importing this module imports
torch.
"""

from __future__ import annotations

from typing import Any, cast

import torch

from .autograd import _eager, _huge, _kernel
from .kl_ops import work_dtype

__all__ = ["distill", "linear_distill"]


# --- the divergence of two rows of logits -----------------------------------------------------------------


def _distill_forward(
    student: torch.Tensor,
    teacher: torch.Tensor,
    keep: torch.Tensor | None,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return cast(
        "tuple[torch.Tensor, torch.Tensor, torch.Tensor]",
        _kernel(kernel).forward_(
            student,
            teacher,
            divergence=divergence,
            beta=beta,
            temperature=temperature,
            teacher_probs=teacher_probs,
            keep=keep,
        ),
    )


_distill_op = torch.library.custom_op("crossentropy::distill", _distill_forward, mutates_args=())


@_distill_op.register_fake
def _(
    student: torch.Tensor,
    teacher: torch.Tensor,
    keep: torch.Tensor | None,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    work = work_dtype(student.dtype, teacher.dtype)
    values = student.new_empty(student.shape[:1], dtype=work)
    return values, torch.empty_like(values), student.new_empty((student.shape[0], 4), dtype=work)


def _distill_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    student, teacher, keep, *options = inputs
    ctx.save_for_backward(student, teacher, keep, output[1], output[2])
    ctx.options = tuple(options)
    ctx.mark_non_differentiable(output[1], output[2])


def _distill_grad(
    student: torch.Tensor,
    teacher: torch.Tensor,
    keep: torch.Tensor | None,
    aux: torch.Tensor,
    stats: torch.Tensor,
    grad_values: torch.Tensor,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
) -> torch.Tensor:
    """The student's gradient of ``sum_i grad_values_i value_i``: one pass from the saved statistics."""
    grad = _huge(torch.empty_like(student, memory_format=torch.contiguous_format))
    _kernel(kernel).backward_(
        student,
        teacher,
        stats,
        aux,
        grad_values,
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        teacher_probs=teacher_probs,
        keep=keep,
        grad=grad,
    )
    return grad


_distill_grad_op = torch.library.custom_op("crossentropy::distill_backward", _distill_grad, mutates_args=())


@_distill_grad_op.register_fake
def _(
    student: torch.Tensor,
    teacher: torch.Tensor,
    keep: torch.Tensor | None,
    aux: torch.Tensor,
    stats: torch.Tensor,
    grad_values: torch.Tensor,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
) -> torch.Tensor:
    return torch.empty_like(student, memory_format=torch.contiguous_format)


def _distill_backward_with(grad: Any) -> Any:
    """The backward pass, computing the gradient with ``grad`` (the custom op when traced, else the function)."""

    def backward(ctx: Any, grad_values: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        student, teacher, keep, aux, stats = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,) * 8
        return (grad(student, teacher, keep, aux, stats, grad_values, *ctx.options), *([None] * 7))

    return backward


_distill_op.register_autograd(_distill_backward_with(_distill_grad_op), setup_context=_distill_setup)


class _DistillFunction(torch.autograd.Function):
    """The same operation as an autograd Function, for eager calls (see :func:`_eager`)."""

    forward = staticmethod(_distill_forward)
    setup_context = staticmethod(_distill_setup)
    backward = staticmethod(_distill_backward_with(_distill_grad))


def distill(
    kernel: str,
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    divergence: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    teacher_probs: bool = False,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row divergence of ``student`` and ``teacher`` ``(n, V)`` on kernel module ``kernel``, and its aux value.

    Differentiable with respect to ``student`` only; rows where ``keep`` is
    False give 0 (and no gradient). Both outputs are in the accumulation dtype
    (float64 when either side is float64, else float32); the auxiliary value
    (see :mod:`.kl_ops`) carries no gradient.
    """
    op: Any = _DistillFunction.apply if _eager() else _distill_op
    values, aux, _ = op(
        student,
        teacher.detach(),
        keep,
        kernel,
        divergence,
        float(beta),
        float(temperature),
        bool(teacher_probs),
    )
    return cast(torch.Tensor, values), cast(torch.Tensor, aux)


# --- from hidden states and LM-head weights, blocked over rows --------------------------------------------


def _logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    torch.mm(hidden.to(out.dtype), weight.t(), out=out)
    if bias is not None:
        out += bias.to(out.dtype)
    return out


def _linear_forward(
    student_input: torch.Tensor,
    student_weight: torch.Tensor,
    student_bias: torch.Tensor | None,
    teacher_input: torch.Tensor,
    teacher_weight: torch.Tensor,
    teacher_bias: torch.Tensor | None,
    keep: torch.Tensor | None,
    row_scale: torch.Tensor,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    chunk: int,
    per_row: bool,
    grad_input: bool,
    grad_weight: bool,
    upcast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n, v = student_input.shape[0], student_weight.shape[0]
    acc = work_dtype(student_input.dtype, teacher_input.dtype)
    run = _kernel(kernel).forward_
    # upcast: the blocks' products in float32 for bfloat16/float16 weights (PyTorch's "accurate" policy, its
    # default on the CPU), at the cost of a float32 copy of each weight
    sw = student_weight.to(torch.promote_types(student_weight.dtype, torch.float32)) if upcast else student_weight
    tw = teacher_weight.to(torch.promote_types(teacher_weight.dtype, torch.float32)) if upcast else teacher_weight
    want = grad_input or grad_weight
    g_input = _huge(torch.empty_like(student_input)) if grad_input else student_input.new_empty((0,))
    g_weight = (
        _huge(torch.zeros(sw.shape, dtype=torch.promote_types(sw.dtype, acc), device=sw.device))
        if grad_weight
        else sw.new_empty((0,))
    )
    has_bias = grad_weight and student_bias is not None
    g_bias = torch.zeros(v, dtype=g_weight.dtype, device=sw.device) if has_bias else sw.new_empty((0,))
    values = torch.empty(n, dtype=acc, device=student_input.device)
    aux = torch.empty_like(values)
    rows = min(chunk, n)
    # one buffer per model for every block's logits (the student's becomes its gradient in place): a new
    # allocation per block would be page-faulted in again each time
    s_buffer = _huge(torch.empty((rows, v), dtype=sw.dtype, device=sw.device))
    t_buffer = _huge(torch.empty((rows, v), dtype=tw.dtype, device=tw.device))
    scale = torch.broadcast_to(row_scale.to(acc), (n,))
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        block = student_input[start:end]
        s_logits = _logits(block, sw, student_bias, s_buffer[: end - start])
        with torch.no_grad():
            t_logits = _logits(teacher_input[start:end], tw, teacher_bias, t_buffer[: end - start])
        values[start:end], aux[start:end], _ = run(
            s_logits,
            t_logits,
            divergence=divergence,
            beta=beta,
            temperature=temperature,
            teacher_probs=False,
            keep=None if keep is None else keep[start:end],
            coef=scale[start:end] if want else None,
            grad=s_logits if want else None,
        )
        if grad_input:
            g_input[start:end] = (s_logits @ sw).to(g_input.dtype)
        if grad_weight:
            g_weight.addmm_(s_logits.t().to(g_weight.dtype), block.to(g_weight.dtype))
            if has_bias:
                g_bias += s_logits.sum(0).to(g_bias.dtype)
    if not per_row:
        values, aux = (values * scale).sum(), (aux * scale).sum()
    return values, aux, g_input, g_weight.to(student_weight.dtype), g_bias.to(student_weight.dtype)


_linear_op = torch.library.custom_op("crossentropy::linear_distill", _linear_forward, mutates_args=())


@_linear_op.register_fake
def _(
    student_input: torch.Tensor,
    student_weight: torch.Tensor,
    student_bias: torch.Tensor | None,
    teacher_input: torch.Tensor,
    teacher_weight: torch.Tensor,
    teacher_bias: torch.Tensor | None,
    keep: torch.Tensor | None,
    row_scale: torch.Tensor,
    kernel: str,
    divergence: str,
    beta: float,
    temperature: float,
    chunk: int,
    per_row: bool,
    grad_input: bool,
    grad_weight: bool,
    upcast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    acc = work_dtype(student_input.dtype, teacher_input.dtype)
    shape = student_input.shape[:1] if per_row else ()
    values = student_input.new_empty(shape, dtype=acc)
    g_input = torch.empty_like(student_input) if grad_input else student_input.new_empty((0,))
    g_weight = torch.empty_like(student_weight) if grad_weight else student_weight.new_empty((0,))
    has_bias = grad_weight and student_bias is not None
    g_bias = student_weight.new_empty(student_weight.shape[:1]) if has_bias else student_weight.new_empty((0,))
    return values, torch.empty_like(values), g_input, g_weight, g_bias


def _linear_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    s_in, s_w, s_b, t_in, t_w, t_b, keep, _, kernel, divergence, beta, temperature, chunk, per_row = inputs[:14]
    ctx.per_row = per_row
    ctx.has_bias = s_b is not None
    ctx.options = (kernel, divergence, beta, temperature, chunk, inputs[16])
    if per_row:  # the gradients depend on the incoming one per row: recompute them in the backward pass
        ctx.save_for_backward(s_in, s_w, s_b, t_in, t_w, t_b, keep)
    else:
        ctx.save_for_backward(*output[2:])
    ctx.mark_non_differentiable(*output[1:])


def _linear_backward_with(recompute: Any) -> Any:
    """The backward pass; with per-row output it recomputes the blocks with ``recompute`` (the custom op when
    traced, else the function)."""

    def backward(ctx: Any, grad_out: torch.Tensor, *_unused: torch.Tensor) -> tuple[Any, ...]:
        if not ctx.per_row:
            g_input, g_weight, g_bias = (g * grad_out.to(g.dtype) if g.numel() else None for g in ctx.saved_tensors)
        else:
            s_in, s_w, s_b, t_in, t_w, t_b, keep = ctx.saved_tensors
            kernel, divergence, beta, temperature, chunk, upcast = ctx.options
            need_input, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
            _, _, g_input, g_weight, g_bias = recompute(
                s_in,
                s_w,
                s_b,
                t_in,
                t_w,
                t_b,
                keep,
                grad_out,
                kernel,
                divergence,
                beta,
                temperature,
                chunk,
                True,
                need_input,
                need_weight,
                upcast,
            )
            g_input, g_weight, g_bias = (g if g.numel() else None for g in (g_input, g_weight, g_bias))
        return (g_input, g_weight, g_bias if ctx.has_bias else None, *([None] * 14))

    return backward


_linear_op.register_autograd(_linear_backward_with(_linear_op), setup_context=_linear_setup)


class _LinearFunction(torch.autograd.Function):
    """The same operation as an autograd Function, for eager calls (see :func:`_eager`)."""

    forward = staticmethod(_linear_forward)
    setup_context = staticmethod(_linear_setup)
    backward = staticmethod(_linear_backward_with(_linear_forward))


def linear_distill(
    kernel: str,
    student_input: torch.Tensor,
    student_weight: torch.Tensor,
    teacher_input: torch.Tensor,
    teacher_weight: torch.Tensor,
    *,
    student_bias: torch.Tensor | None = None,
    teacher_bias: torch.Tensor | None = None,
    divergence: str,
    beta: float = 0.5,
    temperature: float = 1.0,
    keep: torch.Tensor | None = None,
    row_scale: torch.Tensor | None = None,
    chunk: int,
    upcast: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The divergence of ``student_input @ student_weight.T + student_bias`` from the teacher's, over row blocks.

    ``*_input`` are ``(n, D)`` (each model its own ``D``), ``*_weight``
    ``(V, D)``. With ``row_scale`` (``(n,)`` or 0-d) returns
    ``sum_i row_scale_i value_i`` and the same sum of the auxiliary values,
    with the gradients computed in the forward pass; without it, per-row
    values and aux values (the backward pass then recomputes). Differentiable
    with respect to ``student_input``, ``student_weight`` and ``student_bias``.
    """
    grad_on = torch.is_grad_enabled()
    need_input = grad_on and student_input.requires_grad
    need_weight = grad_on and (
        student_weight.requires_grad or (student_bias is not None and student_bias.requires_grad)
    )
    per_row = row_scale is None
    op: Any = _LinearFunction.apply if _eager() else _linear_op
    values, aux, *_ = op(
        student_input.contiguous(),
        student_weight.contiguous(),
        student_bias,
        teacher_input.detach().contiguous(),
        teacher_weight.detach().contiguous(),
        None if teacher_bias is None else teacher_bias.detach(),
        keep,
        torch.ones((), device=student_input.device) if row_scale is None else row_scale,
        kernel,
        divergence,
        float(beta),
        float(temperature),
        int(chunk),
        per_row,
        need_input and not per_row,
        need_weight and not per_row,
        upcast,
    )
    return cast(torch.Tensor, values), cast(torch.Tensor, aux)
