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

For the PyTorch drop-in (:mod:`crossentropy.torch`) the reference is
PyTorch's own kernel; this module's half for it,
:mod:`crossentropy._dispatch_dropin`, decides with the rules here whether a
call is one the fused kernel takes exactly as PyTorch does, and whether it is
large enough for the fused kernel to be faster (its ``CROSSOVER`` table,
measured). Under ``torch.func`` transforms and forward-mode AD every torch
call takes the reference path (:func:`transformed`: the fused kernels read
raw storage, which a transformed tensor does not have).

:func:`use` forces one backend in a context, and the environment variable
``CROSSENTROPY_BACKEND`` (``reference``, ``cpu``, ``triton``) forces one for
the process; nothing else does (the tests run every case through each
implementation that can run here; Triton runs on CPU tensors under
``TRITON_INTERPRET=1``). A forced backend runs every call it can take,
whatever the size. ``CROSSENTROPY_DISABLE_KERNELS=1``, the older switch,
means ``CROSSENTROPY_BACKEND=reference``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np

from . import _kernels
from ._namespace import namespace
from ._validation import InputError, ignored, sum_tolerance

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
}
"""Operation -> backend -> the array kinds it takes. Operations: ``sparse`` (cross-entropy of logits
with integer labels), ``soft`` (of logits with soft targets), ``binary`` (elementwise binary
cross-entropy), ``info`` (entropy, cross-entropy, KL of probabilities), ``linear`` (linear +
cross-entropy, chunked), ``vocab_parallel`` (the per-shard statistics and gradient)."""

AUTO = "auto"
ENVIRONMENT = "CROSSENTROPY_BACKEND"


def _environment() -> str | None:
    """The backend the environment forces (read once, at import), or None."""
    value = os.environ.get(ENVIRONMENT, "").strip().lower()
    if value in ("", AUTO) and os.environ.get("CROSSENTROPY_DISABLE_KERNELS", "") not in ("", "0"):
        return REFERENCE
    if value in ("", AUTO):
        return None
    if value not in BACKENDS:
        warnings.warn(
            f"{ENVIRONMENT}={value!r} ignored: it must be one of {', '.join(BACKENDS)} or {AUTO}", stacklevel=2
        )
        return None
    return value


_DEFAULT = _environment()
_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("crossentropy_backend", default=_DEFAULT)
forcings = int(_DEFAULT is not None)
"""How many forcings are in force anywhere in the process (the environment's, and :func:`use` contexts of
every thread): at 0 no call can be forced, which the drop-in's fast exit for small calls reads for free."""
_FORCING_LOCK = threading.Lock()


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
    """Run calls in this context on ``backend`` where it can take them (this thread or asyncio task only).

    ``"reference"`` always applies; ``"cpu"`` applies where the C kernels are
    built and the call is eligible, whatever its size; ``"triton"`` also takes
    CPU torch tensors (run with ``TRITON_INTERPRET=1``). Calls a forced
    backend cannot take run on the reference path. ``"auto"`` lifts any
    forcing (the environment's too) inside the context.
    """
    global forcings
    if backend not in (*BACKENDS, AUTO):
        raise InputError(f"backend must be one of {', '.join(map(repr, (*BACKENDS, AUTO)))}; got {backend!r}")
    forcing = backend != AUTO
    token = _FORCED.set(backend if forcing else None)
    with _FORCING_LOCK:
        forcings += forcing
    try:
        yield
    finally:
        _FORCED.reset(token)
        with _FORCING_LOCK:
            forcings -= forcing


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


def _classes_last(x: object, axis: object) -> bool:
    """Whether ``axis`` (an integer, negative counting from the end) is ``x``'s last axis; False when invalid."""
    ndim = getattr(x, "ndim", 0)
    valid = isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and ndim >= 1
    return valid and axis in (-1, ndim - 1)


def _float_dtype(x: Any, kind: str) -> bool:
    """Whether the fused kernels take ``x``'s dtype (float32/float64; for torch also bfloat16, float16)."""
    if kind == "numpy":
        return x.dtype in _NUMPY_DTYPES
    torch = sys.modules["torch"]
    return any(x.dtype is getattr(torch, name) for name in _TORCH_DTYPES)


def forced() -> str | None:
    """The backend forced now (by :func:`use`, else by the environment), or None: each call is decided."""
    return _DEFAULT if _compiling() else _FORCED.get()


def transformed() -> bool:
    """Whether a ``torch.func`` transform (grad, vmap, jacrev, ...) or forward-mode AD is active.

    Their tensors are wrappers without storage, which no fused kernel can
    read: torch calls then take the reference path (plain torch operations),
    which every transform sees through.
    """
    torch = sys.modules.get("torch")
    if torch is None or _compiling():
        return False
    return bool(torch._C._are_functorch_transforms_active()) or torch.autograd.forward_ad._current_level >= 0


def choose(op: str, x: object, convention: FusedConvention | None = None, *, last_axis: bool = True) -> str:
    """The backend for operation ``op`` on the array ``x`` (the logits or probabilities).

    ``convention`` (when the operation has one) must list ``op`` in its
    ``fused`` set; ``last_axis`` says the class axis is the last one.
    """
    compiling = _compiling()
    forced = _DEFAULT if compiling else _FORCED.get()
    if forced == REFERENCE or (convention is not None and op not in convention.fused) or not last_axis:
        return REFERENCE
    kind = _kind(x)
    support = _SUPPORT[op]
    if not kind or getattr(x, "ndim", 0) < 1 or not _float_dtype(x, kind):
        return REFERENCE
    if kind == "torch" and transformed():
        return REFERENCE
    if kind == "numpy":
        backend = CPU
    elif forced == TRITON:
        backend = TRITON
    else:
        backend = _torch_device_backend(x)
    if forced not in (None, backend) or kind not in support.get(backend, ()):
        return REFERENCE
    if backend == CPU and not _kernels.available():
        return REFERENCE
    if backend == TRITON and _triton() is None:
        return REFERENCE
    return backend


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call.

    A compiled graph keeps the backend chosen when it was traced: :func:`use`
    sets a context variable, which the tracer cannot read, so it applies to
    eager calls only; the environment's choice applies to both.
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


def torch_kernel_of(backend: str) -> str:
    """The kernel module of ``backend`` for torch tensors (imported), for a caller that has chosen it."""
    name = _TORCH_KERNELS[backend]
    if not _compiling():
        importlib.import_module(f"{__package__}._kernels.{name}")
    return name


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


_TORCH_LABELS = ("int8", "int16", "int32", "int64", "uint8")
"""The integer dtypes of torch labels the fused paths take (torch's wider unsigned ones have no int64 cast
that keeps every value)."""


def _integer_labels(labels: object, kind: str) -> bool:
    if kind == "numpy":
        return isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
    torch = sys.modules["torch"]
    return isinstance(labels, torch.Tensor) and any(labels.dtype is getattr(torch, name) for name in _TORCH_LABELS)


def sparse(
    labels: object,
    logits: object,
    *,
    convention: FusedConvention,
    axis: object,
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
    backend = choose("sparse", logits, convention, last_axis=_classes_last(logits, axis))
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
    valid = ignored(xp, t, ignore_index)  # compared as unbounded integers, as the kernels do
    if valid is not None:
        valid = ~valid
    weight = None
    if cw is not None:
        safe = xp.where(valid, t, 0) if valid is not None else xp.clip(t, 0, c - 1)
        weight = xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), tuple(t.shape))
    return Rows(values, valid, weight)


def takes_value_and_grad(
    labels: object, logits: object, *, convention: FusedConvention, axis: object, out: object
) -> bool:
    """Whether :func:`sparse_value_and_grad` runs this call: C-contiguous NumPy logits with the classes on the
    last axis (on the C kernel), integer NumPy labels of their shape, and ``out`` None or a C-contiguous array of
    their shape and dtype."""
    if _kind(logits) != "numpy" or choose("sparse", logits, convention, last_axis=_classes_last(logits, axis)) != CPU:
        return False
    x: Any = logits
    if not _integer_labels(labels, "numpy") or labels.shape != x.shape[:-1] or x.shape[-1] == 0:  # type: ignore[attr-defined]
        return False
    if out is None:
        return bool(x.flags.c_contiguous)
    fits = isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype == x.dtype and out.flags.c_contiguous
    return bool(x.flags.c_contiguous and fits)


def sparse_value_and_grad(
    labels: object,
    logits: object,
    *,
    convention: FusedConvention,
    axis: object,
    ignore_index: int | None,
    class_weight: Any,
    label_smoothing: float,
    z_loss: float,
    row_scale: Any,
    out: Any,
) -> Array | None:
    """Per-sample losses of NumPy logits with the gradient (times ``row_scale``) written to ``out``.

    ``out`` is a C-contiguous array of the logits' shape and dtype (possibly
    the logits themselves). Returns None when the kernel does not apply
    (:func:`takes_value_and_grad`) or met invalid input.
    """
    if out is None or not takes_value_and_grad(labels, logits, convention=convention, axis=axis, out=out):
        return None
    x: Any = logits
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
    axis: object,
    class_weight: object,
    label_smoothing: float,
    check_sums: bool,
) -> tuple[Array, Array | None] | None:
    """Per-sample ``-sum_c a_c log_softmax(x)_c`` (soft targets, class axis last), or None.

    Returns the losses and, with class weights, each sample's class weight.
    """
    if (
        choose("soft", logits, convention, last_axis=_classes_last(logits, axis)) == REFERENCE
        or _kind(y_true) != "numpy"
    ):
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


def info(kind: str, p: object, q: object | None, *, axis: object, check_sums: bool) -> Array | None:
    """Row-wise entropy, cross-entropy or KL (float64) of probabilities with the events on the last axis, or
    None (another axis, an invalid one, another layout, invalid values: the reference path decides)."""
    if choose("info", p, last_axis=_classes_last(p, axis)) == REFERENCE:
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

    if transformed():
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
        kernel or torch_kernel("sparse", logits),
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
    kernel: str | None = None,
) -> Any:
    """``cross_entropy(hidden @ weight.T + bias, labels)`` blocked over rows, on the kernel for their device.

    ``chunk`` rows per block (default: about 256 MiB of logits); ``upcast``
    computes the products of bfloat16/float16 inputs in float32. The loss is
    returned in the accumulation dtype (float32 for bfloat16/float16 inputs).
    ``kernel`` is the kernel module when the caller has chosen it. Under
    ``torch.func`` transforms the loss is plain torch operations on the whole
    ``N x V`` logits.
    """
    from ._kernels import autograd, torch_ops

    if transformed():
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
        chunk = max(1, LINEAR_BLOCK_BYTES // max(1, weight.shape[0] * hidden.element_size()))
    return autograd.linear_cross_entropy(
        kernel or torch_kernel("linear", hidden),
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
