"""The identity of a kernel build: a hash of the C sources (standard library only).

The build hook (hatch_build.py) compiles it into the library as ``ce_build_id()``
and the loader compares it with the sources installed beside the library, so a
library built from other sources is never called. This is the kernels' only
version number.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SOURCES = ("cpu.c", "cpu.h", "cpu_template.h", "runtime.c")


def build_id(directory: Path) -> str | None:
    """The first 16 hex digits of the SHA-256 of the C sources in ``directory``, or None if one is missing."""
    digest = hashlib.sha256()
    for name in SOURCES:
        path = directory / name
        if not path.is_file():
            return None
        digest.update(name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:16]
