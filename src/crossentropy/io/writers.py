"""Writing files so that they appear whole or not at all: any file (:func:`atomic_write`) and matplotlib figures."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_write", "save_figure"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears whole or not at all.

    The data go to a temporary file in the same directory, which is flushed,
    synced and renamed over ``path`` when the ``with`` block ends without an
    error; on an error (a full disk, an exception while rendering) the
    temporary file is removed and ``path`` keeps its old content. A path
    that is not a regular file (``/dev/stdout``, a FIFO) is written directly.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; a symbolic link is followed.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        Text encoding (default UTF-8) for ``mode="w"``.

    Raises
    ------
    OSError
        When the directory is not writable or the disk is full.

    Examples
    --------
    >>> import os, tempfile
    >>> from crossentropy.io import atomic_write
    >>> target = os.path.join(tempfile.mkdtemp(), "report.html")
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("<p>done</p>")
    >>> open(target).read()
    '<p>done</p>'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = os.path.realpath(os.fspath(path))
    text = encoding or "utf-8" if mode == "w" else None
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        with open(target, mode, encoding=text) as direct:
            yield direct
        return
    directory, name = os.path.split(target)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(target):
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Save a matplotlib figure through :func:`atomic_write`, in the format its file name says.

    Raises
    ------
    OSError
        When the file cannot be written; ``path`` then keeps its old content.
    ValueError
        For a suffix that matplotlib cannot write.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(f"cannot write a .{suffix} figure; use one of .{', .'.join(sorted(supported))}")
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=suffix, dpi=dpi)
