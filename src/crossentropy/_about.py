"""What ``crossentropy info`` and ``crossentropy --version`` report: the version, the kernels, the threads
and the optional backends found (found, not imported: asking must not load torch or jax)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any

from . import __version__, _dispatch, _kernels
from ._dispatch import ENVIRONMENT

# Optional libraries a call may use, by import name.
BACKENDS = ("torch", "jax", "cupy", "triton", "dask", "array_api_strict", "pyarrow", "matplotlib", "threadpoolctl")


def _version_of(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    distribution = {"array_api_strict": "array-api-strict"}.get(name, name)
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "found"


def facts() -> dict[str, Any]:
    """The version, the CPU kernels (built, variant, threads and why) and the optional backends found."""
    return {
        "version": __version__,
        "kernels": _kernels.describe(),
        "backend": _dispatch.forced(),
        "backends": {name: _version_of(name) for name in BACKENDS},
    }


def render(found: dict[str, Any]) -> str:
    """``facts()`` as the lines ``crossentropy info`` prints."""
    k = found["kernels"]
    if k["built"]:
        forced = found.get("backend")
        in_use = forced in (None, "cpu")
        state = "built, in use" if in_use else f"built, not used ({ENVIRONMENT}={forced})"
        isa = f"{k['isa']}" + (f" ({k['isa_note']})" if k["isa_note"] else "")
        kernel_lines = [
            f"kernels: {state}" if in_use else f"kernels: {state}; the {forced} path is used",
            f"instruction set: {isa}; compiled: {', '.join(k['variants_compiled'])}; "
            f"this CPU runs: {', '.join(k['variants_supported'])}",
        ]
    else:
        kernel_lines = [f"kernels: not built ({k['isa_note']}); the reference path is used (3-14x slower)"]
    backends = ", ".join(f"{name} {version}" for name, version in found["backends"].items() if version) or "none"
    return "\n".join(
        [
            f"crossentropy {found['version']}",
            *kernel_lines,
            f"threads: {k['threads']} ({k['threads_source']}); usable CPUs: {k['usable_cpus']} "
            f"({k['usable_cpus_source']}); one thread below {k['min_work_per_thread']} elements",
            f"optional backends: {backends}",
        ]
    )
