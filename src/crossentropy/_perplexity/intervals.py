"""Bootstrap intervals over documents: a run's headline measures, and the paired difference between two models.

Documents are the unit: the tokens of a document are not independent (a
model that has the topic of a document right is right about many of its
tokens), so resampling tokens would understate the uncertainty. A replicate
draws ``n`` documents with replacement from the run's ``n`` documents and
adds up their sums (every :class:`~crossentropy._perplexity.fields.Sum` of
the record, a document counted as often as it was drawn); the replicate's
measures are computed from those sums as the corpus's are (a ratio
estimator: ``exp(ΣL / ΣT)`` over the drawn documents, not a mean of
per-document perplexities). The 95% interval is the 2.5th and 97.5th
percentile of the replicates (:func:`numpy.percentile`, linear
interpolation): the percentile bootstrap.

The draws: replicate ``r`` is the ``r``-th call of
``rng.integers(0, n, size=n)`` on ``rng = numpy.random.default_rng(seed)``.
They depend on the seed and the number of documents only, so the same
documents in the same order give the same interval whatever the batches
they were scored in and however they were split into files, and the
records of shards merged in order give the interval of one run.

A paired comparison resamples runs A and B with the same draws, so each
replicate's difference ``m_B - m_A`` is over the same documents; two runs
with equal records give differences of exactly 0. A replicate that drew only
documents without tokens measures nothing and is left out of the
percentiles (``used`` counts the others).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._validation import InputError
from .fields import RECORD, Array, Measure

__all__ = [
    "LEVEL",
    "Comparison",
    "Difference",
    "Intervals",
    "bootstrap",
    "bootstrap_counts",
    "check_documents",
    "paired",
    "replicate_sums",
    "tokens_compared",
]

LEVEL = 0.95
"""The intervals' confidence level."""

_PERCENTILES = (2.5, 97.5)
_BLOCK_CELLS = 1 << 21
"""Draw counts held at a time (16 MB of float64): replicates are resampled this many documents' worth at a time."""


class Scored(Protocol):
    """A document as the bootstrap sees it: its sums."""

    sums: dict[str, Any]


def _check(replicates: int, seed: int) -> None:
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise InputError(f"replicates: the bootstrap needs an integer >= 1, got {replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")


def check_documents(scored: int) -> None:
    """Refuse a bootstrap over fewer than 2 documents with tokens (resampling one gives a zero-width interval)."""
    if scored < 2:
        raise InputError(
            f"the bootstrap resamples documents and needs at least 2 with tokens, got {scored} "
            "(a text file is one document: give several files, or a JSONL file of documents)"
        )


def bootstrap_counts(n: int, replicates: int, seed: int) -> Iterator[Array]:
    """How often each of ``n`` documents is drawn in each replicate: arrays ``(rows, n)``, replicate after replicate.

    Replicate ``r`` is ``np.bincount(rng.integers(0, n, size=n), minlength=n)``
    for the ``r``-th call on ``rng = np.random.default_rng(seed)``.

    Examples
    --------
    >>> counts = np.concatenate(list(bootstrap_counts(5, 3, seed=0)))
    >>> counts.shape, counts.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, replicates, block):
        counts = np.empty((min(block, replicates - start), n), dtype=np.float64)
        for row in counts:
            row[:] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        yield counts


def replicate_sums(documents: Sequence[Scored], replicates: int, seed: int) -> dict[str, Array]:
    """Each sum of the record over each replicate's drawn documents: ``(replicates,)`` or ``(replicates, size)``."""
    columns = {f.name: f.column([d.sums[f.name] for d in documents]) for f in RECORD.sums}
    parts: dict[str, list[Array]] = {name: [] for name in columns}
    for counts in bootstrap_counts(len(documents), replicates, seed):
        for name, column in columns.items():
            parts[name].append(counts @ column)
    return {name: np.concatenate(p) for name, p in parts.items()}


def _percentiles(values: Array) -> tuple[float, float]:
    if not values.size:
        return math.nan, math.nan
    low, high = np.percentile(values, _PERCENTILES)
    return float(low), float(high)


Mask = np.ndarray[Any, np.dtype[np.bool_]]


def _kept(sums: Mapping[str, Array], keep: Mask) -> dict[str, Array]:
    return {name: values[keep] for name, values in sums.items()}


@dataclass(frozen=True)
class Intervals:
    """The 95% percentile-bootstrap interval ``(low, high)`` of each headline measure, and how it was drawn."""

    replicates: int
    seed: int
    documents: int
    used: int
    bounds: dict[str, tuple[float, float]]

    def as_dict(self) -> dict[str, Any]:
        """``level``, ``replicates``, ``used``, ``seed``, ``documents`` and ``{"low", "high"}`` per measure."""
        out: dict[str, Any] = {"level": LEVEL, "replicates": self.replicates, "used": self.used, "seed": self.seed}
        out["documents"] = self.documents
        out.update({name: {"low": low, "high": high} for name, (low, high) in self.bounds.items()})
        return out


def _intervals(sums: Mapping[str, Array], replicates: int, seed: int, documents: int) -> Intervals:
    keep = sums["tokens"] > 0
    kept = _kept(sums, keep)
    bounds = {m.name: _percentiles(m.of(kept)) for m in RECORD.measures if m.headline}
    return Intervals(replicates, seed, documents, int(keep.sum()), bounds)


def _scored(documents: Sequence[Scored]) -> int:
    return sum(1 for d in documents if d.sums["tokens"])


def bootstrap(documents: Sequence[Scored], replicates: int, *, seed: int = 0) -> Intervals:
    """The 95% percentile-bootstrap intervals of the headline measures, resampling ``documents``.

    Parameters
    ----------
    documents : sequence of DocumentScore
        The run's documents, in order (the draws index them).
    replicates : int
        Bootstrap replicates, >= 1.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng` (>= 0).

    Returns
    -------
    Intervals

    Raises
    ------
    InputError
        ``replicates < 1``, a negative seed, or fewer than 2 documents with tokens.

    Examples
    --------
    >>> from crossentropy._perplexity import DocumentScore
    >>> docs = [DocumentScore(str(i), sums={"tokens": t, "bytes": 4 * t, "words": t, "nll_sum": 2.0 * t + i})
    ...         for i, t in enumerate([10, 20, 30, 40])]
    >>> ci = bootstrap(docs, 200, seed=0)
    >>> low, high = ci.bounds["bits_per_byte"]
    >>> bpb = sum(d.nll for d in docs) / sum(d.bytes for d in docs) / math.log(2)  # the corpus's
    >>> print(f"{bpb:.4f} in [{low:.4f}, {high:.4f}]")
    0.7430 in [0.7334, 0.7471]
    """
    _check(replicates, seed)
    check_documents(_scored(documents))
    return _intervals(replicate_sums(documents, replicates, seed), replicates, seed, len(documents))


def tokens_compared(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether runs A and B (their settings) cut the text into the same tokens: one tokenizer fingerprint.

    Then the per-token measures (token perplexity, cross-entropy) compare;
    otherwise only those per byte and per word do.

    Raises
    ------
    InputError
        When the tokenizer is the same but the models' vocabulary sizes are
        not: their token distributions are over different sets of tokens.
    """
    same = bool(a["tokenizer"] == b["tokenizer"])
    if same and a["vocab_size"] != b["vocab_size"]:
        raise InputError(
            f"compare: the models share a tokenizer but not a vocabulary size (A: {a['vocab_size']}, "
            f"B: {b['vocab_size']} tokens): their per-token probabilities are over different vocabularies"
        )
    return same


@dataclass(frozen=True)
class Difference:
    """One measure of A and of B, ``B - A`` with its 95% paired-bootstrap interval, and how many documents B wins."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    better: int
    compared: int

    @property
    def share_better(self) -> float | None:
        """The share of the documents compared (those with tokens) where B's measure is better than A's."""
        return self.better / self.compared if self.compared else None

    def as_dict(self) -> dict[str, Any]:
        """The fields, ``share_better`` included."""
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "b_better": self.better,
            "compared": self.compared,
            "share_b_better": self.share_better,
        }


@dataclass(frozen=True)
class Comparison:
    """Model B against model A on the same documents: per headline measure, a :class:`Difference`."""

    a: Intervals
    b: Intervals
    tokens: bool
    differences: dict[str, Difference]

    @property
    def note(self) -> str | None:
        """What was left out, when the tokenizers differ."""
        if self.tokens:
            return None
        left = ", ".join(m.label for m in RECORD.measures if m.headline and m.per_token)
        return f"the tokenizers differ: {left} not compared, only the measures per byte and per word"

    def as_dict(self) -> dict[str, Any]:
        """The settings of the bootstrap, ``same_tokenizer``, ``note`` and each measure's difference."""
        out: dict[str, Any] = {"level": LEVEL, "replicates": self.a.replicates, "seed": self.a.seed}
        out["documents"] = self.a.documents
        out["same_tokenizer"] = self.tokens
        out["note"] = self.note
        out.update({name: d.as_dict() for name, d in self.differences.items()})
        return out


def _better(m: Measure, a: Array, b: Array) -> Mask:
    return b < a if m.lower_is_better else b > a


def paired(
    a: Sequence[Scored], b: Sequence[Scored], replicates: int = 1000, *, seed: int = 0, tokens: bool
) -> Comparison:
    """B against A, document by document: each headline measure's difference ``B - A`` and its paired interval.

    ``a[i]`` and ``b[i]`` are the same document scored by the two models.
    ``tokens`` (from :func:`tokens_compared`): whether the per-token
    measures compare. A document counts as better for B where B's measure
    of it is better (lower for a perplexity) than A's; documents without
    tokens are not compared.

    Examples
    --------
    >>> from crossentropy._perplexity import DocumentScore
    >>> def run(extra):
    ...     return [DocumentScore(str(i), sums={"tokens": 10, "bytes": 40, "words": 8, "nll_sum": 20.0 + e})
    ...             for i, e in enumerate(extra)]
    >>> same = paired(run([0, 1, 2]), run([0, 1, 2]), 100, tokens=True).differences["bits_per_byte"]
    >>> same.difference, same.low, same.high, same.better
    (0.0, 0.0, 0.0, 0)
    """
    _check(replicates, seed)
    if len(a) != len(b):
        raise InputError(f"compare: A has {len(a)} documents and B {len(b)}: not the same documents")
    check_documents(min(_scored(a), _scored(b)))
    sums_a, sums_b = replicate_sums(a, replicates, seed), replicate_sums(b, replicates, seed)
    keep = (sums_a["tokens"] > 0) & (sums_b["tokens"] > 0)
    kept_a, kept_b = _kept(sums_a, keep), _kept(sums_b, keep)
    total_a = {f.name: f.total([d.sums[f.name] for d in a]) for f in RECORD.sums}
    total_b = {f.name: f.total([d.sums[f.name] for d in b]) for f in RECORD.sums}
    each_a = {f.name: f.column([d.sums[f.name] for d in a]) for f in RECORD.sums}
    each_b = {f.name: f.column([d.sums[f.name] for d in b]) for f in RECORD.sums}
    scored = (each_a["tokens"] > 0) & (each_b["tokens"] > 0)
    differences = {}
    for m in RECORD.measures:
        if not m.headline or (m.per_token and not tokens):
            continue
        value_a, value_b = float(m.of(total_a)), float(m.of(total_b))
        low, high = _percentiles(m.of(kept_b) - m.of(kept_a))
        better = int(np.count_nonzero(_better(m, m.of(each_a)[scored], m.of(each_b)[scored])))
        differences[m.name] = Difference(value_a, value_b, value_b - value_a, low, high, better, int(scored.sum()))
    n = len(a)
    return Comparison(
        _intervals(sums_a, replicates, seed, n), _intervals(sums_b, replicates, seed, n), tokens, differences
    )
