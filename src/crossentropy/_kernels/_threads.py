"""How many threads a kernel call uses, and why (scikit-learn's policy).

In order of precedence:

1. ``CROSSENTROPY_NUM_THREADS`` (a positive integer);
2. ``OMP_NUM_THREADS`` (its first entry, as OpenMP reads it);
3. the CPUs this process may use: its CPU affinity, lowered to the cgroup CPU
   quota when a container sets one (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_*``).

Any of these is clamped to the usable CPUs (a value such as 100000 means "all
of them"), and a limit set by threadpoolctl (``threadpool_limits``; the
kernels register as an ``openmp`` library) lowers it further. Values that are
not positive integers are ignored. Below a measured amount of work a call runs
on one thread, so tiny calls pay nothing for the pool.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

# Elements of work below which one thread is faster than waking the pool (benchmarks/README.md).
MIN_WORK_PER_THREAD = 32768


def _positive_int(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if number >= 1 else None


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs allowed by a cgroup CPU quota (rounded up), or None without a quota."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return max(1, math.ceil(int(fields[0]) / int(fields[1])))
        return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


@functools.cache
def usable_cpus() -> tuple[int, str]:
    """The CPUs this process may use and where that number comes from."""
    try:
        count, source = len(os.sched_getaffinity(0)), "CPU affinity"
    except AttributeError:
        count, source = os.cpu_count() or 1, "os.cpu_count()"
    quota = _cgroup_quota()
    if quota is not None and quota < count:
        count, source = quota, "cgroup CPU quota"
    return max(1, count), source


def policy(limit: int = 0) -> tuple[int, str]:
    """(threads, source) for a large call; ``limit`` is threadpoolctl's limit (0: none)."""
    cpus, source = usable_cpus()
    count = cpus
    for name in ("CROSSENTROPY_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name)
        asked = _positive_int(value)
        if asked is not None:
            count = min(asked, cpus)
            source = name if asked <= cpus else f"{name}={value.strip() if value else ''}, clamped to {source}"
            break
        if value is not None and value.strip():
            source = f"{source} ({name}={value!r} ignored: not a positive integer)"
    if 0 < limit < count:
        count, source = limit, "threadpoolctl"
    return count, source


def for_work(threads: int, work: int) -> int:
    """Threads for a call over ``work`` elements: one per MIN_WORK_PER_THREAD elements, at most ``threads``."""
    return max(1, min(threads, work // MIN_WORK_PER_THREAD))


def register_threadpoolctl(lib: Any) -> None:
    """Let threadpoolctl see and limit the kernels' threads (when threadpoolctl is installed)."""
    try:
        import threadpoolctl  # type: ignore[import-untyped]
    except ImportError:
        return

    class KernelController(threadpoolctl.LibController):  # type: ignore[misc]
        """threadpoolctl's handle on the kernels' thread pool."""

        user_api = "openmp"
        internal_api = "crossentropy"
        filename_prefixes = ("_cpu",)

        def get_num_threads(self) -> int | None:
            if not hasattr(self.dynlib, "ce_get_thread_limit"):
                return None
            return policy(int(self.dynlib.ce_get_thread_limit()))[0]

        def set_num_threads(self, num_threads: int) -> None:
            if hasattr(self.dynlib, "ce_set_thread_limit"):
                unlimited = policy(0)[0]
                self.dynlib.ce_set_thread_limit(0 if num_threads >= unlimited else max(1, int(num_threads)))

        def get_version(self) -> str | None:
            return None

    if not any(c.internal_api == "crossentropy" for c in threadpoolctl._ALL_CONTROLLERS):
        threadpoolctl.register(KernelController)
