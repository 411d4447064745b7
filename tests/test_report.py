"""The HTML report of `crossentropy score --report`: what it says, from the scorer's result fields."""

from __future__ import annotations

import base64
import html.parser
import math
import re

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import crossentropy as ce  # noqa: E402
from crossentropy._report import render  # noqa: E402


def example_result() -> dict:
    """A three-class result with the scorer's field names, built by hand."""
    counts = [29, 2280, 691]
    bins = []
    for i in range(10):
        n = [0, 0, 0, 29, 120, 240, 400, 610, 900, 701][i]
        conf = (i + 0.5) / 10 if n else None
        bins.append(
            {
                "lower": i / 10,
                "upper": (i + 1) / 10,
                "count": n,
                "confidence": conf,
                "observed": None if conf is None else max(0.0, conf - 0.04),
            }
        )
    return {
        "file": 'preds <b>"x"</b>.csv',
        "rows_read": 3002,
        "rows_scored": 3000,
        "rows_rejected": 2,
        "rejected": [{"row": 17, "reason": "label is NaN"}, {"row": 230, "reason": "probabilities do not sum to 1"}],
        "classes": 3,
        "prediction_columns": ["p_0", "p_1", "p_2"],
        "from_logits": False,
        "convention": "exact",
        "unit": "nats",
        "mean_loss": 0.590,
        "baseline_loss": 1.031,
        "accuracy": 0.81,
        "per_class": [
            {"class": c, "count": n, "mean_loss": loss, "precision": prec, "recall": rec, "predicted": pred}
            for c, n, loss, prec, rec, pred in zip(
                range(3), counts, [2.1, 0.41, 0.95], [0.5, 0.86, 0.71], [0.2, 0.9, 0.66], [12, 2384, 604], strict=True
            )
        ],
        "calibration": {"kind": "top label", "ece": 0.04, "mce": 0.04, "bins": bins},
        "loss_histogram": {
            "edges": list(np.linspace(0.0, 5.2, 27)),
            "counts": [
                900,
                700,
                400,
                300,
                200,
                150,
                100,
                60,
                40,
                30,
                25,
                20,
                15,
                12,
                10,
                8,
                6,
                5,
                4,
                3,
                3,
                2,
                2,
                1,
                1,
                1,
            ],
            "infinite": 3,
            "max_finite": 5.13,
        },
    }


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


@pytest.mark.slow
def test_the_report_says_what_an_analyst_needs():
    page = render({}, example_result(), generated="2026-01-02 03:04 UTC")
    text = " ".join(_parse(page).text)
    # metadata: date, version, file, columns, bins
    assert "2026-01-02 03:04 UTC" in text
    assert ce.__version__ in text
    assert 'preds <b>"x"</b>.csv' in text  # shown as text ...
    assert "<b>" not in _parse(page).tags  # ... never as markup
    assert "p_0, p_1, p_2" in text
    assert "10 equal-width bins" in text
    assert "3,002 read, 3,000 scored, 2 rejected" in text
    # the baseline and the improvement over it, with units
    assert "1.031 nats" in text
    assert "0.59 nats" in text
    assert "0.441 nats" in text
    assert "42.8 % lower" in text
    # per class: precision, recall and loss, no "accuracy" column standing in for recall
    assert "precision" in text
    assert "recall" in text
    assert re.search(r"50\.0 %.*20\.0 %.*2\.1 nats", text)
    # calibration bins with their counts; how to read it
    assert "How to read this" in text
    assert "expected calibration error" in text.lower()
    assert "2,280" in text
    assert "29" in text
    assert "3 rows have an infinite loss" in text
    assert "label is NaN" in text
    assert page.count("data:image/svg+xml;base64,") == 3
    assert "<main>" in page
    assert "width=device-width" in page


def test_units_are_on_every_loss_in_bits_too():
    result = example_result()
    result["unit"] = "bits"
    text = " ".join(_parse(render({}, result, generated="now")).text)
    assert "mean loss (bits)" in text
    assert "1.031 bits" in text
    assert "nats" not in text


def test_a_model_worse_than_the_baseline_is_said_so():
    result = example_result()
    result["mean_loss"] = 1.2
    text = " ".join(_parse(render({}, result, generated="now")).text)
    assert "no better than the class frequencies" in text


def test_the_report_reads_older_results_without_the_new_fields():
    result = example_result()
    del result["baseline_loss"]
    result["loss_histogram"] = {"upper": 10.0, "counts": [5] * 20}
    for c in result["per_class"]:
        del c["precision"], c["recall"], c["predicted"]
    text = " ".join(_parse(render({}, result, generated="now")).text)
    assert "baseline" not in text.split("How to read this")[0]
    assert "—" in text


def test_the_histogram_runs_over_the_data_and_not_beyond():
    from matplotlib.figure import Figure

    from crossentropy import plot

    ax = plot.loss_histogram(example_result()["loss_histogram"], unit="nats", ax=Figure().add_subplot())
    assert ax.get_xlim() == pytest.approx((0.0, 5.2))
    assert ax.get_xlabel() == "per-row loss (nats)"
    assert any("3 rows with infinite loss" in t.get_text() for t in ax.texts)


def test_the_report_of_a_real_score(tmp_path):
    pytest.importorskip("pyarrow")
    from crossentropy.scoring import score_file

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) * 2
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    path = tmp_path / "preds.csv"
    lines = ["label,p_0,p_1,p_2"] + [f"{y},{a},{b},{c}" for y, (a, b, c) in zip(labels, p.tolist(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    result = score_file(str(path))
    page = render({}, result)
    text = " ".join(_parse(page).text)
    assert f"{result['mean_loss']:.4g} nats" in text
    assert "preds.csv" in text
    images = re.findall(r"base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) >= 2
    assert all(b"<svg" in base64.b64decode(i)[:400] for i in images)
    if "baseline_loss" in result:
        assert math.isfinite(result["baseline_loss"])
        assert f"{result['baseline_loss']:.4g} nats" in text


def _binary_score(tmp_path, power):
    pytest.importorskip("pyarrow")
    from crossentropy.scoring import score_file

    rng = np.random.default_rng(2)
    truth = 1 / (1 + np.exp(-2 * rng.normal(size=2000)))
    labels = (rng.uniform(size=2000) < truth).astype(int)
    model = truth**power / (truth**power + (1 - truth) ** power)
    path = tmp_path / "binary.csv"
    path.write_text("label,p\n" + "".join(f"{y},{p!r}\n" for y, p in zip(labels, model.tolist(), strict=True)))
    return score_file(str(path), calibrate="temperature", worst_rows=5)


def test_the_report_leads_with_the_verdict_and_the_fix(tmp_path):
    result = _binary_score(tmp_path, power=3.0)
    page = render({}, result, generated="now")
    text = " ".join("".join(_parse(page).text).split())
    c = result["calibration"]
    assert c["verdict"] == "overconfident"
    lead = text.split("mean loss")[0]  # everything before the first card
    assert "Calibration: overconfident: observed frequency of the predicted class below its probability" in lead
    assert (
        f"A temperature of {c['temperature']:.4g} would lower the loss from {c['mean_loss_before']:.4g} nats to "
        f"{c['mean_loss_after']:.4g} nats"
    ) in lead
    assert text.index("About this report") > text.index("How to read this") > text.index("largest loss")
    assert page.index('class="card warn"') < page.index("<footer>")
    assert "max(0.01, 3 √(c(1 − c)/n))" in text  # the rule, in the how-to-read
    worst = result["worst_rows"]
    assert f"{worst[0]['row']:,}" in text.split("rows with the largest loss")[-1]


def test_a_model_no_temperature_helps_is_said_so(tmp_path):
    result = _binary_score(tmp_path, power=1.0)
    result["calibration"]["mean_loss_after"] = result["calibration"]["mean_loss_before"] + 0.001
    text = " ".join(" ".join(_parse(render({}, result, generated="now")).text).split())
    assert "No temperature lowers the loss:" in text
    assert "would lower" not in text
