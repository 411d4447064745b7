"""The optional test dependencies, in a form that lets a module run without them.

Only numpy, array-api-compat, rich and pytest are needed to run the suite; a test
that uses anything else skips, naming the package, and the rest of its module runs.

- ``optional("scipy.special")`` stands for the module: the first attribute a test
  reads from it imports it, or skips that test.
- ``given``, ``assume``, ``settings``, ``st`` and ``hnp`` are Hypothesis's; without
  Hypothesis, strategies are placeholders and each ``@given`` test skips.
"""

from __future__ import annotations

from typing import Any

import pytest


class _Optional:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # what introspection asks (doctest collection, copy) does not import
            raise AttributeError(attribute)
        return getattr(pytest.importorskip(self._name), attribute)


def optional(name: str) -> Any:
    """The module ``name``, imported on first use; a test that uses it skips when it is not installed."""
    return _Optional(name)


try:
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:

    class _Placeholder:
        """Stands for a strategy, a strategies module or an enum: any attribute or call gives another."""

        def __getattr__(self, attribute: str) -> _Placeholder:
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            return self

        def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
            return self

    st = hnp = HealthCheck = _Placeholder()

    def given(*args: Any, **kwargs: Any) -> Any:
        return pytest.mark.skip(reason="could not import 'hypothesis': the property tests need it")

    def settings(*args: Any, **kwargs: Any) -> Any:
        return lambda test: test

    def assume(condition: Any) -> bool:
        return True


__all__ = ["HealthCheck", "assume", "given", "hnp", "optional", "settings", "st"]
