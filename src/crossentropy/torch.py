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
    if torch.is_floating_point(target):
        return _cce(  # type: ignore[no-any-return]
            target,
            input,
            axis=axis,
            from_logits=True,
            class_weight=weight,
            label_smoothing=label_smoothing,
            reduction=reduction,
            convention="torch",
        )
    return _scce(  # type: ignore[no-any-return]
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
    return _bce(target, input, sample_weight=weight, reduction=reduction, convention="torch")  # type: ignore[no-any-return]


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
    return _bce(  # type: ignore[no-any-return]
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
