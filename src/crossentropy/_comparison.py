"""The comparison of two distributions: what ``crossentropy compare`` prints and the explorer shows.

A module of its own because two front ends show the same table, in the
same order, from the same functions: H(P), H(Q), the cross-entropies
H(P, Q) and H(Q, P), the divergences KL(P || Q) and KL(Q || P), and (for
discrete distributions) JS(P, Q). :func:`comparison` computes it for
probability vectors, :func:`continuous_comparison` for two frozen
distributions of ``scipy.stats`` (each figure then an
:class:`~crossentropy.continuous.Estimate` with its error and method).

Examples
--------
>>> from crossentropy._comparison import comparison
>>> table = comparison([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], base=2)
>>> print(", ".join(f"{k} = {v:.4f}" for k, v in table.items()))
H(P) = 1.3610, H(Q) = 0.8842, H(P,Q) = 3.2879, H(Q,P) = 2.9058, KL(P||Q) = 1.9270, KL(Q||P) = 2.0216, JS(P,Q) = 0.4202
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._information import cross_entropy, entropy, js_divergence, kl_divergence

if TYPE_CHECKING:
    from .continuous import Estimate

__all__ = ["comparison", "continuous_comparison"]


def comparison(p: Any, q: Any, /, *, base: float | None = None) -> dict[str, float]:
    """H(P), H(Q), H(P,Q), H(Q,P), KL(P||Q), KL(Q||P) and JS(P,Q) of two probability vectors, as floats.

    Raises
    ------
    InputError
        As the measures do: a vector that is not a distribution, vectors of
        different lengths, a bad ``base``.
    """
    values = {
        "H(P)": entropy(p, base=base),
        "H(Q)": entropy(q, base=base),
        "H(P,Q)": cross_entropy(p, q, base=base),
        "H(Q,P)": cross_entropy(q, p, base=base),
        "KL(P||Q)": kl_divergence(p, q, base=base),
        "KL(Q||P)": kl_divergence(q, p, base=base),
        "JS(P,Q)": js_divergence(p, q, base=base),
    }
    return {k: float(v) for k, v in values.items()}


def continuous_comparison(p: Any, q: Any, /, *, base: float | None = None) -> dict[str, Estimate]:
    """The same table for two frozen ``scipy.stats`` distributions, without JS (SciPy is imported here)."""
    from . import continuous as cc

    return {
        "H(P)": cc.entropy(p, base=base),
        "H(Q)": cc.entropy(q, base=base),
        "H(P,Q)": cc.cross_entropy(p, q, base=base),
        "H(Q,P)": cc.cross_entropy(q, p, base=base),
        "KL(P||Q)": cc.kl_divergence(p, q, base=base),
        "KL(Q||P)": cc.kl_divergence(q, p, base=base),
    }
