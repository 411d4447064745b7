"""Fused CPU kernels for NumPy inputs (private): loading, threads, and the calls.

The C kernels (``cpu.c``, compiled at install time into ``_cpu.so`` once per
instruction-set variant, the best one chosen at load time) make one pass over
each row with a running maximum and sum of exponentials, on a fork-safe thread
pool whose size follows ``_threads.policy`` (``CROSSENTROPY_NUM_THREADS``,
``OMP_NUM_THREADS``, threadpoolctl, cgroup quotas). They are loaded with ctypes
on first use.

Every kernel function here returns ``None`` (``softmax_grad``: ``False``) when
the fast path does not apply (no compiled library, an unsupported dtype or
layout, or invalid values the kernel met); the caller then takes the array-API
reference path, which also produces the error messages. Whether a call uses
them at all is :mod:`crossentropy._dispatch`'s decision (``_dispatch.use``
and ``CROSSENTROPY_BACKEND`` force a backend; tests run both paths against
each other).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _library, _threads

Array = np.ndarray[Any, Any]

_INT64_MAX = 2**63 - 1


def library() -> Any | None:
    """The compiled kernel library (a ``ctypes.CDLL``), or None when it was not built or does not load."""
    return _library.load().lib


def available() -> bool:
    """Whether the compiled kernels are built and loadable."""
    return _library.load().lib is not None


def isa() -> str | None:
    """The instruction-set variant of the kernels in use (``baseline``, ``avx2``, ``avx512``, ``native``)."""
    return _library.load().isa


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[None]:
    """Run the kernels of variant ``name`` inside this block (for tests; process-wide, not thread-safe)."""
    loaded = _library.load()
    if loaded.lib is None:
        raise ValueError("the CPU kernels are not built")
    previous = loaded.isa
    _library.bind(loaded, name)
    try:
        yield
    finally:
        assert previous is not None
        _library.bind(loaded, previous)


def num_threads() -> int:
    """Threads for a large kernel call (see ``_threads``; threadpoolctl's limit included)."""
    lib = _library.load().lib
    return _threads.policy(int(lib.ce_get_thread_limit()) if lib is not None else 0)[0]


def describe() -> dict[str, Any]:
    """What ``crossentropy info`` reports about the kernels: built, variant, threads and why."""
    loaded = _library.load()
    limit = int(loaded.lib.ce_get_thread_limit()) if loaded.lib is not None else 0
    threads, source = _threads.policy(limit)
    cpus, cpu_source = _threads.usable_cpus()
    return {
        "built": loaded.lib is not None,
        "isa": loaded.isa,
        "isa_note": loaded.note,
        "variants_compiled": list(loaded.compiled),
        "variants_supported": list(loaded.supported),
        "threads": threads,
        "threads_source": source,
        "usable_cpus": cpus,
        "usable_cpus_source": cpu_source,
        "min_work_per_thread": _threads.MIN_WORK_PER_THREAD,
    }


def _threads_for(work: int) -> int:
    if work < 2 * _threads.MIN_WORK_PER_THREAD:  # one thread whatever the policy: skip reading it (tiny calls)
        return 1
    return _threads.for_work(num_threads(), work)


def _fns() -> dict[str, Any] | None:
    loaded = _library.load()
    return loaded.fns if loaded.lib is not None else None


def raw(name: str) -> Any | None:
    """The ctypes function ``name`` (``ce_row_stats_f32``, ...) of the variant in use, or None when not built.

    For callers holding raw pointers (CPU torch tensors' ``data_ptr()``),
    which skip the NumPy conversions of the functions below; the arguments
    are those of ``_library.KERNELS``, the last one :func:`threads_for`.
    """
    fns = _fns()
    return None if fns is None else fns[name]


def threads_for(work: int) -> int:
    """Threads for a kernel call over ``work`` elements (one below the policy's minimum work per thread)."""
    return _threads_for(work)


def _suffix(*arrays: Array) -> str | None:
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        return None
    return "f32" if dtype == np.float32 else "f64"


def _ptr(a: Array | None) -> int | None:
    return None if a is None else int(a.ctypes.data)


def usable(*arrays: Any) -> bool:
    """Whether these are plain NumPy arrays the kernels can take (and they are built); masked arrays are not."""
    return available() and all(isinstance(a, np.ndarray) and not isinstance(a, np.ma.MaskedArray) for a in arrays)


def _class_weight(class_weight: Array | None, x: Array) -> Array | None:
    return None if class_weight is None else np.ascontiguousarray(class_weight, dtype=x.dtype).reshape(x.shape[1])


def _int64_labels(labels: Array, n: int) -> Array | None:
    """Labels as int64 without wrapping: None if one does not fit (the reference path reports it)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.size != n:
        return None
    if labels.dtype == np.uint64 and n and int(labels.max()) > _INT64_MAX:
        return None
    return np.ascontiguousarray(labels, dtype=np.int64).reshape(n)


def _labels(labels: Array, n: int, ignore_index: int | None) -> tuple[Array, int, int] | None:
    """``(int64 labels, has_ignore, ignore)`` as the kernels take them, or None if a label does not fit in int64
    or ``ignore_index`` is not an integer. An ``ignore_index`` outside int64 ignores nothing."""
    y = _int64_labels(labels, n)
    if y is None:
        return None
    try:
        ignore = None if ignore_index is None else operator.index(ignore_index)
    except TypeError:
        return None
    if ignore is None or not -_INT64_MAX - 1 <= ignore <= _INT64_MAX:
        return y, 0, 0
    return y, 1, ignore


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
    row (NaN or +inf logits, all -inf, a label out of range or beyond int64).
    An ``ignore_index`` outside int64 ignores nothing (no label can equal it).
    """
    fns = _fns()
    suffix = _suffix(x)
    if fns is None or suffix is None or x.ndim != 2 or x.shape[1] == 0:
        return None
    if grad_out is not None and (
        grad_out.dtype != x.dtype or grad_out.shape != x.shape or not grad_out.flags.c_contiguous
    ):
        return None
    if grad_out is not None and not x.flags.c_contiguous and np.shares_memory(grad_out, x):
        return None
    x = np.ascontiguousarray(x)
    n, v = x.shape
    parsed = _labels(labels, n, ignore_index)
    if parsed is None:
        return None
    y, has_ignore, ignore = parsed
    cw = _class_weight(class_weight, x)
    scale = None if row_scale is None else np.ascontiguousarray(row_scale, dtype=np.float64).reshape(n)
    loss = np.empty(n)
    bad = fns[f"ce_sparse_{suffix}"](
        _ptr(x),
        n,
        v,
        _ptr(y),
        has_ignore,
        ignore,
        _ptr(cw),
        float(cw.sum(dtype=np.float64)) if cw is not None else 0.0,
        float(label_smoothing),
        float(z_loss),
        _ptr(loss),
        _ptr(grad_out),
        _ptr(scale),
        _threads_for(n * v),
    )
    return None if bad else loss


def row_stats(
    x: Array, *, class_weight: Array | None = None, need_dsum: bool = False
) -> tuple[Array, Array, Array | None] | None:
    """Per-row statistics of logits ``x`` (N, V): ``(mx, rest, dsum)``, float64 arrays of length N.

    ``mx[i] = max_j x[i, j]``; ``sum_j exp(x[i, j] - mx[i]) = 1 + rest[i]`` (the
    non-maximal terms plus ties - 1, so ``log1p(rest)`` keeps its accuracy); with
    ``need_dsum``, ``dsum[i] = sum_j w_j (mx[i] - x[i, j])`` (``w_j = 1`` without
    class weights; every term is >= 0, terms with ``w_j = 0`` count 0), else
    ``dsum`` is None. A row of -inf only is valid (one vocabulary shard of a
    longer row): ``mx = -inf``, ``rest = -1`` and ``dsum = inf`` if any
    ``w_j > 0``, else 0. Returns None if a row holds NaN or +inf.
    """
    fns = _fns()
    suffix = _suffix(x)
    if fns is None or suffix is None or x.ndim != 2 or x.shape[1] == 0:
        return None
    x = np.ascontiguousarray(x)
    n, v = x.shape
    cw = _class_weight(class_weight, x)
    mx, rest = np.empty(n), np.empty(n)
    dsum = np.empty(n) if need_dsum else None
    bad = fns[f"ce_row_stats_{suffix}"](
        _ptr(x), n, v, _ptr(cw), int(need_dsum), _ptr(mx), _ptr(rest), _ptr(dsum), _threads_for(n * v)
    )
    return None if bad else (mx, rest, dsum)


def softmax_grad(
    x: Array,
    mx: Array,
    shift: Array,
    coef: Array,
    target_col: Array,
    target_coef: Array,
    *,
    off: Array | None = None,
    class_weight: Array | None = None,
    grad_out: Array,
) -> bool:
    """Write ``coef[i] exp((x[i, j] - mx[i]) - shift[i]) - off[i] w_j`` into ``grad_out`` (N, V).

    Then subtracts ``target_coef[i]`` at column ``target_col[i]`` where
    ``0 <= target_col[i] < V``. ``mx, shift, coef, off, target_coef`` are per-row
    float64 values, ``target_col`` integers; ``off`` defaults to 0 and ``w_j`` to 1.
    Rows whose ``coef``, ``off`` and ``target_coef`` are all 0 are written as exact
    zeros. ``grad_out`` may be ``x`` (in place). The exponential is the one the
    fused ``sparse`` kernel uses (float32 lanes for float32), so both give the
    same gradient. Returns False (writing nothing) when the kernel cannot take
    these arrays.
    """
    fns = _fns()
    suffix = _suffix(x)
    if fns is None or suffix is None or x.ndim != 2 or not isinstance(grad_out, np.ndarray):
        return False
    if grad_out.dtype != x.dtype or grad_out.shape != x.shape or not grad_out.flags.c_contiguous:
        return False
    if not x.flags.c_contiguous and np.shares_memory(grad_out, x):
        return False
    x = np.ascontiguousarray(x)
    n, v = x.shape

    def rows(a: Any) -> Array:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)))

    tcol = np.asarray(target_col)
    if tcol.dtype.kind not in "iu" or (tcol.dtype == np.uint64 and n and int(tcol.max()) > _INT64_MAX):
        return False
    tcol = np.ascontiguousarray(np.broadcast_to(tcol, (n,)), dtype=np.int64)
    cw = _class_weight(class_weight, x)
    per_row = [rows(a) for a in (mx, shift, coef)]
    offs = None if off is None else rows(off)
    tcoef = rows(target_coef)
    fns[f"ce_softmax_grad_{suffix}"](
        _ptr(x),
        n,
        v,
        *(_ptr(a) for a in per_row),
        _ptr(offs),
        _ptr(cw),
        _ptr(tcol),
        _ptr(tcoef),
        _ptr(grad_out),
        _threads_for(n * v),
    )
    return True


def soft(
    x: Array, y: Array, *, class_weight: Array | None, label_smoothing: float, check_sums: bool, tol: float
) -> tuple[Array, Array] | None:
    """Per-row ``-sum_c a_c log_softmax(x)_c`` and each row's class weight ``sum_c w_c y_c``."""
    fns = _fns()
    suffix = _suffix(x, y)
    if fns is None or suffix is None or x.ndim != 2 or x.shape != y.shape or x.shape[1] == 0:
        return None
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    n, v = x.shape
    cw = _class_weight(class_weight, x)
    loss, class_of = np.empty(n), np.empty(n)
    bad = fns[f"ce_soft_{suffix}"](
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
        _threads_for(2 * n * v),
    )
    return None if bad else (loss, class_of)


def binary(y: Array, p: Array, *, from_logits: bool, pos_weight: float, label_smoothing: float) -> Array | None:
    """Elementwise binary cross-entropy (in the inputs' dtype), or None on invalid values."""
    fns = _fns()
    suffix = _suffix(y, p)
    if fns is None or suffix is None or y.shape != p.shape:
        return None
    y, p = np.ascontiguousarray(y), np.ascontiguousarray(p)
    out = np.empty_like(p)
    bad = fns[f"ce_binary_{suffix}"](
        _ptr(y),
        _ptr(p),
        p.size,
        int(from_logits),
        float(pos_weight),
        float(label_smoothing),
        _ptr(out),
        _threads_for(2 * p.size),
    )
    return None if bad else out


INFO_KINDS = {"entropy": 0, "cross_entropy": 1, "kl_divergence": 2}


def info(kind: str, p: Array, q: Array | None, *, check_sums: bool, tol: float) -> Array | None:
    """Row-wise entropy, cross-entropy or KL (float64) of probabilities (N, C), or None on invalid rows."""
    fns = _fns()
    arrays = (p,) if q is None else (p, q)
    suffix = _suffix(*arrays)
    if fns is None or suffix is None or p.ndim != 2 or p.shape[1] == 0 or (q is not None and q.shape != p.shape):
        return None
    p = np.ascontiguousarray(p)
    q = None if q is None else np.ascontiguousarray(q)
    n, v = p.shape
    out = np.empty(n)
    bad = fns[f"ce_info_{suffix}"](
        _ptr(p),
        _ptr(q),
        n,
        v,
        INFO_KINDS[kind],
        int(check_sums),
        float(tol),
        _ptr(out),
        _threads_for(len(arrays) * n * v),
    )
    return None if bad else out


def token_statistics(
    x: Array, labels: Array, *, ignore_index: int | None, temperature: float
) -> tuple[Array, Array, Array, Array, Array] | None:
    """Per-row statistics of logits ``x`` (N, V) at ``temperature`` with labels ``(N,)``, in one pass a row.

    Returns ``(logprob, entropy, rank, top1, lse)`` of the distribution ``softmax(x / temperature)``: the
    label's log-probability, the entropy, the label's rank (1 = first in the order of
    ``torch.argsort(descending=True, stable=True)``, where NaN comes first), the top-1 probability and the
    log-sum-exp, float64 arrays and an int64 one. A row whose label equals ``ignore_index`` gets zeros and
    rank 0; a row holding NaN or +inf, or only -inf, NaN statistics (its rank is still counted). Returns
    None when the kernel does not take the arrays, or a label is outside ``[0, V)`` and not ignored.
    """
    fns = _fns()
    suffix = _suffix(x)
    if fns is None or suffix is None or x.ndim != 2 or x.shape[1] == 0:
        return None
    x = np.ascontiguousarray(x)
    n, v = x.shape
    parsed = _labels(labels, n, ignore_index)
    if parsed is None:
        return None
    y, has_ignore, ignore = parsed
    finfo = np.finfo(x.dtype)
    inv_t = min(max(1.0 / temperature, float(finfo.tiny)), float(finfo.max))  # 1 / T within the dtype's range
    logprob, entropy, top1, lse = (np.empty(n) for _ in range(4))
    rank = np.empty(n, dtype=np.int64)
    bad = fns[f"ce_token_stats_{suffix}"](
        _ptr(x),
        n,
        v,
        _ptr(y),
        has_ignore,
        ignore,
        float(temperature),
        inv_t,
        _ptr(logprob),
        _ptr(entropy),
        _ptr(rank),
        _ptr(top1),
        _ptr(lse),
        _threads_for(n * v),
    )
    return None if bad else (logprob, entropy, rank, top1, lse)


DIVERGENCES = {"forward_kl": 0, "reverse_kl": 1, "jsd": 2}
"""The divergences of :func:`distill`, by the kernel's number for them."""


def distill(
    s: Array,
    t: Array,
    *,
    divergence: str,
    beta: float = 0.5,
    inv_temperature: float = 1.0,
    teacher_probs: bool = False,
    check_sums: bool = False,
    tol: float = 0.0,
    keep: Array | None = None,
    coef: Array | None = None,
    grad_out: Array | None = None,
) -> tuple[Array, Array, Array] | None:
    """Row-wise divergence of the row pairs of ``s`` (student logits) and ``t`` (teacher logits), (N, V) each.

    Both are multiplied by ``inv_temperature`` (the teacher is not when
    ``teacher_probs``: it then holds probabilities). ``divergence`` is
    ``"forward_kl"`` (KL(P_t || P_s)), ``"reverse_kl"`` (KL(P_s || P_t)) or
    ``"jsd"`` (``beta KL(P_t || M) + (1 - beta) KL(P_s || M)``,
    ``M = beta P_t + (1 - beta) P_s``). Returns ``(values, aux, stats)``,
    float64: per-row values, an auxiliary value per row (the teacher's entropy
    for the forward KL, the value for the reverse KL, ``KL(P_s || M)`` for the
    JSD) and per-row statistics ``(N, 4)`` for :func:`distill_grad`. Rows
    where ``keep`` (a boolean vector, default all) is False get zeros. With
    ``coef`` (N,) and ``grad_out`` (like ``s``, possibly ``s`` itself) the
    gradient of ``coef_i * value_i`` with respect to ``s`` is written too.
    Returns None when the kernel does not apply or met an invalid row (NaN
    or ``+inf`` logits, a row of ``-inf`` only, probabilities outside [0, 1]
    or, with ``check_sums``, rows not summing to 1 within ``tol``).
    """
    fns = _fns()
    suffix = _suffix(s, t)
    if fns is None or suffix is None or s.ndim != 2 or s.shape != t.shape or s.shape[1] == 0:
        return None
    n, v = s.shape
    if grad_out is not None and (
        coef is None or grad_out.dtype != s.dtype or grad_out.shape != s.shape or not grad_out.flags.c_contiguous
    ):
        return None
    if grad_out is not None and not s.flags.c_contiguous and np.shares_memory(grad_out, s):
        return None
    s, t = np.ascontiguousarray(s), np.ascontiguousarray(t)
    rows = None if keep is None else np.ascontiguousarray(keep, dtype=np.uint8).reshape(n)
    scale = None if coef is None else np.ascontiguousarray(np.broadcast_to(coef, (n,)), dtype=np.float64)
    values, aux, stats = np.empty(n), np.empty(n), np.empty((n, 4))
    bad = fns[f"ce_distill_{suffix}"](
        _ptr(s),
        _ptr(t),
        n,
        v,
        DIVERGENCES[divergence],
        int(teacher_probs),
        float(beta),
        float(inv_temperature),
        int(check_sums),
        float(tol),
        _ptr(rows),
        _ptr(scale if grad_out is not None else None),
        _ptr(values),
        _ptr(aux),
        _ptr(stats),
        _ptr(grad_out),
        _threads_for(2 * n * v),
    )
    return None if bad else (values, aux, stats)


def distill_grad(
    s: Array,
    t: Array,
    stats: Array,
    aux: Array,
    coef: Array,
    *,
    divergence: str,
    beta: float = 0.5,
    inv_temperature: float = 1.0,
    teacher_probs: bool = False,
    keep: Array | None = None,
    grad_out: Array,
) -> bool:
    """The gradient of :func:`distill` (``coef_i * value_i`` with respect to ``s``) into ``grad_out``, recomputed
    from the ``stats`` and ``aux`` that :func:`distill` returned (rows where ``keep`` is False get zeros).
    False (nothing written) if it cannot run."""
    fns = _fns()
    suffix = _suffix(s, t)
    if fns is None or suffix is None or s.ndim != 2 or s.shape != t.shape or not isinstance(grad_out, np.ndarray):
        return False
    if grad_out.dtype != s.dtype or grad_out.shape != s.shape or not grad_out.flags.c_contiguous:
        return False
    n, v = s.shape
    if not (n and v):
        return True
    s, t = np.ascontiguousarray(s), np.ascontiguousarray(t)
    fns[f"ce_distill_grad_{suffix}"](
        _ptr(s),
        _ptr(t),
        n,
        v,
        DIVERGENCES[divergence],
        int(teacher_probs),
        float(beta),
        float(inv_temperature),
        _ptr(None if keep is None else np.ascontiguousarray(keep, dtype=np.uint8).reshape(n)),
        _ptr(np.ascontiguousarray(stats, dtype=np.float64).reshape(n, 4)),
        _ptr(np.ascontiguousarray(np.broadcast_to(aux, (n,)), dtype=np.float64)),
        _ptr(np.ascontiguousarray(np.broadcast_to(coef, (n,)), dtype=np.float64)),
        _ptr(grad_out),
        _threads_for(2 * n * v),
    )
    return True


def read_floor(x: Array) -> float:
    """Read every value of a float32 array once with all threads (the benchmarks' floor)."""
    fns = _fns()
    if fns is None:
        return float(x.sum())
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    partial = np.empty(x.size // 65536 + 1)
    return float(fns["ce_read_floor_f32"](_ptr(x), x.size, _ptr(partial), num_threads()))


def copy_floor(x: Array, out: Array) -> None:
    """Copy a float32 array into ``out`` (same size) with all threads: the benchmarks' read + write floor."""
    fns = _fns()
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    if out.dtype != np.float32 or out.size != x.size or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array of x's size")
    if fns is None:
        np.copyto(out.reshape(-1), x)
        return
    fns["ce_copy_floor_f32"](_ptr(x), x.size, _ptr(out), num_threads())


VECTOR_MATH = ("expm1", "log1p", "jsd_ratios")


def vector_math(which: str, x: Array, beta: float = 0.5) -> tuple[Array, Array]:
    """The float32 vector primitives of the JSD kernels on ``x``, with the variant in use (for the accuracy tests).

    ``"expm1"`` gives ``(expm1(x), exp(x))`` for ``x <= 0``; ``"log1p"`` gives ``(log1p(x), x)`` for
    ``x`` in ``[-1, 0]``; ``"jsd_ratios"`` gives ``(lp_t - log M, lp_s - log M)`` for ``x = lp_s - lp_t``
    and ``M = beta P_t + (1 - beta) P_s``. Raises RuntimeError where the kernels are not built.
    """
    fns = _fns()
    if fns is None:
        raise RuntimeError("the C kernels are not built")
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    out, out2 = np.empty_like(x), np.empty_like(x)
    fns["ce_vmath_f32"](VECTOR_MATH.index(which), _ptr(x), x.size, float(beta), _ptr(out), _ptr(out2))
    return out, out2
