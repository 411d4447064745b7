"""Matplotlib figures for distributions, losses and calibration.

Every function draws on ``ax`` (a new figure's axes when omitted) and returns
the Axes, so figures compose. matplotlib is the ``plot`` extra and is
imported when a function here is first called, not with :mod:`crossentropy`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from crossentropy import plot
>>> ax = plot.distributions([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], names=["red", "green", "blue"])
>>> [t.get_text() for t in ax.get_xticklabels()]
['red', 'green', 'blue']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._information import cross_entropy, entropy
from ._validation import InputError, to_numpy

__all__ = [
    "cross_entropy_curve",
    "densities",
    "distributions",
    "entropy_vs_classes",
    "gradient_magnitude",
    "learning_curves",
    "loss_histogram",
    "per_class_loss",
    "reliability_diagram",
]

Axes = Any


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'crossentropy[plot]'") from None
    _, new = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    return new


def distributions(
    p: Any,
    q: Any | None = None,
    *,
    names: Sequence[str] | None = None,
    labels: Sequence[str] = ("P", "Q"),
    ax: Axes | None = None,
) -> Axes:
    """Bar chart of one or two discrete distributions side by side.

    Parameters
    ----------
    p, q : array_like
        Probabilities over the same events (``q`` optional).
    names : sequence of str, optional
        Event names (default ``x0, x1, ...``).
    labels : pair of str
        Legend labels of ``p`` and ``q``.
    ax : matplotlib Axes, optional
        Where to draw.
    """
    ax = _axes(ax)
    series = [np.asarray(to_numpy(p), dtype=float).reshape(-1)]
    if q is not None:
        series.append(np.asarray(to_numpy(q), dtype=float).reshape(-1))
    k = series[0].size
    if any(s.size != k for s in series):
        raise InputError("p and q must have the same number of events")
    names = list(names) if names is not None else [f"x{i}" for i in range(k)]
    if len(names) != k:
        raise InputError(f"names has {len(names)} entries for {k} events")
    x = np.arange(k)
    width = 0.8 / len(series)
    for i, (s, label) in enumerate(zip(series, labels, strict=False)):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, s, width, label=label)
    ax.set_xticks(x, names)
    ax.set_ylabel("probability")
    ax.set_ylim(0, max(1.0, float(max(s.max() for s in series))) * 1.05)
    ax.legend()
    return ax


def densities(
    p: Any, q: Any | None = None, *, labels: Sequence[str] = ("P", "Q"), points: int = 400, ax: Axes | None = None
) -> Axes:
    """Probability density functions of one or two frozen SciPy distributions."""
    ax = _axes(ax)
    dists = [d for d in (p, q) if d is not None]
    lo = min(float(d.ppf(0.001)) for d in dists)
    hi = max(float(d.ppf(0.999)) for d in dists)
    x = np.linspace(lo, hi, points)
    for d, label in zip(dists, labels, strict=False):
        ax.plot(x, d.pdf(x), label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def cross_entropy_curve(
    probabilities: Sequence[float] | None = None,
    *,
    base: float | None = None,
    include_certain_miss: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Cross-entropy of a positive target against the predicted probability.

    The seed text's intuition plot: target ``[0, 1]`` against predictions
    ``[1 - p, p]`` for ``p = 1.0, 0.9, ..., 0.0``. At ``p = 0`` the loss is
    infinite; it is drawn as an arrow off the top of the plot, or left out
    with ``include_certain_miss=False``.
    """
    ax = _axes(ax)
    ps = np.round(np.arange(10, -1, -1) / 10, 1) if probabilities is None else np.asarray(probabilities, float)
    if not include_certain_miss:
        ps = ps[ps > 0]
    h = np.asarray(cross_entropy([0.0, 1.0], np.stack([1 - ps, ps], -1), base=base))
    finite = np.isfinite(h)
    ax.plot(ps[finite], h[finite], marker="o")
    if (~finite).any():
        top = float(h[finite].max()) * 1.3 if finite.any() else 1.0
        for x in ps[~finite]:
            ax.annotate("∞", xy=(x, top), xytext=(x, top * 0.8), ha="center", arrowprops={"arrowstyle": "->"})
        ax.set_ylim(0, top * 1.1)
    ax.set_xlim(float(ps.max()) + 0.05, float(ps.min()) - 0.05)
    ax.set_xlabel("predicted probability of the true class")
    ax.set_ylabel("cross-entropy" + (" (bits)" if base == 2 else " (nats)"))
    return ax


def entropy_vs_classes(max_classes: int = 32, *, base: float | None = 2, ax: Axes | None = None) -> Axes:
    """The largest entropy of K classes (the uniform distribution), ``log K``."""
    ax = _axes(ax)
    ks = np.arange(1, max_classes + 1)
    h = [float(entropy(np.full(k, 1 / k), base=base)) for k in ks]
    ax.plot(ks, h, marker=".")
    powers = ks[(ks & (ks - 1)) == 0]
    ax.plot(powers, [h[k - 1] for k in powers], "o", label="2^k classes: k bits" if base == 2 else "2^k classes")
    ax.set_xlabel("number of classes K")
    ax.set_ylabel("maximum entropy" + (" (bits)" if base == 2 else " (nats)"))
    ax.legend()
    return ax


def reliability_diagram(calibration: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Observed frequency against predicted confidence per bin (``crossentropy score`` output)."""
    ax = _axes(ax)
    bins = calibration["bins"]
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    observed = [b["observed"] if b["observed"] is not None else math.nan for b in bins]
    widths = [b["upper"] - b["lower"] for b in bins]
    ax.bar(centers, observed, widths, edgecolor="black", alpha=0.7, label="observed")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"confidence ({calibration.get('kind', 'top label')})")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"ECE = {calibration['ece']:.4f}")
    ax.legend()
    return ax


def per_class_loss(per_class: Sequence[Mapping[str, Any]], *, ax: Axes | None = None) -> Axes:
    """Mean loss of each true class (``crossentropy score --per-class`` output)."""
    ax = _axes(ax)
    classes = [str(c["class"]) for c in per_class]
    values = [c["mean_loss"] if c["mean_loss"] is not None else 0.0 for c in per_class]
    ax.bar(classes, values)
    ax.set_xlabel("true class")
    ax.set_ylabel("mean loss")
    return ax


def loss_histogram(histogram: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Histogram of per-row losses (``crossentropy score`` output)."""
    ax = _axes(ax)
    counts = np.asarray(histogram["counts"])
    edges = np.linspace(0, histogram["upper"], counts.size + 1)
    ax.stairs(counts, edges, fill=True)
    ax.set_xlabel(f"per-row loss (last bin: >= {edges[-2]:g})")
    ax.set_ylabel("rows")
    return ax


def learning_curves(
    history: Mapping[str, Mapping[str, Sequence[float]]], *, metric: str = "test_accuracy", ax: Axes | None = None
) -> Axes:
    """One line per loss of ``history[loss][metric]`` against the epoch (0 = before training)."""
    ax = _axes(ax)
    for name, series in history.items():
        values = series[metric]
        ax.plot(np.arange(len(values)), values, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()
    return ax


def gradient_magnitude(*, ax: Axes | None = None, points: int = 200) -> Axes:
    """|dL/dz| of cross-entropy and of squared error against the probability of the true class.

    For a sigmoid output ``p = sigmoid(z)`` and target 1: cross-entropy's
    gradient is ``1 - p``, squared error's ``2 (1 - p) p (1 - p)``, which
    vanishes as ``p -> 0``: a confidently wrong model barely learns.
    """
    ax = _axes(ax)
    p = np.linspace(1e-4, 1 - 1e-4, points)
    ax.plot(p, 1 - p, label="cross-entropy: 1 - p")
    ax.plot(p, 2 * (1 - p) ** 2 * p, label="squared error: 2 p (1 - p)^2")
    ax.set_xlabel("predicted probability of the true class")
    ax.set_ylabel("|dL/dz| (sigmoid logit)")
    ax.legend()
    return ax
