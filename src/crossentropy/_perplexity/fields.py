"""The fields of a perplexity record, each of a kind that says how it adds up, and the measures computed from them.

A *record* is one document's result. Every field is one of four kinds, and
the kind, not the code that adds documents up, decides what happens to the
field when documents are combined (into the corpus total, into a bootstrap
replicate, or when the records of separately scored shards are merged):

- :class:`Label` names the document (``id``, ``file``, ``line``): carried
  along, never added.
- :class:`Setting` says how the run was made (``model``, ``tokenizer``,
  ``context``, ...): every record that merges must agree on it.
- :class:`Sum` is a total over the document's tokens (``tokens``,
  ``nll_sum``): windows add into their document, documents into the corpus.
  Integers add exactly; floats are added over documents with
  :func:`math.fsum`, whose result is the exactly rounded sum, so the total
  of a corpus does not depend on the order or grouping of its documents. A
  sum may be a vector (``size`` components, e.g. per-bin counts), added
  component by component.
- :class:`Measure` is a figure computed from the sums alone (token
  perplexity ``exp(nll_sum / tokens)``, ...): the same function gives a
  document's value, the corpus's, and each bootstrap replicate's from that
  replicate's resampled sums (a ratio estimator). Measures are written into
  records for reading and recomputed, never added.

A new per-document statistic is a new :class:`Sum` in ``RECORD.sums`` (and
the :class:`Measure` computed from it in ``RECORD.measures``); the totals, the
bootstrap, the paired comparison and the merge of records take it up without
change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import InputError

__all__ = ["LN2", "RECORD", "Array", "Label", "Measure", "Record", "Setting", "Sum"]

Array = np.ndarray[Any, np.dtype[np.float64]]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Label:
    """What names a document; carried along, never added. ``optional``: JSON ``null`` allowed."""

    name: str
    kind: type[str] | type[int]
    optional: bool = False

    def parse(self, value: Any, where: str) -> Any:
        """The value of this field in a record read back, checked."""
        if value is None and self.optional:
            return None
        if not _is(value, self.kind):
            raise InputError(f"{where}: field {self.name!r} must be {_kind_name(self.kind)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Setting:
    """How the run was made: equal in every record that merges."""

    name: str
    kind: type[str] | type[int]

    def parse(self, value: Any, where: str) -> Any:
        """The value of this field in a record read back, checked."""
        if not _is(value, self.kind):
            raise InputError(f"{where}: field {self.name!r} must be {_kind_name(self.kind)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Sum:
    """A total over a document's tokens, added over windows and over documents (exactly; see the module).

    ``integer``: a count (an ``int`` >= 0); otherwise a float (finite or
    ``inf``). ``size``: ``None`` for one number, ``k`` for ``k`` components.
    """

    name: str
    integer: bool = False
    size: int | None = None

    def zero(self) -> Any:
        """The sum over no tokens."""
        zero: int | float = 0 if self.integer else 0.0
        return zero if self.size is None else (zero,) * self.size

    def add(self, a: Any, b: Any) -> Any:
        """``a + b`` (component by component for a vector), in the order given: windows into a document."""
        if self.size is None:
            return a + b
        return tuple(x + y for x, y in zip(a, b, strict=True))

    def total(self, values: Sequence[Any]) -> Any:
        """The sum over documents: exact for integers, exactly rounded (:func:`math.fsum`) for floats."""
        add: Callable[[Any], Any] = sum if self.integer else math.fsum
        if self.size is None:
            return add(values)
        return tuple(add(v[k] for v in values) for k in range(self.size))

    def column(self, values: Sequence[Any]) -> Array:
        """The documents' values as float64, shape ``(n,)`` or ``(n, size)`` (integers below 2**53 are exact)."""
        shape = (len(values),) if self.size is None else (len(values), self.size)
        return np.asarray(values, dtype=np.float64).reshape(shape)

    def parse(self, value: Any, where: str) -> Any:
        """The value of this field in a record read back (``"inf"`` as infinity), checked."""
        if self.size is None:
            return self._parse_one(value, where)
        if not isinstance(value, list) or len(value) != self.size:
            raise InputError(f"{where}: field {self.name!r} must be a list of {self.size} numbers, got {value!r}")
        return tuple(self._parse_one(v, where) for v in value)

    def _parse_one(self, value: Any, where: str) -> int | float:
        if self.integer:
            if _is(value, int) and value >= 0:
                return int(value)
            raise InputError(f"{where}: field {self.name!r} must be a count (an integer >= 0), got {value!r}")
        if value == "inf":
            return math.inf
        if (_is(value, float) or _is(value, int)) and not math.isnan(value):
            return float(value)
        raise InputError(f'{where}: field {self.name!r} must be a number (or "inf"), got {value!r}')


@dataclass(frozen=True)
class Measure:
    """A figure computed from sums: ``compute`` maps each sum's name to an array and returns an array.

    The arrays hold one value (a document's or the corpus's sums), one per
    document, or one per bootstrap replicate; a 0 denominator gives NaN or
    infinity, never a warning. ``per_token``: the figure depends on how the
    text was cut into tokens, so it compares only between runs with one
    tokenizer. ``headline``: reported with a bootstrap interval and compared
    between models. ``lower_is_better``: which way a paired comparison counts
    a document as better.
    """

    name: str
    label: str
    compute: Callable[[Mapping[str, Array]], Array]
    per_token: bool
    headline: bool = False
    lower_is_better: bool = True

    def of(self, sums: Mapping[str, Any]) -> Array:
        """The measure of ``sums`` (numbers or arrays), as a float64 array."""
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in sums.items()}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(self.compute(arrays), dtype=np.float64)


def _is(value: Any, kind: type) -> bool:
    """``isinstance`` where a bool is not an int, and an int is not a float."""
    if isinstance(value, bool):
        return False
    return isinstance(value, kind) and not (kind is float and isinstance(value, int))


def _kind_name(kind: type) -> str:
    return "a string" if kind is str else "an integer"


def _cross_entropy_nats(s: Mapping[str, Array]) -> Array:
    return s["nll_sum"] / s["tokens"]


def _cross_entropy_bits(s: Mapping[str, Array]) -> Array:
    return s["nll_sum"] / s["tokens"] / LN2


def _token_perplexity(s: Mapping[str, Array]) -> Array:
    return np.exp(s["nll_sum"] / s["tokens"])


def _bits_per_byte(s: Mapping[str, Array]) -> Array:
    return s["nll_sum"] / s["bytes"] / LN2


def _byte_perplexity(s: Mapping[str, Array]) -> Array:
    return np.exp(s["nll_sum"] / s["bytes"])


def _word_perplexity(s: Mapping[str, Array]) -> Array:
    return np.exp(s["nll_sum"] / s["words"])


_LABELS = (
    Label("id", str),  # the JSONL record's id field, else its line number; a text file's path
    Label("file", str),  # the file the document was read from, as given
    Label("line", int, optional=True),  # the document's JSONL line (null for a text file)
)
"""What names a document."""

_SETTINGS = (
    Setting("model", str),  # the model's directory (its class name, for a model object)
    Setting("tokenizer", str),  # the tokenizer's fingerprint: equal fingerprints cut text into equal tokens
    Setting("vocab_size", int),  # the model config's vocabulary size
    Setting("context", int),  # tokens per window
    Setting("stride", int),  # new tokens scored per window
    Setting("prefix_token", int),  # the token id every document is preceded by
)
"""How a run was made."""

_SUMS = (
    Sum("tokens", integer=True),  # tokens scored: T
    Sum("bytes", integer=True),  # UTF-8 bytes of the text: B
    Sum("words", integer=True),  # len(re.split(r"\s+", text)), the harness's word count (1 for ""): W
    Sum("nll_sum"),  # summed negative log-likelihood of the tokens, nats: L
)
"""What a document adds to the corpus (lm-evaluation-harness's L, T, B and W)."""

_MEASURES = (
    Measure("cross_entropy_nats", "cross-entropy (nats/token)", _cross_entropy_nats, per_token=True),
    Measure("cross_entropy_bits", "cross-entropy (bits/token)", _cross_entropy_bits, per_token=True),
    Measure("token_perplexity", "token perplexity", _token_perplexity, per_token=True, headline=True),
    Measure("bits_per_byte", "bits per byte", _bits_per_byte, per_token=False, headline=True),
    Measure("byte_perplexity", "byte perplexity", _byte_perplexity, per_token=False),
    Measure("word_perplexity", "word perplexity", _word_perplexity, per_token=False, headline=True),
)
"""The figures reported: lm-evaluation-harness's (see :mod:`crossentropy._perplexity`)."""


@dataclass
class Record:
    """The fields of a record, kind by kind and in order, and the measures computed from its sums."""

    labels: tuple[Label, ...]
    settings: tuple[Setting, ...]
    sums: tuple[Sum, ...]
    measures: tuple[Measure, ...]

    def stored(self) -> list[str]:
        """The names of the fields a record must hold: labels, settings and sums (measures are recomputed)."""
        return [f.name for f in self.labels] + [f.name for f in self.settings] + [f.name for f in self.sums]

    def sum_named(self, name: str) -> Sum:
        """The :class:`Sum` called ``name`` (a ``KeyError`` for another name)."""
        for f in self.sums:
            if f.name == name:
                return f
        raise KeyError(f"no sum named {name!r}; a record holds {[f.name for f in self.sums]}")


RECORD = Record(_LABELS, _SETTINGS, _SUMS, _MEASURES)
"""The record of a perplexity run; a new statistic is a new :class:`Sum` in ``RECORD.sums`` and its measures."""
