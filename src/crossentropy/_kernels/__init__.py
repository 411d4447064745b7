"""Fused CPU kernels for NumPy inputs (private): loading, threads, and the calls.

The C kernels (``cpu.c``, compiled at install time into ``_cpu.so``) make one
pass over each row with an online maximum and sum of exponentials, in
``CROSSENTROPY_NUM_THREADS`` OpenMP threads (default: the CPUs this process
may use). They are loaded with ctypes on first use. Sums are accumulated in
float64 for float32 and float64 inputs alike.

Every function here returns ``None`` when the fast path does not apply (no
compiled library, an unsupported dtype or layout, or invalid values the
kernel met); the caller then takes the array-API reference path, which also
produces the error messages. ``disabled()`` forces the reference path (tests
run both paths against each other).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"lib": None, "tried": False, "disabled": 0}

_I64 = ctypes.c_int64
_P = ctypes.c_void_p
_D = ctypes.c_double
_INT = ctypes.c_int

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "ce_version": (_INT, []),
    "ce_max_threads": (_INT, []),
    "ce_read_floor_f32": (_D, [_P, _I64, _INT]),
    **{
        f"ce_sparse_{s}": (_I64, [_P, _I64, _I64, _P, _INT, _I64, _P, _D, _D, _D, _P, _P, _P, _INT])
        for s in ("f32", "f64")
    },
    **{f"ce_soft_{s}": (_I64, [_P, _P, _I64, _I64, _P, _D, _INT, _D, _P, _P, _INT]) for s in ("f32", "f64")},
    **{f"ce_binary_{s}": (_I64, [_P, _P, _I64, _INT, _D, _D, _P, _INT]) for s in ("f32", "f64")},
    **{f"ce_info_{s}": (_I64, [_P, _P, _I64, _I64, _INT, _INT, _D, _P, _INT]) for s in ("f32", "f64")},
}

EXPECTED_VERSION = 3


def library() -> Any | None:
    """The compiled kernel library, or None when it was not built."""
    if _STATE["tried"]:
        return _STATE["lib"]
    with _LOCK:
        if not _STATE["tried"]:
            path = Path(__file__).with_name("_cpu.so")
            lib = None
            if path.exists():
                try:
                    lib = ctypes.CDLL(str(path))
                    for name, (restype, argtypes) in _SIGNATURES.items():
                        fn = getattr(lib, name)
                        fn.restype = restype
                        fn.argtypes = argtypes
                    if lib.ce_version() != EXPECTED_VERSION:
                        lib = None
                except (OSError, AttributeError):
                    lib = None
            _STATE["lib"] = lib
            _STATE["tried"] = True
    return _STATE["lib"]


def available() -> bool:
    """Whether the compiled kernels are built and loadable."""
    return library() is not None


def enabled() -> bool:
    """Whether the fast path is in use now (built, and not disabled)."""
    return _STATE["disabled"] == 0 and os.environ.get("CROSSENTROPY_DISABLE_KERNELS", "") in ("", "0") and available()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Use the array-API reference path inside this block."""
    with _LOCK:
        _STATE["disabled"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["disabled"] -= 1


def num_threads() -> int:
    """Threads per kernel call: ``CROSSENTROPY_NUM_THREADS``, else the usable CPUs."""
    value = os.environ.get("CROSSENTROPY_NUM_THREADS", "")
    if value.strip():
        try:
            return max(1, int(value))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _suffix(*arrays: Array) -> str | None:
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        return None
    return "f32" if dtype == np.float32 else "f64"


def _ptr(a: Array | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


def usable(*arrays: Any) -> bool:
    """Whether these are NumPy arrays the kernels can take (and the fast path is on)."""
    return enabled() and all(isinstance(a, np.ndarray) for a in arrays)


def sparse(
    x: Array,
    labels: Array,
    *,
    ignore_index: int | None,
    class_weight: Array | None,
    label_smoothing: float,
    z_loss: float,
    grad_out: Array | None = None,
    row_scale: Array | None = None,
) -> Array | None:
    """Per-row sparse cross-entropy of logits ``x`` (N, C); optionally the gradient into ``grad_out``.

    Returns the per-row losses (float64), or None if the kernel met an invalid
    row (NaN or +inf logits, all -inf, a label out of range).
    """
    lib = library()
    suffix = _suffix(x)
    if lib is None or suffix is None or x.ndim != 2:
        return None
    x = np.ascontiguousarray(x)
    n, v = x.shape
    labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(n)
    cw = None if class_weight is None else np.ascontiguousarray(class_weight, dtype=x.dtype)
    scale = None if row_scale is None else np.ascontiguousarray(row_scale, dtype=np.float64)
    loss = np.empty(n)
    if grad_out is not None and (
        grad_out.dtype != x.dtype or grad_out.shape != x.shape or not grad_out.flags.c_contiguous
    ):
        return None
    bad = getattr(lib, f"ce_sparse_{suffix}")(
        _ptr(x),
        n,
        v,
        _ptr(labels),
        int(ignore_index is not None),
        int(ignore_index or 0),
        _ptr(cw),
        float(cw.sum(dtype=np.float64)) if cw is not None else 0.0,
        float(label_smoothing),
        float(z_loss),
        _ptr(loss),
        _ptr(grad_out),
        _ptr(scale),
        num_threads(),
    )
    return None if bad else loss


def soft(
    x: Array, y: Array, *, class_weight: Array | None, label_smoothing: float, check_sums: bool, tol: float
) -> tuple[Array, Array] | None:
    """Per-row ``-sum_c a_c log_softmax(x)_c`` and each row's class weight ``sum_c w_c y_c``."""
    lib = library()
    suffix = _suffix(x, y)
    if lib is None or suffix is None or x.ndim != 2:
        return None
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    n, v = x.shape
    cw = None if class_weight is None else np.ascontiguousarray(class_weight, dtype=x.dtype)
    loss, class_of = np.empty(n), np.empty(n)
    bad = getattr(lib, f"ce_soft_{suffix}")(
        _ptr(x),
        _ptr(y),
        n,
        v,
        _ptr(cw),
        float(label_smoothing),
        int(check_sums),
        float(tol),
        _ptr(loss),
        _ptr(class_of),
        num_threads(),
    )
    return None if bad else (loss, class_of)


def binary(y: Array, p: Array, *, from_logits: bool, pos_weight: float, label_smoothing: float) -> Array | None:
    """Elementwise binary cross-entropy (in the inputs' dtype), or None on invalid values."""
    lib = library()
    suffix = _suffix(y, p)
    if lib is None or suffix is None or y.shape != p.shape:
        return None
    y, p = np.ascontiguousarray(y), np.ascontiguousarray(p)
    out = np.empty_like(p)
    bad = getattr(lib, f"ce_binary_{suffix}")(
        _ptr(y),
        _ptr(p),
        p.size,
        int(from_logits),
        float(pos_weight),
        float(label_smoothing),
        _ptr(out),
        num_threads(),
    )
    return None if bad else out


INFO_KINDS = {"entropy": 0, "cross_entropy": 1, "kl_divergence": 2}


def info(kind: str, p: Array, q: Array | None, *, check_sums: bool, tol: float) -> Array | None:
    """Row-wise entropy, cross-entropy or KL (float64) of probabilities (N, C), or None on invalid rows."""
    lib = library()
    arrays = (p,) if q is None else (p, q)
    suffix = _suffix(*arrays)
    if lib is None or suffix is None or p.ndim != 2 or (q is not None and q.shape != p.shape):
        return None
    p = np.ascontiguousarray(p)
    q = None if q is None else np.ascontiguousarray(q)
    n, v = p.shape
    out = np.empty(n)
    bad = getattr(lib, f"ce_info_{suffix}")(
        _ptr(p), _ptr(q), n, v, INFO_KINDS[kind], int(check_sums), float(tol), _ptr(out), num_threads()
    )
    return None if bad else out


def read_floor(x: Array) -> float:
    """Read every value of a float32 array once with all threads (the benchmarks' floor)."""
    lib = library()
    if lib is None:
        return float(x.sum())
    x = np.ascontiguousarray(x, dtype=np.float32)
    return float(lib.ce_read_floor_f32(_ptr(x), x.size, num_threads()))
