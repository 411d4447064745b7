"""The perplexity engine: rolling windows over a document's tokens, scored in batches, summed per document.

The engine knows nothing of models: it takes an ``encode`` function (text to
token ids and offsets) and a ``score`` function (windows to each window's
sums over its scored tokens: the negative log-likelihood and the token
statistics); :mod:`crossentropy._perplexity.model` supplies both for a
Hugging Face model. This module never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import InputError
from .fields import COUNTED, RECORD
from .records import DocumentScore, PerplexityReport
from .text import PIECE_BYTES, WHITESPACE, Encode, jsonl_documents, read_pieces, text_tokens, word_count

__all__ = ["IGNORE", "Paths", "Progress", "Score", "Window", "is_jsonl", "rolling_windows", "run"]

IGNORE = -100
"""The target of an input position whose prediction is not scored."""


class Window(NamedTuple):
    """One forward pass: ``inputs`` and the ``targets`` they predict (``IGNORE`` where not scored)."""

    document: int
    inputs: np.ndarray[Any, np.dtype[np.int64]]
    targets: np.ndarray[Any, np.dtype[np.int64]]


Score = Callable[[Sequence[Window]], Sequence[Mapping[str, Any]]]
"""Windows -> each window's sums over its scored targets: every sum of the record but those the engine counts
(:data:`~crossentropy._perplexity.fields.COUNTED`), i.e. ``nll_sum`` (nats), ``entropy_sum`` and the
calibration bins (see :mod:`~crossentropy._perplexity.fields`)."""

_SCORED = frozenset(f.name for f in RECORD.sums) - frozenset(COUNTED)


# --- rolling windows -----------------------------------------------------------------------------


def rolling_windows(
    chunks: Iterable[Sequence[int]], *, document: int, prefix: int, context: int, stride: int
) -> Iterator[Window]:
    """The harness's rolling windows over a stream of token chunks, holding at most ``context + stride`` ids.

    ``seq = [prefix, t0, t1, ...]``; a window is ``inputs = seq[s:e]``,
    ``targets = seq[s+1:e+1]`` with all but its last ``e - e_prev`` targets
    ignored, ``e = min(e_prev + stride, len(seq) - 1)`` (``context`` for the
    first window) and ``s = max(0, e - context)``: the windows of
    ``get_rolling_token_windows(tokens, prefix, context, context - stride + 1)``.
    """
    buffer = np.array([prefix], dtype=np.int64)
    base = 0  # index in seq of buffer[0]
    done = 0  # targets scored so far: seq[1:done + 1]

    def window(end: int) -> Window:
        start = max(0, end - context)
        inputs = buffer[start - base : end - base].copy()
        targets = buffer[start + 1 - base : end + 1 - base].copy()
        targets[: len(targets) - (end - done)] = IGNORE
        return Window(document, inputs, targets)

    for chunk in chunks:
        buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.int64)])
        while True:
            end = context if done == 0 else done + stride
            if base + len(buffer) < end + 1:
                break
            yield window(end)
            done = end
            keep = max(0, done + 1 - context)
            buffer, base = buffer[keep - base :], keep
    end = base + len(buffer) - 1
    if end > done:
        yield window(end)


# --- the run ---------------------------------------------------------------------------------------------


class _Batches:
    """Collects windows into batches of ``size`` and adds each window's sums to its document."""

    def __init__(self, score: Score, size: int, documents: list[DocumentScore]) -> None:
        self.score, self.size, self.documents = score, size, documents
        self.pending: list[Window] = []
        self.tokens = 0

    def add(self, window: Window) -> None:
        self.pending.append(window)
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        for window, sums in zip(self.pending, self.score(self.pending), strict=True):
            if sums.keys() != _SCORED:
                raise ValueError(f"score: a window's sums must be {sorted(_SCORED)}, got {sorted(sums)}")
            scored = int(np.count_nonzero(window.targets != IGNORE))
            self.documents[window.document].add({"tokens": scored, **sums})
            self.tokens += scored
        self.pending = []


Progress = Callable[[int, int, int], None]
"""``progress(bytes_read, total_bytes, tokens_scored)``, called after each piece or document."""

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""One file, or several."""


def is_jsonl(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a JSONL file: its name ends in ``.jsonl`` or ``.ndjson``."""
    return os.fspath(path).lower().endswith((".jsonl", ".ndjson"))


def run(
    paths: Paths,
    *,
    encode: Encode,
    score: Score,
    prefix: int,
    context: int,
    stride: int,
    batch_size: int = 1,
    jsonl: bool | None = None,
    text_field: str = "text",
    piece_bytes: int | None = None,
    progress: Progress | None = None,
    settings: Mapping[str, Any] | None = None,
) -> PerplexityReport:
    """Score the text and JSONL files at ``paths``, in order: rolling windows, batches of ``batch_size``, the sums.

    A text file is one document, read ``piece_bytes`` at a time (default
    :data:`PIECE_BYTES`); a JSONL file (``jsonl``; default: by its name, see
    :func:`is_jsonl`) holds one document per line. ``settings`` (the model's
    name, tokenizer fingerprint and vocabulary size) go into the report with
    ``context``, ``stride`` and ``prefix``.

    Raises
    ------
    InputError
        Besides the text's own errors: no file, a JSONL file with no
        document, or no token in any document.
    """
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    piece_bytes = PIECE_BYTES if piece_bytes is None else piece_bytes
    if not files:
        raise InputError("no text to score: give at least one file")
    if not 1 <= stride <= context:
        raise InputError(f"stride must be in [1, context={context}], got {stride}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    total_bytes = 0
    for path in files:
        try:
            total_bytes += os.path.getsize(path)
        except OSError as exc:
            raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    documents: list[DocumentScore] = []
    batches = _Batches(score, batch_size, documents)
    read = 0

    def report() -> None:
        if progress is not None:
            progress(read, total_bytes, batches.tokens)

    def windows(chunks: Iterable[Sequence[int]]) -> None:
        for w in rolling_windows(chunks, document=len(documents) - 1, prefix=prefix, context=context, stride=stride):
            batches.add(w)

    for path in files:
        name = os.fspath(path)
        if is_jsonl(path) if jsonl is None else jsonl:
            before = len(documents)
            for line, doc_id, text, size in jsonl_documents(path, text_field):
                sums = {"bytes": len(text.encode("utf-8")), "words": word_count(text)}
                documents.append(DocumentScore(doc_id, file=name, line=line, sums=sums))
                windows([encode(text)[0]] if text else [])
                read += size
                report()
            if len(documents) == before:
                raise InputError(f"{name}: no document in this JSONL file (every line is blank)")
            continue
        doc = DocumentScore(name, file=name, sums={"words": 1})
        documents.append(doc)
        ended_blank = False

        def pieces(path: str | os.PathLike[str] = path, doc: DocumentScore = doc) -> Iterator[str]:
            nonlocal read, ended_blank
            for text, size in read_pieces(path, piece_bytes):
                runs = sum(1 for _ in WHITESPACE.finditer(text))
                doc.add({"words": runs - (1 if ended_blank and text[:1].isspace() else 0), "bytes": size})
                ended_blank = text[-1:].isspace()
                read += size
                report()
                yield text

        windows(text_tokens(pieces(), encode, max_carry=16 * piece_bytes))
    batches.flush()
    report()
    result = PerplexityReport(
        documents, {**(settings or {}), "context": context, "stride": stride, "prefix_token": prefix}
    )
    if not result.total.tokens:
        if len(documents) == 1:
            only = documents[0]
            what = only.file if only.line is None else f"the one document of {only.file} (line {only.line})"
            raise InputError(f"nothing to score: {what} {'gives no token' if only.bytes else 'is empty'}")
        raise InputError(f"nothing to score: all {len(documents)} documents are empty")
    return result
