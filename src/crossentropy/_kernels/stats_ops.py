"""The token-statistics passes as torch custom ops (private): given logits, or linear logits block by block.

Two operations, whichever kernel module computes the rows (the caller,
:mod:`crossentropy._dispatch`, names it: :mod:`.stats_cpu`,
:mod:`.triton_stats` or :mod:`.stats_torch`):

- ``crossentropy::token_statistics``: the statistics of logits ``(*, V)``
  with targets ``(*)``;
- ``crossentropy::linear_token_statistics``: those of
  ``softcap(hidden @ weight.T + bias)`` for hidden states ``(*, D)``,
  computed over blocks of rows into one reused ``rows x V`` buffer, so that
  the ``N x V`` logits never exist: the peak memory beyond the inputs and
  outputs is one block (and, for bfloat16/float16 logits on the CPU, the C
  kernel's float32 copy of it).

Both check the targets first (:func:`.stats_torch.check_targets`: an error
naming the position on the CPU, a device-side assertion elsewhere), carry no
gradient, and are registered with fake implementations, so
``torch.compile(fullgraph=True)`` traces them without a graph break; neither
reads a value back to the host. Outside ``torch.compile`` they run as plain
functions (a registered op's first eager call imports ``torch._dynamo`` and
with it Triton, whose LLVM clashes with the one jaxlib and TensorFlow load;
see :func:`crossentropy._kernels.autograd._eager`). This module is apart from
:mod:`.autograd` because the statistics have no backward pass to share.

Importing this module imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

import torch

from . import stats_torch
from .torch_ops import work_dtype

__all__ = ["linear_token_statistics", "token_statistics"]

Statistics = stats_torch.Statistics


def _rows(kernel: str) -> Any:
    """``token_statistics`` of the kernel module ``crossentropy._kernels.<kernel>``."""
    return importlib.import_module(f"{__package__}.{kernel}").token_statistics


def _shaped(stats: Statistics, shape: torch.Size) -> Statistics:
    logprob, entropy, rank, top1, lse = (s.reshape(shape) for s in stats)
    return logprob, entropy, rank, top1, lse


def _empty(like: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> Statistics:
    floats = [like.new_empty(shape, dtype=dtype) for _ in range(4)]
    return floats[0], floats[1], like.new_empty(shape, dtype=torch.int64), floats[2], floats[3]


# --- statistics of given logits ------------------------------------------------------------------------------


def _token_statistics(
    logits: torch.Tensor, targets: torch.Tensor, kernel: str, ignore_index: int | None, temperature: float
) -> Statistics:
    v = logits.shape[-1]
    stats_torch.check_targets(targets, v, ignore_index)
    n = targets.numel()
    stats = _rows(kernel)(
        logits.reshape(n, v), targets.reshape(n).to(torch.int64), ignore_index=ignore_index, temperature=temperature
    )
    return _shaped(stats, targets.shape)


_token_statistics_op = torch.library.custom_op("crossentropy::token_statistics", _token_statistics, mutates_args=())


@_token_statistics_op.register_fake
def _(
    logits: torch.Tensor, targets: torch.Tensor, kernel: str, ignore_index: int | None, temperature: float
) -> Statistics:
    return _empty(logits, targets.shape, work_dtype(logits.dtype))


def _eager() -> bool:
    """Outside ``torch.compile`` the operations run as plain functions (see the module docstring)."""
    return not torch.compiler.is_compiling()


def token_statistics(
    kernel: str, logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None, temperature: float
) -> Statistics:
    """``(logprob, entropy, rank, top1, lse)`` of logits ``(*, V)`` with integer targets ``(*)`` on ``kernel``.

    The float statistics come in the accumulation dtype (float64 for float64
    logits, float32 otherwise), the rank as int64, each of the targets'
    shape. See :mod:`.stats_torch` for the definitions.
    """
    op: Any = _token_statistics if _eager() else _token_statistics_op
    return cast(Statistics, op(logits.detach(), targets.detach(), kernel, ignore_index, float(temperature)))


# --- statistics of linear logits, block by block ------------------------------------------------------------------


def _linear_token_statistics(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    kernel: str,
    ignore_index: int | None,
    temperature: float,
    softcap: float,
    chunk: int,
) -> Statistics:
    v = weight.shape[0]
    stats_torch.check_targets(targets, v, ignore_index)
    n = targets.numel()
    rows = hidden.reshape(n, hidden.shape[-1])
    labels = targets.reshape(n).to(torch.int64)
    out = _empty(hidden, torch.Size((n,)), work_dtype(hidden.dtype))
    run = _rows(kernel)
    # one buffer for every block's logits: a new allocation per block would be page-faulted in again each time
    buffer = hidden.new_empty((min(chunk, n), v), dtype=weight.dtype)
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        logits = buffer[: end - start]
        if bias is None:
            torch.mm(rows[start:end], weight.t(), out=logits)
        else:  # the bias added before the product is rounded, as torch.nn.functional.linear does
            torch.addmm(bias, rows[start:end], weight.t(), out=logits)
        if softcap:
            logits.div_(softcap).tanh_().mul_(softcap)
        part = run(logits, labels[start:end], ignore_index=ignore_index, temperature=temperature)
        for whole, piece in zip(out, part, strict=True):
            whole[start:end] = piece
    return _shaped(out, targets.shape)


_linear_token_statistics_op = torch.library.custom_op(
    "crossentropy::linear_token_statistics", _linear_token_statistics, mutates_args=()
)


@_linear_token_statistics_op.register_fake
def _(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    kernel: str,
    ignore_index: int | None,
    temperature: float,
    softcap: float,
    chunk: int,
) -> Statistics:
    return _empty(hidden, targets.shape, work_dtype(hidden.dtype))


def linear_token_statistics(
    kernel: str,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None,
    ignore_index: int | None,
    temperature: float,
    softcap: float,
    chunk: int,
) -> Statistics:
    """The statistics of ``softcap(hidden @ weight.T + bias) / temperature``, ``chunk`` rows at a time.

    ``hidden`` is ``(*, D)``, ``weight`` ``(V, D)``, ``bias`` ``(V,)`` or
    None, ``targets`` of ``hidden``'s shape without ``D``; the products are
    computed in the inputs' dtype (the logits a model in that dtype
    produces), the statistics accumulated as :func:`token_statistics` does.
    ``softcap`` 0 means no capping.
    """
    op: Any = _linear_token_statistics if _eager() else _linear_token_statistics_op
    return cast(
        Statistics,
        op(
            hidden.detach(),
            weight.detach(),
            None if bias is None else bias.detach(),
            targets.detach(),
            kernel,
            ignore_index,
            float(temperature),
            float(softcap),
            int(chunk),
        ),
    )
