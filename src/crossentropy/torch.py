"""A drop-in for PyTorch's cross-entropy losses, with PyTorch's names and defaults.

Replacing ``torch.nn.CrossEntropyLoss`` is a one-line change::

    from crossentropy.torch import CrossEntropyLoss   # was: from torch.nn import CrossEntropyLoss

and gives the same loss and the same gradients (``convention="torch"``), with
:class:`~crossentropy.InputError` messages that name the bad position instead
of PyTorch's assertion. Importing this module imports torch.

Examples
--------
>>> import torch
>>> from crossentropy.torch import CrossEntropyLoss
>>> logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], requires_grad=True)
>>> loss = CrossEntropyLoss(label_smoothing=0.1)(logits, torch.tensor([0, 1]))
>>> reference = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, torch.tensor([0, 1]))
>>> bool(torch.isclose(loss, reference))
True
"""

from __future__ import annotations

from typing import Any

import torch

from ._losses import binary_cross_entropy as _bce
from ._losses import categorical_cross_entropy as _cce
from ._losses import sparse_categorical_cross_entropy as _scce

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "linear_cross_entropy",
]


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's rule for the deprecated ``size_average`` and ``reduce`` flags."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy``, computed by :mod:`crossentropy`.

    ``input`` holds logits with the classes on dimension 1 (dimension 0 when
    unbatched); ``target`` holds class indices (``ignore_index`` skipped) or
    class probabilities of ``input``'s shape. Weighted means divide by the
    summed class weights of the non-ignored targets, as in PyTorch.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import cross_entropy
    >>> x = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
    >>> cross_entropy(x, torch.tensor([0, 1, 2]), weight=torch.tensor([1.0, 2.0, 3.0]))
    tensor(0.6922)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    axis = 0 if input.ndim == 1 else 1
    fused = _triton() if input.is_cuda and input.ndim == 2 and not torch.is_floating_point(target) else None
    if fused is not None:
        return fused.fused_cross_entropy(
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
    if torch.is_floating_point(target):
        return _cce(
            target,
            input,
            axis=axis,
            from_logits=True,
            class_weight=weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
            convention="torch",
        )
    return _scce(
        target,
        input,
        axis=axis,
        from_logits=True,
        ignore_index=ignore_index,
        class_weight=weight,
        label_smoothing=label_smoothing,
        reduction=reduction,
        convention="torch",
    )


def _triton() -> Any:
    """The Triton kernels module, or None where triton is not installed."""
    try:
        from ._kernels import triton_ce
    except ImportError:
        return None
    return triton_ce


class _GradientsFromForward(torch.autograd.Function):
    """An autograd Function whose forward already computed the gradients of ``(hidden, weight)``.

    The forward saves them; the backward only scales them by the incoming
    gradient. Both linear + cross-entropy paths (C kernel, Triton) use it.
    """

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_out, grad_weight * grad_out, None, None, None, None, None


class _ChunkedLinearCrossEntropy(_GradientsFromForward):
    """The CPU path of linear_cross_entropy: row blocks through the fused C kernel, gradients in place."""

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
        from .grad import sparse_categorical_cross_entropy_value_and_grad as value_and_grad

        valid = labels != ignore_index
        count = valid.sum().item() if reduction == "mean" else 1
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight)
        total = 0.0
        for start in range(0, hidden.shape[0], chunk):
            end = min(hidden.shape[0], start + chunk)
            logits = (hidden[start:end] @ weight.t()).detach().contiguous()
            loss, _ = value_and_grad(
                labels[start:end].numpy(),
                logits.numpy(),
                ignore_index=ignore_index,
                label_smoothing=smoothing,
                reduction="sum",
                convention="torch",
                out=logits.numpy(),
            )
            total += float(loss)
            logits /= max(count, 1) if reduction == "mean" else 1
            grad_hidden[start:end] = logits @ weight
            grad_weight += logits.t() @ hidden[start:end]
        ctx.save_for_backward(grad_hidden, grad_weight)
        value = total / count if reduction == "mean" else total
        return torch.tensor(value if count else float("nan"), dtype=hidden.dtype)


def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """``F.cross_entropy(input @ linear_weight.T, target)`` without materialising the logits.

    On CUDA with triton installed, the fused Triton kernel; on the CPU (float32
    or float64), row blocks through the fused C kernel. Either way only one
    block of logits exists at a time and the gradients of ``input`` and
    ``linear_weight`` are computed in the forward pass. ``reduction`` is
    ``"mean"`` or ``"sum"``.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import linear_cross_entropy
    >>> h, w = torch.randn(6, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    >>> t = torch.tensor([0, 3, 8, 1, -100, 2])
    >>> reference = torch.nn.functional.cross_entropy(h @ w.T, t)
    >>> bool(torch.isclose(linear_cross_entropy(h, w, t, chunk_size=4), reference))
    True
    """
    from ._validation import InputError, check_choice

    check_choice("reduction", reduction, ("mean", "sum"))
    if input.ndim != 2 or linear_weight.ndim != 2 or input.shape[1] != linear_weight.shape[1]:
        raise InputError(
            f"input (N, D) and linear_weight (V, D) do not match: {tuple(input.shape)} and {tuple(linear_weight.shape)}"
        )
    vocab = linear_weight.shape[0]
    chunk = chunk_size or max(1, (256 << 20) // max(1, vocab * input.element_size()))
    fused = _triton() if input.is_cuda else None
    if fused is not None:
        return fused.linear_cross_entropy(
            input,
            linear_weight,
            target,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
            chunk_size=chunk,
        )
    if input.dtype not in (torch.float32, torch.float64) or input.device.type != "cpu":
        return cross_entropy(
            input @ linear_weight.t(),
            target,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
    return _ChunkedLinearCrossEntropy.apply(
        input, linear_weight, target, ignore_index, float(label_smoothing), reduction, int(chunk)
    )


def binary_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``torch.nn.functional.binary_cross_entropy`` (probabilities; logs clamped at -100)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _bce(target, input, sample_weight=weight, reduction=reduction, convention="torch")


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits``.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import binary_cross_entropy_with_logits
    >>> binary_cross_entropy_with_logits(torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([1.0, 0.0, 1.0]))
    tensor(1.0499)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _bce(
        target,
        input,
        from_logits=True,
        pos_weight=pos_weight,
        sample_weight=weight,
        reduction=reduction,
        convention="torch",
    )


class CrossEntropyLoss(torch.nn.Module):
    """Drop-in for :class:`torch.nn.CrossEntropyLoss` (same arguments and defaults)."""

    weight: torch.Tensor | None

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _legacy_reduction(size_average, reduce, reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class BCEWithLogitsLoss(torch.nn.Module):
    """Drop-in for :class:`torch.nn.BCEWithLogitsLoss` (same arguments and defaults)."""

    weight: torch.Tensor | None
    pos_weight: torch.Tensor | None

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(
            input, target, weight=self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class BCELoss(torch.nn.Module):
    """Drop-in for :class:`torch.nn.BCELoss` (same arguments and defaults)."""

    weight: torch.Tensor | None

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)
