"""A self-contained HTML report of a score (``crossentropy score --report``).

A module of its own because the report is a format, not a computation: it
renders a :meth:`crossentropy._scoring.Scorer.result` as one HTML file with
its figures embedded as PNG data, so it opens with no network access.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import plot


def _png(draw: Callable[[Any], Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    draw(fig.add_subplot())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(summary: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    """The report as an HTML string.

    ``summary`` holds the file-level facts (file, rows read, rejected),
    ``result`` the scorer's result.
    """
    facts = [[k.replace("_", " "), v] for k, v in summary.items()]
    facts += [[k.replace("_", " "), result[k]] for k in ("convention", "unit", "mean_loss", "accuracy")]
    if "bootstrap" in result:
        lo, hi = result["bootstrap"]["ci95"]
        facts.append(["95% bootstrap interval", f"[{lo:.6g}, {hi:.6g}]"])
    facts.append(["expected calibration error", result["calibration"]["ece"]])
    per_class = [[c["class"], c["count"], c["mean_loss"], c["accuracy"]] for c in result["per_class"]]
    bins = [
        [f"{b['lower']:.2f}–{b['upper']:.2f}", b["count"], b["confidence"], b["observed"]]
        for b in result["calibration"]["bins"]
    ]
    figures = {
        "Reliability diagram": _png(lambda ax: plot.reliability_diagram(result["calibration"], ax=ax)),
        "Per-row loss": _png(lambda ax: plot.loss_histogram(result["loss_histogram"], ax=ax)),
        "Mean loss per class": _png(lambda ax: plot.per_class_loss(result["per_class"], ax=ax)),
    }
    images = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, data in figures.items()
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:right}th{background:#f3f3f3}figure{display:inline-block;margin:.5rem}"
        "img{max-width:100%}"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>crossentropy score: {html.escape(str(summary.get('file', '')))}</title>"
        f"<style>{style}</style></head><body>"
        f"<h1>Score of {html.escape(str(summary.get('file', '')))}</h1>"
        f"<h2>Summary</h2>{_table(['quantity', 'value'], facts)}"
        f"<h2>Per class</h2>{_table(['class', 'rows', 'mean loss', 'accuracy'], per_class)}"
        f"<h2>Calibration ({html.escape(result['calibration']['kind'])})</h2>"
        f"{_table(['bin', 'rows', 'mean confidence', 'observed'], bins)}"
        f"<h2>Figures</h2>{images}</body></html>"
    )
