"""Shared fixtures: the ``xp`` backend fixture, float64 oracles, and ``cli`` to run the command line in-process."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if not os.path.exists("/dev/nvidiactl"):
    # no GPU: the Triton kernels run (on CPU tensors, small shapes) in Triton's interpreter;
    # it must be set before any kernel is defined
    os.environ.setdefault("TRITON_INTERPRET", "1")

import contextlib

with contextlib.suppress(ImportError):
    # Triton's LLVM clashes with the one jaxlib and TensorFlow load: importing Triton after either aborts the
    # process (torch.compile imports it). Loaded first, all three coexist.
    import triton  # noqa: F401

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:
    pass  # the property tests skip (tests/optional.py)
else:
    settings.register_profile(
        "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
    )
    settings.register_profile("dev", max_examples=200, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@dataclass(frozen=True)
class Backend:
    """One array library as seen by the tests."""

    name: str
    xp: ModuleType

    def asarray(self, values: Any, dtype: str = "float64") -> Any:
        """An array of this backend from nested lists or a NumPy array."""
        return self.xp.asarray(np.asarray(values).tolist(), dtype=getattr(self.xp, dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        from crossentropy._validation import to_numpy

        return to_numpy(x)


def _load(name: str) -> Backend:
    import array_api_compat

    if name == "numpy":
        return Backend(name, array_api_compat.array_namespace(np.empty(0)))
    if name == "array_api_strict":
        xps = pytest.importorskip("array_api_strict")
        return Backend(name, xps)
    if name == "torch":
        torch = pytest.importorskip("torch")
        return Backend(name, array_api_compat.array_namespace(torch.empty(0)))
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return Backend(name, jnp)


BACKENDS = ["numpy", "array_api_strict", "torch", "jax"]


@pytest.fixture(params=BACKENDS)
def xp(request: pytest.FixtureRequest) -> Backend:
    """Each array library in turn (skipped when not installed)."""
    return _load(request.param)


@pytest.fixture(scope="session", autouse=True)
def _jax_x64() -> None:
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)


class CliRun(NamedTuple):
    """The exit status, standard output and standard error of one run of the command line."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line on stderr (failing the test if there are more, or a traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    """``cli("score", path, "--format", "json")`` runs ``crossentropy`` through ``main([...])``: a :class:`CliRun`."""
    from crossentropy.cli import main

    def run(*argv: str) -> CliRun:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run
