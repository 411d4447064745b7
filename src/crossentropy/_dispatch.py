"""The one place that chooses how a call is computed: reference path, C kernel or Triton.

Every public function asks this module once per call. :func:`choose` decides
from the operation, the array's library, device, dtype and layout, and the
convention (whether a convention can use a fused kernel is a property of the
:class:`~crossentropy.conventions.Convention`, its ``fused`` set). The
functions below it run the chosen fused implementation and return per-sample
results, or ``None`` when the reference path must run instead (the kernel is
not built, the layout does not fit, or the kernel met invalid input: the
reference path then raises the error, so every implementation refuses the
same inputs with the same message).

Backends (:data:`BACKENDS`, the table :data:`_SUPPORT` says which arrays each
takes for each operation):

- ``"reference"``: the array-API code of the losses and measures, for any
  array library and device; always available.
- ``"cpu"``: the fused C kernels (:mod:`crossentropy._kernels`), for NumPy
  arrays and, through a registered torch custom op, CPU torch tensors.
- ``"triton"``: the fused Triton kernels, for CUDA torch tensors.

:func:`use` forces one backend in a context (the tests run every case through
each implementation that can run here; Triton runs on CPU tensors under
``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np

from . import _kernels
from ._namespace import namespace
from ._validation import InputError, sum_tolerance

Array = Any

REFERENCE = "reference"
CPU = "cpu"
TRITON = "triton"
BACKENDS = (REFERENCE, CPU, TRITON)

_SUPPORT: dict[str, dict[str, tuple[str, ...]]] = {
    "sparse": {CPU: ("numpy", "torch"), TRITON: ("torch",)},
    "soft": {CPU: ("numpy",)},
    "binary": {CPU: ("numpy",)},
    "info": {CPU: ("numpy",)},
    "linear": {CPU: ("torch",), TRITON: ("torch",)},
    "vocab_parallel": {CPU: ("torch",), TRITON: ("torch",)},
    "token_stats": {CPU: ("torch",), TRITON: ("torch",)},  # per-position statistics of logits (given or linear)
    "distill": {CPU: ("numpy", "torch"), TRITON: ("torch",)},
    "linear_distill": {CPU: ("torch",), TRITON: ("torch",)},
}
"""Operation -> backend -> the array kinds it takes. Operations: ``sparse`` (cross-entropy of logits
with integer labels), ``soft`` (of logits with soft targets), ``binary`` (elementwise binary
cross-entropy), ``info`` (entropy, cross-entropy, KL of probabilities), ``linear`` (linear +
cross-entropy, chunked), ``vocab_parallel`` (the per-shard statistics and gradient), ``distill``
(divergences between two rows: KL either way or the generalised JSD, of logits, or of probabilities
against logits), ``linear_distill`` (the same from hidden states and LM-head weights, chunked)."""

_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("crossentropy_backend", default=None)


class FusedConvention(Protocol):
    """What the dispatcher reads from a convention."""

    @property
    def fused(self) -> frozenset[str]: ...

    @property
    def class_weight_as_sample_weight(self) -> bool: ...


class Rows(NamedTuple):
    """Per-sample results of a fused sparse call, in the caller's array namespace."""

    values: Array
    valid: Array | None
    class_weight: Array | None


@contextlib.contextmanager
def use(backend: str) -> Iterator[None]:
    """Run calls in this context on ``backend`` where it can take them.

    ``"reference"`` always applies; ``"cpu"`` applies where the C kernels are
    built and the call is eligible; ``"triton"`` also takes CPU torch tensors
    (run with ``TRITON_INTERPRET=1``). Calls a forced backend cannot take run
    on the reference path.
    """
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")
    token = _FORCED.set(backend)
    try:
        yield
    finally:
        _FORCED.reset(token)


def _kind(x: object) -> str:
    """``"numpy"`` for a plain ndarray, ``"torch"`` for a tensor, ``""`` otherwise."""
    if type(x) is np.ndarray:
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    return ""


def _torch_device_backend(x: Any) -> str:
    """The fused backend for a torch tensor's device: C kernel on the CPU, Triton on CUDA."""
    if x.device.type == "cpu":
        return CPU
    return TRITON if x.device.type == "cuda" else REFERENCE


_NUMPY_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_TORCH_DTYPES = ("float32", "float64", "bfloat16", "float16")


def _float_dtype(x: Any, kind: str) -> bool:
    """Whether the fused kernels take ``x``'s dtype (float32/float64; for torch also bfloat16, float16)."""
    if kind == "numpy":
        return x.dtype in _NUMPY_DTYPES
    torch = sys.modules["torch"]
    return any(x.dtype is getattr(torch, name) for name in _TORCH_DTYPES)


def choose(op: str, x: object, convention: FusedConvention | None = None, *, last_axis: bool = True) -> str:
    """The backend for operation ``op`` on the array ``x`` (the logits or probabilities).

    ``convention`` (when the operation has one) must list ``op`` in its
    ``fused`` set; ``last_axis`` says the class axis is the last one.
    """
    compiling = _compiling()
    forced = None if compiling else _FORCED.get()
    if forced == REFERENCE or (convention is not None and op not in convention.fused) or not last_axis:
        return REFERENCE
    kind = _kind(x)
    support = _SUPPORT[op]
    if not kind or getattr(x, "ndim", 0) < 1 or not _float_dtype(x, kind):
        return REFERENCE
    if kind == "numpy":
        backend = CPU
    elif forced == TRITON:
        backend = TRITON
    else:
        backend = _torch_device_backend(x)
    if forced not in (None, backend) or kind not in support.get(backend, ()):
        return REFERENCE
    if backend == CPU and not (_kernels.available() if compiling else _kernels.enabled()):
        return REFERENCE
    if backend == TRITON and _triton() is None:
        return REFERENCE
    return backend


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call.

    A compiled graph keeps the backend chosen when it was traced: the
    per-context switches (:func:`use`, :func:`crossentropy._kernels.disabled`)
    are context variables, which the tracer cannot read, so they apply to
    eager calls only.
    """
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())


def _triton() -> ModuleType | None:
    """The Triton kernels' module, or None where triton is not installed (never imported while tracing)."""
    module = sys.modules.get(f"{__package__}._kernels.triton_ce")
    if module is not None or _compiling():
        return module
    try:
        from ._kernels import triton_ce
    except ImportError:
        return None
    return triton_ce


_TORCH_KERNELS = {REFERENCE: "torch_ops", CPU: "torch_cpu", TRITON: "triton_ce"}
"""The kernel module (under :mod:`crossentropy._kernels`) that runs each backend's per-row math on torch
tensors; the reference one is plain torch operations."""


def torch_kernel(op: str, x: Any) -> str:
    """The kernel module for a torch integration's operation ``op`` on tensor ``x``, imported and named.

    Where no fused kernel applies (another device, kernels not built) it is
    the plain-torch module, so the caller always gets one.
    """
    name = _TORCH_KERNELS[choose(op, x)]
    if not _compiling():  # a traced graph calls the custom op, whose implementation imports it
        importlib.import_module(f"{__package__}._kernels.{name}")
    return name


# --- the fused calls ---------------------------------------------------------------------------------


def _class_weight(class_weight: object, num_classes: int, like: Any) -> tuple[bool, Any]:
    """``(ok, weights)``: class weights as a checked vector of ``like``'s library (None if absent).

    ``ok`` is False when they are invalid: the reference path then reports them.
    """
    if class_weight is None:
        return True, None
    if _kind(like) == "torch":
        torch = sys.modules["torch"]
        try:
            cw = torch.as_tensor(class_weight, device=like.device)
        except (TypeError, ValueError, RuntimeError):
            return False, None
        if not (cw.is_floating_point() or cw.dtype in (torch.int64, torch.int32)):
            return False, None
        cw = cw.to(torch.float64 if like.dtype == torch.float64 else torch.float32)
        if tuple(cw.shape) != (num_classes,):
            return False, None
        return True, cw
    try:
        cwn = np.asarray(class_weight, dtype=like.dtype)
    except (TypeError, ValueError):
        return False, None
    return cwn.shape == (num_classes,) and bool(np.all(np.isfinite(cwn) & (cwn >= 0))), cwn


def _integer_labels(labels: object, kind: str) -> bool:
    if kind == "numpy":
        return isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
    torch = sys.modules["torch"]
    return isinstance(labels, torch.Tensor) and not labels.is_floating_point() and not labels.is_complex()


def sparse(
    labels: object,
    logits: object,
    *,
    convention: FusedConvention,
    last_axis: bool,
    ignore_index: int | None,
    class_weight: object,
    label_smoothing: float,
    z_loss: float,
    validate: bool,
) -> Rows | None:
    """Per-sample sparse cross-entropy of logits (class axis last) from a fused kernel, or None.

    For torch tensors the result is differentiable (a registered custom op
    carries the gradient). With ``validate``, a kernel that met invalid input
    (NaN or ``+inf`` logits, a row of ``-inf``, a label out of range) returns
    None so the reference path reports it.
    """
    backend = choose("sparse", logits, convention, last_axis=last_axis)
    if backend == REFERENCE:
        return None
    x: Any = logits
    kind = _kind(x)
    if not _integer_labels(labels, kind):
        return None
    t: Any = labels
    if tuple(t.shape) != tuple(x.shape[:-1]) or x.shape[-1] == 0:
        return None
    c = x.shape[-1]
    ok, cw = _class_weight(class_weight, c, x)
    if not ok:
        return None
    if ignore_index is not None and not -(2**63) <= ignore_index < 2**63:
        ignore_index = None  # no int64 label can equal it (larger unsigned labels are refused by the kernels)
    inside = None if convention.class_weight_as_sample_weight else cw
    values: Any
    if kind == "numpy":
        values = _kernels.sparse(
            x.reshape(-1, c),
            t.reshape(-1),
            ignore_index=ignore_index,
            class_weight=inside,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
        )
        if values is None:
            return None
        values = values.reshape(t.shape)
    else:
        if validate and cw is not None and not bool(((cw >= 0) & (cw < float("inf"))).all()):
            return None
        values = torch_cross_entropy(
            x.reshape(-1, c),
            t.reshape(-1),
            class_weight=inside,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            reduction="none",
            check_labels=False,
        ).reshape(t.shape)
        if validate and bool(values.isnan().any()):
            return None
    xp = namespace(values)
    valid = None if ignore_index is None else t != ignore_index
    weight = None
    if cw is not None:
        safe = xp.where(valid, t, 0) if valid is not None else xp.clip(t, 0, c - 1)
        weight = xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), tuple(t.shape))
    return Rows(values, valid, weight)


def sparse_value_and_grad(
    labels: object,
    logits: object,
    *,
    convention: FusedConvention,
    last_axis: bool,
    ignore_index: int | None,
    class_weight: Any,
    label_smoothing: float,
    z_loss: float,
    row_scale: Any,
    out: Any,
) -> Array | None:
    """Per-sample losses of NumPy logits with the gradient (times ``row_scale``) written to ``out``.

    ``out`` is a C-contiguous array of the logits' shape and dtype (possibly
    the logits themselves). Returns None when the kernel does not apply or
    met invalid input.
    """
    if choose("sparse", logits, convention, last_axis=last_axis) != CPU or _kind(logits) != "numpy":
        return None
    x: Any = logits
    if not _integer_labels(labels, "numpy") or tuple(labels.shape) != x.shape[:-1] or x.shape[-1] == 0:  # type: ignore[attr-defined]
        return None
    if not x.flags.c_contiguous or not (isinstance(out, np.ndarray) and out.flags.c_contiguous):
        return None
    c = x.shape[-1]
    return _kernels.sparse(
        x.reshape(-1, c),
        np.asarray(labels).reshape(-1),
        ignore_index=ignore_index,
        class_weight=class_weight,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        grad_out=out.reshape(-1, c),
        row_scale=np.ascontiguousarray(row_scale, dtype=np.float64).reshape(-1),
    )


def soft(
    y_true: object,
    logits: object,
    *,
    convention: FusedConvention,
    last_axis: bool,
    class_weight: object,
    label_smoothing: float,
    check_sums: bool,
) -> tuple[Array, Array | None] | None:
    """Per-sample ``-sum_c a_c log_softmax(x)_c`` (soft targets, class axis last), or None.

    Returns the losses and, with class weights, each sample's class weight.
    """
    if choose("soft", logits, convention, last_axis=last_axis) == REFERENCE or _kind(y_true) != "numpy":
        return None
    x: Any = logits
    y: Any = y_true
    if y.shape != x.shape or y.dtype != x.dtype or x.shape[-1] == 0:
        return None
    c = x.shape[-1]
    ok, cw = _class_weight(class_weight, c, x)
    if not ok:
        return None
    result = _kernels.soft(
        x.reshape(-1, c),
        y.reshape(-1, c),
        class_weight=cw,
        label_smoothing=label_smoothing,
        check_sums=check_sums,
        tol=sum_tolerance(np, x.dtype),
    )
    if result is None:
        return None
    values, class_of = result
    shape = x.shape[:-1]
    return values.reshape(shape), None if cw is None else class_of.reshape(shape)


def binary(
    y_true: object,
    y_pred: object,
    *,
    convention: FusedConvention,
    from_logits: bool,
    pos_weight: object,
    label_smoothing: float,
) -> Array | None:
    """Elementwise binary cross-entropy from the fused kernel, or None."""
    if choose("binary", y_pred, convention) == REFERENCE or _kind(y_true) != "numpy":
        return None
    p: Any = y_pred
    y: Any = y_true
    if y.shape != p.shape or y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and y.dtype != p.dtype):
        return None
    if pos_weight is None:
        pw = 1.0
    elif isinstance(pos_weight, (int, float, np.number)) and not isinstance(pos_weight, bool):
        pw = float(pos_weight)
        if not (pw >= 0 and np.isfinite(pw)):
            return None
    else:
        return None
    return _kernels.binary(
        y.astype(p.dtype, copy=False), p, from_logits=from_logits, pos_weight=pw, label_smoothing=label_smoothing
    )


def info(kind: str, p: object, q: object | None, *, last_axis: bool, check_sums: bool) -> Array | None:
    """Row-wise entropy, cross-entropy or KL (float64) of probabilities with the events last, or None."""
    if choose("info", p, last_axis=last_axis) == REFERENCE:
        return None
    first: Any = p
    if q is not None and (_kind(q) != "numpy" or q.shape != first.shape or q.dtype != first.dtype):  # type: ignore[attr-defined]
        return None
    if first.shape[-1] == 0:
        return None
    c = first.shape[-1]
    other = None if q is None else q.reshape(-1, c)  # type: ignore[attr-defined]
    tol = sum_tolerance(np, first.dtype)
    rows = _kernels.info(kind, first.reshape(-1, c), other, check_sums=check_sums, tol=tol)
    return None if rows is None else rows.reshape(first.shape[:-1])


# --- torch integrations: the drop-in, linear + cross-entropy, the vocabulary-parallel shards ---------------


def prepare_torch() -> None:
    """Load what a traced torch call relies on: the kernel library and the registered custom ops.

    ``torch.compile`` cannot trace a first load (it takes a lock and runs
    ctypes), so the torch integrations call this when they are imported.
    """
    _kernels.available()
    importlib.import_module(f"{__package__}._kernels.autograd")


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
) -> Any:
    """PyTorch's cross-entropy of logits ``(n, V)`` with labels ``(n,)`` on the kernel for their device.

    The mean divides by the summed class weights of the non-ignored targets;
    nothing is read back to the host, so it compiles and never synchronises.
    """
    from ._kernels import autograd

    return autograd.sparse_cross_entropy(
        torch_kernel("sparse", logits),
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


LINEAR_BLOCK_BYTES = 256 << 20
"""The default size of one block of logits in linear + cross-entropy."""


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
) -> Any:
    """``cross_entropy(hidden @ weight.T + bias, labels)`` blocked over rows, on the kernel for their device.

    ``chunk`` rows per block (default: about 256 MiB of logits); ``upcast``
    computes the products of bfloat16/float16 inputs in float32. The loss is
    returned in the accumulation dtype (float32 for bfloat16/float16 inputs).
    """
    from ._kernels import autograd

    if chunk is None:
        chunk = max(1, LINEAR_BLOCK_BYTES // max(1, weight.shape[0] * hidden.element_size()))
    return autograd.linear_cross_entropy(
        torch_kernel("linear", hidden),
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
    return importlib.import_module(f"{__package__}._kernels.{torch_kernel('vocab_parallel', shard)}")


# --- token statistics: the no-gradient pass over logits and their targets ----------------------------------------

_STATS_KERNELS = {REFERENCE: "stats_torch", CPU: "stats_cpu", TRITON: "triton_stats"}
"""The module (under :mod:`crossentropy._kernels`) computing the token statistics of rows for each backend."""


def prepare_token_statistics() -> None:
    """Load what a traced call of the token statistics relies on: the kernel library and the two custom ops."""
    _kernels.available()
    importlib.import_module(f"{__package__}._kernels.stats_ops")


def stats_kernel(x: Any) -> str:
    """The token-statistics kernel module for tensor ``x``, imported and named (plain torch where none applies)."""
    name = _STATS_KERNELS[choose("token_stats", x)]
    if not _compiling():  # a traced graph calls the custom op, whose implementation imports it
        importlib.import_module(f"{__package__}._kernels.{name}")
    return name


def torch_token_statistics(logits: Any, targets: Any, *, ignore_index: int | None, temperature: float) -> Any:
    """Per-position ``(logprob, entropy, rank, top1, lse)`` of logits ``(*, V)`` and targets ``(*)`` on the kernel
    for their device; nothing is read back to the host, so it compiles and never synchronises."""
    from ._kernels import stats_ops

    return stats_ops.token_statistics(
        stats_kernel(logits), logits, targets, ignore_index=ignore_index, temperature=temperature
    )


def torch_linear_token_statistics(
    hidden: Any,
    weight: Any,
    targets: Any,
    *,
    bias: Any,
    ignore_index: int | None,
    temperature: float,
    softcap: float,
    chunk: int | None,
) -> Any:
    """The statistics of ``softcap(hidden @ weight.T + bias)`` blocked over rows, on the kernel for their device.

    ``chunk`` rows per block; by default a block holds about
    :data:`LINEAR_BLOCK_BYTES` of logits, counting the float32 copy the C
    kernel makes of bfloat16/float16 ones.
    """
    from ._kernels import stats_ops

    if chunk is None:
        per_logit = weight.element_size() + (4 if weight.element_size() < 4 else 0)
        chunk = max(1, LINEAR_BLOCK_BYTES // max(1, weight.shape[0] * per_logit))
    return stats_ops.linear_token_statistics(
        stats_kernel(hidden),
        hidden,
        weight,
        targets,
        bias=bias,
        ignore_index=ignore_index,
        temperature=temperature,
        softcap=softcap,
        chunk=chunk,
    )


# --- distillation: divergences between two models' rows ----------------------------------------------------

_KL_KERNELS = {REFERENCE: "kl_ops", CPU: "kl_cpu", TRITON: "triton_kl"}
"""The kernel module (under :mod:`crossentropy._kernels`) that computes each backend's divergences of row pairs
of torch tensors; the reference one is plain torch operations."""


def kl_kernel(op: str, x: Any) -> str:
    """The divergence kernel module for operation ``op`` (``distill`` or ``linear_distill``) on tensor ``x``,
    imported and named (the plain-torch one where no fused kernel applies)."""
    name = _KL_KERNELS[choose(op, x)]
    if not _compiling():  # a traced graph calls the custom op, whose implementation imports it
        importlib.import_module(f"{__package__}._kernels.{name}")
    return name


def prepare_distillation() -> None:
    """Load what a traced distillation call relies on (see :func:`prepare_torch`), the divergence ops too."""
    prepare_torch()
    importlib.import_module(f"{__package__}._kernels.distill_autograd")


def torch_distillation(student: Any, teacher: Any, **options: Any) -> tuple[Any, Any]:
    """Per-row divergence of the student's and the teacher's rows ``(n, V)`` on the kernel for their device:
    ``(values, aux)`` of :func:`crossentropy._kernels.distill_autograd.distill` (differentiable with respect to
    ``student``; nothing is read back to the host)."""
    from ._kernels import distill_autograd

    return distill_autograd.distill(kl_kernel("distill", student), student, teacher, **options)


DISTILL_BLOCK_BYTES = 1 << 30
"""The default size of one block of both models' logits in linear + distillation: larger than
:data:`LINEAR_BLOCK_BYTES`, as each block reads both LM heads and updates the student's gradient once (at
N x D x V = 1024 x 1024 x 128256, 1 GiB blocks took 29 s against 41 s for 256 MiB ones, in one run)."""


def torch_linear_distillation(h_s: Any, w_s: Any, h_t: Any, w_t: Any, **options: Any) -> tuple[Any, Any]:
    """The divergence of two models' logits from hidden states and LM-head weights, over blocks of rows holding
    about :data:`DISTILL_BLOCK_BYTES` of both models' logits
    (:func:`crossentropy._kernels.distill_autograd.linear_distill`)."""
    from ._kernels import distill_autograd

    least = 4 if options.get("upcast") else 1  # upcast: the blocks of bfloat16/float16 weights are float32
    row_bytes = w_s.shape[0] * (max(w_s.element_size(), least) + max(w_t.element_size(), least))
    chunk = max(1, DISTILL_BLOCK_BYTES // max(1, row_bytes))
    return distill_autograd.linear_distill(kl_kernel("linear_distill", h_s), h_s, w_s, h_t, w_t, chunk=chunk, **options)


def divergence(
    divergence: str, reference: object, logits: object, *, teacher_probs: bool, last_axis: bool, check_sums: bool
) -> Array | None:
    """Row-wise ``KL(P || Q)`` (``"forward_kl"``) or ``JS(P, Q)`` (``"jsd"``) of ``logits`` (Q, events last)
    against ``reference`` (P: probabilities with ``teacher_probs``, else logits) from a fused kernel, or None.

    One pass per row pair: the C kernel for NumPy arrays and CPU tensors,
    Triton for CUDA tensors; torch results are differentiable with respect to
    ``logits``. Returns None where the reference path must run: no kernel, a
    layout or dtype it does not take, ``reference`` needing a gradient, or
    (with ``check_sums``, the validating call) invalid values, which the
    reference path then reports.
    """
    backend = choose("distill", logits, last_axis=last_axis)
    p: Any = reference
    q: Any = logits
    kind = _kind(q)
    if backend == REFERENCE or _kind(p) != kind or p.shape != q.shape or p.dtype != q.dtype or q.shape[-1] == 0:
        return None
    c = q.shape[-1]
    if kind == "numpy":
        tol = sum_tolerance(np, q.dtype)
        found = _kernels.distill(
            q.reshape(-1, c),
            p.reshape(-1, c),
            divergence=divergence,
            teacher_probs=teacher_probs,
            check_sums=check_sums,
            tol=tol,
        )
        return None if found is None else found[0].reshape(q.shape[:-1])
    torch = sys.modules["torch"]
    if p.requires_grad and torch.is_grad_enabled():
        return None  # the reference path differentiates both arguments
    if check_sums and teacher_probs:
        sums_ok = (p.double().sum(-1) - 1.0).abs() <= float(torch.finfo(p.dtype).eps) ** 0.5
        if not bool((((p >= 0) & (p <= 1)).all(-1) & sums_ok).all()):
            return None
    values, _ = torch_distillation(
        q.reshape(-1, c), p.reshape(-1, c), divergence=divergence, teacher_probs=teacher_probs
    )
    if check_sums and bool(values.isnan().any()):
        return None
    return values.to(q.dtype).reshape(q.shape[:-1])
