"""A self-contained HTML report of a score (``crossentropy score --report``).

A module of its own because the report is a format, not a computation: it
renders the result of :func:`crossentropy.scoring.score_file` as one HTML
file with its figures embedded as PNG data, so it opens with no network
access, on a phone as on a desktop. It reads the result's fields and never
recomputes a score: the baseline, per-class precision and recall, the
calibration bins and the loss histogram all come from the scorer.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import __version__, plot
from .scoring import TOP_CLASSES
from .scoring import top_classes as top_classes_of

__all__ = ["render"]

STYLE = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:0}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.2rem 0 .6rem;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
p,li{max-width:44rem}
.headline{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.6rem;margin:1rem 0}
.card{border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem .8rem}
.card .label{font-size:.85rem;color:#57606a}
.card .value{font-size:1.25rem;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.card .note{font-size:.85rem;color:#57606a}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0 1rem}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .6rem;text-align:right;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
th:first-child,td:first-child,.text{text-align:left}
td{font-variant-numeric:tabular-nums}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem 1rem;margin:.4rem 0}
dl.meta dt{color:#57606a}
dl.meta dd{margin:0;overflow-wrap:anywhere}
figure{margin:1rem 0}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9rem;color:#57606a}
.good{color:#1a7f37}.bad{color:#b3261e}
"""


def _png(draw: Callable[[Any], Any], size: tuple[float, float] = (6.4, 4.0)) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    buffer = io.BytesIO()
    with np.errstate(all="ignore"):  # axis limits near the float range (a loss of 1e308) overflow in matplotlib
        draw(fig.add_subplot())
        fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value: Any, unit: str = "", digits: int = 4) -> str:
    """A number with its unit; ``—`` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value in ("inf", "-inf") or (isinstance(value, float) and math.isinf(value)):
        text = "∞" if value in ("inf", math.inf) else "−∞"
    elif isinstance(value, bool) or not _is_number(value):
        return html.escape(str(value))
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:.{digits}g}"
    return f"{text} {html.escape(unit)}".strip()


def _finite(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _percent(value: Any) -> str:
    if not _is_number(value) or math.isnan(value):
        return "—"
    return f"{100 * value:.1f} %"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str, *, text: int | None = None) -> str:
    """A table whose first column heads its rows; column ``text`` (if any) holds words, aligned left."""

    def cell(i: int, c: str) -> str:
        if i == 0:
            return f'<th scope="row">{c}</th>'
        return f'<td class="text">{c}</td>' if i == text else f"<td>{c}</td>"

    head = "".join(
        f'<th scope="col"{" class=text" if i == text else ""}>{html.escape(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{html.escape(caption)}">'
        f'<table><caption class="visually-hidden">{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _figure(data: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(alt)}" width="704" height="440" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _card(label: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return f'<div class="card"><div class="label">{label}</div><div class="value">{value}</div>{note_html}</div>'


def _headline(r: Mapping[str, Any], unit: str) -> str:
    mean, baseline = r.get("mean_loss"), r.get("baseline_loss")
    cards = [_card("mean loss", _num(mean, unit), f"{html.escape(str(r.get('convention', 'exact')))} convention")]
    base_value, mean_value = _finite(baseline), _finite(mean)
    if base_value is not None and mean_value is not None:
        gain = base_value - mean_value
        relative = f"{100 * gain / base_value:.1f} % lower" if base_value > 0 else ""
        css = "good" if gain > 0 else "bad"
        cards.append(_card("baseline: class frequencies only", _num(baseline, unit), "a model that ignores the input"))
        cards.append(
            _card(
                "improvement over the baseline",
                f'<span class="{css}">{_num(gain, unit)}</span>',
                relative if gain > 0 else "the model does no better than the class frequencies",
            )
        )
    elif baseline is not None:
        cards.append(_card("baseline: class frequencies only", _num(baseline, unit)))
    cards.append(_card("accuracy", _percent(r.get("accuracy")), "top prediction equals the label"))
    calibration = r.get("calibration", {})
    cards.append(
        _card(
            "expected calibration error",
            _num(calibration.get("ece"), digits=3),
            "0 is perfect; 0.05 means confidence is off by 5 points on average",
        )
    )
    if "bootstrap" in r:
        lo, hi = r["bootstrap"]["ci95"]
        cards.append(
            _card(
                "95 % interval of the mean loss",
                f"{_num(lo)} – {_num(hi, unit)}",
                f"{r['bootstrap']['replicates']:,} bootstrap replicates",
            )
        )
    return '<div class="headline">' + "".join(cards) + "</div>"


def _metadata(r: Mapping[str, Any], generated: str) -> str:
    calibration = r.get("calibration", {})
    columns = r.get("prediction_columns") or []
    shown = ", ".join(map(str, columns[:12])) + (f", … ({len(columns)} in all)" if len(columns) > 12 else "")
    facts: list[tuple[str, str]] = [
        ("file", html.escape(str(r.get("file", "")))),
        ("generated", html.escape(generated)),
        ("crossentropy", html.escape(__version__)),
        (
            "rows",
            f"{_num(r.get('rows_read'))} read, {_num(r.get('rows_scored'))} scored, "
            f"{_num(r.get('rows_rejected'))} rejected",
        ),
        ("classes", _num(r.get("classes"))),
    ]
    if r.get("label_column"):
        facts.append(("label column", html.escape(str(r["label_column"]))))
    if columns:
        kind = "logit" if r.get("from_logits") else "probability"
        facts.append((f"{kind} columns", html.escape(shown)))
    if "renormalized" in r or "sum_tolerance" in r:
        tolerance = r.get("sum_tolerance", "auto")
        rule = "from the stored precision" if tolerance == "auto" else f"± {_num(tolerance)}"
        treatment = "renormalised to add up to 1" if r.get("renormalized") else f"must add up to 1 ({rule})"
        facts.append(("probability rows", treatment))
    facts += [
        ("convention", html.escape(str(r.get("convention", "")))),
        ("unit", html.escape(str(r.get("unit", "")))),
        (
            "calibration bins",
            f"{len(calibration.get('bins', []))} equal-width bins ({html.escape(calibration.get('kind', ''))})",
        ),
    ]
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


HOW_TO_READ = """
<ul>
<li><b>Mean loss</b> is the average cross-entropy of the rows, in {unit}: the surprise of the true label
under the model's probabilities. Lower is better; 0 means every true label got probability 1.</li>
<li><b>Baseline</b> is the loss of a model that ignores the input and predicts the class frequencies for
every row (the prior). A useful model beats it; the improvement is how much the inputs tell the model.</li>
<li><b>Precision</b> of a class: of the rows the model assigned to it, the share that belong to it.
<b>Recall</b>: of the rows that belong to it, the share the model assigned to it.</li>
<li><b>Calibration</b>: among rows predicted with confidence around 0.8, about 80 % should be right.
The reliability diagram shows this bin by bin, with the number of rows in each; a bin with few rows says
little. The <b>expected calibration error</b> (ECE) is the row-weighted average gap between confidence and
observed frequency.</li>
</ul>
"""


def render(
    summary: Mapping[str, Any],
    result: Mapping[str, Any],
    *,
    generated: str | None = None,
    top_classes: int = TOP_CLASSES,
) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    summary : mapping
        File-level facts (``file``, ``rows_read``, ``rows_scored``,
        ``rows_rejected``); they override the same keys of ``result``.
    result : mapping
        The scorer's result (:func:`crossentropy.scoring.score_file`).
    generated : str, optional
        The time stamp shown in the header (default: now, in UTC).
    top_classes : int, optional
        The per-class table and figure show the classes with the largest
        share of the total loss, this many, and sum the others in one row
        (:func:`crossentropy.scoring.top_classes`; 0: every class), so the
        report's size and time do not grow with the number of classes.

    Returns
    -------
    str
        One self-contained HTML document.
    """
    r = {**result, **summary}
    unit = str(r.get("unit", "nats"))
    when = generated or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    calibration = r.get("calibration", {"bins": [], "ece": math.nan, "kind": ""})
    every_class = r.get("per_class", [])
    total = sum(int(c.get("count", 0)) for c in every_class) or 1
    view = top_classes_of(every_class, top_classes)
    per_class = view["shown"]
    class_rows = [
        [
            html.escape(str(c["class"])),
            _num(c.get("count")),
            _percent(int(c.get("count", 0)) / total),
            _num(c.get("predicted")),
            _percent(c.get("precision")),
            _percent(c.get("recall")),
            _num(c.get("mean_loss"), unit),
        ]
        for c in per_class + ([view["rest"]] if view["rest"] else [])
    ]
    bins = calibration.get("bins", [])
    bin_rows = [
        [
            f"{b['lower']:.2f} – {b['upper']:.2f}",
            _num(b.get("count")),
            _num(b.get("confidence"), digits=3),
            _num(b.get("observed"), digits=3),
            _num(
                abs(b["observed"] - b["confidence"])
                if _is_number(b.get("observed")) and _is_number(b.get("confidence"))
                else None,
                digits=3,
            ),
        ]
        for b in bins
    ]
    sections = [
        f"<h1>Score of {html.escape(str(r.get('file', '')))}</h1>",
        _metadata(r, when),
        _headline(r, unit),
        "<h2>How to read this</h2>",
        HOW_TO_READ.format(unit=html.escape(unit)),
        "<h2>Per class</h2>",
        f"<p>Shown: {html.escape(view['rule'])}.</p>" if view["rest"] else "",
        _table(
            ["class", "rows", "share", "predicted", "precision", "recall", f"mean loss ({unit})"],
            class_rows,
            "per-class counts, precision, recall and loss",
        ),
    ]
    if per_class:
        sections.append(
            _figure(
                _png(lambda ax: plot.per_class_loss(per_class, unit=unit, ax=ax)),
                f"Bar chart of the mean loss of each class, in {unit}",
                "Mean loss of the rows of each true class: a tall bar is a class the model finds hard."
                + (f" Shown: {html.escape(view['rule'])}." if view["rest"] else ""),
            )
        )
    sections += [
        f"<h2>Calibration ({html.escape(str(calibration.get('kind', '')))})</h2>",
        _figure(
            _png(lambda ax: plot.reliability_diagram(calibration, ax=ax)),
            "Reliability diagram: observed frequency against predicted confidence per bin, with rows per bin",
            "Bars below the diagonal: the model is over-confident there; above it: under-confident. "
            "The number over each bar is how many rows the bin holds.",
        ),
        _table(
            ["confidence bin", "rows", "mean confidence", "observed frequency", "gap"],
            bin_rows,
            "calibration bins",
        ),
    ]
    histogram = r.get("loss_histogram")
    if histogram:
        infinite = int(histogram.get("infinite", 0) or 0)
        top = histogram.get("max_finite")
        caption = f"Rows by their loss, in {html.escape(unit)}."
        if _is_number(top):
            caption += f" The largest finite loss is {_num(top, unit)}."
        if infinite:
            caption += f" {infinite:,} rows have an infinite loss (probability 0 for their true class)."
        sections += [
            "<h2>Per-row loss</h2>",
            _figure(
                _png(lambda ax: plot.loss_histogram(histogram, unit=unit, ax=ax)),
                f"Histogram of the per-row loss in {unit}",
                caption,
            ),
        ]
    rejected = r.get("rejected") or []
    if rejected:
        sections += [
            f"<h2>Rejected rows (first {len(rejected)} of {_num(r.get('rows_rejected'))})</h2>",
            _table(
                ["row", "reason"],
                [[_num(x.get("row")), html.escape(str(x.get("reason", "")))] for x in rejected],
                "rejected rows",
                text=1,
            ),
        ]
    title = html.escape(f"crossentropy score: {r.get('file', '')}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{STYLE}"
        ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}</style>"
        "</head><body><main>" + "".join(sections) + "</main></body></html>"
    )
