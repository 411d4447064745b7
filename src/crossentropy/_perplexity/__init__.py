"""Perplexity of a language model on a text (private package): streamed reading, rolling windows, the metrics.

The engine knows nothing of models: it reads a text file (or a JSONL file
of documents) in pieces, turns each document into token ids with an
``encode`` function, cuts the ids into the rolling windows below, and hands
batches of windows to a ``score`` function that returns each window's summed
negative log-likelihood. :mod:`crossentropy._perplexity.model` supplies both
functions for a Hugging Face model (the score by fused linear +
cross-entropy); only that module imports torch.

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


Documents are the unit of everything beyond the corpus's numbers: a text
file is one document, a JSONL record another. Each document's result is a
*record* whose fields say how they add up
(:mod:`~crossentropy._perplexity.fields`), so that the corpus total, a
bootstrap replicate and the merge of separately scored shards are the same
operation, exact; the bootstrap resamples documents and recomputes the
measures from the resampled sums, and a paired comparison resamples two
models' records with the same draws.

The package, one module per job: :mod:`~crossentropy._perplexity.text`
(reading and encoding text in pieces), :mod:`~crossentropy._perplexity.engine`
(rolling windows, batches, :func:`run`), :mod:`~crossentropy._perplexity.fields`
(the record's fields, how each adds up, the measures),
:mod:`~crossentropy._perplexity.records` (per-document scores and the
report), :mod:`~crossentropy._perplexity.intervals` (bootstrap intervals and
paired comparisons), :mod:`~crossentropy._perplexity.merge` (reading records
back) and :mod:`~crossentropy._perplexity.model` (a Hugging Face model as
``encode`` and ``score``; imported on its own, as it imports torch).
"""

from __future__ import annotations

from .engine import IGNORE, Window, rolling_windows, run
from .intervals import Comparison, Intervals, bootstrap, paired, tokens_compared
from .merge import read_records
from .records import DocumentScore, PerplexityReport
from .text import text_tokens, word_count

__all__ = [
    "IGNORE",
    "Comparison",
    "DocumentScore",
    "Intervals",
    "PerplexityReport",
    "Window",
    "bootstrap",
    "paired",
    "read_records",
    "rolling_windows",
    "run",
    "text_tokens",
    "tokens_compared",
    "word_count",
]
