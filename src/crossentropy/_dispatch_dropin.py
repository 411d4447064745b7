"""The dispatcher's half for the PyTorch drop-in: which calls the fused kernels take, and when they run.

:mod:`crossentropy.torch` reproduces PyTorch's ``cross_entropy`` and
``linear_cross_entropy``; for each call this module decides, once, between
PyTorch's own kernel (the drop-in's reference path) and the fused kernel for
the tensors' device, with :mod:`crossentropy._dispatch`'s rules (its
:func:`~crossentropy._dispatch.choose` and its forced backend) and the
measured :data:`CROSSOVER` below. The fused kernel runs a call only
when

- PyTorch accepts the arguments as class-index targets, in the layout the
  kernel takes (anything else, probability targets and every input PyTorch
  refuses included, goes to PyTorch, which computes it or raises its own
  error);
- no ``__torch_function__`` override or mode is involved, no ``torch.func``
  transform or forward-mode AD is active, and the device has a kernel;
- the call is large enough for the fused kernel to be faster
  (:func:`fused_pays`), unless a backend is forced.

Small calls cost what PyTorch's own function costs: the first test is the
size (and that nothing is forced anywhere, a counter), and PyTorch's kernel
is then called directly, as ``F.cross_entropy`` calls it. Importing this
module imports torch: that is why it is a module of its own, beside
:mod:`crossentropy._dispatch`, which ``import crossentropy`` loads without
torch (and which stays one readable page of rules).
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

import torch
from torch.overrides import has_torch_function_variadic

from . import _dispatch

__all__ = [
    "cross_entropy",
    "cross_entropy_backend",
    "linear_cross_entropy",
    "linear_cross_entropy_backend",
    "torch_cross_entropy",
    "torch_linear_cross_entropy",
    "vocab_shard_kernel",
]

_F = torch.nn.functional
_TENSOR = torch.Tensor
_GRAD_ENABLED = torch.is_grad_enabled
_CROSS_ENTROPY_LOSS = torch._C._nn.cross_entropy_loss
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
"""PyTorch's reduction enum (``torch.nn._reduction.get_enum``) for the three names it takes without warning."""
NEVER = 1 << 62
"""A crossover no call reaches: the fused kernel never pays there."""

CROSSOVER: dict[tuple[str, str, bool], tuple[tuple[int, int], ...]] = {
    # (operation, dtype, with a gradient): ((most classes, fewest logits), ...) by growing class count
    ("sparse", "float32", False): ((16, 1 << 16), (128, 1 << 26), (NEVER, 1 << 22)),
    ("sparse", "float32", True): ((16, 1 << 18), (128, 1 << 26), (NEVER, 1 << 22)),
    ("sparse", "bfloat16", False): ((16, 1 << 16), (NEVER, NEVER)),
    ("sparse", "bfloat16", True): ((16, 1 << 18), (NEVER, NEVER)),
    ("linear", "float32", False): ((16, 1 << 16), (128, NEVER), (NEVER, 1 << 24)),
    ("linear", "float32", True): ((128, NEVER), (NEVER, 1 << 24)),
    ("linear", "bfloat16", False): ((NEVER, NEVER),),
    ("linear", "bfloat16", True): ((NEVER, NEVER),),
}
"""Where the PyTorch drop-in's fused kernel beats PyTorch's own: for each operation, dtype and whether
a gradient follows, the fewest logits (rows x classes) from which it does, by number of classes; below, the
drop-in runs PyTorch's kernel. Measured by ``benchmarks/torch_dropin.py --crossover``
(``benchmarks/results/torch_dropin_crossover.md``, one thread: two thread pools on a loaded 2-core machine gave
no stable number), each crossover then taken one step of the grid (4x) further, since with two threads PyTorch's
work halves and the fused path's fixed cost does not. bfloat16 (and float16) logits are converted to float32 on
their way into the C kernel, which costs more than PyTorch's own pass except for a handful of classes. float64
takes float32's rows and float16 bfloat16's. Measured for the C kernel; CUDA tensors (Triton) take the same
rows until a GPU measures their own."""

_CROSSOVER_ROWS = {
    (op, getattr(torch, name), grad): CROSSOVER[op, row, grad]
    for op in ("sparse", "linear")
    for name, row in (("float32", "float32"), ("float64", "float32"), ("bfloat16", "bfloat16"), ("float16", "bfloat16"))
    for grad in (False, True)
}
""":data:`CROSSOVER` by torch dtype (a dictionary lookup per call)."""


def fused_pays(op: str, dtype: torch.dtype, logits: int, classes: int, grad: bool) -> bool:
    """Whether the fused kernel is faster than PyTorch's own for a drop-in call of ``logits`` logits of
    ``dtype`` in ``classes`` classes (:data:`CROSSOVER`; False for a dtype it has no row for)."""
    for most, fewest in _CROSSOVER_ROWS.get((op, dtype, grad), ()):
        if classes <= most:
            return logits >= fewest
    return False


_SMALLEST = min(fewest for rows in CROSSOVER.values() for _, fewest in rows)
_INT64 = (-(2**63), 2**63 - 1)


def _class_weight_fits(weight: Any, like: torch.Tensor, num_classes: int) -> bool:
    """PyTorch's rules for ``weight``: one value per class, the input's dtype and device, no gradient."""
    if weight is None:
        return True
    return (
        isinstance(weight, torch.Tensor)
        and weight.ndim == 1
        and weight.shape[0] == num_classes
        and weight.dtype == like.dtype
        and weight.device == like.device
        and not weight.requires_grad
    )


def _options_fit(reduction: Any, label_smoothing: Any, ignore_index: Any) -> bool:
    """A reduction PyTorch names, a smoothing it takes (values <= 0 and NaN mean none; above 1 it refuses)
    and an ``ignore_index`` it can read (an int64)."""
    return (
        type(reduction) is str
        and reduction in _REDUCTIONS
        and isinstance(label_smoothing, (int, float))
        and not label_smoothing > 1.0
        and (ignore_index is None or (isinstance(ignore_index, int) and _INT64[0] <= ignore_index <= _INT64[1]))
    )


def _smoothing(label_smoothing: float) -> float:
    """The smoothing PyTorch applies: the value in (0, 1], else none (for negative values and NaN too)."""
    return float(label_smoothing) if label_smoothing > 0 else 0.0


def _index_targets(input: torch.Tensor, target: torch.Tensor) -> bool:
    """Class-index targets (int64 or uint8, as PyTorch takes them) of the shape ``cross_entropy`` takes."""
    if target.dtype is not torch.int64 and target.dtype is not torch.uint8:
        return False
    if input.ndim == 1:
        return target.ndim == 0
    return target.ndim == input.ndim - 1 and target.shape[0] == input.shape[0] and target.shape[1:] == input.shape[2:]


def _backend(op: str, x: torch.Tensor, logits: int, classes: int, grad: bool) -> str:
    """The fused backend for an eligible call of ``logits`` logits in ``classes`` classes (``grad``: a backward
    pass will follow), or the reference one (PyTorch's own)."""
    backend = _dispatch.choose(op, x)
    if backend == _dispatch.REFERENCE or _dispatch.forced() is not None:
        return backend
    return backend if fused_pays(op, x.dtype, logits, classes, grad) else _dispatch.REFERENCE


# --- the fused calls: custom ops on the kernel for the tensors' device (the other torch integrations call them) ---


def torch_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    class_weight: Any = None,
    ignore_index: int | None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    reduction: str,
    check_labels: bool,
    kernel: str | None = None,
) -> Any:
    """PyTorch's cross-entropy of logits ``(n, V)`` with labels ``(n,)`` on the kernel for their device.

    The mean divides by the summed class weights of the non-ignored targets;
    nothing is read back to the host, so it compiles and never synchronises.
    ``kernel`` is the kernel module when the caller has chosen it. Under
    ``torch.func`` transforms the loss is plain torch operations (a label out
    of range then gives a NaN row: a transform cannot raise on values).
    """
    from ._kernels import autograd, torch_ops

    if _dispatch.transformed():
        return torch_ops.reference(
            logits,
            labels,
            class_weight=class_weight,
            ignore_index=ignore_index,
            smoothing=label_smoothing,
            z_loss=z_loss,
            softcap=softcap,
            reduction=reduction,
        ).to(logits.dtype)
    return autograd.sparse_cross_entropy(
        kernel or _dispatch.torch_kernel("sparse", logits),
        logits,
        labels,
        class_weight=class_weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
        reduction=reduction,
        check_labels=check_labels,
    )


def torch_linear_cross_entropy(
    hidden: Any,
    weight: Any,
    labels: Any,
    *,
    bias: Any = None,
    class_weight: Any = None,
    ignore_index: int | None,
    label_smoothing: float = 0.0,
    softcap: float = 0.0,
    reduction: str,
    chunk: int | None = None,
    check_labels: bool,
    upcast: bool = False,
    kernel: str | None = None,
) -> Any:
    """``cross_entropy(hidden @ weight.T + bias, labels)`` blocked over rows, on the kernel for their device.

    ``chunk`` rows per block (default: about ``_dispatch.LINEAR_BLOCK_BYTES`` of logits); ``upcast``
    computes the products of bfloat16/float16 inputs in float32. The loss is
    returned in the accumulation dtype (float32 for bfloat16/float16 inputs).
    ``kernel`` is the kernel module when the caller has chosen it. Under
    ``torch.func`` transforms the loss is plain torch operations on the whole
    ``N x V`` logits.
    """
    from ._kernels import autograd, torch_ops

    if _dispatch.transformed():
        return torch_ops.linear_reference(
            hidden,
            weight,
            bias,
            labels,
            class_weight=class_weight,
            ignore_index=ignore_index,
            smoothing=label_smoothing,
            softcap=softcap,
            reduction=reduction,
            upcast=upcast,
        )
    if chunk is None:
        chunk = max(1, _dispatch.LINEAR_BLOCK_BYTES // max(1, weight.shape[0] * hidden.element_size()))
    return autograd.linear_cross_entropy(
        kernel or _dispatch.torch_kernel("linear", hidden),
        hidden,
        weight,
        labels,
        bias=bias,
        class_weight=class_weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        softcap=softcap,
        reduction=reduction,
        chunk=chunk,
        check_labels=check_labels,
        upcast=upcast,
    )


def vocab_shard_kernel(shard: Any) -> ModuleType:
    """The module computing a vocabulary shard's row statistics and softmax gradient on its device."""
    return importlib.import_module(f"{__package__}._kernels.{_dispatch.torch_kernel('vocab_parallel', shard)}")


# --- the drop-in ------------------------------------------------------------------------------------------


def cross_entropy_backend(
    input: Any, target: Any, weight: Any, ignore_index: Any, reduction: Any, label_smoothing: Any
) -> str:
    """The backend of a ``cross_entropy`` call: the reference one (PyTorch's own kernel) or the fused one."""
    if (
        not isinstance(input, torch.Tensor)
        or (input.numel() < _SMALLEST and _dispatch.forced() is None)
        or not isinstance(target, torch.Tensor)
        or has_torch_function_variadic(input, target, weight)
        or not _options_fit(reduction, label_smoothing, ignore_index)
        or ignore_index is None
        or input.ndim == 0
        or not _index_targets(input, target)
    ):
        return _dispatch.REFERENCE
    num_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if num_classes == 0 or target.device != input.device or not _class_weight_fits(weight, input, num_classes):
        return _dispatch.REFERENCE
    return _backend("sparse", input, input.numel(), num_classes, input.requires_grad and torch.is_grad_enabled())


def cross_entropy(
    input: Any, target: Any, weight: Any, ignore_index: Any, reduction: Any, label_smoothing: Any
) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy`` (without the legacy flags), on the kernel this call should use."""
    backend = _dispatch.REFERENCE
    if _dispatch.forcings or not isinstance(input, _TENSOR):
        backend = cross_entropy_backend(input, target, weight, ignore_index, reduction, label_smoothing)
    elif (logits := input.numel()) >= _SMALLEST and input.ndim:  # below: the fast exit, too small to pay
        grad = input.requires_grad and _GRAD_ENABLED()
        if fused_pays("sparse", input.dtype, logits, input.shape[input.ndim > 1], grad):
            backend = cross_entropy_backend(input, target, weight, ignore_index, reduction, label_smoothing)
    if backend == _dispatch.REFERENCE:  # PyTorch's own kernel, called as F.cross_entropy calls it (less its frame)
        enum = _REDUCTIONS.get(reduction) if type(reduction) is str else None
        if enum is None or has_torch_function_variadic(input, target, weight):
            return _F.cross_entropy(input, target, weight, None, ignore_index, None, reduction, label_smoothing)
        # the stub names the reduction a str; the binding takes PyTorch's enum, as F.cross_entropy passes it
        loss: torch.Tensor = _CROSS_ENTROPY_LOSS(input, target, weight, enum, ignore_index, label_smoothing)  # type: ignore[arg-type]
        return loss
    num_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    if input.ndim == 1:
        x, t = input.unsqueeze(0), target.reshape(1)
    elif input.ndim == 2:
        x, t = input, target
    else:  # (N, C, d1, ..., dK): the class axis moved last
        x, t = input.movedim(1, -1).reshape(-1, num_classes), target.reshape(-1)
    out: torch.Tensor = torch_cross_entropy(
        x,
        t,
        class_weight=weight,
        ignore_index=ignore_index,
        label_smoothing=_smoothing(label_smoothing),
        reduction=reduction,
        check_labels=True,
        kernel=_dispatch.torch_kernel_of(backend),
    )
    return out.reshape(target.shape) if reduction == "none" else out


def _chunk(n: int, num_classes: int, in_features: int, options: object) -> int | None:
    """Rows per block as PyTorch reads ``options``; None (the fused path's default) without a choice there."""
    size = getattr(options, "batch_chunk_size", None)
    method = getattr(options, "chunking_method", None)
    if size:
        return int(size)
    if isinstance(method, str) and method.startswith("aspect_ratio"):
        divisor = int(method.split(":", 1)[1]) if ":" in method else 1
        ratio = math.ceil(num_classes / max(in_features, 1))
        return max(1, (1 << max(0, math.ceil(n / ratio) - 1).bit_length()) // divisor)
    return None


def _accurate(options: object, device: torch.device) -> bool:
    """PyTorch's accumulation policy for low-precision inputs: ``options.acc_policy``, else ``"auto"``, which is
    "accurate" (products in float32) on the CPU and "compact" (in the input dtype) on accelerators."""
    policy = getattr(options, "acc_policy", "auto")
    return policy == "accurate" or (policy == "auto" and device.type == "cpu")


def _linear_fits(input: Any, linear_weight: Any, target: Any, linear_bias: Any, weight: Any) -> bool:
    """Hidden states ``(N, D)`` or ``(D,)``, a 2-D projection of their dtype and device, class-index targets."""
    return (
        isinstance(input, torch.Tensor)
        and isinstance(linear_weight, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and not has_torch_function_variadic(input, linear_weight, target, linear_bias, weight)
        and input.ndim in (1, 2)
        and linear_weight.ndim == 2
        and input.shape[-1] == linear_weight.shape[-1]
        and linear_weight.shape[0] > 0
        and linear_weight.dtype == input.dtype
        and linear_weight.device == input.device
        and target.device == input.device
        and (linear_bias is None or (linear_bias.shape == linear_weight.shape[:1] and linear_bias.dtype == input.dtype))
        and (target.dtype is torch.int64 or target.dtype is torch.uint8)
        and target.shape == input.shape[:-1]
        and _class_weight_fits(weight, input, linear_weight.shape[0])
    )


def linear_cross_entropy_backend(
    input: Any,
    linear_weight: Any,
    target: Any,
    linear_bias: Any,
    weight: Any,
    reduction: Any,
    ignore_index: Any,
    label_smoothing: Any,
) -> str:
    """The backend of a ``linear_cross_entropy`` call: the reference one (PyTorch's own) or the fused one."""
    if not (
        _linear_fits(input, linear_weight, target, linear_bias, weight)
        and _options_fit(reduction, label_smoothing, ignore_index)
    ):
        return _dispatch.REFERENCE
    return _backend("linear", input, *_linear_work(input, linear_weight, linear_bias))


def _linear_work(input: torch.Tensor, linear_weight: torch.Tensor, linear_bias: Any) -> tuple[int, int, bool]:
    """``(logits, classes, grad)``: how many logits the call makes, in how many classes, and whether a backward
    pass will follow."""
    classes = linear_weight.shape[0] if linear_weight.ndim else 0
    wanted = input.requires_grad or linear_weight.requires_grad or getattr(linear_bias, "requires_grad", False)
    return input.numel() // max(input.shape[-1], 1) * classes, classes, wanted and _GRAD_ENABLED()


def linear_too_small(input: Any, linear_weight: Any, linear_bias: Any) -> bool:
    """The fast exit: nothing is forced and the call is too small for the fused kernel to pay."""
    if _dispatch.forcings or not (isinstance(input, _TENSOR) and isinstance(linear_weight, _TENSOR)):
        return False
    shape, weight_shape = input.shape, linear_weight.shape
    if shape and weight_shape and input.numel() // (shape[-1] or 1) * weight_shape[0] < _SMALLEST:
        return True
    logits, classes, grad = _linear_work(input, linear_weight, linear_bias)
    return bool(input.ndim) and not fused_pays("linear", input.dtype, logits, classes, grad)


def linear_cross_entropy(
    input: Any,
    linear_weight: Any,
    target: Any,
    linear_bias: Any,
    weight: Any,
    reduction: Any,
    ignore_index: Any,
    label_smoothing: Any,
    options: Any,
) -> torch.Tensor:
    """``torch.nn.functional.linear_cross_entropy``, on the kernel this call should use (the public function
    has already taken the fast exit, :func:`linear_too_small`)."""
    backend = linear_cross_entropy_backend(
        input, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing
    )
    if backend == _dispatch.REFERENCE:
        return _F.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=weight,
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            options=options,
        )
    hidden, labels = (input.unsqueeze(0), target.reshape(1)) if input.ndim == 1 else (input, target)
    out: torch.Tensor = torch_linear_cross_entropy(
        hidden,
        linear_weight,
        labels,
        bias=linear_bias,
        class_weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=_smoothing(label_smoothing),
        reduction=reduction,
        chunk=_chunk(hidden.shape[0], linear_weight.shape[0], hidden.shape[1], options),
        check_labels=True,
        upcast=_accurate(options, hidden.device),
        kernel=_dispatch.torch_kernel_of(backend),
    ).to(input.dtype)
    return out.reshape(target.shape) if reduction == "none" else out
