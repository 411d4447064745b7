"""Fused linear + cross-entropy inside Hugging Face causal language models, and their perplexity on a text.

This is a top-level module because it is an integration with a third-party
library, like :mod:`crossentropy.torch`: it is imported only when asked for
(``import crossentropy`` imports neither it, torch nor ``transformers``), and
it imports ``transformers`` only inside the functions that need it. It holds
the patching; what a model family is and the head's fused loss live in
:mod:`crossentropy._causal_lm`, and perplexity next to its engine in
:mod:`crossentropy._perplexity` (its model side in
:mod:`crossentropy._perplexity.model`), re-exported here.

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
  ``crossentropy perplexity MODEL_DIR TEXT...`` is its command line.

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
from collections.abc import Callable
from typing import Any

import torch

from ._causal_lm import SUPPORTED
from ._causal_lm import Family as _Family
from ._causal_lm import family_of as _family
from ._causal_lm import linear_loss as _linear_loss
from ._causal_lm import softcap_of as _softcap
from ._perplexity.model import perplexity
from ._perplexity.records import PerplexityReport
from ._validation import InputError
from .torch import cross_entropy

__all__ = ["SUPPORTED", "PerplexityReport", "is_patched", "patch", "perplexity", "unpatch"]

IGNORE_INDEX = -100
"""The label ``transformers`` ignores in a causal-LM loss (the default of its ``ForCausalLMLoss``)."""


def _logits(model: Any, family: _Family, hidden: torch.Tensor) -> torch.Tensor:
    """The stock head: ``lm_head(hidden)``, soft-capped where the family does it."""
    logits = model.get_output_embeddings()(hidden)
    cap = _softcap(model, family)
    return cap * torch.tanh(logits / cap) if cap else logits


def _causal_lm_loss(
    model: Any,
    family: _Family,
    hidden: torch.Tensor,
    logits: torch.Tensor | None,
    labels: torch.Tensor,
    shift_labels: torch.Tensor | None,
    num_items_in_batch: Any,
    ignore_index: int,
) -> torch.Tensor:
    """``transformers``' ``ForCausalLMLoss``: shifted labels, a mean, or a sum over ``num_items_in_batch``."""
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
            model.get_output_embeddings(),
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
        if want_logits is None:
            want_logits = not model.training
        logits = _logits(model, family, hidden) if want_logits else None
        loss = _causal_lm_loss(model, family, hidden, logits, labels, shift_labels, num_items_in_batch, ignore_index)
        fields = self.output_class.__dataclass_fields__
        rest = {k: v for k, v in outputs.items() if k != "last_hidden_state" and k in fields}
        result = self.output_class(loss=loss, logits=logits, **rest)
        return result if return_dict else result.to_tuple()


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
