"""Build hook: compile the fused CPU kernels (src/crossentropy/_kernels/*.c) at install time.

The kernels are part of the default install and never make it fail. ``cpu.c``
is compiled once per instruction-set variant into one library, ``_cpu.so``,
with the runtime (``runtime.c``: thread pool, CPU features):

- x86-64: ``baseline`` (x86-64-v2: SSE4.2, runs on any x86-64 CPU of the last
  decade), ``avx2`` (x86-64-v3: AVX2 + FMA) and ``avx512`` (x86-64-v4);
- aarch64: ``baseline`` (armv8-a with NEON); other machines: ``baseline`` with
  the compiler's defaults.

The loader picks the best variant the CPU supports at run time, as NumPy does.
Environment variables read here:

- ``CC``: the C compiler, with its arguments (default: ``cc``, ``gcc`` or ``clang``), e.g.
  ``CC="/path/to/zig cc -target x86_64-linux-gnu.2.28"`` (``.ci/wheels``: a wheel for glibc 2.28);
- ``CROSSENTROPY_MARCH_NATIVE=1``: also build a ``native`` variant
  (``-march=native``, for this machine only), preferred at run time;
- ``CROSSENTROPY_BUILD_KERNELS``: ``0`` skips the kernels (a pure-Python
  wheel), ``require`` makes a failed build an error (the wheel builders use it);
  by default any compiler problem prints one notice and the package installs
  without kernels (the reference path does all the work, 3-14x slower).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

KERNELS = Path("src/crossentropy/_kernels")

# -ffp-contract=off: no fused multiply-adds but those written out, so products and sums round as the
# reference path's do; -fopenmp-simd: the `omp simd` loop annotations, without an OpenMP runtime.
COMMON = ["-O3", "-fPIC", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
X86_VARIANTS = [
    ("baseline", ["-march=x86-64-v2", "-mtune=generic"]),
    ("avx2", ["-march=x86-64-v3", "-mtune=generic"]),
    ("avx512", ["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"]),
]
ARM_VARIANTS = [("baseline", ["-march=armv8-a"])]


class KernelBuildError(RuntimeError):
    """The kernels could not be built (raised only with CROSSENTROPY_BUILD_KERNELS=require)."""


def variants(machine: str | None = None) -> list[tuple[str, list[str]]]:
    """The instruction-set variants to build on this machine: (name, extra compiler flags)."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        found = list(X86_VARIANTS)
    elif machine in ("aarch64", "arm64"):
        found = list(ARM_VARIANTS)
    else:
        found = [("baseline", [])]
    if os.environ.get("CROSSENTROPY_MARCH_NATIVE", "") not in ("", "0"):
        found.append(("native", ["-march=native"]))
    return found


def spellings(flags: list[str]) -> list[list[str]]:
    """The ways of asking a compiler for the instruction set of ``flags``, in the order they are tried.

    GCC and Clang take ``-march=x86-64-v3 -mtune=generic``; ``zig cc`` (``.ci/wheels`` builds the
    release wheels with it) reads ``-march`` as a Zig CPU name, ``x86_64_v3``, and knows no ``generic``
    tuning. The first spelling that compiles is used for the variant.
    """
    zig = [
        f"-march={flag.removeprefix('-march=').replace('-', '_')}" if flag.startswith("-march=") else flag
        for flag in flags
        if not flag.startswith("-mtune=")
    ]
    return [flags] if zig == flags else [flags, zig]


def _build_id(root: Path) -> str:
    spec = importlib.util.spec_from_file_location("_ce_build_id", root / KERNELS / "_build_id.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = module.build_id(root / KERNELS)
    assert found is not None, "a C source of the kernels is missing"
    return str(found)


def _compiler() -> list[str] | None:
    value = os.environ.get("CC", "").strip()
    if value:
        return shlex.split(value)
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    return [found] if found else None


def _run(cmd: list[str]) -> str | None:
    """Run a compiler command; None on success, else the first line of what went wrong."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{cmd[0]}: {exc}"
    if proc.returncode == 0:
        return None
    lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    return lines[0] if lines else f"{cmd[0]} exited with status {proc.returncode}"


def _compile(cc: list[str], tries: list[list[str]], args: list[str]) -> tuple[list[str] | None, str | None]:
    """Compile with the first of ``tries`` (extra flags) that works: (those flags, None), or (None, the first error)."""
    first = None
    for extra in tries:
        error = _run([*cc, *COMMON, *extra, *args])
        if error is None:
            return extra, None
        first = first or error
    return None, first


def compile_kernels(root: Path) -> tuple[Path | None, str]:
    """Compile the kernels into ``_kernels/_cpu.so``; return (its path or None, a one-line account)."""
    source = root / KERNELS
    target = source / "_cpu.so"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found"
    build_id = _build_id(root)
    with tempfile.TemporaryDirectory() as tmp:
        objects: list[str] = []
        built: list[str] = []
        baseline_flags: list[str] = []
        for name, flags in variants():
            obj = str(Path(tmp) / f"cpu_{name}.o")
            # the baseline falls back on the compiler's defaults: an old compiler without x86-64-v2 still builds it
            tries = [*spellings(flags), *([[]] if name == "baseline" and flags else [])]
            used, error = _compile(cc, tries, [f"-DCE_ISA={name}", "-c", str(source / "cpu.c"), "-o", obj])
            if used is None:
                if name == "baseline":
                    return None, f"compiling cpu.c failed: {error}"
                continue  # an older compiler without this instruction set: the others still ship
            if name == "baseline":
                baseline_flags = used
            objects.append(obj)
            built.append(name)
        runtime = str(Path(tmp) / "runtime.o")
        define = f'-DCE_BUILD_ID="{build_id}"'
        tries = [baseline_flags, []] if baseline_flags else [[]]
        used, error = _compile(cc, tries, [define, "-c", str(source / "runtime.c"), "-o", runtime])
        if used is None:
            return None, f"compiling runtime.c failed: {error}"
        library = Path(tmp) / "_cpu.so"
        error = _run([*cc, "-shared", *objects, runtime, "-o", str(library), "-lm", "-lpthread"])
        if error is not None:
            return None, f"linking the kernels failed: {error}"
        if not _loads(library, build_id):
            return None, "the compiled kernels do not load"
        # a rename, not a copy over the old file: processes that have the old library loaded keep it intact
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(library, staged)
        os.replace(staged, target)
    return target, f"built the CPU kernels ({', '.join(built)}) with {' '.join(cc)}"


def _loads(path: Path, build_id: str) -> bool:
    code = (
        "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); lib.ce_build_id.restype = ctypes.c_char_p; "
        "sys.exit(lib.ce_build_id().decode() != sys.argv[2])"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path), build_id], capture_output=True, check=False)
    except OSError:
        return False
    return proc.returncode == 0


def platform_tag() -> str:
    """This machine's wheel platform tag, e.g. linux_x86_64 (auditwheel repair makes it manylinux)."""
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compile the kernels and ship them in the wheel (py3-none-<platform>: ctypes needs no Python ABI)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        mode = os.environ.get("CROSSENTROPY_BUILD_KERNELS", "").strip().lower()
        if mode == "0":
            self.app.display_warning("crossentropy: CROSSENTROPY_BUILD_KERNELS=0: the CPU kernels are not built")
            return
        try:
            built, account = compile_kernels(Path(self.root))
        except Exception as exc:  # a build must never fail the install
            built, account = None, f"{type(exc).__name__}: {exc}"
        if built is None:
            message = (
                f"crossentropy: the fused CPU kernels were not built ({account}); "
                "the reference path will be used (3-14x slower); `crossentropy info` tells"
            )
            if mode == "require":
                raise KernelBuildError(message)
            self.app.display_warning(message)
            return
        self.app.display_info(f"crossentropy: {account}")
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{platform_tag()}"
        build_data["artifacts"].append(str(built.relative_to(self.root)))
