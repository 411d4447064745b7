"""Reading ``--documents`` files back: the records of separately scored shards, merged into the runs they make up.

A ``--documents`` file holds one JSON record per line and document
(:meth:`~crossentropy._perplexity.PerplexityReport.records`). Reading
several in order and grouping the records by model gives each model's
documents in the order they were scored, so the report of a merge is the
report of one run over all the documents: the same sums (added exactly,
see :mod:`~crossentropy._perplexity.fields`), and for a seed the same
bootstrap intervals (whose draws depend on the documents' order only).
Records of two models are the two runs of a comparison, A being the model
of the first record.

Every record is checked field by field; the records of one model must agree
on every setting (tokenizer, context, stride, ...), and a document (its
model, file, line and id) may appear once: merging a shard twice is an
error, not a double count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from .._validation import InputError
from .fields import RECORD
from .records import DocumentScore, PerplexityReport, parse_record
from .text import json_lines

__all__ = ["read_records"]


class _Run:
    """The records of one model read so far: its settings (and where they were first seen) and its documents."""

    def __init__(self, settings: dict[str, Any], where: str) -> None:
        self.settings, self.where = settings, where
        self.documents: list[DocumentScore] = []

    def check(self, settings: dict[str, Any], where: str) -> None:
        for f in RECORD.settings:
            if settings[f.name] != self.settings[f.name]:
                raise InputError(
                    f"{where}: {f.name} is {settings[f.name]!r}, but {self.where} has {self.settings[f.name]!r} "
                    f"for the same model: records of different runs do not merge"
                )


def _records(path: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for each non-blank line of a ``--documents`` file."""
    name = os.fspath(path)
    count = 0
    try:
        for _, where, record, _ in json_lines(path, "a JSON record"):
            count += 1
            yield where, record
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not count:
        raise InputError(f"{name}: no record (a --documents file holds one JSON record per line)")


def read_records(paths: Sequence[str | os.PathLike[str]]) -> list[PerplexityReport]:
    """The runs whose records the ``--documents`` files at ``paths`` hold: one report per model, in order.

    Raises
    ------
    InputError
        An unreadable file, a file with no record, a line that is not a
        valid record, records of one model with different settings, a
        document that appears twice, or records of more than two models.
    """
    runs: dict[str, _Run] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for path in paths:
        for where, record in _records(path):
            doc, settings = parse_record(record, where)
            model = settings["model"]
            run = runs.get(model)
            if run is None:
                run = runs[model] = _Run(settings, where)
            run.check(settings, where)
            key = (model, doc.file, doc.line, doc.name)
            if key in seen:
                raise InputError(
                    f"{where}: document {doc.name!r} of {doc.file} (model {model}) is also at {seen[key]}: "
                    "a document is merged once"
                )
            seen[key] = where
            run.documents.append(doc)
    if len(runs) > 2:
        raise InputError(
            f"merge: records of {len(runs)} models ({', '.join(runs)}): a merge gives one model's numbers, "
            "or compares two"
        )
    return [PerplexityReport(run.documents, run.settings) for run in runs.values()]
