"""A self-contained HTML report of a perplexity run (``crossentropy perplexity --report``), in the score report's style.

Made of the score report's parts (:mod:`crossentropy._report`: the page, the
cards, tables and SVG figures, the calibration card, and the calibration
section with its reliability diagram), so the two reports read alike: the
verdict first, then the headline cards, the details, and the facts about the
run last. It reads what the command prints with ``--format json`` (one run's
measures, ``calibration`` and documents, with ``ci`` under ``--bootstrap``; or
``a``, ``b`` and ``comparison`` under ``--compare``) and recomputes nothing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from . import __version__
from ._perplexity.calibration import KIND
from ._perplexity.fields import CALIBRATION_BINS, RECORD
from ._report import calibration_card, calibration_section, card, facts_list, now, num, page, percent, table

__all__ = ["DOCUMENTS_SHOWN", "render"]

DOCUMENTS_SHOWN = 100
"""Documents listed in the report's table (all of them are in ``--documents`` and the JSON output)."""

_HEADLINE = [m for m in RECORD.measures if m.headline]
_SHORT = {
    "token_perplexity": "token perplexity",
    "bits_per_byte": "bits per byte",
    "entropy_nats": "entropy (nats/token)",
    "top1_accuracy": "top-1 accuracy",
    "ece": "ECE",
}
"""The columns of the documents' table, with headers short enough for a laptop's screen."""


def _value(name: str, value: Any) -> str:
    """A measure's value as the report writes it: the accuracy in percent, the calibration error to three
    significant digits (as the score report), others to five."""
    if name == "top1_accuracy":
        return percent(value)
    return num(value, digits=3 if name == "ece" else 5)


def _interval(result: Mapping[str, Any], name: str, unit: str = "") -> str:
    """`` (95 %: low – high unit)`` from the run's bootstrap, or nothing."""
    bounds = (result.get("ci") or {}).get(name)
    if not bounds:
        return ""
    return f" (95 %: {_value(name, bounds['low'])} – {_value(name, bounds['high'])}{' ' + unit if unit else ''})"


def _documents_note(result: Mapping[str, Any]) -> str:
    empty = result.get("empty_documents") or []
    documents = len(result.get("documents") or [])
    return f"{documents:,} documents" + (f" ({len(empty):,} empty)" if empty else "")


def _verdict(result: Mapping[str, Any]) -> str:
    """The report's first words: the perplexity, how often the top choice is right, and the calibration."""
    r = result
    sentences = [
        f"Token perplexity {num(r.get('token_perplexity'), digits=5)}, {num(r.get('bits_per_byte'), digits=5)} "
        f"bits per byte and a word perplexity of {num(r.get('word_perplexity'), digits=5)} over "
        f"{num(r.get('tokens'))} tokens in {_documents_note(r)}."
    ]
    accuracy, confidence = r.get("top1_accuracy"), r.get("top1_probability")
    if accuracy is not None:
        sentences.append(
            f"The model's first choice for the next token is right for {percent(accuracy)} of the tokens; it gives "
            f"that choice a probability of {percent(confidence)} on average."
        )
    entropy, cross = r.get("entropy_nats"), r.get("cross_entropy_nats")
    if isinstance(entropy, float) and isinstance(cross, float) and math.isfinite(cross):
        more = "more" if cross > entropy else "less"
        sentences.append(
            f"The text surprises it {more} than it expects: a cross-entropy of {num(cross, 'nats', 5)} per token "
            f"against a mean entropy of its predictions of {num(entropy, 'nats', 5)}."
        )
    calibration = r.get("calibration") or {}
    if calibration.get("verdict"):
        sentences.append(
            f'Calibration: <span class="word">{html.escape(calibration["verdict"])}</span>: '
            f"{html.escape(str(calibration.get('verdict_reason', '')))}."
        )
    return '<div class="verdict">' + "".join(f"<p>{x}</p>" for x in sentences) + "</div>"


def _cards(result: Mapping[str, Any]) -> str:
    r = result
    cards = [
        card("token perplexity", num(r.get("token_perplexity"), digits=5), _interval(r, "token_perplexity")),
        card("bits per byte", num(r.get("bits_per_byte"), digits=5), _interval(r, "bits_per_byte")),
        card("word perplexity", num(r.get("word_perplexity"), digits=5), _interval(r, "word_perplexity")),
        card(
            "mean entropy of the predictions",
            num(r.get("entropy_nats"), "nats", 5),
            f"per token; {num(r.get('entropy_bits'), 'bits', 5)}{_interval(r, 'entropy_nats', 'nats')}",
        ),
        card(
            "top-1 accuracy",
            percent(r.get("top1_accuracy")),
            "the first choice is the next token" + _interval(r, "top1_accuracy"),
        ),
        calibration_card(r.get("calibration") or {}, _interval(r, "ece")),
    ]
    return '<div class="headline">' + "".join(cards) + "</div>"


def _intervals_section(result: Mapping[str, Any]) -> list[str]:
    ci = result.get("ci")
    if not ci:
        return []
    rows = [
        [
            html.escape(m.label),
            _value(m.name, result.get(m.name)),
            _value(m.name, ci[m.name]["low"]),
            _value(m.name, ci[m.name]["high"]),
        ]
        for m in _HEADLINE
        if m.name in ci
    ]
    return [
        "<h2>95 % intervals</h2>",
        f"<p>From {ci['replicates']:,} bootstrap replicates that resample the {ci['documents']:,} documents (seed "
        f"{ci['seed']}): each measure is recomputed from each replicate's summed figures.</p>",
        table(["measure", "value", "95 % low", "95 % high"], rows, "bootstrap intervals of the measures"),
    ]


def _documents_section(result: Mapping[str, Any]) -> list[str]:
    documents = result.get("documents") or []
    if len(documents) < 2:
        return []
    several = len(result.get("files") or []) > 1
    shown = documents[:DOCUMENTS_SHOWN]
    columns = [m for m in _HEADLINE if m.name in _SHORT]
    rows = [
        [
            html.escape(str(d.get("id"))),
            *([html.escape(str(d.get("file")))] if several else []),
            num(d.get("tokens")),
            *(_value(m.name, d.get(m.name)) for m in columns),
        ]
        for d in shown
    ]
    headers = ["document", *(["file"] if several else []), "tokens", *(_SHORT[m.name] for m in columns)]
    which = "" if len(shown) == len(documents) else f" (the first {len(shown):,} of {len(documents):,})"
    return [
        f"<h2>Documents{which}</h2>",
        "<p>Each document's measures; a short document's calibration error is mostly chance (a bin of few tokens is "
        "far from its confidence by luck alone).</p>",
        table(headers, rows, "per-document measures", text=1 if several else None),
    ]


HOW_TO_READ = f"""
<ul>
<li><b>Token perplexity</b> is exp(cross-entropy per token): as unsure as a uniform choice among that many tokens.
<b>Bits per byte</b> and <b>word perplexity</b> divide the same summed loss by the text's bytes and words, so
they compare across tokenizers; all three are lm-evaluation-harness's, summed over the documents first.</li>
<li><b>Mean entropy</b> is how spread the model's predictions are, whatever the next token. A model whose
probabilities were right would on average be as surprised by the text (its cross-entropy) as it expects to be
(its entropy); a cross-entropy above the entropy means it is surer than it should be somewhere.</li>
<li><b>Top-1 accuracy</b>: the share of tokens that are the model's first choice (ties go to the lower token
id).</li>
<li><b>Calibration</b>: among tokens the model predicts with a top-1 probability around 0.3, about 30 % should
be its first choice. The reliability diagram shows this in {CALIBRATION_BINS} equal-width bins of the top-1
probability; the <b>expected calibration error</b> (ECE) is the token-weighted average gap between confidence
and observed frequency. The verdict reads the bins with the rule of the score report: a bin of <i>n</i> tokens
is off when its gap exceeds max(0.01, 3 √(<i>c</i>(1 − <i>c</i>)/<i>n</i>)).</li>
<li><b>Intervals</b> resample documents, not tokens: the tokens of a document are not independent.</li>
</ul>
"""


def _facts(result: Mapping[str, Any], generated: str) -> list[tuple[str, str]]:
    r = result
    return [
        ("model", html.escape(str(r.get("model", "")))),
        ("files", html.escape(", ".join(map(str, r.get("files") or [])))),
        ("tokenizer", f"fingerprint {html.escape(str(r.get('tokenizer', '')))}, {num(r.get('vocab_size'))} tokens"),
        (
            "windows",
            f"context {num(r.get('context'))}, stride {num(r.get('stride'))}, "
            f"prefix token {num(r.get('prefix_token'))}",
        ),
        ("documents", _documents_note(r)),
        ("tokens, bytes, words", f"{num(r.get('tokens'))}, {num(r.get('bytes'))}, {num(r.get('words'))}"),
        ("calibration bins", f"{CALIBRATION_BINS} equal-width bins of the {KIND} probability"),
        ("generated", html.escape(generated)),
        ("crossentropy", html.escape(__version__)),
    ]


def _run_sections(result: Mapping[str, Any], name: str = "") -> list[str]:
    calibration = result.get("calibration") or {"bins": [], "ece": None, "kind": KIND}
    title = f"Calibration of {name}" if name else "Calibration"
    return [
        _cards(result),
        *calibration_section(calibration, items="tokens", predicted="top-1 prediction", title=title),
        *_intervals_section(result),
        *_documents_section(result),
    ]


def _comparison_section(payload: Mapping[str, Any]) -> list[str]:
    comparison = payload["comparison"]
    rows = []
    for m in _HEADLINE:
        d = comparison.get(m.name)
        if d is None:
            continue
        better = "—" if d.get("share_b_better") is None else f"{d['b_better']:,} of {d['compared']:,}"
        rows.append(
            [
                html.escape(m.label),
                _value(m.name, d["a"]),
                _value(m.name, d["b"]),
                num(d["difference"], digits=4),
                num(d["low"], digits=4),
                num(d["high"], digits=4),
                better,
            ]
        )
    note = comparison.get("note")
    return [
        "<h2>B against A</h2>",
        f"<p>B − A per measure with its 95 % paired-bootstrap interval ({comparison['replicates']:,} replicates "
        f"over {comparison['documents']:,} documents, seed {comparison['seed']}), and on how many documents B is "
        "better (the entropy has no better side). An interval that excludes 0 says the difference holds across "
        f"documents like these.{' ' + html.escape(note[0].upper() + note[1:]) + '.' if note else ''}</p>",
        table(["measure", "A", "B", "B − A", "95 % low", "95 % high", "B better on"], rows, "paired comparison"),
    ]


def render(payload: Mapping[str, Any], *, generated: str | None = None) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    payload : mapping
        What ``crossentropy perplexity --format json`` prints: one run's
        result (``PerplexityReport.as_dict()``, with ``ci`` under
        ``--bootstrap``), or ``a``, ``b`` and ``comparison`` for two models.
    generated : str, optional
        The time stamp shown in the footer (default: now, in UTC).

    Returns
    -------
    str
        One self-contained HTML document.
    """
    when = generated or now()
    if "comparison" not in payload:
        model = str(payload.get("model", ""))
        sections = [
            f"<h1>Perplexity of {html.escape(model)}</h1>",
            _verdict(payload),
            *_run_sections(payload),
            "<h2>How to read this</h2>",
            HOW_TO_READ,
            "<footer><h2>About this report</h2>",
            facts_list(_facts(payload, when)),
            "</footer>",
        ]
        return page(f"crossentropy perplexity: {model}", sections)
    a, b = payload["a"], payload["b"]
    sections = [
        f"<h1>Perplexity of {html.escape(str(b.get('model')))} (B) against {html.escape(str(a.get('model')))} (A)</h1>"
    ]
    sections += _comparison_section(payload)
    for name, result in (("A", a), ("B", b)):
        sections += [
            f"<h2>{name}: {html.escape(str(result.get('model', '')))}</h2>",
            _verdict(result),
            *_run_sections(result, name),
        ]
    sections += ["<h2>How to read this</h2>", HOW_TO_READ, "<footer><h2>About this report</h2>"]
    for name, result in (("A", a), ("B", b)):
        sections += [f"<h3>{name}</h3>", facts_list(_facts(result, when))]
    sections.append("</footer>")
    return page(f"crossentropy perplexity: {b.get('model')} against {a.get('model')}", sections)
