"""Perplexity of a language model on a text (private engine): streamed reading, rolling windows, the metrics.

The engine knows nothing of models: it reads a text file (or a JSONL file
of documents) in pieces, turns each document into token ids with an
``encode`` function, cuts the ids into the rolling windows below, and hands
batches of windows to a ``score`` function that returns each window's summed
negative log-likelihood. :func:`crossentropy.transformers.perplexity`
supplies both functions for a Hugging Face model (the score by fused linear +
cross-entropy); this module never imports torch.

Definitions (those of EleutherAI's lm-evaluation-harness, the common
evaluation harness, so that the numbers compare):

- **windows**: the harness's ``get_rolling_token_windows(token_list,
  prefix_token, max_seq_len, context_len)`` in ``lm_eval/utils.py``, with
  ``max_seq_len = context`` and ``context_len = context - stride + 1``. The
  document's tokens are preceded by a *prefix token* (the harness's
  ``HFLM.prefix_token_id`` in ``lm_eval/models/huggingface.py``: the
  tokenizer's BOS token, else its EOS token) so that every token of the
  document is scored; the first window scores the first ``context`` tokens,
  each later window the next ``stride`` tokens, seeing the ``context``
  tokens before its last one. The harness's ``HFLM.loglikelihood_rolling``
  uses ``context_len=1``, that is ``stride = context``, our default. Tokens
  are encoded without special tokens, as the harness's ``tok_encode`` does
  for rolling log-likelihoods.
- **the metrics** (``lm_eval/api/metrics.py``, ``weighted_perplexity``,
  ``bits_per_byte`` and ``weighted_mean``, with the weights of
  ``process_results`` in ``lm_eval/tasks/wikitext/preprocess_wikitext.py``):
  with ``L`` the summed negative log-likelihood in nats over the documents,
  ``T`` the tokens scored, ``B = Σ len(doc.encode("utf-8"))`` and
  ``W = Σ len(re.split(r"\\s+", doc))``,

  - cross-entropy = ``L / T`` nats per token (``L / (T ln 2)`` bits),
  - token perplexity = ``exp(L / T)``,
  - bits per byte = ``L / (B ln 2)``, byte perplexity = ``exp(L / B)``,
  - word perplexity = ``exp(L / W)``.

  Sums run over the documents first (a corpus-level, not a mean of
  per-document, figure), as the harness's weighted mean does.

A plain text file is one document. It is read in pieces of ``piece_bytes``
and never held whole: the tokens of a piece are committed up to a *safe cut*
(a newline between two non-blank characters, else a single space between two
non-blank characters) at least ``MARGIN`` characters before the end of what
was read, and the text from a safe cut ``MARGIN`` characters before that is
encoded again with the next piece (its tokens already committed are
dropped), so that the ids equal those of encoding the whole text for
tokenizers whose pre-tokenization is local (byte-level BPE as in GPT-2,
Llama 3 and Qwen2; SentencePiece models, whose extra leading space at the
start of an input falls in the text encoded twice).
A JSONL file holds one document per line, a JSON object whose ``field``
(default ``"text"``) is the document's text; each line is read and scored
on its own.
"""

from __future__ import annotations

import codecs
import ctypes
import ctypes.util
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._validation import InputError

__all__ = ["DocumentScore", "PerplexityReport", "Window", "rolling_windows", "run", "text_tokens"]

IGNORE = -100
"""The target of an input position whose prediction is not scored."""

PIECE_BYTES = 1 << 20
"""Bytes of a plain text file read, decoded and encoded at a time."""

MARGIN = 256
"""Characters of context kept on either side of where the encoding of one piece hands over to the next."""

_LN2 = math.log(2.0)
_WHITESPACE = re.compile(r"\s+")
_LINE_CUT = re.compile(r"(?<=\S\n)(?=\S)")
_SPACE_CUT = re.compile(r"(?<=\S)(?= \S)")

Encode = Callable[[str], tuple[Sequence[int], Sequence[tuple[int, int]]]]
"""``text -> (ids, offsets)``: token ids without special tokens and each token's ``(start, end)`` characters."""


class Window(NamedTuple):
    """One forward pass: ``inputs`` and the ``targets`` they predict (``IGNORE`` where not scored)."""

    document: int
    inputs: np.ndarray[Any, np.dtype[np.int64]]
    targets: np.ndarray[Any, np.dtype[np.int64]]


Score = Callable[[Sequence[Window]], Sequence[float]]
"""Windows -> each window's summed negative log-likelihood (nats) of its scored targets."""


def _ratio(numerator: float, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _exp(x: float) -> float:
    """``exp(x)``: ``inf`` past the float range, NaN for NaN (no tokens, bytes or words)."""
    if math.isnan(x):
        return math.nan
    return math.exp(x) if x <= 700.0 else math.inf


@dataclass
class DocumentScore:
    """The summed negative log-likelihood of a document (or of all of them) and what its metrics divide by."""

    name: str
    tokens: int = 0
    nll: float = 0.0
    bytes: int = 0
    words: int = 0

    @property
    def cross_entropy(self) -> float:
        """Mean negative log-likelihood per token, nats."""
        return _ratio(self.nll, self.tokens)

    def metrics(self) -> dict[str, Any]:
        """Counts, cross-entropy (nats and bits per token) and the perplexities, as a plain dictionary."""
        h = self.cross_entropy
        per_byte = _ratio(self.nll, self.bytes)
        per_word = _ratio(self.nll, self.words)
        return {
            "name": self.name,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "words": self.words,
            "nll_sum": self.nll,
            "cross_entropy_nats": h,
            "cross_entropy_bits": h / _LN2,
            "token_perplexity": _exp(h),
            "bits_per_byte": per_byte / _LN2,
            "byte_perplexity": _exp(per_byte),
            "word_perplexity": _exp(per_word),
        }


@dataclass
class PerplexityReport:
    """The corpus-level score, one score per document for JSONL input, and the settings that produced them."""

    total: DocumentScore
    documents: list[DocumentScore] | None
    context: int
    stride: int
    prefix_token: int
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``crossentropy perplexity --format json`` prints)."""
        out: dict[str, Any] = {**self.settings, "context": self.context, "stride": self.stride}
        out["prefix_token"] = self.prefix_token
        out.update({k: v for k, v in self.total.metrics().items() if k != "name"})
        if self.documents is not None:
            out["documents"] = [d.metrics() for d in self.documents]
        return out


def word_count(text: str) -> int:
    """``len(re.split(r"\\s+", text))``: the harness's word count of a document."""
    return sum(1 for _ in _WHITESPACE.finditer(text)) + 1


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


# --- reading and encoding ----------------------------------------------------------------------------


def _pieces(path: str | os.PathLike[str], piece_bytes: int) -> Iterator[tuple[str, int]]:
    """The text of a UTF-8 file, ``piece_bytes`` at a time, with each piece's size in bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        while True:
            raw = handle.read(piece_bytes)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                bad = (pending + raw)[exc.start : exc.start + 1]
                at = offset - len(pending) + exc.start
                raise InputError(f"{os.fspath(path)}: not UTF-8 text: byte {at} is {bad!r}") from None
            offset += len(raw)
            if not raw:
                return
            yield text, len(raw)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system.

    Encoding a 1 MiB piece allocates and frees hundreds of MB of small
    native and Python objects; glibc keeps the freed pages of a fragmented
    heap, so without this the resident memory of a long file grows with
    every piece (measured: 0.5 GB more after 8 MB of text) although nothing
    is still referenced.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _last_cut(text: str, lo: int, hi: int) -> int | None:
    """The last safe cut ``c`` with ``lo < c < hi``: after a newline, else before a space, between non-blanks."""
    for pattern in (_LINE_CUT, _SPACE_CUT):
        last = None
        for match in pattern.finditer(text, lo + 1, hi):
            last = match.start()
        if last is not None:
            return last
    return None


def text_tokens(pieces: Iterable[str], encode: Encode, *, max_carry: int = 16 * PIECE_BYTES) -> Iterator[list[int]]:
    """The token ids of the concatenated ``pieces``, as encoding the whole text would give them, chunk by chunk.

    Each round encodes ``carry + piece``, whose first ``done`` characters
    are already committed, and commits the tokens that start at or after
    ``done`` and end by the last safe cut at least ``MARGIN`` characters
    before the end of the text (so every committed token has its right
    context). The text from a safe cut at least ``MARGIN`` characters
    before the committed end is carried over and encoded again, so that the
    next round's tokens have their left context too (and an extra leading
    space some tokenizers put at the start of an input falls in what is
    skipped). Without a cut the text is carried whole, up to ``max_carry``
    characters, beyond which all of it is committed.
    """
    carry, done = "", 0
    stream = iter(pieces)
    final = False
    while not final:
        piece = next(stream, None)
        final = piece is None
        text = carry + (piece or "")
        cut = len(text) if final else _last_cut(text, done, len(text) - MARGIN + 1)
        if cut is None:
            if len(text) <= max_carry:
                carry = text
                continue
            cut = len(text)
        ids, offsets = encode(text)
        committed = [
            (int(i), end) for i, (start, end) in zip(ids, offsets, strict=True) if start >= done and end <= cut
        ]
        yield [i for i, _ in committed]
        del ids, offsets
        _trim_heap()
        done = max((end for _, end in committed), default=done)
        origin = _last_cut(text, -1, done - MARGIN + 1) or 0
        carry, done = text[origin:], done - origin


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


def _jsonl_documents(path: str | os.PathLike[str], text_field: str) -> Iterator[tuple[str, str, int]]:
    """``(name, text, bytes_read)`` for each line of a JSONL file (blank lines skipped)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{os.fspath(path)}, line {number}"
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{where}: not a JSON object: {exc}") from None
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise InputError(f"{where}: expected an object with a string field {text_field!r}")
            name = record.get("id", number)
            yield str(name), text, len(raw)


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
        for name, text, size in _jsonl_documents(path, text_field):
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
            for text, size in _pieces(path, piece_bytes):
                runs = sum(1 for _ in _WHITESPACE.finditer(text))
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
    return PerplexityReport(total, documents if jsonl else None, context, stride, prefix)
