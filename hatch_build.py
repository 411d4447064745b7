"""Build hook: compile the fused CPU kernels (src/crossentropy/_kernels/cpu.c) at install time.

The kernels are part of the default install. They are compiled with the
machine's C compiler into ``_kernels/_cpu.so`` (OpenMP threads; glibc's vector
math library where available) and loaded with ctypes on first use. When no
compiler is found the package still installs and the array-API reference path
does all the work; ``crossentropy._kernels.available()`` says which.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

KERNELS = Path("src/crossentropy/_kernels")

# Tried in order: vector math from libmvec, then plain -O3; each with and without OpenMP.
# -ffp-contract=off: no fused multiply-adds, so products and sums round as the reference path's do.
FLAG_SETS = [
    ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-DCE_LIBMVEC"],
    ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
    ["-O3", "-fno-math-errno", "-ffp-contract=off"],
]


def compile_kernels(root: Path, log: Any = print) -> Path | None:
    """Compile cpu.c next to itself; return the library's path, or None."""
    source = root / KERNELS / "cpu.c"
    target = root / KERNELS / "_cpu.so"
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        log("crossentropy: no C compiler found; the fused CPU kernels are not built (reference path only)")
        return None
    for flags in FLAG_SETS:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "_cpu.so"
            cmd = [compiler, *flags, "-fPIC", "-shared", str(source), "-o", str(out), "-lm"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode == 0 and _loads(out):
                shutil.copyfile(out, target)
                log(f"crossentropy: built the CPU kernels with {' '.join(flags)}")
                return target
    log("crossentropy: compiling the CPU kernels failed; the reference path will be used")
    return None


def _loads(path: Path) -> bool:
    code = f"import ctypes; ctypes.CDLL({str(path)!r}).ce_version()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode == 0


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compile the kernels and ship them in the wheel (a platform wheel)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        built = compile_kernels(Path(self.root), log=self.app.display_info)
        if built is not None:
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            build_data["artifacts"].append(str(built.relative_to(self.root)))
