"""Per-token statistics of a model's predictions in one pass over the logits (public in :mod:`crossentropy.torch`).

Evaluation and reinforcement-learning code wants more than the loss from the
pass over the logits: the target's log-probability, the entropy of the
prediction, where the target ranks, how confident the top prediction was and
the log-sum-exp (Liger-Kernel issues #328 and #703, pull requests #1334 and
#1359; Cut Cross-Entropy's ``return_lse``). :func:`token_statistics` gives
the five, per position, from one read of the logits; and
:func:`linear_token_statistics` from hidden states and an output layer,
block by block, without the ``N x V`` logits.

A module of its own, re-exported by :mod:`crossentropy.torch`: it is not a
PyTorch function, so it is outside the drop-in's contract of reproducing
``torch.nn.functional`` (its inputs, errors and numbers are its own, stated
below), and it takes NumPy arrays as well as tensors. The kernels are chosen
by :mod:`crossentropy._dispatch`; this module checks the arguments and shapes
the results. Importing it imports torch.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from . import _dispatch
from ._validation import InputError, first_bad, target_out_of_range

__all__ = ["TokenStatistics", "linear_token_statistics", "token_statistics"]

_dispatch.prepare_token_statistics()

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
_INT64 = np.iinfo(np.int64)


class TokenStatistics(NamedTuple):
    """Per-position statistics of a predicted distribution ``q = softmax(logits / T)`` and its target ``t``.

    Every field has the targets' shape; the float fields are float64 for
    float64 logits and float32 otherwise, ``rank`` is int64; tensors for
    tensor logits, NumPy arrays for NumPy logits. A position whose target is
    ``ignore_index`` has 0 in every field.

    Attributes
    ----------
    logprob : the target's log-probability ``log q_t`` in nats (minus the token's cross-entropy).
    entropy : the entropy ``-sum_j q_j log q_j`` of the prediction in nats.
    rank : the target's place among the classes, 1 for the argmax (see :func:`token_statistics`).
    top1_prob : the largest probability ``max_j q_j``.
    lse : the log-sum-exp ``log sum_j exp(x_j / T)`` of the logits.
    """

    logprob: Any
    entropy: Any
    rank: Any
    top1_prob: Any
    lse: Any


_REAL = (int, float, np.integer, np.floating, torch.SymInt, torch.SymFloat)
"""Numbers an option may be. Under ``torch.compile`` a number passed to the compiled function arrives symbolic
(a ``SymFloat`` or ``SymInt``) once it has changed between calls; comparing it adds a guard, so the checks
below hold for it too."""


def _temperature(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, _REAL):
        raise InputError(f"temperature must be a number > 0; got {value!r}")
    t = float(value)
    if not 0.0 < t < math.inf:  # NaN fails too
        raise InputError(f"temperature must be a finite number > 0; got {value!r}")
    return t


def _ignore_index(value: object) -> int | None:
    """``ignore_index`` as an int64 value, or None when no int64 target can equal it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, torch.SymInt)):
        raise InputError(f"ignore_index must be an integer or None; got {value!r}")
    v = int(value)
    return v if _INT64.min <= v <= _INT64.max else None


def _floating(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor; got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise InputError(f"{name} must be a floating-point tensor (float16, bfloat16, float32, float64); got {x.dtype}")
    if x.ndim == 0:
        axis = "classes" if name == "logits" else "features"
        raise InputError(f"{name} must have a last axis (the {axis}); got a 0-d tensor")
    return x


def _targets(targets: object, like: torch.Tensor, name: str) -> torch.Tensor:
    """``targets`` checked against ``like`` (logits or hidden states): integers of its shape without the last axis."""
    if not isinstance(targets, torch.Tensor):
        raise InputError(f"targets must be a torch tensor of class indices; got {type(targets).__name__}")
    if targets.dtype not in _INDEX_DTYPES:
        raise InputError(f"targets must hold integer class indices (int8 to int64, or uint8); got {targets.dtype}")
    want = tuple(like.shape[:-1])
    if tuple(targets.shape) != want:
        raise InputError(
            f"targets must have the shape of {name} without its last axis: {name} {tuple(like.shape)} takes "
            f"targets {want}; got {tuple(targets.shape)}"
        )
    if targets.device != like.device:
        raise InputError(f"targets must be on the device of {name} ({like.device}); got {targets.device}")
    return targets


def _from_numpy(
    logits: np.ndarray[Any, Any], targets: object, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """NumPy logits and targets as CPU tensors (views where the layout allows), to be checked as tensors are."""
    if logits.dtype not in (np.float16, np.float32, np.float64):
        raise InputError(f"logits must be a floating-point array (float16, float32 or float64); got {logits.dtype}")
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise InputError(f"targets must hold integer class indices; got {y.dtype}")
    if y.dtype.kind == "u" and y.size and int(y.max()) > _INT64.max:  # no int64 holds it: out of range
        index, value = first_bad(y > _INT64.max, y)
        raise target_out_of_range(index, int(value), logits.shape[-1] if logits.ndim else 0, ignore_index)
    x = np.asarray(logits, dtype=logits.dtype.newbyteorder("="), order="C")
    return torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64, order="C"))


def token_statistics(
    logits: Any, targets: Any, *, ignore_index: int | None = -100, temperature: float = 1.0
) -> TokenStatistics:
    """Per position: the target's log-probability and rank, the entropy, the top-1 probability, the log-sum-exp.

    With logits ``x`` (the last axis holds the ``V`` classes), target ``t``
    and ``q = softmax(x / T)`` for the temperature ``T``:

    - ``logprob = log q_t``, the negative of the token's cross-entropy;
    - ``entropy = -sum_j q_j log q_j`` (``0 log 0 = 0``);
    - ``rank = 1 + #{j: x_j > x_t} + #{j < t: x_j == x_t}``, the target's place
      in ``torch.argsort(x, descending=True, stable=True)`` (1 = the argmax,
      ties broken by the class index; NaN sorts first); ``rank == 1`` marks a
      top-1 hit. It does not depend on ``T``;
    - ``top1_prob = max_j q_j``;
    - ``lse = log sum_j exp(x_j / T)``.

    All five come from one read of each row of logits (a running maximum,
    sum of exponentials and entropy sum, and a count of the logits ahead of
    the target's): the C kernel for CPU tensors and NumPy arrays, a Triton
    kernel for CUDA tensors, plain torch operations on other devices, with
    the same numbers.

    Parameters
    ----------
    logits : torch.Tensor or numpy.ndarray, shape (*, V)
        Unnormalised log-probabilities, float16, bfloat16, float32 or float64.
    targets : torch.Tensor or numpy.ndarray of integers, shape (*)
        The class of each position, in ``[0, V)``, or ``ignore_index``; on
        the logits' device.
    ignore_index : int or None, default -100
        Positions whose target equals it are not scored; None scores all.
    temperature : float, default 1.0
        ``T``: a finite number > 0 that divides the logits.

    Returns
    -------
    TokenStatistics
        ``logprob``, ``entropy``, ``rank``, ``top1_prob``, ``lse``, each of
        the targets' shape: float64 for float64 logits, float32 otherwise
        (bfloat16 and float16 logits are accumulated in float32), the rank
        int64; NumPy arrays for NumPy logits. They carry no gradient.

    Raises
    ------
    IndexError
        A target outside ``[0, V)`` that is not ``ignore_index``, named with
        its position (it is also a :class:`crossentropy.InputError`). On CUDA
        a device-side assertion fails instead: nothing is read back to the
        host.
    crossentropy.InputError
        Logits or targets of the wrong kind, dtype, shape or device; a
        temperature that is not a finite number > 0; an ``ignore_index``
        that is not an integer or None.

    Notes
    -----
    An ignored position has 0 in every field, rank 0 included (no scored
    position has rank 0): summing a statistic over positions sums it over
    the scored tokens, and ``rank > 0`` counts them. For the statistics of
    the prediction alone (entropy, top-1 probability, log-sum-exp) at a
    position with no target, give it any class, such as 0.

    ``-inf`` logits mask classes: they count 0 in the entropy and rank
    behind every number. A position whose logits hold NaN or ``+inf``, or
    are all ``-inf``, has no softmax: its four float statistics are NaN (its
    rank is still counted, as ``argsort`` orders NaN).

    Accuracy: float64 logits are computed in float64, the sums compensated;
    float32, bfloat16 and float16 in float32, with the log-sum-exp kept apart
    from the largest term, so that ``log q_t`` and the entropy of a class
    holding nearly all the mass keep their relative accuracy. The pass costs
    no host synchronisation and compiles under
    ``torch.compile(fullgraph=True)`` (a registered custom op).

    References
    ----------
    Liger-Kernel, issues #328 and #703 and pull requests #1334 and #1359
    (log-probabilities and entropy from the loss's pass over the logits);
    E. Wijmans et al., "Cut Your Losses in Large-Vocabulary Language
    Models", ICLR 2025 (``return_lse``).

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import token_statistics
    >>> logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
    >>> stats = token_statistics(logits, torch.tensor([0, 0, -100]))
    >>> stats.logprob
    tensor([-0.4170, -2.2200,  0.0000])
    >>> stats.rank
    tensor([1, 2, 0])
    >>> stats.entropy
    tensor([0.8467, 0.6329, 0.0000])

    The log-probability is minus the per-token cross-entropy, and the top-1
    probability ``exp(max x - lse)``:

    >>> torch.nn.functional.cross_entropy(logits[:2], torch.tensor([0, 0]), reduction="none")
    tensor([0.4170, 2.2200])
    >>> bool(torch.allclose(stats.top1_prob[:2], torch.exp(logits[:2].amax(-1) - stats.lse[:2])))
    True

    A temperature flattens the distribution but leaves the ranks; three equal
    logits give the entropy ``log 3``:

    >>> token_statistics(logits, torch.tensor([0, 0, 2]), temperature=2.0).entropy
    tensor([1.0262, 0.9627, 1.0986])
    """
    ignore = _ignore_index(ignore_index)
    t = _temperature(temperature)
    arrays = isinstance(logits, np.ndarray)
    if arrays:
        logits, targets = _from_numpy(logits, targets, ignore)
    x = _floating("logits", logits)
    stats = _dispatch.torch_token_statistics(x, _targets(targets, x, "logits"), ignore_index=ignore, temperature=t)
    return TokenStatistics(*(s.numpy() for s in stats)) if arrays else TokenStatistics(*stats)


def linear_token_statistics(
    input: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int | None = -100,
    temperature: float = 1.0,
    softcap: float = 0.0,
    chunk_size: int | None = None,
) -> TokenStatistics:
    """:func:`token_statistics` of ``input @ weight.T + bias`` computed block by block, without the ``N x V`` logits.

    ``input`` holds hidden states ``(*, D)``, ``weight`` the output layer
    ``(V, D)`` (a language model's ``lm_head.weight``), ``bias`` ``(V,)`` or
    None; the logits of each block of ``chunk_size`` rows are computed into
    one reused buffer, soft-capped when ``softcap`` > 0
    (``softcap * tanh(x / softcap)``, as Gemma 2 caps its final logits),
    and read once by the kernel for their device. The peak memory beyond the
    inputs and the results is one block of logits (and, on the CPU, the C
    kernel's float32 copy of a bfloat16/float16 block). The products are
    computed in the inputs' dtype, as the model's own output layer computes
    them, also under autocast (cast the inputs for another dtype); the
    statistics are accumulated as in :func:`token_statistics`.

    Parameters
    ----------
    input : torch.Tensor, shape (*, D)
        Hidden states, float16, bfloat16, float32 or float64.
    weight : torch.Tensor, shape (V, D)
        The output layer's weight, of ``input``'s dtype and device.
    targets : torch.Tensor of integers, shape (*)
        The class of each position, in ``[0, V)``, or ``ignore_index``.
    bias : torch.Tensor, shape (V,), optional
        The output layer's bias, of ``input``'s dtype and device.
    ignore_index : int or None, default -100
        Positions whose target equals it are not scored; None scores all.
    temperature : float, default 1.0
        A finite number > 0 that divides the (capped) logits.
    softcap : float, default 0.0
        A finite cap > 0 for ``softcap * tanh(logits / softcap)``; 0 for none.
    chunk_size : int, optional
        Rows per block; by default a block holds about 256 MiB of logits.

    Returns
    -------
    TokenStatistics
        As :func:`token_statistics`.

    Raises
    ------
    IndexError
        As :func:`token_statistics` (also a :class:`crossentropy.InputError`).
    crossentropy.InputError
        Arguments of the wrong kind, dtype, shape or device; a temperature,
        cap or chunk size out of its range.

    Examples
    --------
    >>> import torch
    >>> from crossentropy.torch import linear_token_statistics, token_statistics
    >>> g = torch.Generator().manual_seed(0)
    >>> hidden, weight = torch.randn(2, 5, 8, generator=g), torch.randn(100, 8, generator=g)
    >>> targets = torch.randint(0, 100, (2, 5), generator=g)
    >>> blocked = linear_token_statistics(hidden, weight, targets, chunk_size=3)
    >>> whole = token_statistics(hidden @ weight.T, targets)
    >>> all(bool(torch.allclose(a, b, rtol=1e-5, atol=1e-5)) for a, b in zip(blocked, whole))
    True
    """
    ignore = _ignore_index(ignore_index)
    t = _temperature(temperature)
    hidden = _floating("input", input)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise InputError(f"weight must be a (V, {hidden.shape[-1]}) tensor for input {tuple(hidden.shape)}; got {got}")
    for name, tensor in (("weight", weight), ("bias", bias)):
        if isinstance(tensor, torch.Tensor) and (tensor.dtype != hidden.dtype or tensor.device != hidden.device):
            raise InputError(
                f"{name} must have the dtype and device of input ({hidden.dtype}, {hidden.device}); "
                f"got {tensor.dtype}, {tensor.device}"
            )
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise InputError(f"bias must be None or a ({weight.shape[0]},) tensor; got {got}")
    if isinstance(softcap, bool) or not isinstance(softcap, _REAL) or not 0 <= float(softcap) < math.inf:
        raise InputError(f"softcap must be a finite number >= 0 (0 for no cap); got {softcap!r}")
    integral = (int, np.integer, torch.SymInt)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, integral) or chunk_size <= 0
    ):
        raise InputError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    stats = _dispatch.torch_linear_token_statistics(
        hidden,
        weight,
        _targets(targets, hidden, "input"),
        bias=bias,
        ignore_index=ignore,
        temperature=t,
        softcap=float(softcap),
        chunk=None if chunk_size is None else int(chunk_size),
    )
    return TokenStatistics(*stats)
