"""The records of a perplexity run: one per document (see :mod:`~crossentropy._perplexity.fields`), and the report.

The metrics are EleutherAI lm-evaluation-harness's (see :mod:`crossentropy._perplexity`):
cross-entropy ``L / T``, token perplexity ``exp(L / T)``, bits per byte
``L / (B ln 2)``, byte perplexity ``exp(L / B)``, word perplexity ``exp(L / W)``,
with ``L``, ``T``, ``B`` and ``W`` summed over the documents first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._formatting import jsonable
from .._validation import InputError
from .fields import RECORD
from .intervals import Comparison, Intervals, bootstrap, paired, tokens_compared

__all__ = ["DocumentScore", "PerplexityReport", "parse_record"]


class DocumentScore:
    """One document's sums (tokens, bytes, words, summed negative log-likelihood, ...) and where it came from.

    ``name`` is the document's id. The corpus total is a ``DocumentScore``
    too (``report.total``), named ``"total"``.
    """

    __slots__ = ("file", "line", "name", "sums")

    def __init__(
        self, name: str, *, file: str = "", line: int | None = None, sums: Mapping[str, Any] | None = None
    ) -> None:
        self.name, self.file, self.line = name, file, line
        self.sums: dict[str, Any] = {f.name: f.zero() for f in RECORD.sums}
        if sums:
            unknown = set(sums) - set(self.sums)
            if unknown:
                raise ValueError(f"no sums named {sorted(unknown)}; a record holds {list(self.sums)}")
            self.sums.update(sums)

    def add(self, sums: Mapping[str, Any]) -> None:
        """Add a window's (or a piece of text's) sums to the document's, each field by its own rule."""
        for name, value in sums.items():
            self.sums[name] = RECORD.sum_named(name).add(self.sums[name], value)

    @property
    def tokens(self) -> int:
        """Tokens scored."""
        return int(self.sums["tokens"])

    @property
    def bytes(self) -> int:
        """UTF-8 bytes of the text."""
        return int(self.sums["bytes"])

    @property
    def words(self) -> int:
        """Words, as the harness counts them."""
        return int(self.sums["words"])

    @property
    def nll(self) -> float:
        """Summed negative log-likelihood, nats."""
        return float(self.sums["nll_sum"])

    def measures(self) -> dict[str, float | None]:
        """Each measure of ``RECORD.measures``; ``None`` for a document without tokens."""
        if not self.tokens:
            return {m.name: None for m in RECORD.measures}
        return {m.name: float(m.of(self.sums)) for m in RECORD.measures}

    def metrics(self) -> dict[str, Any]:
        """The sums and the measures, as a plain dictionary."""
        return {**self.sums, **self.measures()}

    def labels(self) -> dict[str, Any]:
        """``id``, ``file`` and ``line``."""
        return {"id": self.name, "file": self.file, "line": self.line}

    def __repr__(self) -> str:
        return f"DocumentScore({self.name!r}, file={self.file!r}, line={self.line!r}, sums={self.sums!r})"


def parse_record(record: Any, where: str) -> tuple[DocumentScore, dict[str, Any]]:
    """A document and its run's settings from one record of a ``--documents`` file, every field checked.

    The measures a record holds are recomputed from its sums, not read; a
    field this version does not know is an error (a sum it dropped would
    change the totals).
    """
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object (a document's record), got {type(record).__name__}")
    known = {*RECORD.stored(), *(m.name for m in RECORD.measures)}
    unknown = [k for k in record if k not in known]
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r} (a record of another version or another program?)")
    missing = [name for name in RECORD.stored() if name not in record]
    if missing:
        raise InputError(f"{where}: the record has no field {missing[0]!r}")
    labels = {f.name: f.parse(record[f.name], where) for f in RECORD.labels}
    settings = {f.name: f.parse(record[f.name], where) for f in RECORD.settings}
    sums = {f.name: f.parse(record[f.name], where) for f in RECORD.sums}
    return DocumentScore(labels["id"], file=labels["file"], line=labels["line"], sums=sums), settings


@dataclass
class PerplexityReport:
    """The documents of a run (a text file is one document, a JSONL record another) and its settings.

    ``settings`` holds every field of ``RECORD.settings`` (model, tokenizer,
    vocab_size, context, stride, prefix_token).
    """

    documents: list[DocumentScore]
    settings: dict[str, Any]

    def __post_init__(self) -> None:
        missing = [f.name for f in RECORD.settings if f.name not in self.settings]
        if missing:
            raise ValueError(f"settings: missing {missing}")

    @property
    def total(self) -> DocumentScore:
        """The corpus: every sum added over the documents (exactly, see :mod:`~crossentropy._perplexity.fields`)."""
        sums = {f.name: f.total([d.sums[f.name] for d in self.documents]) for f in RECORD.sums}
        return DocumentScore("total", sums=sums)

    @property
    def context(self) -> int:
        """Tokens per window."""
        return int(self.settings["context"])

    @property
    def stride(self) -> int:
        """New tokens scored per window."""
        return int(self.settings["stride"])

    @property
    def prefix_token(self) -> int:
        """The token every document is preceded by."""
        return int(self.settings["prefix_token"])

    @property
    def files(self) -> list[str]:
        """The files the documents came from, in order."""
        return list(dict.fromkeys(d.file for d in self.documents))

    @property
    def empty(self) -> list[DocumentScore]:
        """The documents without a token (an empty text): listed, their measures ``None``."""
        return [d for d in self.documents if not d.tokens]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``crossentropy perplexity --format json`` prints, before ``ci``)."""
        out: dict[str, Any] = {"model": self.settings["model"], "files": self.files}
        out.update({k: v for k, v in self.settings.items() if k != "model"})
        out.update(self.total.metrics())
        out["documents"] = [{**d.labels(), **d.metrics()} for d in self.documents]
        out["empty_documents"] = [d.name for d in self.empty]
        return out

    def records(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready record per document (labels, settings, sums, measures): a ``--documents`` file's lines."""
        settings = {f.name: self.settings[f.name] for f in RECORD.settings}
        for d in self.documents:
            yield jsonable({**d.labels(), **settings, **d.metrics()})

    def intervals(self, replicates: int, *, seed: int = 0) -> Intervals:
        """95% bootstrap intervals of the headline measures, resampling documents.

        See :func:`crossentropy._perplexity.intervals.bootstrap`.
        """
        return bootstrap(self.documents, replicates, seed=seed)

    def compare(self, other: PerplexityReport, *, replicates: int = 1000, seed: int = 0) -> Comparison:
        """``other`` (B) against this run (A) on the same documents, with paired-bootstrap intervals.

        Token-level measures are compared only when both runs cut the text
        into the same tokens (:func:`~crossentropy._perplexity.intervals.tokens_compared`);
        see :func:`crossentropy._perplexity.intervals.paired`.

        Raises
        ------
        InputError
            When the two runs did not score the same documents (in the same
            order, with the same bytes and words), or share a tokenizer but
            not a vocabulary size.
        """
        tokens = tokens_compared(self.settings, other.settings)
        if len(self.documents) != len(other.documents):
            raise InputError(
                f"compare: A scored {len(self.documents)} documents, B {len(other.documents)}: not the same documents"
            )
        for a, b in zip(self.documents, other.documents, strict=True):
            same = (a.name, a.file, a.line, a.bytes, a.words) == (b.name, b.file, b.line, b.bytes, b.words)
            if not same or (tokens and a.tokens != b.tokens):
                raise InputError(
                    f"compare: document {a.name!r} of {a.file} (A) and {b.name!r} of {b.file} (B) are not the same "
                    f"document ({a.tokens} and {b.tokens} tokens, {a.bytes} and {b.bytes} bytes)"
                )
        return paired(self.documents, other.documents, replicates, seed=seed, tokens=tokens)
