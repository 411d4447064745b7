"""The comparison of two distributions: what ``crossentropy compare`` prints and the explorer shows.

A module of its own because two front ends show the same table, in the
same order, from the same functions: H(P), H(Q), the cross-entropies
H(P, Q) and H(Q, P), the divergences KL(P || Q) and KL(Q || P), and (for
discrete distributions) JS(P, Q). :func:`comparison` computes it for
probability vectors, :func:`continuous_comparison` for two frozen
distributions of ``scipy.stats`` (each figure then an
:class:`~crossentropy.continuous.Estimate` with its error and method).

:func:`check_pair` says what is wrong with two vectors in the explorer's
plain words (which event, which distribution, what to do), and
:func:`why_infinite` names the events that make a cross-entropy or a
divergence infinite.

Examples
--------
>>> from crossentropy._comparison import comparison
>>> table = comparison([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], base=2)
>>> print(", ".join(f"{k} = {v:.4f}" for k, v in table.items()))
H(P) = 1.3610, H(Q) = 0.8842, H(P,Q) = 3.2879, H(Q,P) = 2.9058, KL(P||Q) = 1.9270, KL(Q||P) = 2.0216, JS(P,Q) = 0.4202
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._information import cross_entropy, entropy, js_divergence, kl_divergence
from ._validation import InputError, sum_tolerance

if TYPE_CHECKING:
    from .continuous import Estimate

__all__ = ["check_pair", "comparison", "continuous_comparison", "why_infinite"]

ROLES = {"P": "P (the truth)", "Q": "Q (the model)"}


def _event(names: Sequence[str] | None, i: int) -> str:
    """Event ``i`` by its name, else ``event i+1`` (counted from 1, as people do)."""
    return names[i] if names is not None and i < len(names) else f"event {i + 1}"


def check_pair(p: Any, q: Any, names: Sequence[str] | None = None) -> None:
    """InputError, in plain words, unless ``p`` and ``q`` are two distributions over the same events.

    The message names the distribution and the event (``P(green)``, or
    ``P(event 2)`` without names) and says what to do, as the explorer does;
    a sum may be off by the float64 tolerance of the library's measures.

    Examples
    --------
    >>> from crossentropy._comparison import check_pair
    >>> check_pair([0.1, 0.4, 0.6], [0.8, 0.15, 0.05], ["red", "green", "blue"])
    Traceback (most recent call last):
    ...
    crossentropy.InputError: P (the truth) adds up to 1.1, not 1: lower its values by 0.1 in total
    >>> check_pair([0.1, -0.4, 0.5], [0.8, 0.15, 0.05])
    Traceback (most recent call last):
    ...
    crossentropy.InputError: P(event 2) is -0.4, but a probability lies between 0 and 1
    """
    pair = {"P": np.asarray(p, dtype=np.float64).reshape(-1), "Q": np.asarray(q, dtype=np.float64).reshape(-1)}
    if pair["P"].size != pair["Q"].size:
        raise InputError(f"P lists {pair['P'].size} numbers and Q lists {pair['Q'].size}: give one number per "
                         "event in each")  # fmt: skip
    for which, values in pair.items():
        bad = ~((values >= 0) & (values <= 1))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{which}({_event(names, i)}) is {values[i]:g}, but a probability lies between 0 and 1")
    tolerance = sum_tolerance(np, np.float64)
    for which, values in pair.items():
        total = math.fsum(values.tolist())
        off = abs(total - 1)
        if not off <= tolerance:
            how = "lower" if total > 1 else "raise"
            allowed = f" (a sum may be off by {tolerance:.2g})" if off < 1e-3 else ""
            raise InputError(f"{ROLES[which]} adds up to {total:.10g}, not 1: {how} its values by {off:.3g} in "
                             f"total{allowed}")  # fmt: skip


def why_infinite(p: Any, q: Any, names: Sequence[str] | None = None) -> dict[str, str]:
    """For each infinite quantity of :func:`comparison`, the events that make it infinite, in a sentence.

    H(P, Q) and KL(P || Q) are infinite when Q gives probability 0 to an
    event that P says can happen (its surprise ``-log 0`` is infinite);
    H(Q, P) and KL(Q || P) when P does so to an event of Q.

    Examples
    --------
    >>> from crossentropy._comparison import why_infinite
    >>> why_infinite([0.1, 0.4, 0.5], [0.8, 0.2, 0.0], ["red", "green", "blue"])["H(P,Q)"]
    'Q(blue) = 0 but P(blue) = 0.5: the model rules out an event that happens'
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    out: dict[str, str] = {}
    for truth, model, keys, (t_name, m_name), what in (
        (p, q, ("H(P,Q)", "KL(P||Q)"), ("P", "Q"), "the model rules out an event that happens"),
        (q, p, ("H(Q,P)", "KL(Q||P)"), ("Q", "P"), "with the roles swapped, P rules out an event of Q"),
    ):
        causes = np.flatnonzero((truth > 0) & (model == 0))
        if not causes.size:
            continue
        first = _event(names, int(causes[0]))
        sentence = f"{m_name}({first}) = 0 but {t_name}({first}) = {truth[causes[0]]:g}"
        if causes.size > 1:
            more = ", ".join(_event(names, int(i)) for i in causes[1:4]) + (", ..." if causes.size > 4 else "")
            sentence += f" (and {causes.size - 1} more: {more})"
        for key in keys:
            out[key] = f"{sentence}: {what}"
    return out


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
