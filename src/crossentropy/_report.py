"""A self-contained HTML report of a score (``crossentropy score --report``).

A module of its own because the report is a format, not a computation: it
renders the result of :func:`crossentropy.scoring.score_file` as one HTML
file with its figures embedded as SVG data, so it opens with no network
access, on a phone as on a desktop (the figures are drawn at a size and in
a type that stay readable at a phone's width). It reads the result's fields
and never recomputes a score: the baseline, per-class precision and recall,
the calibration bins and their verdict, the temperature, the loss histogram
and the worst rows all come from the scorer.

It leads with the verdict (how much the model beats the baseline, whether it
is overconfident, underconfident or well calibrated, and what a temperature
would recover), then the headline cards, then the details, and ends with the
facts about the file and the run.

Its building blocks (the page, the cards, tables and SVG figures, the
calibration section with its reliability diagram, the facts) are public, so
that another report in the same style, perplexity's
(:mod:`crossentropy._perplexity_report`), is made of the same parts.
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

__all__ = [
    "FIGURE_SIZE",
    "STYLE",
    "VERDICT_CLASS",
    "calibration_card",
    "calibration_section",
    "card",
    "facts_list",
    "figure",
    "now",
    "num",
    "page",
    "percent",
    "render",
    "svg",
    "table",
]

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
.card.warn{background:#fff8c5;border-color:#d4a72c}
.card.fine{background:#dafbe1;border-color:#4ac26b}
.card.warn .value,.card.fine .value{white-space:normal}
.verdict{font-size:1.05rem;max-width:48rem;border-left:4px solid #1f2328;padding:.2rem .8rem;margin:.6rem 0}
.verdict p{margin:.3rem 0;max-width:none}
.verdict .word{font-weight:700}
.table-wrap{overflow-x:auto;max-width:100%;scrollbar-width:thin;scrollbar-color:#8c959f transparent;
background:linear-gradient(to right,#fff 40%,rgba(255,255,255,0)) left center/2.5em 100% no-repeat local,
linear-gradient(to left,#fff 40%,rgba(255,255,255,0)) right center/2.5em 100% no-repeat local,
radial-gradient(farthest-side at 0 50%,rgba(0,0,0,.35),transparent) left center/1em 100% no-repeat scroll,
radial-gradient(farthest-side at 100% 50%,rgba(0,0,0,.35),transparent) right center/1em 100% no-repeat scroll}
.table-wrap:focus-visible{outline:2px solid #0969da}
.scroll-hint{display:none;font-size:.85rem;color:#57606a;margin:.2rem 0}
.table-wrap.overflowing+.scroll-hint{display:block}
table{border-collapse:collapse;margin:.4rem 0 1rem}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .6rem;text-align:right;vertical-align:top;white-space:nowrap}
th{background:rgba(208,215,222,.3);font-weight:600}
th:first-child,td:first-child,.text{text-align:left}
td{font-variant-numeric:tabular-nums}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem 1rem;margin:.4rem 0}
dl.meta dt{color:#57606a}
dl.meta dd{margin:0;overflow-wrap:anywhere}
figure{margin:1rem 0}
figure img{width:100%;max-width:30rem;height:auto;display:block}
footer{margin-top:2rem;border-top:1px solid #d0d7de}
figcaption{font-size:.9rem;color:#57606a}
.good{color:#1a7f37}.bad{color:#b3261e}
"""


FIGURE_SIZE = (5.0, 3.5)
"""Inches: 480 CSS px wide, shown at that size or the page's width if narrower: at a phone's (about 360 px)
the type shrinks by a quarter at most."""
FIGURE_STYLE: Any = {"font.size": 13, "svg.fonttype": "none", "svg.hashsalt": "crossentropy-report"}
"""Type of 13 points, none smaller than matplotlib's "small" (10.8): at least 10 CSS px on a phone. The text
stays text (``svg.fonttype``), drawn by the browser; the salt makes the SVG's ids reproducible."""


def svg(draw: Callable[[Any], Any], size: tuple[float, float] = FIGURE_SIZE) -> str:
    """The figure ``draw(ax)`` makes, as base64 SVG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    with matplotlib.rc_context(FIGURE_STYLE), np.errstate(all="ignore"):  # limits near 1e308 overflow in matplotlib
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.add_subplot())
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def num(value: Any, unit: str = "", digits: int = 4) -> str:
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


def _distinct_digits(a: float, b: float, digits: int = 4) -> int:
    """The fewest significant digits, from ``digits`` up to 12, that write ``a`` and ``b`` differently."""
    while digits < 12 and f"{a:.{digits}g}" == f"{b:.{digits}g}":
        digits += 1
    return digits


def _finite(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def percent(value: Any) -> str:
    if not _is_number(value) or math.isnan(value):
        return "—"
    return f"{100 * value:.1f} %"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str, *, text: int | None = None) -> str:
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
        '<p class="scroll-hint" aria-hidden="true">Scroll the table sideways for more columns →</p>'
    )


def figure(data: str, alt: str, caption: str, size: tuple[float, float] = FIGURE_SIZE) -> str:
    width, height = round(96 * size[0]), round(96 * size[1])  # CSS pixels: 96 per inch, as the SVG says in pt
    return (
        f'<figure><img alt="{html.escape(alt)}" width="{width}" height="{height}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption>{caption}</figcaption></figure>'
    )


def card(label: str, value: str, note: str = "", css: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (
        f'<div class="card{" " + css if css else ""}"><div class="label">{label}</div>'
        f'<div class="value">{value}</div>{note_html}</div>'
    )


VERDICT_CLASS = {"overconfident": "warn", "underconfident": "warn", "well calibrated": "fine"}
"""The colour of the calibration card: yellow for a miscalibration, green for none."""


def calibration_card(calibration: Mapping[str, Any], interval: str = "") -> str:
    """The calibration card: the verdict in colour with the expected calibration error (and its ``interval``,
    HTML), or the error alone when there is no verdict."""
    ece = num(calibration.get("ece"), digits=3) + interval
    verdict = calibration.get("verdict")
    if verdict:
        return card(
            "calibration",
            html.escape(verdict),
            f"expected calibration error {ece} (0 is perfect; 0.05: confidence off by 5 points on average)",
            VERDICT_CLASS.get(verdict, ""),
        )
    return card("expected calibration error", ece, "0 is perfect; 0.05 means confidence is off by 5 points on average")


def now() -> str:
    """A report's time stamp: the current time in UTC, to the minute."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _headline(r: Mapping[str, Any], unit: str) -> str:
    mean, baseline = r.get("mean_loss"), r.get("baseline_loss")
    cards = [card("mean loss", num(mean, unit), f"{html.escape(str(r.get('convention', 'exact')))} convention")]
    base_value, mean_value = _finite(baseline), _finite(mean)
    if base_value is not None and mean_value is not None:
        gain = base_value - mean_value
        relative = f"{100 * gain / base_value:.1f} % lower" if base_value > 0 else ""
        css = "good" if gain > 0 else "bad"
        cards.append(card("baseline: class frequencies only", num(baseline, unit), "a model that ignores the input"))
        cards.append(
            card(
                "improvement over the baseline",
                f'<span class="{css}">{num(gain, unit)}</span>',
                relative if gain > 0 else "the model does no better than the class frequencies",
            )
        )
    elif baseline is not None:
        cards.append(card("baseline: class frequencies only", num(baseline, unit)))
    cards.append(card("accuracy", percent(r.get("accuracy")), "top prediction equals the label"))
    calibration = r.get("calibration", {})
    cards.append(calibration_card(calibration))
    if "temperature" in calibration:
        after = calibration.get("mean_loss_after")
        cards.append(
            card(
                "loss after a temperature",
                num(after, unit),
                f"T = {num(calibration['temperature'])}; {html.escape(str(calibration.get('fitted_on', '')))}",
                "fine" if _is_number(after) and _is_number(mean) and after < mean else "",
            )
        )
    if "bootstrap" in r:
        lo, hi = r["bootstrap"]["ci95"]
        cards.append(
            card(
                "95 % interval of the mean loss",
                f"{num(lo)} – {num(hi, unit)}",
                f"{r['bootstrap']['replicates']:,} bootstrap replicates",
            )
        )
    return '<div class="headline">' + "".join(cards) + "</div>"


def _verdict(r: Mapping[str, Any], unit: str) -> str:
    """The report's first words: how the model does against the baseline, its calibration, what a fix recovers."""
    sentences = []
    mean, baseline = _finite(r.get("mean_loss")), _finite(r.get("baseline_loss"))
    if mean is not None and baseline is not None:
        if mean < baseline:
            lower = f" ({100 * (baseline - mean) / baseline:.1f} % lower)" if baseline > 0 else ""
            sentences.append(
                f"Mean loss {num(mean, unit)} against {num(baseline, unit)} for the class frequencies alone{lower}: "
                "the inputs tell the model something."
            )
        else:
            sentences.append(
                f"Mean loss {num(mean, unit)}: no better than the {num(baseline, unit)} of predicting the class "
                "frequencies for every row."
            )
    elif r.get("mean_loss") == math.inf:
        sentences.append("The mean loss is infinite.")
    histogram = r.get("loss_histogram") or {}
    infinite = int(histogram.get("infinite", 0) or 0)
    if infinite:
        some = "1 row gives its label" if infinite == 1 else f"{infinite:,} rows give their label"
        where = " (see the worst rows below)" if r.get("worst_rows") else ""
        sentences.append(f"{some} probability 0: an infinite loss{where}.")
    calibration = r.get("calibration", {})
    verdict = calibration.get("verdict")
    if verdict:
        sentences.append(
            f'Calibration: <span class="word">{html.escape(verdict)}</span>: '
            f"{html.escape(str(calibration.get('verdict_reason', '')))}."
        )
    if "temperature" in calibration:
        t = num(calibration["temperature"])
        before, after = calibration.get("mean_loss_before"), calibration.get("mean_loss_after")
        how = html.escape(str(calibration.get("fitted_on", "")))
        ece = f"{num(calibration.get('ece_before'), digits=3)} to {num(calibration.get('ece_after'), digits=3)}"
        if _is_number(before) and _is_number(after) and after < before:
            digits = _distinct_digits(before, after)
            lower = f" ({100 * (before - after) / before:.2g} % lower)" if math.isfinite(before) and before > 0 else ""
            sentences.append(
                f"A temperature of {t} would lower the loss from {num(before, unit, digits)} to "
                f"{num(after, unit, digits)}{lower} and the calibration error from {ece} (measured by {how})."
            )
        else:
            sentences.append(
                f"No temperature lowers the loss: {num(before, unit)} before, {num(after, unit)} with the "
                f"temperature {t} (measured by {how})."
            )
    if not sentences:
        return ""
    return '<div class="verdict">' + "".join(f"<p>{x}</p>" for x in sentences) + "</div>"


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
            f"{num(r.get('rows_read'))} read, {num(r.get('rows_scored'))} scored, "
            f"{num(r.get('rows_rejected'))} rejected",
        ),
        ("classes", num(r.get("classes"))),
    ]
    if r.get("label_column"):
        facts.append(("label column", html.escape(str(r["label_column"]))))
    if columns:
        kind = "logit" if r.get("from_logits") else "probability"
        facts.append((f"{kind} columns", html.escape(shown)))
    if "renormalized" in r or "sum_tolerance" in r:
        tolerance = r.get("sum_tolerance", "auto")
        rule = "from the stored precision" if tolerance == "auto" else f"± {num(tolerance)}"
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
    return facts_list(facts)


def facts_list(facts: Sequence[tuple[str, str]]) -> str:
    """The facts about a file and a run as a definition list (each value already HTML)."""
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
<li><b>The verdict</b> reads the bins with one rule. A bin of <i>n</i> rows with mean confidence <i>c</i>
and observed frequency <i>o</i> is off when |<i>o</i> − <i>c</i>| exceeds
max(0.01, 3 √(<i>c</i>(1 − <i>c</i>)/<i>n</i>)), three standard errors of a frequency of <i>n</i> rows;
for a binary model, bins below 0.5 are read from the side of class 0. <b>Well calibrated</b>: no bin is off.
<b>Overconfident</b>: more rows lie in bins where the predicted class is right less often than the model says
than in bins where it is right more often; <b>underconfident</b>: the reverse.</li>
<li><b>A temperature</b> <i>T</i> divides the logits (for probabilities, their logarithms) before the
softmax: <i>T</i> &gt; 1 softens an overconfident model, <i>T</i> &lt; 1 sharpens an underconfident one, and
the predicted class never changes. The "after" figures are measured on rows the temperature was not fitted on
(cross-fitting, or a held-out file), so they are what the fix would do on new data.</li>
</ul>
"""


def _class_section(r: Mapping[str, Any], unit: str, top: int) -> list[str]:
    every_class = r.get("per_class", [])
    total = sum(int(c.get("count", 0)) for c in every_class) or 1
    view = top_classes_of(every_class, top)
    per_class = view["shown"]
    shown = f"Shown: {html.escape(view['rule'])}." if view["rest"] else ""
    class_rows = [
        [
            html.escape(str(c["class"])),
            num(c.get("count")),
            percent(int(c.get("count", 0)) / total),
            num(c.get("predicted")),
            percent(c.get("precision")),
            percent(c.get("recall")),
            num(c.get("mean_loss"), unit),
        ]
        for c in per_class + ([view["rest"]] if view["rest"] else [])
    ]
    sections = [
        "<h2>Per class</h2>",
        f"<p>{shown}</p>" if shown else "",
        table(
            ["class", "rows", "share", "predicted", "precision", "recall", f"mean loss ({unit})"],
            class_rows,
            "per-class counts, precision, recall and loss",
        ),
    ]
    if per_class:
        sections.append(
            figure(
                svg(lambda ax: plot.per_class_loss(per_class, unit=unit, ax=ax)),
                f"Bar chart of the mean loss of each class, in {unit}",
                "Mean loss of the rows of each true class: a tall bar is a class the model finds hard."
                + (f" {shown}" if shown else ""),
            )
        )
    return sections


READING = {"within": "within tolerance", "over": "overconfident", "under": "underconfident"}


def calibration_section(
    calibration: Mapping[str, Any],
    *,
    items: str = "rows",
    predicted: str = "predicted class",
    title: str = "Calibration",
) -> list[str]:
    """The reliability diagram and the table of the calibration bins (a score's ``calibration`` entry, or one of that
    form): ``items`` is what the bins count, ``predicted`` what the model's top choice is called."""
    binary = calibration.get("kind") == "positive class"
    bins = calibration.get("bins", [])
    bin_rows = [
        [
            f"{b['lower']:.2f} – {b['upper']:.2f}",
            num(b.get("count")),
            num(b.get("confidence"), digits=3),
            num(b.get("observed"), digits=3),
            num(
                abs(b["observed"] - b["confidence"])
                if _is_number(b.get("observed")) and _is_number(b.get("confidence"))
                else None,
                digits=3,
            ),
            READING.get(b.get("reading") or "", "—"),
        ]
        for b in bins
    ]
    what = f"the share of {items} of class 1" if binary else f"the share of {items} whose {predicted} is right"
    return [
        f"<h2>{html.escape(title)} ({html.escape(str(calibration.get('kind', '')))})</h2>",
        figure(
            svg(lambda ax: plot.reliability_diagram(calibration, ax=ax, items=items), size=(FIGURE_SIZE[0], 4.2)),
            f"Reliability diagram: observed frequency against predicted confidence per bin, with {items} per bin",
            f"Each bar is a confidence bin: its height is the observed frequency ({what}), the diamond the "
            f"mean confidence of its {items}. Bars below the diagonal: the model is overconfident there; above it: "
            f"underconfident. The number at the foot of each bar is how many {items} the bin holds.",
            size=(FIGURE_SIZE[0], 4.2),
        ),
        table(
            ["confidence bin", items, "mean confidence", "observed frequency", "gap", "reading"],
            bin_rows,
            "calibration bins",
            text=5,
        ),
    ]


def _loss_section(r: Mapping[str, Any], unit: str) -> list[str]:
    sections: list[str] = []
    histogram = r.get("loss_histogram")
    if histogram:
        infinite = int(histogram.get("infinite", 0) or 0)
        top = histogram.get("max_finite")
        caption = f"Rows by their loss, in {html.escape(unit)}; the counts are on a log scale, so that the few rows "
        caption += "of large loss, where the model is confidently wrong, show."
        if _is_number(top):
            caption += f" The largest finite loss is {num(top, unit)}."
        if infinite:
            caption += f" {infinite:,} rows have an infinite loss (probability 0 for their true class)."
        sections += [
            "<h2>Per-row loss</h2>",
            figure(
                svg(lambda ax: plot.loss_histogram(histogram, unit=unit, log=True, ax=ax)),
                f"Histogram of the per-row loss in {unit}, counts on a log scale",
                caption,
            ),
        ]
    worst = r.get("worst_rows") or []
    if worst:
        sections += [
            f"<h2>The {len(worst)} rows with the largest loss</h2>",
            "<p>Where to look next: each row's number in the file (data rows counted from 1, the header not "
            "counted), its label, its loss, the probability the model gave the label, and what it predicted "
            "instead.</p>",
            table(
                ["row", "label", f"loss ({unit})", "P(label)", "predicted", "P(predicted)"],
                [
                    [
                        num(w.get("row")),
                        html.escape(str(w.get("label"))),
                        num(w.get("loss"), unit),
                        num(w.get("label_probability"), digits=3),
                        html.escape(str(w.get("predicted"))),
                        num(w.get("predicted_probability"), digits=3),
                    ]
                    for w in worst
                ],
                "the rows with the largest loss",
            ),
        ]
    return sections


RESIZE = (
    "<script>function markOverflow(){for(const w of document.querySelectorAll('.table-wrap'))"
    "{w.classList.toggle('overflowing',w.scrollWidth>w.clientWidth+1);}}"
    "addEventListener('load',markOverflow);addEventListener('resize',markOverflow);</script>"
)
"""Shows the "scroll sideways" line under a table only while it is wider than the screen."""


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
    when = generated or now()
    calibration = r.get("calibration", {"bins": [], "ece": math.nan, "kind": ""})
    sections = [
        f"<h1>Score of {html.escape(str(r.get('file', '')))}</h1>",
        _verdict(r, unit),
        _headline(r, unit),
        *_class_section(r, unit, top_classes),
        *calibration_section(calibration),
        *_loss_section(r, unit),
    ]
    rejected = r.get("rejected") or []
    if rejected:
        sections += [
            f"<h2>Rejected rows (first {len(rejected)} of {num(r.get('rows_rejected'))})</h2>",
            table(
                ["row", "reason"],
                [[num(x.get("row")), html.escape(str(x.get("reason", "")))] for x in rejected],
                "rejected rows",
                text=1,
            ),
        ]
    sections += [
        "<h2>How to read this</h2>",
        HOW_TO_READ.format(unit=html.escape(unit)),
        "<footer><h2>About this report</h2>",
        _metadata(r, when),
        "</footer>",
    ]
    return page(f"crossentropy score: {r.get('file', '')}", sections)


def page(title: str, sections: Sequence[str]) -> str:
    """One self-contained HTML document: the report's style, ``title`` (text) and ``sections`` (HTML) in order."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}"
        ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}</style>"
        "</head><body><main>" + "".join(sections) + "</main>" + RESIZE + "</body></html>"
    )
