"""``crossentropy compare P Q``: entropies, cross-entropies and divergences of two distributions."""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from .. import InputError
from .._comparison import check_pair, comparison, continuous_comparison, why_infinite
from .._formatting import unit_name
from ..io import read_bounded, read_npy
from .arguments import Commands, add_format, add_precision, base
from .output import plot_module, print_note, print_tables, save_figure, write_figure

__all__ = ["MAX_DISTRIBUTION_EVENTS", "register", "run"]

MAX_DISTRIBUTION_EVENTS = 1 << 24
"""The most events ``compare`` reads from a file (a larger array is refused, not allocated)."""


def register(commands: Commands) -> None:
    """Add the ``compare`` command."""
    compare = commands.add_parser(
        "compare",
        help="H(P), H(Q), H(P,Q), H(Q,P), KL both ways and JS of two distributions",
        epilog="examples:\n  crossentropy compare 0.1,0.4,0.5 0.8,0.15,0.05 --base 2 --plot pq.png\n"
        "  crossentropy compare --continuous 'norm(0, 1)' 'norm(1, 2)'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument(
        "p",
        metavar="P",
        help="comma-separated probabilities, a .npy / text file, or with --continuous a distribution like 'norm(0, 1)'",
    )
    compare.add_argument("q", metavar="Q", help="as P")
    compare.add_argument(
        "--continuous",
        action="store_true",
        help="P and Q are continuous distributions of scipy.stats, e.g. 'norm(0,1)' 'norm(1,2)'",
    )
    compare.add_argument("--base", type=base, default=None, help="logarithm base (2 for bits; default nats)")
    compare.add_argument("--names", help="comma-separated event names, e.g. red,green,blue")
    compare.add_argument(
        "--plot",
        metavar="FILE",
        help="draw P and Q side by side, and H(P,Q) = H(P) + KL(P||Q) (and the reverse) as bars, into FILE",
    )
    add_format(compare)
    add_precision(compare)
    compare.set_defaults(run=run)


def read_distribution(text: str, name: str, names: list[str] | None = None) -> np.ndarray[Any, Any]:
    """A distribution from a comma list, or from a .npy or text file of numbers (at most 2**24 events).

    A word that is not a number is an error naming the event (``names``, else its position from 1).
    """
    if os.path.exists(text):
        if text.endswith(".npy"):
            return read_npy(text, name=name, max_values=MAX_DISTRIBUTION_EVENTS)
        data = read_bounded(text, 32 * MAX_DISTRIBUTION_EVENTS, name=name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name}: {text} is not UTF-8 text (byte {exc.start})") from None
    items = [t for t in text.replace(",", " ").split() if t]
    if not items:
        raise InputError(f"{name} is empty; give numbers like 0.1,0.4,0.5 or a file")
    values = []
    for i, item in enumerate(items):
        try:
            values.append(float(item))
        except ValueError:
            event = names[i] if names is not None and i < len(names) else f"event {i + 1}"
            raise InputError(f"{name}({event}): {item!r} is not a number; type a probability between 0 and 1, "
                             "such as 0.25") from None  # fmt: skip
    return np.asarray(values)


def run(args: argparse.Namespace) -> int:
    """Print the comparison of P and Q (and draw them with ``--plot``)."""
    if args.continuous:
        return _run_continuous(args)
    names = args.names.split(",") if args.names else None
    p = read_distribution(args.p, "P", names)
    q = read_distribution(args.q, "Q", names)
    if p.size != q.size:
        raise InputError(f"P lists {p.size} numbers and Q lists {q.size}: give one number per event in each")
    if names is not None and len(names) != p.size:
        raise InputError(f"--names has {len(names)} names for {p.size} events")
    check_pair(p, q, names)
    unit = unit_name(args.base)
    values = comparison(p, q, base=args.base)
    causes = why_infinite(p, q, names)
    if args.plot:
        _save_comparison_plot(args.plot, p, q, names, values, unit)
    payload = {"unit": unit, "P": p.tolist(), "Q": q.tolist(), "names": names, **values}
    if causes:
        payload["infinite_because"] = causes
    print_tables(
        [("P versus Q", ["quantity", unit], [[k, v] for k, v in values.items()])],
        args.format,
        payload,
        args.precision,
    )
    for pair in (("H(P,Q)", "KL(P||Q)"), ("H(Q,P)", "KL(Q||P)")):
        if pair[0] in causes:
            print_note(f"{pair[0]} and {pair[1]} are infinite: {causes[pair[0]]}.", args.format)
    return 0


def _save_comparison_plot(
    path: str, p: Any, q: Any, names: list[str] | None, values: dict[str, float], unit: str
) -> None:
    """P and Q side by side over the identity bars H(P,Q) = H(P) + KL(P||Q), in the explorer's colours."""
    plot = plot_module()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 7.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[1.1, 1.0])
    plot.distributions(p, q, names=names, colors=(plot.COLOURS["p"], plot.COLOURS["q"]), ax=top)
    plot.identity_bars(values, unit=unit, ax=bottom)
    write_figure(fig, path)


def _run_continuous(args: argparse.Namespace) -> int:
    from ..continuous import parse_distribution

    p = parse_distribution(args.p)
    q = parse_distribution(args.q)
    unit = unit_name(args.base)
    estimates = continuous_comparison(p, q, base=args.base)
    if args.plot:
        save_figure(
            args.plot,
            lambda ax: plot_module().densities(p, q, labels=(f"P = {args.p}", f"Q = {args.q}"), ax=ax),
        )
    payload = {
        "unit": unit,
        "P": args.p,
        "Q": args.q,
        **{k: {"value": e.value, "error": e.error, "method": e.method} for k, e in estimates.items()},
    }
    rows = [[k, e.value, e.error, e.method] for k, e in estimates.items()]
    print_tables(
        [(f"P = {args.p}, Q = {args.q}", ["quantity", unit, "error", "method"], rows)],
        args.format,
        payload,
        args.precision,
    )
    return 0
