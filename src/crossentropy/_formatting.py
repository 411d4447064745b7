"""How figures leave the library: the name of a logarithm's unit, and numbers that may not exist or be finite.

One place for each, so that the command line, the explorer, the scorer's
summary and the figures say the same thing: ``nats`` for the natural
logarithm, ``bits`` for base 2, ``log base b`` otherwise; a figure that does
not exist (NaN: the precision of a class never predicted) is ``None``; and in
JSON, which has no NaN or infinity, NaN is ``null`` and an infinite number the
string ``"inf"`` or ``"-inf"``.

Examples
--------
>>> from crossentropy._formatting import jsonable, unit_name
>>> unit_name(None), unit_name(2), unit_name(10)
('nats', 'bits', 'log base 10')
>>> jsonable({"mean": float("inf"), "per_class": [0.5, float("nan")]})
{'mean': 'inf', 'per_class': [0.5, None]}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["json_number", "jsonable", "number_or_none", "unit_name"]


def unit_name(base: float | None) -> str:
    """The unit of a logarithm in ``base``: ``"nats"`` (``None``), ``"bits"`` (2), else ``"log base b"``."""
    if base is None:
        return "nats"
    return "bits" if base == 2 else f"log base {base:g}"


def number_or_none(value: Any) -> float | None:
    """A figure that may not exist, as a float: NaN as ``None`` (infinities stay floats)."""
    v = float(value)
    return None if math.isnan(v) else v


def json_number(value: Any) -> float | str | None:
    """A real number as JSON can hold it: NaN as ``None``, ``±inf`` as ``"inf"`` / ``"-inf"``."""
    v = float(value)
    if math.isnan(v):
        return None
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def jsonable(value: Any) -> Any:
    """``value`` with every float through :func:`json_number`, and NumPy integers and booleans as Python's.

    Dictionaries, lists and tuples are converted item by item (tuples become lists).
    """
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return json_number(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
