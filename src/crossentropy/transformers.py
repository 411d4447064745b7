"""Fused linear + cross-entropy inside Hugging Face causal language models, and their perplexity on a text.

This is a top-level module because it is an integration with a third-party
library, like :mod:`crossentropy.torch`: it is imported only when asked for
(``import crossentropy`` imports neither it, torch nor ``transformers``), and
it imports ``transformers`` only inside the functions that need it.

- :func:`patch` makes a causal language model of ``transformers`` (the
  Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma 2, Gemma 3 and GPT-2 families)
  compute its training loss from the last hidden states and the LM-head
  weight with the fused linear + cross-entropy of
  :func:`crossentropy.torch.linear_cross_entropy`, so the ``N x V`` logits,
  the largest tensor of a training step, never exist. :func:`unpatch` undoes
  it.
- :func:`perplexity` streams a text or JSONL file of any size through a
  model with rolling windows, fused linear + cross-entropy per window, and
  reports the cross-entropy, token perplexity, bits per byte and word
  perplexity with the definitions of EleutherAI's lm-evaluation-harness;
  ``crossentropy perplexity MODEL_DIR TEXT_FILE`` is its command line.

Examples
--------
>>> import transformers
>>> import torch
>>> from crossentropy.transformers import patch, unpatch
>>> config = transformers.LlamaConfig(
...     vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
... )
>>> _ = torch.manual_seed(0)
>>> model = transformers.LlamaForCausalLM(config)
>>> ids = torch.randint(0, 1000, (2, 16))
>>> stock = model(input_ids=ids, labels=ids).loss
>>> fused = patch(model)(input_ids=ids, labels=ids)
>>> bool(torch.isclose(fused.loss, stock, rtol=1e-5)), fused.logits is None
(True, True)
>>> unpatch(model)(input_ids=ids, labels=ids).logits.shape
torch.Size([2, 16, 1000])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _dispatch, _perplexity
from ._perplexity import PerplexityReport, Progress, Window
from ._validation import InputError
from .torch import cross_entropy

__all__ = ["PerplexityReport", "is_patched", "patch", "perplexity", "unpatch"]

IGNORE_INDEX = -100
"""The label ``transformers`` ignores in a causal-LM loss (the default of its ``ForCausalLMLoss``)."""

_DEFAULT_MAX_LENGTH = 2048
"""The harness's context when neither the model's config nor its tokenizer gives one."""

_UNBOUNDED = int(1e30)
"""``tokenizer.model_max_length`` of a tokenizer that sets none (``transformers``' ``VERY_LARGE_INTEGER``)."""


@dataclass(frozen=True)
class _Family:
    """What the fused loss needs to know of a model family: its output class, and whether it soft-caps logits."""

    name: str
    output: str
    softcap: bool = False


_FAMILIES = {
    "LlamaForCausalLM": _Family("Llama", "CausalLMOutputWithPast"),
    "MistralForCausalLM": _Family("Mistral", "CausalLMOutputWithPast"),
    "Qwen2ForCausalLM": _Family("Qwen2", "CausalLMOutputWithPast"),
    "Qwen3ForCausalLM": _Family("Qwen3", "CausalLMOutputWithPast"),
    "GemmaForCausalLM": _Family("Gemma", "CausalLMOutputWithPast"),
    "Gemma2ForCausalLM": _Family("Gemma 2", "CausalLMOutputWithPast", softcap=True),
    "Gemma3ForCausalLM": _Family("Gemma 3", "CausalLMOutputWithPast", softcap=True),
    "GPT2LMHeadModel": _Family("GPT-2", "CausalLMOutputWithCrossAttentions"),
}
"""The supported classes (and their subclasses), by the name of the ``transformers`` class."""

SUPPORTED = tuple(_FAMILIES)
"""The names of the supported ``transformers`` classes."""


def _family(model: object) -> _Family:
    """The model's family, or an :class:`InputError` naming the supported ones."""
    for cls in type(model).__mro__:
        if cls.__name__ in _FAMILIES and cls.__module__.startswith("transformers."):
            return _FAMILIES[cls.__name__]
    hint = " (patch the model before torch.compile)" if hasattr(model, "_orig_mod") else ""
    families = ", ".join(f"{f.name} ({name})" for name, f in _FAMILIES.items())
    raise InputError(
        f"model: {type(model).__name__} is not a supported causal language model{hint}; supported: {families}"
    )


def _softcap(model: Any, family: _Family) -> float:
    """The final-logit soft-capping of the model's config (0 for none)."""
    return float(getattr(model.config, "final_logit_softcapping", None) or 0.0) if family.softcap else 0.0


def _linear_loss(
    hidden: torch.Tensor,
    head: Any,
    labels: torch.Tensor,
    *,
    ignore_index: int,
    softcap: float,
    reduction: str,
) -> torch.Tensor:
    """``cross_entropy(softcap(head(hidden)), labels)`` for ``hidden`` ``(N, D)``, without the ``N x V`` logits.

    Under autocast the hidden states and the head's weight take the autocast
    dtype, as the stock ``lm_head`` call does; the loss is accumulated in
    float32 either way.
    """
    weight, bias = head.weight, getattr(head, "bias", None)
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    with torch.autocast(device, enabled=False):
        loss: torch.Tensor = _dispatch.torch_linear_cross_entropy(
            hidden,
            weight,
            labels,
            bias=bias,
            ignore_index=ignore_index,
            softcap=softcap,
            reduction=reduction,
            check_labels=True,
        )
    return loss


def _logits(model: Any, family: _Family, hidden: torch.Tensor) -> torch.Tensor:
    """The stock head: ``lm_head(hidden)``, soft-capped where the family does it."""
    logits = model.get_output_embeddings()(hidden)
    cap = _softcap(model, family)
    return cap * torch.tanh(logits / cap) if cap else logits


def _causal_lm_loss(
    model: Any,
    family: _Family,
    head: Any,
    hidden: torch.Tensor,
    logits: torch.Tensor | None,
    labels: torch.Tensor,
    shift_labels: torch.Tensor | None,
    num_items_in_batch: Any,
    ignore_index: int,
) -> torch.Tensor:
    """``transformers``' ``ForCausalLMLoss``: shifted labels, a mean, or a sum over ``num_items_in_batch``.

    The loss of ``hidden`` through the LM head ``head``, or of ``logits`` when given. A batch whose labels are
    all ignored has gradient 0 even when ``num_items_in_batch`` is 0 (the loss is then NaN), as stock.
    """
    if shift_labels is None:
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    targets = shift_labels.reshape(-1).to(hidden.device)
    reduction = "mean" if num_items_in_batch is None else "sum"
    if logits is not None:
        flat = logits.float().reshape(-1, logits.shape[-1])
        loss = cross_entropy(flat, targets, ignore_index=ignore_index, reduction=reduction)
    else:
        loss = _linear_loss(
            hidden.reshape(-1, hidden.shape[-1]),
            head,
            targets,
            ignore_index=ignore_index,
            softcap=_softcap(model, family),
            reduction=reduction,
        )
    if num_items_in_batch is None:
        return loss
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    scaled: torch.Tensor = loss / num_items_in_batch
    return scaled


class _FusedForward:
    """The forward :func:`patch` installs: a labelled call's loss from the hidden states, the stock forward otherwise.

    A callable object rather than a closure, so that ``copy.deepcopy`` of a
    patched model gives a copy whose forward runs the copy, and so that it
    can carry the stock forward's signature (``Trainer`` reads it).
    """

    def __init__(self, model: Any, family: _Family, return_logits: bool | None) -> None:
        from transformers import modeling_outputs

        self.model = model
        self.family = family
        self.return_logits = return_logits
        self.previous = vars(model).get("forward")  # an instance forward to restore, if there was one
        self.original = model.forward
        self.output_class = getattr(modeling_outputs, family.output)
        self.positional = tuple(
            p.name
            for p in inspect.signature(self.original).parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.original)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self.original  # type: ignore[no-any-return]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self.positional):
            raise TypeError(f"forward() takes {len(self.positional)} positional arguments but {len(args)} were given")
        for name, value in zip(self.positional, args, strict=False):
            if name in kwargs:
                raise TypeError(f"forward() got multiple values for argument {name!r}")
            kwargs[name] = value
        want_logits = kwargs.pop("return_logits", self.return_logits)
        keep = kwargs.get("logits_to_keep", 0)
        labels = kwargs.get("labels")
        if labels is None or not (isinstance(keep, int) and keep == 0):
            return self.original(**kwargs)  # no loss, or only a few positions' logits: nothing to fuse
        model, family = self.model, self.family
        if want_logits is None:
            want_logits = not model.training
        if self.previous is not None:  # a wrapper installed before patch (accelerate's autocast, ...) stays in force
            return self.original(**kwargs) if want_logits else self._wrapped(kwargs)
        del kwargs["labels"]
        kwargs.pop("logits_to_keep", None)
        shift_labels = kwargs.pop("shift_labels", None)
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        ignore_index = kwargs.pop("ignore_index", IGNORE_INDEX)
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(model.config, "return_dict", True)
        outputs = model.base_model(**kwargs, return_dict=True)
        hidden = outputs.last_hidden_state
        logits = _logits(model, family, hidden) if want_logits else None
        head = model.get_output_embeddings()
        loss = _causal_lm_loss(
            model, family, head, hidden, logits, labels, shift_labels, num_items_in_batch, ignore_index
        )
        fields = self.output_class.__dataclass_fields__
        rest = {k: v for k, v in outputs.items() if k != "last_hidden_state" and k in fields}
        result = self.output_class(loss=loss, logits=logits, **rest)
        return result if return_dict else result.to_tuple()

    def _wrapped(self, kwargs: dict[str, Any]) -> Any:
        """A labelled call through the forward that was installed before :func:`patch` (a wrapper of the stock
        forward: accelerate's autocast and float32 outputs, ...), with the loss fused inside it.

        For the call's duration the LM head is a stand-in that keeps the
        hidden states and returns no logits, and the loss function computes
        the fused loss from them with the real head: the wrapper's context
        (autocast) covers the fused loss as it covers the stock one. The
        model's attributes are restored afterwards, even on error.
        """
        model, family = self.model, self.family
        head = model.get_output_embeddings()
        capture = _HiddenStates()

        def loss_function(
            logits: Any,
            labels: torch.Tensor,
            vocab_size: Any = None,
            num_items_in_batch: Any = None,
            ignore_index: int = IGNORE_INDEX,
            shift_labels: torch.Tensor | None = None,
            **_: Any,
        ) -> torch.Tensor:
            assert capture.hidden is not None
            hidden = capture.hidden
            return _causal_lm_loss(
                model, family, head, hidden, None, labels, shift_labels, num_items_in_batch, ignore_index
            )

        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(model.config, "return_dict", True)
        own_loss = vars(model).get("_loss_function", _NONE)
        model.set_output_embeddings(capture)
        model.loss_function = loss_function
        try:
            result = self.previous(**kwargs, return_dict=True)
        finally:
            model.set_output_embeddings(head)
            if own_loss is _NONE:
                del model._loss_function
            else:
                model.loss_function = own_loss
        result = type(result)(**{k: v for k, v in result.items() if k != "logits"})  # no logits, as unwrapped
        return result if return_dict else result.to_tuple()


_NONE = object()


class _HiddenStates(torch.nn.Module):
    """The LM head's stand-in during a wrapped labelled call: keeps its input, returns empty logits."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.hidden = hidden
        return hidden[..., :0]


def patch(model: Any, /, *, return_logits: bool | None = None) -> Any:
    """Compute the model's causal-LM loss with fused linear + cross-entropy; return the model.

    Replaces the forward of ``model`` (this instance only): a call with
    ``labels`` runs the model's backbone, then computes the loss from the
    last hidden states ``h`` and the LM-head weight ``W`` (and bias) as
    ``cross_entropy(softcap(h @ W.T + b), labels)`` over row blocks, so
    the ``N x V`` logits never exist. It does what the stock loss
    (``transformers``' ``ForCausalLMLoss``) does: labels shifted one
    position left (or ``shift_labels`` as given), ``ignore_index=-100``
    (or the ``ignore_index`` passed), the mean over the non-ignored labels,
    or their sum divided by ``num_items_in_batch`` when it is passed (as
    ``Trainer`` does under gradient accumulation), and Gemma 2 and 3's
    final-logit soft-capping ``c * tanh(z / c)``. Calls without labels, and
    calls with ``logits_to_keep``, run the stock forward unchanged, so
    generation is unaffected.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM of a supported family: ``LlamaForCausalLM``,
        ``MistralForCausalLM``, ``Qwen2ForCausalLM``, ``Qwen3ForCausalLM``,
        ``GemmaForCausalLM``, ``Gemma2ForCausalLM``, ``Gemma3ForCausalLM``,
        ``GPT2LMHeadModel``, or a subclass. Patch it before
        ``torch.compile``; patching twice changes nothing.
    return_logits : bool or None, optional
        Whether a labelled call also returns the logits. ``None`` (default):
        only in evaluation mode (``model.eval()``), where ``Trainer``'s
        evaluation loop expects them; in training mode ``outputs.logits`` is
        ``None``. When logits are returned the loss is computed from them
        (by the fused cross-entropy of :func:`crossentropy.torch.cross_entropy`).
        Each call may override it with a ``return_logits=`` keyword.

    Returns
    -------
    transformers.PreTrainedModel
        ``model`` itself, patched.

    Raises
    ------
    InputError
        If ``model`` is not of a supported family (the message names them),
        or its ``loss_function`` is not the stock causal-LM loss.

    Notes
    -----
    The backward pass needs no logits either: the fused forward folds each
    block's gradient into those of the hidden states and of ``W`` at once,
    and the backward pass scales them. Under autocast the hidden states and
    ``W`` take the autocast dtype, as the stock ``lm_head`` call does, and
    the loss is accumulated in float32, as the stock loss (which upcasts the
    logits) does.

    Examples
    --------
    >>> import transformers
    >>> import torch
    >>> from crossentropy.transformers import patch
    >>> config = transformers.GPT2Config(vocab_size=500, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    >>> _ = torch.manual_seed(0)
    >>> model = transformers.GPT2LMHeadModel(config).eval()
    >>> ids = torch.randint(0, 500, (1, 12))
    >>> labels = ids.masked_fill(ids < 100, -100)
    >>> stock = model(input_ids=ids, labels=labels).loss.item()
    >>> print(f"{stock:.5f} {patch(model)(input_ids=ids, labels=labels).loss.item():.5f}")
    6.24628 6.24628
    """
    family = _family(model)
    if is_patched(model):
        return model
    loss_function = getattr(model, "loss_function", None)
    if getattr(loss_function, "__name__", None) != "ForCausalLMLoss":
        raise InputError(
            f"model: its loss_function is {getattr(loss_function, '__name__', loss_function)!r}, not transformers' "
            "ForCausalLMLoss; patch computes that loss only"
        )
    model.forward = _FusedForward(model, family, return_logits)
    return model


def is_patched(model: Any, /) -> bool:
    """Whether :func:`patch` has patched ``model`` (and :func:`unpatch` has not restored it)."""
    return isinstance(vars(model).get("forward"), _FusedForward)


def unpatch(model: Any, /) -> Any:
    """Restore the forward that :func:`patch` replaced; return the model (unchanged if it was not patched).

    Examples
    --------
    >>> import transformers
    >>> from crossentropy.transformers import is_patched, patch, unpatch
    >>> config = transformers.GPT2Config(vocab_size=100, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    >>> model = patch(transformers.GPT2LMHeadModel(config))
    >>> is_patched(model), is_patched(unpatch(model))
    (True, False)
    """
    if not is_patched(model):
        return model
    previous = vars(model)["forward"].previous
    if previous is None:
        del model.forward
    else:
        model.forward = previous
    return model


# --- perplexity ---------------------------------------------------------------------------------------


def _load(model_dir: str | os.PathLike[str], dtype: str, device: str | None) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local directory (never from the network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    path = Path(model_dir)
    if not path.is_dir():
        raise InputError(f"model directory {os.fspath(model_dir)!r} is not a directory")
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise InputError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    bar = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # transformers' own loading bar: the caller reports progress
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype if dtype == "auto" else getattr(torch, dtype), local_files_only=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load a causal language model from {os.fspath(model_dir)!r}: {exc}") from None
    finally:
        if bar:
            logging.enable_progress_bar()
    if device is not None:
        model = model.to(device)
    return model, tokenizer


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


def _encoder(tokenizer: Any) -> _perplexity.Encode:
    """``text -> (ids, offsets)`` without special tokens (needs a fast, Rust-backed tokenizer for the offsets)."""

    def encode(text: str) -> tuple[Sequence[int], Sequence[tuple[int, int]]]:
        try:
            out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        except NotImplementedError:
            raise InputError("the tokenizer gives no character offsets: perplexity needs a fast tokenizer") from None
        return out["input_ids"], out["offset_mapping"]

    return encode


def _scorer(model: Any, family: _Family) -> _perplexity.Score:
    """Each window's summed negative log-likelihood: the backbone, then fused linear + cross-entropy per token."""

    def score(windows: Sequence[Window]) -> list[float]:
        width = max(len(w.inputs) for w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        targets = np.full((len(windows), width), _perplexity.IGNORE, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            n = len(w.inputs)
            ids[row, :n], targets[row, :n], mask[row, :n] = w.inputs, w.targets, 1
        device = model.device
        attention = None if mask.all() else torch.from_numpy(mask).to(device)
        with torch.no_grad():
            outputs = model.base_model(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=attention, use_cache=False, return_dict=True
            )
            hidden = outputs.last_hidden_state
            losses = _linear_loss(
                hidden.reshape(-1, hidden.shape[-1]),
                model.get_output_embeddings(),
                torch.from_numpy(targets).to(device).reshape(-1),
                ignore_index=_perplexity.IGNORE,
                softcap=_softcap(model, family),
                reduction="none",
            )
            sums = losses.reshape(len(windows), width).to(torch.float64).sum(1)
        return [float(x) for x in sums.cpu()]

    return score


def perplexity(
    model: Any,
    path: str | os.PathLike[str],
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
    """Perplexity of a causal LM on a text or JSONL file, streamed with rolling windows.

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
    so the numbers compare with its ``wikitext``-style tasks. Each window's
    loss is the fused linear + cross-entropy of the window's last hidden
    states; the file is never held whole.

    Parameters
    ----------
    model : transformers.PreTrainedModel or path
        A causal LM of a supported family (see :func:`patch`), or a local
        directory holding one and its tokenizer (``save_pretrained``'s
        layout); nothing is downloaded.
    path : str or os.PathLike
        A UTF-8 text file (one document) or a JSONL file (one JSON object
        per line, its ``field`` the document; a per-document breakdown is
        reported).
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
        Read ``path`` as JSONL; default: when its name ends in ``.jsonl``
        or ``.ndjson``.
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
        ``report.total.metrics()`` (and ``report.documents`` for JSONL);
        ``report.as_dict()`` is the command's JSON output.

    Raises
    ------
    InputError
        Unsupported model, unreadable or non-UTF-8 file, bad JSONL line,
        ``stride`` outside ``[1, context]``, ``context`` beyond the model's
        positions, or a tokenizer with no BOS, EOS nor ``prefix_token``.

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
        model, tokenizer = _load(model, dtype, device)
    elif tokenizer is None:
        raise InputError("tokenizer: required when model is a model object (or pass the model's directory)")
    family = _family(model)
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
    if jsonl is None:
        jsonl = str(path).lower().endswith((".jsonl", ".ndjson"))
    was_training = model.training
    model.eval()
    try:
        report = _perplexity.run(
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
        )
    finally:
        model.train(was_training)
    report.settings = {"model": getattr(model.config, "_name_or_path", "") or type(model).__name__, "file": str(path)}
    return report
