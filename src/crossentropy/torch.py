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

What runs underneath (one decision per call, :mod:`crossentropy._dispatch`'s):

- :func:`cross_entropy` with class-index targets (and :class:`CrossEntropyLoss`)
  runs the fused kernel for the tensor's device, the C kernel on CPU tensors
  and Triton on CUDA tensors, through a registered ``torch.library`` custom
  op: the forward pass reads the logits once and keeps two numbers per row,
  the backward pass writes ``softmax - target`` in one pass. bfloat16 and
  float16 logits are accumulated in float32. A target out of range raises
  PyTorch's ``IndexError`` on the CPU and a device-side assertion on CUDA.
- :func:`linear_cross_entropy` (and :class:`LinearCrossEntropyLoss`)
  computes ``cross_entropy(input @ linear_weight.T + linear_bias, target)``
  over row blocks with the same kernel, so the ``N x C`` logits never exist;
  under ``torch.no_grad()`` each block costs one matrix product.
- Calls too small for the fused kernel to beat PyTorch's (below a crossover
  measured by ``benchmarks/torch_dropin.py --crossover``), calls under
  ``torch.func`` transforms or forward-mode AD, tensor subclasses and
  ``__torch_function__`` modes, devices without a fused kernel, probability
  targets, K-dimensional linear weights and inputs PyTorch refuses run
  PyTorch's own function, so they behave, and cost, exactly as in PyTorch.
- Higher-order gradients: when autograd records the backward pass
  (``create_graph=True``: gradient penalties, meta-gradients, Hessian-vector
  products), the fused operations return a gradient computed with torch
  operations, which autograd differentiates again.
- Targets of every integer dtype PyTorch takes (int64 and uint8) are compared
  with ``ignore_index`` as integers of unbounded range: ``ignore_index=-100``
  is never uint8 class 156.
- :func:`nll_loss`, :func:`binary_cross_entropy` and
  :func:`binary_cross_entropy_with_logits` (and their modules) are PyTorch's
  own: a gather and two elementwise losses that PyTorch already computes in
  one pass. They are here so that one import serves every loss; so are
  :func:`kl_div` and :class:`KLDivLoss`.

Three functions here are crossentropy's own, with no PyTorch original to
reproduce, exact by default: :func:`distillation_loss` and
:func:`linear_distillation_loss` (forward KL, reverse KL or the generalised
JSD between a student's and a teacher's logits, fused; the peers' numbers by
``convention``), and :func:`token_statistics` with
:func:`linear_token_statistics` (each position's log-probability, entropy,
rank, top-1 probability and log-sum-exp in one pass, without gradients).

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

import torch
import torch.nn.functional as F
from torch.nn import _reduction

from . import _dispatch, _dispatch_dropin
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
    return _dispatch_dropin.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


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
    if _dispatch_dropin.linear_too_small(input, linear_weight, linear_bias):  # PyTorch's own, at its cost
        return F.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=weight,
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            options=options,  # type: ignore[arg-type]  # whatever PyTorch takes, PyTorch checks
        )
    return _dispatch_dropin.linear_cross_entropy(
        input, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing, options
    )


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
