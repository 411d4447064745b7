"""What the fused loss knows of a causal language model of ``transformers``: its family, and its head's loss.

Shared by the two users of a model's LM head: the patched training forward
(:mod:`crossentropy.transformers`) and the model side of perplexity
(:mod:`crossentropy._perplexity.model`). :func:`family_of` names a model's
family (its output class, whether it soft-caps its logits) or refuses it;
:func:`linear_loss` computes ``cross_entropy(softcap(head(h)), labels)`` from
the hidden states without the ``N x V`` logits, and :func:`head_statistics`
the per-token statistics of the same logits (log-probability, entropy, rank,
top-1 probability) in one pass. Importing this module imports torch (not
``transformers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import _dispatch, _dispatch_dropin
from ._kernels.torch_ops import work_dtype
from ._validation import InputError

__all__ = ["FAMILIES", "SUPPORTED", "Family", "family_of", "head_statistics", "linear_loss", "softcap_of"]


@dataclass(frozen=True)
class Family:
    """What the fused loss needs to know of a model family: its output class, and whether it soft-caps logits."""

    name: str
    output: str
    softcap: bool = False


FAMILIES = {
    "LlamaForCausalLM": Family("Llama", "CausalLMOutputWithPast"),
    "MistralForCausalLM": Family("Mistral", "CausalLMOutputWithPast"),
    "Qwen2ForCausalLM": Family("Qwen2", "CausalLMOutputWithPast"),
    "Qwen3ForCausalLM": Family("Qwen3", "CausalLMOutputWithPast"),
    "GemmaForCausalLM": Family("Gemma", "CausalLMOutputWithPast"),
    "Gemma2ForCausalLM": Family("Gemma 2", "CausalLMOutputWithPast", softcap=True),
    "Gemma3ForCausalLM": Family("Gemma 3", "CausalLMOutputWithPast", softcap=True),
    "GPT2LMHeadModel": Family("GPT-2", "CausalLMOutputWithCrossAttentions"),
}
"""The supported classes (and their subclasses), by the name of the ``transformers`` class."""

SUPPORTED = tuple(FAMILIES)
"""The names of the supported ``transformers`` classes."""


def family_of(model: object) -> Family:
    """The model's family, or an :class:`InputError` naming the supported ones."""
    for cls in type(model).__mro__:
        if cls.__name__ in FAMILIES and cls.__module__.startswith("transformers."):
            return FAMILIES[cls.__name__]
    hint = " (patch the model before torch.compile)" if hasattr(model, "_orig_mod") else ""
    families = ", ".join(f"{f.name} ({name})" for name, f in FAMILIES.items())
    raise InputError(
        f"model: {type(model).__name__} is not a supported causal language model{hint}; supported: {families}"
    )


def softcap_of(model: Any, family: Family) -> float:
    """The final-logit soft-capping of the model's config (0 for none)."""
    return float(getattr(model.config, "final_logit_softcapping", None) or 0.0) if family.softcap else 0.0


def _autocast(hidden: torch.Tensor, head: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The hidden states and the head's weight and bias, in the autocast dtype under autocast (as ``head(h)``)."""
    weight, bias = head.weight, getattr(head, "bias", None)
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    return hidden, weight, bias


def linear_loss(
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
    hidden, weight, bias = _autocast(hidden, head)
    with torch.autocast(hidden.device.type, enabled=False):
        loss: torch.Tensor = _dispatch_dropin.torch_linear_cross_entropy(
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


def _plain_linear(head: Any) -> bool:
    """Whether ``head(h)`` is ``h @ head.weight.T + head.bias``: a ``torch.nn.Linear`` whose forward is its own.

    A wrapper that overrides the forward (a LoRA or quantised layer) computes
    something else from the same ``weight``, which only its forward knows.
    """
    return (
        isinstance(head, torch.nn.Linear)
        and type(head).forward is torch.nn.Linear.forward
        and head.weight.is_floating_point()
    )


def head_statistics(
    hidden: torch.Tensor, head: Any, labels: torch.Tensor, *, ignore_index: int, softcap: float
) -> tuple[torch.Tensor, ...]:
    """The token statistics of ``softcap(head(hidden))`` for ``hidden`` ``(N, D)``: ``(logprob, entropy, rank,
    top1_prob, lse)`` per row, as :func:`crossentropy.torch.token_statistics` defines them; no gradient.

    For a plain linear head, from the hidden states block by block without
    the ``N x V`` logits (:func:`crossentropy.torch.linear_token_statistics`),
    the hidden states cast to the weight's dtype as :func:`linear_loss` casts
    them, so that ``-logprob`` is its loss to a float32 bit or two of the
    log-sum-exp (the same logits; the two kernels sum the exponentials in
    their own order). Any other head (one whose forward is not ``torch.nn.Linear``'s)
    runs its own forward on all rows and the statistics come from its
    logits. Under autocast the inputs take the autocast dtype, as in
    :func:`linear_loss`; the cap is applied in float32 for bfloat16 and
    float16 logits.
    """
    device = hidden.device.type
    with torch.no_grad():
        if not _plain_linear(head):
            logits = head(hidden)
            with torch.autocast(device, enabled=False):
                if softcap:
                    logits = softcap * torch.tanh(logits.to(work_dtype(logits.dtype)) / softcap)
                stats: tuple[torch.Tensor, ...] = _dispatch.torch_token_statistics(
                    logits, labels, ignore_index=ignore_index, temperature=1.0
                )
            return stats
        hidden, weight, bias = _autocast(hidden, head)
        hidden, bias = hidden.to(weight.dtype), None if bias is None else bias.to(weight.dtype)
        with torch.autocast(device, enabled=False):
            stats = _dispatch.torch_linear_token_statistics(
                hidden,
                weight,
                labels,
                bias=bias,
                ignore_index=ignore_index,
                temperature=1.0,
                softcap=softcap,
                chunk=None,
            )
    return stats
