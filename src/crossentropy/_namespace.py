"""Array namespace and dtype helpers.

Every public function resolves the namespace of its inputs once, through
:func:`namespace`, and then uses only ``xp.`` operations. NumPy is the only
array library imported here; the namespaces of PyTorch, JAX, CuPy, Dask or
array-api-strict are found by array-api-compat from the caller's own arrays.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, cast

import array_api_compat
import numpy as np

from ._validation import InputError

Array = Any
"""Any array API array (NumPy, PyTorch, JAX, CuPy, Dask, array-api-strict)."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _is_array(x: object) -> bool:
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (bool, int, float, complex))


def namespace(*args: object) -> ModuleType:
    """Return the array namespace shared by the array arguments.

    Arguments that are not arrays (Python lists, scalars, ``None``, pandas
    Series) do not take part; when no argument is an array the namespace is
    NumPy's. Arrays from two different libraries raise :class:`InputError`.
    """
    arrays = [a for a in args if a is not None and _is_array(a)]
    if not arrays:
        return array_api_compat.array_namespace(np.empty(0))
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in arrays})
        raise InputError(f"arrays from different libraries cannot be mixed: {', '.join(kinds)}") from exc


def asarray(xp: ModuleType, x: object, name: str, *, like: Array | None = None) -> Array:
    """Convert ``x`` to an array of namespace ``xp``, on the device of ``like``.

    Arrays of ``xp`` pass through untouched. Lists, scalars and objects with
    ``__array__`` (pandas Series) are converted. Non-numeric data (strings,
    objects, complex numbers) and NumPy masked arrays (whose mask some
    operations would honour and others ignore) raise :class:`InputError`
    naming ``name``.
    """
    arr: Array
    if isinstance(x, np.ma.MaskedArray):
        raise masked_array_error(name)
    if _is_array(x) and array_api_compat.array_namespace(x) is xp:
        arr = x
    else:
        if not _is_array(x):
            try:
                host = np.asarray(x)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{name} could not be read as an array: {exc}") from exc
            if host.dtype.kind not in "biuf":
                raise InputError(f"{name} must be numeric (bool, integer or floating), got dtype {host.dtype}")
            x = host
        device = array_api_compat.device(like) if like is not None and _is_array(like) else None
        try:
            arr = xp.asarray(x, device=device) if device is not None else xp.asarray(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{name} could not be converted to a {xp.__name__} array: {exc}") from exc
    if not (xp.isdtype(arr.dtype, "bool") or xp.isdtype(arr.dtype, "numeric")):
        raise InputError(f"{name} must be numeric (bool, integer or floating), got dtype {arr.dtype}")
    if xp.isdtype(arr.dtype, "complex floating"):
        raise InputError(f"{name} must be real, got complex dtype {arr.dtype}")
    return arr


def masked_array_error(name: str) -> InputError:
    """The error for a NumPy masked array passed as ``name``."""
    return InputError(
        f"{name} is a masked array: crossentropy does not guess what a mask means; pass {name}.filled(value) "
        f"or select the unmasked rows first"
    )


def refuses_masked_arrays(func: _F) -> _F:
    """Refuse a NumPy masked array in any argument of ``func``, before it runs.

    One check for every argument (labels, predictions, weights, ``out``),
    ahead of the dispatcher: a fused kernel reads an array's data and would
    ignore its mask, while the reference path refuses it, so the check
    cannot be left to either. The error names the parameter.
    """
    params = list(inspect.signature(func).parameters.values())
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), "args")
    masked = np.ma.MaskedArray

    def refuse(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for i, value in enumerate(args):
            if isinstance(value, masked):
                raise masked_array_error(positional[i] if i < len(positional) else f"{rest}[{i - len(positional)}]")
        for name, value in kwargs.items():
            if isinstance(value, masked):
                raise masked_array_error(name)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, masked):
                refuse(args, kwargs)
        return func(*args, **kwargs)

    return cast(_F, wrapper)


def is_floating(xp: ModuleType, x: Array) -> bool:
    """Whether ``x`` has a real floating dtype."""
    return bool(xp.isdtype(x.dtype, "real floating"))


def default_float(xp: ModuleType, like: Array) -> Any:
    """The namespace's default real floating dtype on the device of ``like``."""
    info = xp.__array_namespace_info__()
    return info.default_dtypes(device=array_api_compat.device(like))["real floating"]


def float_dtypes(xp: ModuleType, *arrays: Array) -> tuple[Any, Any]:
    """Return ``(compute_dtype, output_dtype)`` for the given arrays.

    Floating arrays promote together; bool and integer arrays count as the
    namespace's default floating dtype. Dtypes narrower than 32 bits
    (float16, bfloat16) are computed in float32 and returned in their own
    dtype, so reductions accumulate in float32.
    """
    floats = [a.dtype for a in arrays if is_floating(xp, a)]
    if not floats:
        floats = [default_float(xp, arrays[0])]
    out = floats[0]
    for dt in floats[1:]:
        out = xp.result_type(out, dt)
    compute = xp.float32 if xp.finfo(out).bits < 32 else out
    return compute, out


def to_dtype(xp: ModuleType, x: Array, dtype: Any) -> Array:
    """Cast ``x`` to ``dtype`` (no copy when it already has it)."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def normalize_axis(axis: int, ndim: int, name: str) -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise InputError(f"axis must be an integer, got {axis!r}")
    if ndim == 0:
        raise InputError(f"{name} is 0-dimensional; it needs at least one axis (the events or classes)")
    if not -ndim <= axis < ndim:
        raise InputError(f"axis {axis} is out of range for {name} with {ndim} dimensions")
    return int(axis) % ndim


def quiet(func: _F) -> _F:
    """Run ``func`` with NumPy's floating-point warnings off.

    ``log(0) = -inf`` and ``x / 0 = inf`` are the intended results of the exact
    conventions, not accidents worth a ``RuntimeWarning``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return func(*args, **kwargs)

    return cast(_F, wrapper)
