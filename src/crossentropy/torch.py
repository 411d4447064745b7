"""A drop-in for PyTorch's cross-entropy losses: PyTorch 2.13's API and numbers, fused kernels underneath.

Replacing a loss is a one-line change::

    from crossentropy.torch import CrossEntropyLoss   # was: from torch.nn import CrossEntropyLoss

Every function and module here has PyTorch's signature (positional order,
keyword names, defaults, the deprecated ``size_average``/``reduce``), accepts
what PyTorch accepts, returns PyTorch's values and gradients, and fails where
PyTorch fails, with the same exception type. It is a different contract from
the ``crossentropy.*`` functions: this module reproduces PyTorch (its
``-100`` ignore index, its weighted mean), exactness beyond PyTorch lives in
:func:`crossentropy.sparse_categorical_cross_entropy` and friends.

What runs underneath:

- :func:`cross_entropy` with class-index targets (and :class:`CrossEntropyLoss`)
  runs the fused kernel for the tensor's device, the C kernel on CPU tensors
  and Triton on CUDA tensors, through a registered ``torch.library`` custom
  op: one pass over the logits computes the loss and, when a gradient is
  needed, the gradient, which the backward pass only scales. bfloat16 and
  float16 logits are accumulated in float32. A target out of range raises
  PyTorch's ``IndexError`` on the CPU and a device-side assertion on CUDA.
- :func:`linear_cross_entropy` (and :class:`LinearCrossEntropyLoss`)
  computes ``cross_entropy(input @ linear_weight.T + linear_bias, target)``
  over row blocks with the same kernel, so the ``N x C`` logits never exist;
  under ``torch.no_grad()`` each block costs one matrix product.
- Probability targets, K-dimensional linear weights and inputs PyTorch refuses
  are handed to PyTorch's own function, so they behave exactly as in PyTorch.
- :func:`nll_loss`, :func:`binary_cross_entropy` and
  :func:`binary_cross_entropy_with_logits` (and their modules) are PyTorch's
  own: a gather and two elementwise losses that PyTorch already computes in
  one pass. They are here so that one import serves every loss.

Nothing reads a value back to the host (validation that needs values happens
in the kernel or as a device-side assertion), so the losses cost no host
synchronisation on accelerators and compile with ``torch.compile(fullgraph=True)``
without graph breaks.

Importing this module imports torch.

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

import math

import torch
import torch.nn.functional as F
from torch.nn import _reduction
from torch.overrides import has_torch_function_variadic

from . import _dispatch
from ._distill import KLDivLoss, distillation_loss, kl_div, linear_distillation_loss
from ._token_stats import TokenStatistics, linear_token_statistics, token_statistics

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "LinearCrossEntropyLoss",
    "NLLLoss",
    "TokenStatistics",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "distillation_loss",
    "kl_div",
    "linear_cross_entropy",
    "linear_distillation_loss",
    "linear_token_statistics",
    "nll_loss",
    "token_statistics",
]

_dispatch.prepare_torch()

_FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_INDEX_DTYPES = (torch.int64, torch.uint8)


def _class_weight_fits(weight: torch.Tensor | None, like: torch.Tensor, num_classes: int) -> bool:
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


def _smoothing_fits(label_smoothing: float) -> bool:
    """PyTorch smooths for values in (0, 1], ignores values <= 0 and refuses values above 1."""
    return isinstance(label_smoothing, (int, float)) and not label_smoothing > 1.0


def _index_targets(input: torch.Tensor, target: torch.Tensor) -> bool:
    """Class-index targets of the shape PyTorch's ``cross_entropy`` takes for ``input``."""
    if target.dtype not in _INDEX_DTYPES:
        return False
    if input.ndim == 1:
        return target.ndim == 0
    return target.ndim == input.ndim - 1 and target.shape[0] == input.shape[0] and target.shape[1:] == input.shape[2:]


def _fused_cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> bool:
    """Whether PyTorch accepts these arguments with class-index targets, as the fused kernel takes them."""
    return (
        isinstance(input, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and not has_torch_function_variadic(input, target, weight)
        and input.dtype in _FUSED_DTYPES
        and input.ndim >= 1
        and (input.shape[0] if input.ndim == 1 else input.shape[1]) > 0
        and target.device == input.device
        and _index_targets(input, target)
        and _class_weight_fits(weight, input, input.shape[0] if input.ndim == 1 else input.shape[1])
        and reduction in ("mean", "sum", "none")
        and _smoothing_fits(label_smoothing)
        and isinstance(ignore_index, int)
    )


def _rows(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits as ``(n, C)`` rows (the class axis moved last) and targets as ``(n,)``."""
    if input.ndim == 1:
        return input.unsqueeze(0), target.reshape(1)
    if input.ndim == 2:
        return input, target
    return input.movedim(1, -1).reshape(-1, input.shape[1]), target.reshape(-1)


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
    """:func:`torch.nn.functional.cross_entropy`, with the fused kernel for class-index targets.

    ``input`` holds logits with the classes on dimension 1 (dimension 0 when
    unbatched; K-dimensional inputs ``(N, C, d1, ..., dK)`` too); ``target``
    holds class indices (``ignore_index`` skipped) or class probabilities of
    ``input``'s shape. Weighted means divide by the summed class weights of
    the non-ignored targets, as in PyTorch.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import cross_entropy
    >>> x = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
    >>> cross_entropy(x, torch.tensor([0, 1, 2]), weight=torch.tensor([1.0, 2.0, 3.0]))
    tensor(0.6922)
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    if not _fused_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
        return F.cross_entropy(input, target, weight, None, ignore_index, None, reduction, label_smoothing)
    x, t = _rows(input, target)
    out = _dispatch.torch_cross_entropy(
        x,
        t,
        class_weight=weight,
        ignore_index=ignore_index,
        label_smoothing=max(float(label_smoothing), 0.0),
        reduction=reduction,
        check_labels=True,
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


def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    linear_bias: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: object = None,
) -> torch.Tensor:
    """:func:`torch.nn.functional.linear_cross_entropy` without materialising the ``N x C`` logits.

    ``cross_entropy(linear(input, linear_weight, linear_bias), target, weight=weight, ...)``
    for ``input`` ``(N, D)`` or ``(D,)`` and ``linear_weight`` ``(C, D)``,
    computed over row blocks by the fused kernel: each block's logits become
    their gradient in place, folded at once into the gradients of ``input``,
    ``linear_weight`` and ``linear_bias``. ``ignore_index=None`` means -100
    for class-index targets. ``options`` (a
    :class:`torch.nn.LinearCrossEntropyOptions`) sets the block size as
    PyTorch reads it (``batch_chunk_size``, or ``chunking_method``
    ``"aspect_ratio[:N]"``) and how bfloat16/float16 products accumulate
    (``acc_policy``; by default in float32 on the CPU, as PyTorch's "auto");
    without it a block holds about 256 MiB of logits. Probability targets and
    K-dimensional ``linear_weight`` run PyTorch's own implementation.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import linear_cross_entropy
    >>> h, w = torch.randn(6, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    >>> t = torch.tensor([0, 3, 8, 1, -100, 2])
    >>> reference = torch.nn.functional.cross_entropy(h @ w.T, t)
    >>> bool(torch.isclose(linear_cross_entropy(h, w, t), reference))
    True
    """
    fused = (
        isinstance(input, torch.Tensor)
        and isinstance(linear_weight, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and not has_torch_function_variadic(input, linear_weight, target, linear_bias, weight)
        and input.ndim in (1, 2)
        and linear_weight.ndim == 2
        and input.shape[-1] == linear_weight.shape[-1]
        and linear_weight.shape[0] > 0
        and input.dtype in _FUSED_DTYPES
        and linear_weight.dtype == input.dtype
        and linear_weight.device == input.device
        and target.device == input.device
        and (linear_bias is None or (linear_bias.shape == linear_weight.shape[:1] and linear_bias.dtype == input.dtype))
        and target.dtype in _INDEX_DTYPES
        and target.shape == input.shape[:-1]
        and _class_weight_fits(weight, input, linear_weight.shape[0])
        and reduction in ("mean", "sum", "none")
        and _smoothing_fits(label_smoothing)
        and (ignore_index is None or isinstance(ignore_index, int))
    )
    if not fused:
        return F.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=weight,
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            options=options,  # type: ignore[arg-type]
        )
    hidden, labels = (input.unsqueeze(0), target.reshape(1)) if input.ndim == 1 else (input, target)
    n, v = hidden.shape[0], linear_weight.shape[0]
    out = _dispatch.torch_linear_cross_entropy(
        hidden,
        linear_weight,
        labels,
        bias=linear_bias,
        class_weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=max(float(label_smoothing), 0.0),
        reduction=reduction,
        chunk=_chunk(n, v, hidden.shape[1], options),
        check_labels=True,
        upcast=_accurate(options, hidden.device),
    ).to(input.dtype)
    return out.reshape(target.shape) if reduction == "none" else out


# The losses with nothing to fuse are PyTorch's own (see the module docstring).
nll_loss = F.nll_loss
binary_cross_entropy = F.binary_cross_entropy
binary_cross_entropy_with_logits = F.binary_cross_entropy_with_logits
NLLLoss = torch.nn.NLLLoss
BCELoss = torch.nn.BCELoss
BCEWithLogitsLoss = torch.nn.BCEWithLogitsLoss


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """:class:`torch.nn.CrossEntropyLoss`, same constructor, attributes and state, computed by :func:`cross_entropy`."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class LinearCrossEntropyLoss(torch.nn.LinearCrossEntropyLoss):
    """:class:`torch.nn.LinearCrossEntropyLoss` (same constructor and state), computed by the fused path."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        linear_weight = self.linear.weight.reshape((self.num_classes, *self.out_features, self.linear.in_features))
        bias = self.linear.bias
        linear_bias = None if bias is None else bias.reshape((self.num_classes, *self.out_features))
        return linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )
