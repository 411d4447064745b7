"""Large torch gradients on transparent huge pages (private).

A module of its own, beside the kernels rather than in one of them, because
the autograd drivers (:mod:`.autograd`) allocate every CPU gradient through
it whichever kernel fills it. A fresh gradient of 4096 x 32000 float32 logits
is 524 MB the process has never touched: written on 4 KB pages it costs one
page fault (and the operating system's zeroing) per 4 KB, measured at
145-210 ms on this project's machines, four times the 36 ms the same write
costs on memory already mapped and more than the kernel that fills it.
Advising the system to back the buffer with 2 MB pages
(``madvise(MADV_HUGEPAGE)``) brings it to 70 ms. NumPy already does this for
its own large arrays; PyTorch's CPU allocator only under
``THP_MEM_ALLOC_ENABLE=1``.

The advice is only advice: where the system disables transparent huge pages
(``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``never``), on other
operating systems, or where the call fails, nothing changes but the speed.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any

__all__ = ["HUGE_PAGE", "MIN_BYTES", "advise_huge_pages"]

HUGE_PAGE = 2 << 20
# below two huge pages the aligned interior is too small to matter
MIN_BYTES = 2 * HUGE_PAGE
_MADV_HUGEPAGE = 14  # <sys/mman.h> on Linux, every architecture


@functools.cache
def _madvise() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def advise_huge_pages(address: int, nbytes: int) -> bool:
    """Ask for huge pages behind the 2 MB-aligned interior of ``[address, address + nbytes)``.

    Call it on memory not written yet (a page already faulted in keeps its
    size). Returns whether the advice was given; it never raises.
    """
    if nbytes < MIN_BYTES or address <= 0:
        return False
    madvise = _madvise()
    if madvise is None:
        return False
    start = -(-address // HUGE_PAGE) * HUGE_PAGE
    end = (address + nbytes) // HUGE_PAGE * HUGE_PAGE
    return end > start and madvise(start, end - start, _MADV_HUGEPAGE) == 0
