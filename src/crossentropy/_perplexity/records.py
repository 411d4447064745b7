"""The records of a perplexity run: each document's summed negative log-likelihood and counts, and the report.

The metrics are EleutherAI lm-evaluation-harness's (see :mod:`crossentropy._perplexity`):
cross-entropy ``L / T``, token perplexity ``exp(L / T)``, bits per byte
``L / (B ln 2)``, byte perplexity ``exp(L / B)``, word perplexity ``exp(L / W)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DocumentScore", "PerplexityReport"]

_LN2 = math.log(2.0)


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
