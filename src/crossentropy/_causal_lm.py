"""What the fused loss knows of a causal language model of ``transformers``: its family, and its head's loss.

Shared by the two users of a model's LM head: the patched training forward
(:mod:`crossentropy.transformers`) and the model side of perplexity
(:mod:`crossentropy._perplexity.model`). :func:`family_of` names a model's
family (its output class, whether it soft-caps its logits) or refuses it;
:func:`linear_loss` computes ``cross_entropy(softcap(head(h)), labels)`` from
the hidden states without the ``N x V`` logits. Importing this module
imports torch (not ``transformers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import _dispatch_dropin
from ._validation import InputError

__all__ = ["FAMILIES", "SUPPORTED", "Family", "family_of", "linear_loss", "softcap_of"]


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
    weight, bias = head.weight, getattr(head, "bias", None)
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    with torch.autocast(device, enabled=False):
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
