"""The model side of perplexity: a Hugging Face causal LM and its tokenizer as the engine's ``encode`` and ``score``.

:func:`perplexity` loads a model from a local directory (or takes a model
object), encodes text with the tokenizer's character offsets, and scores each
batch of windows with the model's backbone and the fused token statistics of
its LM head's logits (:func:`crossentropy._causal_lm.head_statistics`: the
log-probability, entropy, rank and top-1 probability of every token, block
by block, so the ``N x V`` logits never exist), which :func:`window_sums`
adds up into each window's sums; :func:`crossentropy._perplexity.engine.run`
does the rest. ``crossentropy perplexity MODEL_DIR TEXT...`` is its command
line, and :func:`crossentropy.transformers.perplexity` its public name.
Importing this module imports torch; ``transformers`` is imported when a
model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._causal_lm import Family, family_of, head_statistics, softcap_of
from .._validation import InputError
from .engine import IGNORE, Paths, Progress, Score, Window, run
from .fields import CALIBRATION_BINS
from .records import PerplexityReport
from .text import Encode

__all__ = ["fingerprint", "load_model", "perplexity", "settings_of", "window_sums"]

_DEFAULT_MAX_LENGTH = 2048
"""The harness's context when neither the model's config nor its tokenizer gives one."""

_UNBOUNDED = int(1e30)
"""``tokenizer.model_max_length`` of a tokenizer that sets none (``transformers``' ``VERY_LARGE_INTEGER``)."""


def load_model(model_dir: str | os.PathLike[str], dtype: str, device: str | None) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local directory (never from the network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    path = Path(model_dir)
    if not path.is_dir():
        raise InputError(f"model directory {os.fspath(model_dir)!r} is not a directory")
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise InputError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    target = None if device is None else _device(device)
    bar = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # transformers' own loading bar: the caller reports progress
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype if dtype == "auto" else getattr(torch, dtype), local_files_only=True
        )
    except MemoryError:
        raise
    except Exception as exc:  # a directory's files are input: a bad config, truncated weights, a missing tokenizer
        raise InputError(
            f"cannot load a causal language model from {os.fspath(model_dir)!r}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if bar:
            logging.enable_progress_bar()
    if len(tokenizer) < 2:
        raise InputError(
            f"{os.fspath(model_dir)!r}: the tokenizer loaded has {len(tokenizer)} token: the directory holds no "
            "tokenizer files (tokenizer.json, or vocab.json and merges.txt, or tokenizer.model)"
        )
    if target is not None:
        try:
            model = model.to(target)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise InputError(f"cannot move the model to device {device!r}: {exc}") from None
    return model, tokenizer


def _device(name: str) -> torch.device:
    """The torch device ``name``, InputError unless this machine can hold a tensor there (and it holds data)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InputError(f"device {name!r} is not a torch device: {exc}") from None
    if device.type == "meta":
        raise InputError(f"device {name!r} holds no data; give cpu, cuda or another device with memory")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError) as exc:  # no CUDA build, no such GPU, no driver
        raise InputError(f"device {name!r} cannot be used on this machine: {exc}") from None
    return device


def _vocabulary(model: Any) -> int:
    """The rows of the model's input embedding: token ids must lie in ``[0, rows)``."""
    return int(model.get_input_embeddings().num_embeddings)


def _check_ids(ids: np.ndarray[Any, Any], vocabulary: int, what: str) -> None:
    """InputError naming the first id outside ``[0, vocabulary)`` (the embedding would raise IndexError)."""
    bad = np.flatnonzero((ids < 0) | (ids >= vocabulary))
    if bad.size:
        raise InputError(
            f"{what} {int(ids.flat[bad[0]])} is outside the model's vocabulary [0, {vocabulary}): "
            "does the tokenizer belong to this model?"
        )


def _max_length(model: Any, tokenizer: Any) -> int:
    """The harness's context: the config's n_positions, max_position_embeddings or n_ctx, else the tokenizer's."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < _UNBOUNDED:
        return value
    return _DEFAULT_MAX_LENGTH


def fingerprint(tokenizer: Any) -> str:
    """What identifies how a tokenizer cuts text: a SHA-256 of its backend's JSON (16 hex digits).

    The backend (a ``tokenizers.Tokenizer``) does the encoding: its
    normalizer, pre-tokenizer, model and added tokens are all in its JSON,
    so two tokenizers with one fingerprint give the same token ids for every
    text. Its truncation and padding are left out: ``transformers`` sets
    both for each call, and perplexity asks for neither.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InputError("the tokenizer gives no character offsets: perplexity needs a fast tokenizer")
    state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def _vocab_size(config: Any) -> int:
    """The config's ``vocab_size`` (its text config's, for a config that nests one)."""
    size = getattr(config, "vocab_size", None)
    if size is None and hasattr(config, "get_text_config"):
        size = getattr(config.get_text_config(), "vocab_size", None)
    if not isinstance(size, int):
        raise InputError(f"the model's config gives no vocabulary size (vocab_size), got {size!r}")
    return size


def settings_of(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``tokenizer`` fingerprint and ``vocab_size`` a run of the model in ``model_dir`` would record.

    Reads the tokenizer and the config only, not the weights: enough to
    tell, before scoring, whether two models compare token by token
    (:func:`crossentropy._perplexity.intervals.tokens_compared`).
    """
    from transformers import AutoConfig, AutoTokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise InputError(f"model directory {os.fspath(model_dir)!r} is not a directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # the directory's files are input, as in load_model
        raise InputError(
            f"cannot load a causal language model from {os.fspath(model_dir)!r}: {type(exc).__name__}: {exc}"
        ) from None
    return {"tokenizer": fingerprint(tokenizer), "vocab_size": _vocab_size(config)}


def _encoder(tokenizer: Any) -> Encode:
    """``text -> (ids, offsets)`` without special tokens (needs a fast, Rust-backed tokenizer for the offsets)."""

    def encode(text: str) -> tuple[Sequence[int], Sequence[tuple[int, int]]]:
        try:
            out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        except NotImplementedError:
            raise InputError("the tokenizer gives no character offsets: perplexity needs a fast tokenizer") from None
        return out["input_ids"], out["offset_mapping"]

    return encode


def window_sums(stats: Sequence[torch.Tensor], targets: torch.Tensor) -> list[dict[str, Any]]:
    """Each window's sums over its scored tokens, from their token statistics: a row of ``targets`` per window.

    ``stats`` is ``(logprob, entropy, rank, top1_prob, ...)`` of
    :func:`crossentropy.torch.token_statistics`, each of the shape of
    ``targets`` (``IGNORE`` where not scored, whose statistics are 0). The
    sums are float64 reductions along each row (no atomic additions, so the
    same windows give the same bits): ``nll_sum = -Σ logprob``,
    ``entropy_sum = Σ entropy``, and per bin ``k`` of the top-1 probability
    ``p`` (``k = min(floor(15 p), 14)``, :data:`~crossentropy._perplexity.fields.CALIBRATION_BINS`)
    the tokens, those whose target ranks first, and their summed ``p``.
    """
    logprob, entropy, rank, top1 = (s.reshape(targets.shape) for s in stats[:4])
    scored = targets != IGNORE
    p = top1.to(torch.float64)
    k = (p * CALIBRATION_BINS).to(torch.int64).clamp_(0, CALIBRATION_BINS - 1)  # a NaN lands in a bin too
    in_bin = (k.unsqueeze(-1) == torch.arange(CALIBRATION_BINS, device=k.device)) & scored.unsqueeze(-1)
    columns = {
        "nll_sum": (-logprob).to(torch.float64).sum(1),
        "entropy_sum": entropy.to(torch.float64).sum(1),
        "calibration_tokens": in_bin.sum(1),
        "calibration_correct": (in_bin & (rank == 1).unsqueeze(-1)).sum(1),
        "calibration_confidence": torch.where(in_bin, p.unsqueeze(-1), 0.0).sum(1),
    }
    host = {name: values.cpu().tolist() for name, values in columns.items()}
    return [
        {name: tuple(values[row]) if isinstance(values[row], list) else values[row] for name, values in host.items()}
        for row in range(targets.shape[0])
    ]


def _scorer(model: Any, family: Family) -> Score:
    """Each window's sums: the backbone, then the fused token statistics of the LM head's logits per token."""
    vocabulary = _vocabulary(model)

    def score(windows: Sequence[Window]) -> list[dict[str, Any]]:
        width = max(len(w.inputs) for w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        targets = np.full((len(windows), width), IGNORE, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            n = len(w.inputs)
            ids[row, :n], targets[row, :n], mask[row, :n] = w.inputs, w.targets, 1
        _check_ids(ids, vocabulary, "token id")
        _check_ids(targets[targets != IGNORE], vocabulary, "token id")
        device = model.device
        attention = None if mask.all() else torch.from_numpy(mask).to(device)
        labels = torch.from_numpy(targets).to(device)
        with torch.no_grad():
            outputs = model.base_model(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=attention, use_cache=False, return_dict=True
            )
            hidden = outputs.last_hidden_state
            stats = head_statistics(
                hidden.reshape(-1, hidden.shape[-1]),
                model.get_output_embeddings(),
                labels.reshape(-1),
                ignore_index=IGNORE,
                softcap=softcap_of(model, family),
            )
        return window_sums(stats, labels)

    return score


def perplexity(
    model: Any,
    path: Paths,
    /,
    *,
    tokenizer: Any = None,
    context: int | None = None,
    stride: int | None = None,
    batch_size: int = 1,
    jsonl: bool | None = None,
    field: str = "text",
    prefix_token: int | None = None,
    dtype: str = "auto",
    device: str | None = None,
    progress: Progress | None = None,
) -> PerplexityReport:
    """Perplexity of a causal LM on text and JSONL files, document by document, streamed with rolling windows.

    With ``L`` the summed negative log-likelihood (nats) of every token of
    the text, ``T`` the tokens, ``B`` the UTF-8 bytes and ``W`` the words
    (``len(re.split(r"\\s+", doc))`` per document), the report gives the
    cross-entropy ``L / T`` (nats, and bits per token), the token
    perplexity ``exp(L / T)``, bits per byte ``L / (B ln 2)``, the byte
    perplexity ``exp(L / B)`` and the word perplexity ``exp(L / W)``.
    These are EleutherAI lm-evaluation-harness's definitions (its
    ``weighted_perplexity`` and ``bits_per_byte`` aggregations in
    ``lm_eval/api/metrics.py``, weighted by the word and byte counts of
    ``process_results`` in ``lm_eval/tasks/wikitext/preprocess_wikitext.py``),
    so the numbers compare with its ``wikitext``-style tasks. From the same
    pass over the logits, it gives the mean entropy of the predictions
    (``entropy_nats``, ``entropy_bits``), the top-1 accuracy, the mean
    top-1 probability and the next-token expected calibration error
    (``ece``, 15 equal-width bins of the top-1 probability; the bins and
    their verdict in ``report.as_dict()["calibration"]``). Each window's
    statistics are the fused token statistics of the window's last hidden
    states and the LM head (:func:`crossentropy.torch.linear_token_statistics`),
    whose log-likelihood is the fused linear + cross-entropy's to a float32
    bit or two; the file is never held whole.

    Parameters
    ----------
    model : transformers.PreTrainedModel or path
        A causal LM of a supported family (see :func:`crossentropy.transformers.patch`), or a local
        directory holding one and its tokenizer (``save_pretrained``'s
        layout); nothing is downloaded.
    path : str or os.PathLike, or a sequence of them
        UTF-8 text files (each one document) and JSONL files (one JSON
        object per line, its ``field`` a document), scored in order; the
        report holds each document's sums and the corpus's.
    tokenizer : transformers tokenizer, optional
        Required when ``model`` is a model; a fast tokenizer (the text is
        encoded with character offsets, see Notes).
    context : int, optional
        Tokens per window (the model's input length). Default: the model's
        ``n_positions`` / ``max_position_embeddings`` / ``n_ctx``, else the
        tokenizer's ``model_max_length``, else 2048, as the harness chooses.
    stride : int, optional
        New tokens scored per window, ``1 <= stride <= context``; each one
        then sees at least ``context - stride`` earlier tokens. Default
        ``context``: the harness's disjoint windows (``context_len=1`` of
        its ``get_rolling_token_windows``, ``lm_eval/utils.py``). A smaller
        stride gives every token more context at more cost (the strided
        evaluation of ``transformers``' perplexity guide).
    batch_size : int, optional
        Windows per forward pass (shorter ones right-padded and masked).
    jsonl : bool, optional
        Read every file as JSONL (``True``) or as text (``False``); default:
        a file whose name ends in ``.jsonl`` or ``.ndjson`` is JSONL.
    field : str, optional
        The JSONL field holding the text (default ``"text"``); an ``"id"``
        field, if present, names the document.
    prefix_token : int, optional
        The token every document is preceded by, so that its first token is
        scored too. Default: the tokenizer's BOS token, else its EOS token
        (the harness's ``prefix_token_id``).
    dtype : {"auto", "float32", "bfloat16", "float16"}, optional
        The weights' dtype when ``model`` is a directory (default: as saved).
    device : str, optional
        Where to move a model loaded from a directory (default: the CPU).
    progress : callable, optional
        ``progress(bytes_read, total_bytes, tokens_scored)``.

    Returns
    -------
    PerplexityReport
        ``report.total.metrics()``, ``report.documents`` (one
        :class:`~crossentropy._perplexity.DocumentScore` per document;
        documents without tokens are listed in ``report.empty``),
        ``report.intervals(n)`` (bootstrap intervals over documents),
        ``report.compare(other)`` (a paired comparison of two models) and
        ``report.records()`` (the ``--documents`` file's lines);
        ``report.as_dict()`` is the command's JSON output.

    Raises
    ------
    InputError
        Unsupported model, unreadable or non-UTF-8 file, bad JSONL line,
        ``stride`` outside ``[1, context]``, ``context`` beyond the model's
        positions, a tokenizer with no BOS, EOS nor ``prefix_token``, a
        JSONL file with no document, or no token in any document.

    Notes
    -----
    A text file is read 1 MiB at a time; each piece's tokens are kept up to
    a line break (between non-blank characters) at least 256 characters
    before its end, and the text from a line break 256 characters before
    that point is encoded again with the next piece, so the ids are those of
    encoding the whole text at once for tokenizers whose pre-tokenization
    is local (byte-level BPE; SentencePiece). Memory stays bounded by a
    piece, a window batch and one block of logits.

    References
    ----------
    EleutherAI, *lm-evaluation-harness*: ``lm_eval/api/metrics.py``,
    ``lm_eval/utils.py`` (``get_rolling_token_windows``),
    ``lm_eval/models/huggingface.py`` (``HFLM.loglikelihood_rolling``,
    ``prefix_token_id``, ``max_length``) and
    ``lm_eval/tasks/wikitext/preprocess_wikitext.py``.

    Examples
    --------
    >>> import transformers
    >>> import tempfile, torch
    >>> from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    >>> from crossentropy.transformers import perplexity
    >>> backend = Tokenizer(models.BPE())
    >>> backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    >>> backend.decoder = decoders.ByteLevel()
    >>> _ = backend.add_tokens([chr(c) for c in range(32, 127)] + ["\\n"])
    >>> _ = backend.add_special_tokens(["<eos>"])
    >>> tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")
    >>> config = transformers.LlamaConfig(
    ...     vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
    ...     num_attention_heads=2, max_position_embeddings=64,
    ... )
    >>> _ = torch.manual_seed(0)
    >>> model = transformers.LlamaForCausalLM(config)
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("the cat sat on the mat\\n" * 20)
    >>> report = perplexity(model, f.name, tokenizer=tokenizer, context=32)
    >>> m = report.total.metrics()
    >>> m["tokens"], m["bytes"], m["words"]
    (460, 460, 121)
    >>> print(f"{m['token_perplexity']:.2f} nats/token={m['cross_entropy_nats']:.4f} bpb={m['bits_per_byte']:.4f}")
    94.82 nats/token=4.5519 bpb=6.5671
    """
    if isinstance(model, (str, os.PathLike)):
        if tokenizer is not None:
            raise InputError("tokenizer: give it only with a model object; a model directory holds its own")
        model, tokenizer = load_model(model, dtype, device)
    elif tokenizer is None:
        raise InputError("tokenizer: required when model is a model object (or pass the model's directory)")
    family = family_of(model)
    limit = _max_length(model, tokenizer)
    context = limit if context is None else int(context)
    positions = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if context < 1 or (isinstance(positions, int) and context > positions):
        raise InputError(f"context must be in [1, {positions}] (the model's positions), got {context}")
    stride = context if stride is None else int(stride)
    if prefix_token is None:
        prefix_token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix_token is None:
        raise InputError("prefix_token: the tokenizer has neither a BOS nor an EOS token; pass the token to start with")
    _check_ids(np.array([prefix_token]), _vocabulary(model), "prefix_token")
    settings = {
        "model": getattr(model.config, "_name_or_path", "") or type(model).__name__,
        "tokenizer": fingerprint(tokenizer),
        "vocab_size": _vocab_size(model.config),
    }
    was_training = model.training
    model.eval()
    try:
        report = run(
            path,
            encode=_encoder(tokenizer),
            score=_scorer(model, family),
            prefix=int(prefix_token),
            context=context,
            stride=stride,
            batch_size=batch_size,
            jsonl=jsonl,
            text_field=field,
            progress=progress,
            settings=settings,
        )
    finally:
        model.train(was_training)
    return report
