"""Input checks that turn bad input into :class:`InputError`.

Shape and option checks always run. Value checks (NaN, range, row sums,
label range) need concrete values: they run when ``validate=True`` (the
default) and are skipped inside ``jax.jit``, where values are abstract. Each
check evaluates one boolean reduction in the caller's namespace; only when it
fails is the array copied to the host to find the first bad position.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

Array = Any


class InputError(ValueError):
    """Bad input to a :mod:`crossentropy` function.

    The message names the argument, the first bad position and value, and what
    was expected. It is a :class:`ValueError`, so ``except ValueError`` also
    catches it.
    """

    # Tracebacks and reprs name the public ``crossentropy.InputError``, not this private module;
    # pickling finds it there too (``crossentropy`` imports this module).
    __module__ = "crossentropy"


def to_numpy(x: Array) -> np.ndarray[Any, Any]:
    """A host NumPy copy of ``x`` (used to report positions, never to compute)."""
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(array_api_compat.to_device(x, "cpu"))


def _is_tracing_error(exc: Exception) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(exc, jax.errors.ConcretizationTypeError)


def any_true(xp: ModuleType, mask: Array) -> bool | None:
    """``bool(xp.any(mask))``, or ``None`` when values are abstract (``jax.jit``)."""
    try:
        return bool(xp.any(mask))
    except Exception as exc:
        if _is_tracing_error(exc):
            return None
        raise


def _fmt_value(v: Any) -> str:
    v = v.item() if hasattr(v, "item") else v
    return repr(v) if isinstance(v, (int, np.integer)) else f"{float(v):.10g}"


def _position(name: str, index: Sequence[int | str]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]" if len(index) else name


def first_bad(mask: Array, values: Array) -> tuple[tuple[int, ...], Any]:
    """The first position where ``mask`` is true (C order) and the value there."""
    host = to_numpy(mask)
    idx = tuple(int(i) for i in np.argwhere(np.broadcast_to(host, host.shape))[0])
    vals = np.broadcast_to(to_numpy(values), host.shape)
    return idx, vals[idx]


def check_probabilities(xp: ModuleType, x: Array, name: str) -> None:
    """Every value of ``x`` must lie in [0, 1] (NaN is reported as such)."""
    bad = ~((x >= 0) & (x <= 1))
    if not any_true(xp, bad):
        return
    idx, v = first_bad(bad, x)
    if np.isnan(v):
        what = "is NaN; probabilities must be numbers in [0, 1]"
    elif v < 0:
        what = "is negative; probabilities must lie in [0, 1]"
    else:
        what = "is greater than 1; probabilities must lie in [0, 1]"
    raise InputError(f"{_position(name, idx)} = {_fmt_value(v)} {what}")


def sum_tolerance(xp: ModuleType, dtype: Any) -> float:
    """Allowed deviation of a row sum from 1: the square root of the dtype's eps."""
    return math.sqrt(float(xp.finfo(dtype).eps))


def check_distribution(xp: ModuleType, x: Array, name: str, axis: int, dtype: Any) -> None:
    """Every slice of ``x`` along ``axis`` must sum to 1 within a dtype tolerance.

    ``dtype`` is the input's own floating dtype (the tolerance is its
    ``sqrt(eps)``); ``x`` may already be promoted for accumulation.
    """
    tol = sum_tolerance(xp, dtype)
    sums = xp.sum(x, axis=axis)
    bad = ~(xp.abs(sums - 1) <= tol)
    if not any_true(xp, bad):
        return
    idx, s = first_bad(bad, sums)
    pos = list[int | str](idx)
    pos.insert(axis, ":")
    raise InputError(
        f"{_position(name, pos)} sums to {_fmt_value(s)}, not 1 (off by {abs(float(s) - 1):.3g}; "
        f"tolerance {tol:.3g}): each slice of {name} along the event axis must be a probability distribution"
    )


def check_logits(xp: ModuleType, x: Array, name: str, axis: int | None) -> None:
    """Logits must not be NaN or +inf; -inf masks a class.

    With ``axis`` (softmax logits) a slice whose logits are all -inf has no
    probability mass and is an error too. Without it (sigmoid logits) both
    infinities are valid: they stand for probabilities 0 and 1.
    """
    bad = xp.isnan(x) if axis is None else ~(x < math.inf)
    if any_true(xp, bad):
        idx, v = first_bad(bad, x)
        what = "is NaN" if np.isnan(v) else "is +inf"
        raise InputError(f"{_position(name, idx)} = {_fmt_value(v)} {what}; logits must be finite or -inf")
    if axis is None or x.shape[axis] == 0:
        return
    empty = xp.all(x == -math.inf, axis=axis)
    if any_true(xp, empty):
        idx, _ = first_bad(empty, empty)
        pos = list[int | str](idx)
        pos.insert(axis, ":")
        raise InputError(f"{_position(name, pos)} are all -inf: at least one class needs a finite logit")


def check_weights(xp: ModuleType, w: Array, name: str) -> None:
    """Weights must be finite and non-negative."""
    bad = ~((w >= 0) & (w < math.inf))
    if not any_true(xp, bad):
        return
    idx, v = first_bad(bad, w)
    raise InputError(f"{_position(name, idx)} = {_fmt_value(v)}; weights must be finite and non-negative")


def check_labels(xp: ModuleType, labels: Array, name: str, num_classes: int, ignore_index: int | None) -> None:
    """Integer labels must lie in [0, num_classes) or equal ``ignore_index``."""
    ok = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        ok = ok | (labels == ignore_index)
    bad = ~ok
    if not any_true(xp, bad):
        return
    idx, v = first_bad(bad, labels)
    allowed = f"in [0, {num_classes})" + (f" or equal ignore_index={ignore_index}" if ignore_index is not None else "")
    raise InputError(f"{_position(name, idx)} = {_fmt_value(v)} is out of range; labels must be {allowed}")


def check_binary_targets(xp: ModuleType, y: Array, name: str) -> None:
    """Binary targets (hard or soft) must lie in [0, 1]."""
    check_probabilities(xp, y, name)


def check_base(base: float | None) -> float | None:
    """``base`` must be ``None`` (nats) or a finite number > 0 and != 1."""
    if base is None:
        return None
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise InputError(f"base must be a number > 0 and != 1 (or None for nats), got {base!r}")
    b = float(base)
    if not (b > 0 and b != 1 and math.isfinite(b)):
        raise InputError(f"base must be a finite number > 0 and != 1 (or None for nats), got {base!r}")
    return b


def check_broadcast(**shapes: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """The broadcast shape of named shapes, or :class:`InputError` naming them."""
    try:
        return tuple(np.broadcast_shapes(*(tuple(-1 if d is None else d for d in s) for s in shapes.values())))
    except ValueError:
        listed = " and ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise InputError(f"shapes do not broadcast: {listed}") from None


def check_same_shape(**shapes: tuple[int | None, ...]) -> None:
    """The named shapes must be equal (no broadcasting)."""
    values = list(shapes.values())
    if any(tuple(v) != tuple(values[0]) for v in values[1:]):
        listed = " and ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise InputError(f"shapes must match: {listed}")


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def check_unit_interval(name: str, value: float) -> float:
    """A scalar option (label smoothing, alpha) must lie in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def check_nonnegative(name: str, value: float) -> float:
    """A scalar option (gamma, z_loss) must be a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number >= 0, got {value!r}")
    v = float(value)
    if not (v >= 0 and math.isfinite(v)):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


class TargetIndexError(InputError, IndexError):
    """A class index outside ``[0, V)`` that is not the ignore index (:func:`crossentropy.torch.token_statistics`).

    Both an :class:`InputError` (crossentropy's bad input, which the command
    line reports in one line) and the :class:`IndexError` that PyTorch raises
    for a target out of bounds.
    """


def target_out_of_range(index: Sequence[int], value: int, num_classes: int, ignore_index: int | None) -> InputError:
    """The :class:`TargetIndexError` for the target ``value`` at position ``index`` of ``targets``."""
    allowed = f"[0, {num_classes})" + ("" if ignore_index is None else f" or equal ignore_index={ignore_index}")
    return TargetIndexError(f"{_position('targets', index)} = {value} is out of range: targets must be in {allowed}")
