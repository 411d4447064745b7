"""Opening a prediction file or a data set: the one place that picks a file's format.

:func:`open_table` turns what the user named (a file, a directory or glob of
files, standard input, a FIFO, an fsspec URL) into the list of its files,
picks their :class:`~crossentropy.io.pieces.Format` by their names, and lets
the format open them as a :class:`~crossentropy.io.pieces.Table`.
"""

from __future__ import annotations

import glob
import os
import stat

from .._validation import InputError
from .csv import Csv, open_stream
from .npy import Npy, Npz
from .parquet import Parquet
from .pieces import Format, Table

__all__ = ["open_table"]


def open_table(path: str, *, delimiter: str | None = None) -> Table:
    """Open a prediction file or data set for streaming.

    Parameters
    ----------
    path : str
        A ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``), ``.parquet``/``.pq``,
        ``.npy`` or ``.npz`` file; ``-``, ``/dev/stdin`` or a FIFO for CSV on a
        stream; a directory or glob of Parquet or CSV files; or an fsspec URL
        (``file://``, ``memory://``, ...) of any of these.
    delimiter : str, optional
        CSV field delimiter, one character; default ``,`` (tab for ``.tsv``).

    Raises
    ------
    InputError
        For a missing, empty or unreadable file, naming it.
    """
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
        raise InputError(f"--delimiter must be one character other than a quote or a line end, got {delimiter!r}")
    if path == "-" or _is_stream(path):
        return open_stream(path, delimiter)
    formats: tuple[Format, ...] = (Csv(delimiter), Parquet(), Npy(), Npz())
    files, shown = _expand(path, formats)
    found = [next((f for f in formats if f.matches(name)), None) for name in files]
    if None in found:
        unknown = files[found.index(None)]
        raise InputError(
            f"{unknown}: unknown file type; expected .csv, .tsv, .parquet, .npy or .npz (or - for CSV on stdin)"
        )
    kinds = {f.name for f in found if f is not None}
    if len(kinds) > 1:
        raise InputError(f"{path}: the files mix formats ({', '.join(sorted(kinds))})")
    fmt = found[0]
    assert fmt is not None
    if not fmt.many_files and len(files) > 1:
        raise InputError(f"{path}: a data set of several files must be Parquet or CSV, not {fmt.name.upper()}")
    return fmt.open(files, shown)


def _is_stream(path: str) -> bool:
    """A FIFO, a device, or a name of standard input: read as a CSV stream."""
    if "://" in path:
        return False
    if path == "/dev/stdin" or path.startswith(("/dev/fd/", "/proc/self/fd/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _expand(path: str, formats: tuple[Format, ...]) -> tuple[list[str], str]:
    """The data files of ``path`` in order (a directory keeps the files of ``formats``), and its display name."""

    def known(name: str) -> bool:
        return any(f.matches(name) for f in formats)

    if "://" in path:
        try:
            import fsspec.core
        except ImportError:
            raise InputError(f"{path}: reading URLs needs fsspec: pip install fsspec") from None
        try:
            fs, root = fsspec.core.url_to_fs(path)
        except (ImportError, ValueError) as exc:
            raise InputError(f"{path}: cannot open this URL: {exc}") from None
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        try:
            if any(ch in root for ch in "*?["):
                found = sorted(fs.glob(root))
            elif fs.isdir(root):
                found = sorted(p for p in fs.find(root) if known(p))
                if not found:
                    raise InputError(f"{path}: the directory holds no .parquet or .csv files")
            elif fs.exists(root):
                found = [root]
            else:
                raise InputError(f"{path}: no such file")
        except OSError as exc:
            raise InputError(f"{path}: cannot list: {exc}") from None
        if not found:
            raise InputError(f"{path}: no file matches")
        return [f"{protocol}://{p.split('://')[-1]}" if protocol != "file" else p for p in found], path
    if any(ch in path for ch in "*?[") and not os.path.exists(path):
        found = sorted(glob.glob(path, recursive=True))
        if not found:
            raise InputError(f"{path}: no file matches")
        return found, path
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        found = sorted(
            os.path.join(d, f)
            for d, _, names in os.walk(path)
            for f in names
            if known(f) and not f.startswith((".", "_"))
        )
        if not found:
            raise InputError(f"{path}: is a directory with no .parquet or .csv files")
        return found, path
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty")
    return [path], path
