"""Matplotlib figures for distributions, losses and calibration.

Every function draws on ``ax`` (a new figure's axes when omitted) and returns
the Axes, so figures compose. Each figure has a title, axis labels with their
units, and its maths in matplotlib's mathtext. matplotlib is the ``plot``
extra and is imported when a function here is first called, not with
:mod:`crossentropy`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from crossentropy import plot
>>> ax = plot.distributions([0.10, 0.40, 0.50], [0.80, 0.15, 0.05], names=["red", "green", "blue"])
>>> [t.get_text() for t in ax.get_xticklabels()]
['red', 'green', 'blue']
>>> ax.get_title()
'P (the truth) and Q (the model)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._formatting import unit_name
from ._information import cross_entropy, entropy
from ._validation import InputError, to_numpy

__all__ = [
    "COLOURS",
    "cross_entropy_curve",
    "densities",
    "distributions",
    "entropy_vs_classes",
    "gradient_magnitude",
    "identity_bars",
    "learning_curves",
    "loss_histogram",
    "per_class_loss",
    "reliability_diagram",
]

Axes = Any

# The seed text's eleven predictions, p = 1.0, 0.9, ..., 0.0, marked on the cross-entropy curve.
SEED_PROBABILITIES = tuple(round(1 - i / 10, 1) for i in range(11))

COLOURS = {"p": "#1d4ed8", "q": "#b45309", "entropy": "#475569", "kl": "#be123c"}
"""The explorer's colours: P (the truth), Q (the model), an entropy, a KL divergence."""


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'crossentropy[plot]'") from None
    _, new = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    return new


def _log_symbol(base: float | None) -> str:
    if base is None:
        return r"\ln"
    return r"\log_2" if base == 2 else rf"\log_{{{base:g}}}"


def distributions(
    p: Any,
    q: Any | None = None,
    *,
    names: Sequence[str] | None = None,
    labels: Sequence[str] = ("P (the truth)", "Q (the model)"),
    title: str | None = None,
    colors: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Bar chart of one or two discrete distributions side by side, each bar labelled with its value.

    Parameters
    ----------
    p, q : array_like
        Probabilities over the same events (``q`` optional).
    names : sequence of str, optional
        Event names (default ``x0, x1, ...``).
    labels : pair of str
        Legend labels of ``p`` and ``q``.
    title : str, optional
        The title (default: the legend labels joined by "and").
    colors : pair of str, optional
        Colours of ``p`` and ``q`` (default: matplotlib's first two; the
        explorer's are ``COLOURS["p"]`` and ``COLOURS["q"]``).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
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
        color = None if colors is None else colors[i]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, s, width, label=label, color=color)
        if k <= 12:
            ax.bar_label(bars, labels=[f"{v:.3g}" for v in s], padding=2, fontsize=8)
    ax.set_xticks(x, names)
    ax.set_xlabel("event")
    ax.set_ylabel("probability")
    ax.set_ylim(0, max(1.0, float(max(s.max() for s in series))) * 1.1)
    ax.set_title(title if title is not None else " and ".join(labels[: len(series)]))
    ax.legend()
    return ax


def _amount(value: float, unit: str) -> str:
    """A quantity as the explorer writes it: 3 decimals (1 from 100), ``∞`` for infinity."""
    if math.isinf(value):
        return f"∞ {unit}"
    return f"{value:.{1 if abs(value) >= 100 else 3}f} {unit}"


def identity_bars(values: Mapping[str, float], *, unit: str = "nats", ax: Axes | None = None) -> Axes:
    """Cross-entropy = entropy + KL divergence, as two stacked bars: the explorer's central picture.

    The upper bar is H(P, Q) = H(P) + KL(P || Q), the lower one swaps the
    roles, H(Q, P) = H(Q) + KL(Q || P); each is labelled with its parts and
    their units. An infinite divergence runs to the edge and ends in an
    arrow marked ∞.

    Parameters
    ----------
    values : mapping
        ``H(P)``, ``H(Q)``, ``H(P,Q)``, ``H(Q,P)``, ``KL(P||Q)`` and
        ``KL(Q||P)`` (as :func:`crossentropy._comparison.comparison` and
        ``crossentropy compare --format json`` give them).
    unit : str
        Their unit, for the labels and the axis.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crossentropy import plot
    >>> from crossentropy._comparison import comparison
    >>> ax = plot.identity_bars(comparison([0.1, 0.4, 0.5], [0.8, 0.15, 0.05], base=2), unit="bits")
    >>> [t.get_text() for t in ax.texts][0]
    'H(P) 1.361 bits + KL(P ‖ Q) 1.927 bits = H(P, Q) 3.288 bits'
    """
    from matplotlib.patches import Patch

    ax = _axes(ax)
    rows = [
        ("H(P, Q)", "H(P)", "KL(P ‖ Q)", float(values["H(P)"]), float(values["KL(P||Q)"]), float(values["H(P,Q)"])),
        ("H(Q, P)", "H(Q)", "KL(Q ‖ P)", float(values["H(Q)"]), float(values["KL(Q||P)"]), float(values["H(Q,P)"])),
    ]
    infinite = any(math.isinf(kl) for *_, kl, _ in rows)
    top = max([1e-9] + [v for *_, h, _, total in rows for v in (h, total) if math.isfinite(v)])
    right = top * (1.35 if infinite else 1.1)
    height = 0.42
    for y, (name, h_name, kl_name, h, kl, total) in zip((1.0, 0.0), rows, strict=True):
        ax.barh(y, h, height=height, color=COLOURS["entropy"])
        if math.isinf(kl):
            end = right * 0.96
            ax.barh(y, end - h, left=h, height=height, color=COLOURS["kl"])
            ax.annotate("", xy=(right, y), xytext=(end, y), arrowprops={"arrowstyle": "-|>", "color": COLOURS["kl"]})
            ax.text(end - right * 0.01, y, "∞", ha="right", va="center", color="white", fontweight="bold",
                    fontsize="large")  # fmt: skip
        else:
            ax.barh(y, kl, left=h, height=height, color=COLOURS["kl"])
        ax.text(0, y + height / 2 + 0.04, f"{h_name} {_amount(h, unit)} + {kl_name} {_amount(kl, unit)} = "
                f"{name} {_amount(total, unit)}", va="bottom", ha="left")  # fmt: skip
    ax.set_yticks([1.0, 0.0], [rows[0][0], rows[1][0]])
    ax.set_ylim(-0.45, 1.75)
    ax.set_xlim(0, right)
    ax.set_xlabel(unit)
    ax.set_ylabel("cross-entropy")
    ax.set_title("Cross-entropy = entropy + KL divergence")
    ax.legend(
        handles=[
            Patch(
                color=COLOURS["entropy"],
                label="entropy of the distribution taken as the truth:\nH(P) upper, H(Q) lower",
            ),
            Patch(
                color=COLOURS["kl"],
                label="KL divergence, the extra cost of the wrong model:\nKL(P ‖ Q) upper, KL(Q ‖ P) lower",
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncols=1,
        frameon=False,
        fontsize="small",
    )
    return ax


def densities(
    p: Any,
    q: Any | None = None,
    *,
    labels: Sequence[str] = ("P", "Q"),
    points: int = 400,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Probability density functions of one or two frozen SciPy distributions.

    Parameters
    ----------
    p, q : frozen scipy.stats distributions
        ``q`` optional.
    labels : pair of str
        Legend labels.
    points : int
        Number of points the densities are evaluated at.
    title : str, optional
        The title (default: "Densities of" the labels).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    dists = [d for d in (p, q) if d is not None]
    lo = min(float(d.ppf(0.001)) for d in dists)
    hi = max(float(d.ppf(0.999)) for d in dists)
    x = np.linspace(lo, hi, points)
    for d, label in zip(dists, labels, strict=False):
        ax.plot(x, d.pdf(x), label=label)
    ax.set_xlabel("$x$")
    ax.set_ylabel("probability density $p(x)$")
    ax.set_title(title if title is not None else "Densities of " + " and ".join(labels[: len(dists)]))
    ax.legend()
    return ax


def cross_entropy_curve(
    probabilities: Sequence[float] | None = SEED_PROBABILITIES,
    *,
    base: float | None = None,
    include_certain_miss: bool = True,
    points: int = 500,
    ax: Axes | None = None,
) -> Axes:
    """Cross-entropy of the true class against the probability the model gives it, ``-log q``.

    The curve is computed by :func:`crossentropy.cross_entropy` at ``points``
    values of ``q`` spaced finely near 0, where it is steep; the x-axis runs
    from 0 to 1. The seed text's predictions ``q = 1.0, 0.9, ..., 0.0`` are
    marked (``probabilities``; ``None`` marks none). At ``q = 0`` the loss is
    infinite: an arrow off the top marks it, or with
    ``include_certain_miss=False`` the point is left out.

    Parameters
    ----------
    probabilities : sequence of float or None
        Predictions to mark on the curve.
    base : float, optional
        Logarithm base (2 for bits; default nats).
    include_certain_miss : bool
        Mark ``q = 0`` (infinite loss) with an arrow.
    points : int
        Number of points of the curve.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    q = np.unique(np.concatenate([np.geomspace(1e-3, 0.05, points // 5), np.linspace(0.05, 1.0, points)]))
    h = np.asarray(cross_entropy([0.0, 1.0], np.stack([1 - q, q], -1), base=base))
    top = float(np.asarray(cross_entropy([0.0, 1.0], [0.99, 0.01], base=base))) * 1.05
    ax.plot(q, h, label=rf"$-{_log_symbol(base)}\,q$")
    marks = np.asarray([] if probabilities is None else probabilities, dtype=float).reshape(-1)
    marks = marks[marks > 0]
    if marks.size:
        values = np.asarray(cross_entropy([0.0, 1.0], np.stack([1 - marks, marks], -1), base=base))
        ax.plot(marks, values, "o", color="C1", label=_predictions_label(marks))
    if include_certain_miss:
        ax.annotate(
            r"$q = 0$: $\infty$",
            xy=(0.0, top),
            xytext=(0.08, top * 0.85),
            arrowprops={"arrowstyle": "->"},
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top)
    unit = unit_name(base)
    ax.set_xlabel("$q$, the predicted probability of the true class")
    ax.set_ylabel(f"cross-entropy ({unit})")
    ax.set_title(rf"The loss of one prediction: $-{_log_symbol(base)}\,q$")
    ax.legend()
    return ax


def _predictions_label(marks: Any) -> str:
    """``predictions q = 0.1, 0.2, …, 1``: the marked values, in words a reader needs no key for."""
    shown = [f"{v:g}" for v in sorted(set(np.asarray(marks, dtype=float).tolist()))]
    listed = ", ".join(shown) if len(shown) <= 4 else f"{shown[0]}, {shown[1]}, …, {shown[-1]}"
    return f"predictions q = {listed}"


def entropy_vs_classes(max_classes: int = 32, *, base: float | None = 2, ax: Axes | None = None) -> Axes:
    """The largest entropy of K classes (the uniform distribution), ``log K``, against K.

    Parameters
    ----------
    max_classes : int
        The largest K drawn.
    base : float, optional
        Logarithm base (default 2: bits).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    ks = np.arange(1, max_classes + 1)
    h = [float(entropy(np.full(k, 1 / k), base=base)) for k in ks]
    ax.plot(ks, h, ".", color="C0", label="uniform over $K$ classes")
    powers = ks[(ks & (ks - 1)) == 0]
    ax.plot(
        powers,
        [h[k - 1] for k in powers],
        "o",
        color="C1",
        label="$K = 2^k$ classes: $k$ bits" if base == 2 else "$K = 2^k$ classes",
    )
    ax.set_xlabel("number of classes $K$")
    ax.set_ylabel(f"largest entropy ({unit_name(base)})")
    ax.set_title(f"The largest entropy of $K$ classes is ${_log_symbol(base)} K$")
    ax.legend()
    return ax


def reliability_diagram(calibration: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Observed frequency against predicted confidence per bin, with the rows in each bin.

    Parameters
    ----------
    calibration : mapping
        The ``calibration`` entry of a ``crossentropy score`` result: ``kind``,
        ``ece`` and ``bins`` with ``lower``, ``upper``, ``count``,
        ``confidence`` and ``observed``.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    bins = calibration["bins"]
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    observed = [b["observed"] if b["observed"] is not None else 0.0 for b in bins]
    widths = [b["upper"] - b["lower"] for b in bins]
    counts = [int(b.get("count", 0)) for b in bins]
    ax.bar(centers, observed, widths, edgecolor="black", linewidth=0.6, alpha=0.6, label="observed frequency")
    confident = [(c, b["confidence"]) for c, b in zip(centers, bins, strict=True) if b["confidence"] is not None]
    if confident:
        ax.plot(*zip(*confident, strict=True), "D", color="C1", markersize=5, label="mean confidence of the bin")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    crowded = len(bins) > 10 or (len(bins) > 6 and max(counts, default=0) >= 1000)  # "1,865" is wider than a bar
    for center, n in zip(centers, counts, strict=True):
        if n:
            ax.text(center, 0.015, f"{n:,}", ha="center", va="bottom", fontsize="small",
                    rotation=90 if crowded else 0, color="black")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"predicted confidence ({calibration.get('kind', 'top label')})")
    ax.set_ylabel("observed frequency")
    ece = calibration["ece"]
    ece_text = "nan" if ece is None or (isinstance(ece, float) and math.isnan(ece)) else f"{ece:.4f}"
    ax.set_title(f"Reliability: ECE = {ece_text}")
    # under the axes, where it covers no bar; the rows of each bin are the numbers at the foot of its bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False, fontsize="small",
              title="numbers at the foot of the bars: rows per bin", title_fontsize="small")  # fmt: skip
    return ax


def per_class_loss(per_class: Sequence[Mapping[str, Any]], *, unit: str = "nats", ax: Axes | None = None) -> Axes:
    """Mean loss of each true class (``crossentropy score`` output), each bar labelled with its value.

    Parameters
    ----------
    per_class : sequence of mappings
        The ``per_class`` entries of a score result (``class``, ``mean_loss``).
    unit : str
        The loss's unit, for the axis label.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    classes = [str(c["class"]) for c in per_class]
    values = [c["mean_loss"] for c in per_class]
    heights = [v if isinstance(v, (int, float)) and math.isfinite(v) else 0.0 for v in values]
    bars = ax.bar(classes, heights)
    if len(classes) <= 12:
        ax.bar_label(bars, labels=[_short(v) for v in values], padding=2, fontsize="small")
    ax.set_xlabel("true class")
    ax.set_ylabel(f"mean loss ({unit})")
    ax.set_title("Mean loss of the rows of each class")
    ax.margins(y=0.15)
    return ax


def _short(value: Any) -> str:
    if value is None:
        return "no rows"
    if isinstance(value, str):
        return value
    v = float(value)
    return "∞" if math.isinf(v) else f"{v:.3g}"


def loss_histogram(
    histogram: Mapping[str, Any], *, unit: str = "nats", log: bool = False, ax: Axes | None = None
) -> Axes:
    """Histogram of per-row losses (``crossentropy score`` output).

    Parameters
    ----------
    histogram : mapping
        ``edges`` and ``counts`` of the finite losses, ``infinite`` (rows
        whose loss is infinite) and ``max_finite``. An older form,
        ``upper`` and ``counts`` (equal bins from 0), is read too.
    unit : str
        The loss's unit, for the axis label.
    log : bool
        Counts on a log scale, so that a bin of a few rows (the confidently
        wrong ones, far to the right) shows next to one of thousands.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax = _axes(ax)
    counts = np.asarray(histogram["counts"], dtype=float)
    if "edges" in histogram:
        edges = np.asarray(histogram["edges"], dtype=float)
    else:
        edges = np.linspace(0, histogram["upper"], counts.size + 1)
    if edges.size != counts.size + 1:
        raise InputError(f"the histogram has {counts.size} counts but {edges.size} edges")
    if log:
        # a bar of one row must show: the bars start at half a row, empty bins draw nothing
        ax.stairs(np.where(counts > 0, counts, np.nan), edges, fill=True, alpha=0.8, baseline=0.5)
        ax.set_yscale("log")
        ax.set_ylim(0.5, max(2.0, float(np.nanmax(counts, initial=1.0))) * 2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # 1, 10, 100: no superscripts
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.stairs(counts, edges, fill=True, alpha=0.8)
    ax.set_xlim(float(edges[0]), float(edges[-1]))
    ax.set_xlabel(f"per-row loss ({unit})")
    ax.set_ylabel("rows (log scale)" if log else "rows")
    infinite = int(histogram.get("infinite", 0) or 0)
    if infinite:
        ax.text(
            0.98,
            0.95,
            f"+ {infinite:,} rows with infinite loss\n(not drawn)",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="small",
        )
    ax.set_title("How the loss is spread over the rows")
    return ax


_METRICS = {
    "test_accuracy": ("test accuracy", "fraction of test rows correct"),
    "test_cross_entropy": ("test cross-entropy", "test cross-entropy (nats)"),
    "train_loss": ("training loss", "training loss (its own unit)"),
    "gradient_norm": ("gradient norm", "norm of the loss gradient"),
}


def learning_curves(
    history: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    metric: str = "test_accuracy",
    title: str | None = None,
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """One line per loss of ``history[loss][metric]`` against the epoch (0 = before training).

    Parameters
    ----------
    history : mapping
        For each run's name, its record (:meth:`crossentropy.learn.History.as_dict`).
    metric : str
        ``"test_accuracy"``, ``"test_cross_entropy"``, ``"train_loss"`` or ``"gradient_norm"``.
    title : str, optional
        The title (default: the metric's name).
    log : bool
        A logarithmic y-axis.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    name, label = _METRICS.get(metric, (metric.replace("_", " "), metric.replace("_", " ")))
    for run, series in history.items():
        values = series[metric]
        ax.plot(np.arange(len(values)), values, label=run)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel(label)
    ax.set_title(title if title is not None else name.capitalize())
    ax.legend()
    return ax


def gradient_magnitude(*, ax: Axes | None = None, points: int = 400) -> Axes:
    """Theory: |dL/dz| of cross-entropy and of squared error against the probability of the true class.

    For a sigmoid output ``p = sigmoid(z)`` and target 1: cross-entropy's
    gradient is ``1 - p``, squared error's ``2 (1 - p) p (1 - p)``, which
    vanishes as ``p -> 0``: a confidently wrong model barely learns.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Where to draw.
    points : int
        Number of points of each curve.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    p = np.linspace(0.0, 1.0, points)
    ax.plot(p, 1 - p, label="cross-entropy: $1 - p$")
    ax.plot(p, 2 * (1 - p) ** 2 * p, label="squared error: $2p(1 - p)^2$")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("$p$, the predicted probability of the true class")
    ax.set_ylabel(r"$|\partial L / \partial z|$ (per unit of the logit $z$)")
    ax.set_title("Theory: the gradient of each loss (one sigmoid output)")
    ax.legend()
    return ax
