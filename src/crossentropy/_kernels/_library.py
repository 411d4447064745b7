"""Loading the compiled kernels: the typed ctypes table, the build check and the run-time ISA choice.

``_cpu.so`` holds every kernel once per instruction-set variant (``ce_sparse_f32_avx512``,
``ce_sparse_f32_avx2``, ``ce_sparse_f32_baseline``, ...). The best variant that the CPU
supports is chosen when the library is loaded; ``CROSSENTROPY_ISA`` (``baseline``,
``avx2``, ``avx512``, ``native``) forces one, if the CPU can run it. A library whose
build id (a hash of its C sources) differs from the sources beside it is not used.

Why ctypes and not a compiled extension module: see benchmarks/README.md (the call
overhead is about 2 µs of a 30 µs tiny call, and a ctypes library needs no Python ABI,
so one wheel per platform serves every Python version).
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._build_id import build_id

_I64 = ctypes.c_int64
_P = ctypes.c_void_p
_D = ctypes.c_double
_INT = ctypes.c_int

# One row per kernel: its return type and its named arguments (pointers are to C-contiguous data).
KERNELS: dict[str, tuple[Any, tuple[tuple[str, Any], ...]]] = {
    "ce_read_floor_f32": (_D, (("x", _P), ("n", _I64), ("partial", _P), ("nthreads", _INT))),
    "ce_copy_floor_f32": (None, (("x", _P), ("n", _I64), ("out", _P), ("nthreads", _INT))),
    "ce_vmath_f32": (None, (("which", _INT), ("x", _P), ("n", _I64), ("beta", _D), ("out", _P), ("out2", _P))),
}
for _s in ("f32", "f64"):
    KERNELS |= {
        f"ce_row_stats_{_s}": (
            _I64,
            (
                ("x", _P),
                ("n", _I64),
                ("v", _I64),
                ("cw", _P),
                ("need_dsum", _INT),
                ("mx", _P),
                ("rest", _P),
                ("dsum", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_softmax_grad_{_s}": (
            None,
            (
                ("x", _P),
                ("n", _I64),
                ("v", _I64),
                ("mx", _P),
                ("shift", _P),
                ("coef", _P),
                ("off", _P),
                ("cw", _P),
                ("tcol", _P),
                ("tcoef", _P),
                ("grad", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_sparse_{_s}": (
            _I64,
            (
                ("x", _P),
                ("n", _I64),
                ("v", _I64),
                ("labels", _P),
                ("has_ignore", _INT),
                ("ignore", _I64),
                ("cw", _P),
                ("wsum", _D),
                ("eps", _D),
                ("z", _D),
                ("loss", _P),
                ("grad", _P),
                ("row_scale", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_soft_{_s}": (
            _I64,
            (
                ("x", _P),
                ("y", _P),
                ("n", _I64),
                ("v", _I64),
                ("cw", _P),
                ("eps", _D),
                ("check_sums", _INT),
                ("tol", _D),
                ("loss", _P),
                ("class_of", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_info_{_s}": (
            _I64,
            (
                ("p", _P),
                ("q", _P),
                ("n", _I64),
                ("v", _I64),
                ("kind", _INT),
                ("check_sums", _INT),
                ("tol", _D),
                ("out", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_binary_{_s}": (
            _I64,
            (
                ("y", _P),
                ("p", _P),
                ("n", _I64),
                ("from_logits", _INT),
                ("pos_weight", _D),
                ("eps", _D),
                ("out", _P),
                ("nthreads", _INT),
            ),
        ),
    }
for _s in ("f32", "f64"):
    KERNELS[f"ce_token_stats_{_s}"] = (
        _I64,
        (
            ("x", _P),
            ("n", _I64),
            ("v", _I64),
            ("labels", _P),
            ("has_ignore", _INT),
            ("ignore", _I64),
            ("temperature", _D),
            ("inv_t", _D),
            ("logprob", _P),
            ("entropy", _P),
            ("rank", _P),
            ("top1", _P),
            ("lse", _P),
            ("nthreads", _INT),
        ),
    )
    KERNELS |= {
        f"ce_distill_{_s}": (
            _I64,
            (
                ("s", _P),
                ("t", _P),
                ("n", _I64),
                ("v", _I64),
                ("kind", _INT),
                ("t_probs", _INT),
                ("beta", _D),
                ("k", _D),
                ("check_sums", _INT),
                ("tol", _D),
                ("keep", _P),
                ("coef", _P),
                ("loss", _P),
                ("aux", _P),
                ("stats", _P),
                ("grad", _P),
                ("nthreads", _INT),
            ),
        ),
        f"ce_distill_grad_{_s}": (
            None,
            (
                ("s", _P),
                ("t", _P),
                ("n", _I64),
                ("v", _I64),
                ("kind", _INT),
                ("t_probs", _INT),
                ("beta", _D),
                ("k", _D),
                ("keep", _P),
                ("stats", _P),
                ("aux", _P),
                ("coef", _P),
                ("grad", _P),
                ("nthreads", _INT),
            ),
        ),
    }
RUNTIME: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "ce_build_id": (ctypes.c_char_p, ()),
    "ce_cpu_features": (_INT, ()),
    "ce_get_thread_limit": (_INT, ()),
    "ce_set_thread_limit": (None, (_INT,)),
    "ce_pool_workers": (_INT, ()),
}

# Variant -> the CPU feature bit it needs (runtime.c's ce_cpu_features); best first.
ISA_FEATURES = {"native": 1, "avx512": 4, "avx2": 2, "baseline": 1}
PATH = Path(__file__).with_name("_cpu.so")


@dataclass
class Loaded:
    """The library, the variant in use and the kernels bound to it (None where nothing was loaded)."""

    lib: Any | None = None
    isa: str | None = None
    compiled: tuple[str, ...] = ()
    supported: tuple[str, ...] = ()
    note: str = ""
    fns: dict[str, Any] = field(default_factory=dict)


_LOCK = threading.Lock()
_STATE: dict[str, Loaded] = {}


def _open() -> Loaded:
    if not PATH.exists():
        return Loaded(note="no C compiler at install time, or CROSSENTROPY_BUILD_KERNELS=0")
    try:
        lib = ctypes.CDLL(str(PATH))
        for name, (restype, argtypes) in RUNTIME.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, list(argtypes)
    except (OSError, AttributeError) as exc:
        return Loaded(note=f"{PATH.name} does not load: {exc}")
    expected, found = build_id(PATH.parent), lib.ce_build_id().decode()
    if expected is not None and found != expected:
        return Loaded(note=f"{PATH.name} was built from other sources (stale build: reinstall the package)")
    compiled = tuple(isa for isa in ISA_FEATURES if hasattr(lib, f"ce_sparse_f32_{isa}"))
    features = int(lib.ce_cpu_features())
    supported = tuple(isa for isa in compiled if features & ISA_FEATURES[isa])
    loaded = Loaded(lib=lib, compiled=compiled, supported=supported)
    forced = os.environ.get("CROSSENTROPY_ISA", "").strip().lower()
    if forced and forced not in supported:
        why = "not compiled" if forced not in compiled else "not supported by this CPU"
        loaded.note = f"CROSSENTROPY_ISA={forced} ignored ({why})"
    elif forced:
        loaded.note = "forced by CROSSENTROPY_ISA"
    bind(loaded, forced if forced in supported else supported[0])
    return loaded


def bind(loaded: Loaded, isa: str) -> None:
    """Point ``loaded.fns`` at the kernels of variant ``isa`` (one the CPU supports)."""
    if isa not in loaded.supported:
        raise ValueError(f"kernel variant {isa!r} is not available here (available: {', '.join(loaded.supported)})")
    fns = {}
    for name, (restype, args) in KERNELS.items():
        fn = getattr(loaded.lib, f"{name}_{isa}")
        fn.restype, fn.argtypes = restype, [ctype for _, ctype in args]
        fns[name] = fn
    loaded.fns, loaded.isa = fns, isa


def load() -> Loaded:
    """The loaded library (loading it on first use)."""
    loaded = _STATE.get("lib")
    if loaded is None:
        with _LOCK:
            loaded = _STATE.get("lib")
            if loaded is None:
                loaded = _open()
                if loaded.lib is not None:
                    from ._threads import register_threadpoolctl

                    register_threadpoolctl(loaded.lib)
                _STATE["lib"] = loaded
    return loaded
