"""The perplexity engine: rolling windows over a document's tokens, scored in batches, summed per document.

The engine knows nothing of models: it takes an ``encode`` function (text to
token ids and offsets) and a ``score`` function (windows to each window's
summed negative log-likelihood); :mod:`crossentropy._perplexity.model`
supplies both for a Hugging Face model. This module never imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import InputError
from .records import DocumentScore, PerplexityReport
from .text import PIECE_BYTES, WHITESPACE, Encode, jsonl_documents, read_pieces, text_tokens, word_count

__all__ = ["IGNORE", "Progress", "Score", "Window", "rolling_windows", "run"]

IGNORE = -100
"""The target of an input position whose prediction is not scored."""


class Window(NamedTuple):
    """One forward pass: ``inputs`` and the ``targets`` they predict (``IGNORE`` where not scored)."""

    document: int
    inputs: np.ndarray[Any, np.dtype[np.int64]]
    targets: np.ndarray[Any, np.dtype[np.int64]]


Score = Callable[[Sequence[Window]], Sequence[float]]
"""Windows -> each window's summed negative log-likelihood (nats) of its scored targets."""


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
    """Collects windows into batches of ``size`` and adds each window's score to its document."""

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
        for window, nll in zip(self.pending, self.score(self.pending), strict=True):
            doc = self.documents[window.document]
            scored = int(np.count_nonzero(window.targets != IGNORE))
            doc.nll += float(nll)
            doc.tokens += scored
            self.tokens += scored
        self.pending = []


Progress = Callable[[int, int, int], None]
"""``progress(bytes_read, total_bytes, tokens_scored)``, called after each piece or document."""


def run(
    path: str | os.PathLike[str],
    *,
    encode: Encode,
    score: Score,
    prefix: int,
    context: int,
    stride: int,
    batch_size: int = 1,
    jsonl: bool = False,
    text_field: str = "text",
    piece_bytes: int | None = None,
    progress: Progress | None = None,
) -> PerplexityReport:
    """Score the text or JSONL file at ``path``: rolling windows, batches of ``batch_size``, the metrics.

    A text file is read ``piece_bytes`` at a time (default :data:`PIECE_BYTES`).

    Raises
    ------
    InputError
        Besides the text's own errors: nothing to score (an empty file, a JSONL
        file whose documents are all empty, or none at all).
    """
    piece_bytes = PIECE_BYTES if piece_bytes is None else piece_bytes
    if not 1 <= stride <= context:
        raise InputError(f"stride must be in [1, context={context}], got {stride}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    try:
        total_bytes = os.path.getsize(path)
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

    if jsonl:
        for name, text, size in jsonl_documents(path, text_field):
            documents.append(DocumentScore(name, bytes=len(text.encode("utf-8")), words=word_count(text)))
            windows([encode(text)[0]] if text else [])
            read += size
            report()
    else:
        doc = DocumentScore(os.fspath(path), words=1)
        documents.append(doc)
        ended_blank = False

        def pieces() -> Iterator[str]:
            nonlocal read, ended_blank
            for text, size in read_pieces(path, piece_bytes):
                runs = sum(1 for _ in WHITESPACE.finditer(text))
                doc.words += runs - (1 if ended_blank and text[:1].isspace() else 0)
                ended_blank = text[-1:].isspace()
                doc.bytes += size
                read += size
                report()
                yield text

        windows(text_tokens(pieces(), encode, max_carry=16 * piece_bytes))
    batches.flush()
    report()
    total = DocumentScore(
        "total",
        tokens=sum(d.tokens for d in documents),
        nll=math.fsum(d.nll for d in documents),
        bytes=sum(d.bytes for d in documents),
        words=sum(d.words for d in documents),
    )
    if not total.tokens:
        name = os.fspath(path)
        if not jsonl:
            what = f"{name} is empty" if not total.bytes else f"{name} gives no token"
        else:
            what = (
                f"{name} holds no document (every line is blank)"
                if not documents
                else f"the document of {name} is empty"
                if len(documents) == 1
                else f"all {len(documents)} documents of {name} are empty"
            )
        raise InputError(f"nothing to score: {what}")
    return PerplexityReport(total, documents if jsonl else None, context, stride, prefix)
