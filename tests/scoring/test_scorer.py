"""The scorer's partials: merging, the histogram, the baseline, per-class figures, tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossentropy.scoring import Columns, Layout, ScoreOptions, Scorer
from optional import optional

sp = optional("scipy.special")


def _data(n=3000, k=4, seed=0):
    rng = np.random.default_rng(seed)
    probs = sp.softmax(rng.normal(0, 2, (n, k)), axis=-1)
    labels = rng.integers(0, k, n).astype(float)
    weights = rng.uniform(0.5, 2, n)
    return labels, probs, weights


def _score(labels, probs, weights, cuts, **options):
    """One scorer per piece (each keyed by its first row), merged in order."""
    layout, opts = Layout(num_classes=probs.shape[1]), ScoreOptions(**options)
    total = Scorer(layout, opts)
    for a, b in zip([0, *cuts], [*cuts, len(labels)], strict=True):
        part = Scorer(layout, opts, origin=a)
        for c in range(a, b, 500):
            d = min(c + 500, b)
            part.update(labels[c:d], probs[c:d], weights[c:d], columns=Columns(predictions=("p0", "p1", "p2", "p3")))
        total.merge(part)
    return total.result()


def test_merged_partials_equal_one_pass_for_every_statistic():
    labels, probs, weights = _data()
    labels[[7, 1500, 2999]] = [9, np.nan, 1.5]
    probs[[100, 2001]] = np.nan
    whole = _score(labels, probs, weights, [], bootstrap=30, seed=5)
    for cuts in ([1], [999, 1000, 2998], [250 * i for i in range(1, 12)]):
        split = _score(labels, probs, weights, cuts, bootstrap=30, seed=5)
        assert split["rejected"] == whole["rejected"]
        assert [r["row"] for r in split["rejected"]] == [8, 101, 1501, 2002, 3000]
        assert split["rejected_reasons"] == whole["rejected_reasons"]
        assert split["loss_histogram"] == whole["loss_histogram"]
        for x, y in zip(split["per_class"], whole["per_class"], strict=True):
            sums = ("mean_loss", "weight", "loss_sum")  # sums of floats: equal to the last bits but for their order
            assert x == {**y, **{k: pytest.approx(y[k], rel=1e-13) for k in sums}}
        for key in ("mean_loss", "baseline_loss", "total_weight", "accuracy"):
            assert split[key] == pytest.approx(whole[key], rel=1e-13), key
        assert split["bootstrap"]["ci95"] == pytest.approx(whole["bootstrap"]["ci95"], rel=1e-13)
        assert [b["count"] for b in split["calibration"]["bins"]] == [b["count"] for b in whole["calibration"]["bins"]]


def test_the_histogram_spans_the_data_and_counts_every_row():
    rng = np.random.default_rng(1)
    truth = rng.uniform(np.exp(-5.0), 1, 4000)  # per-row losses -log p in (0, 5)
    scorer = Scorer(Layout(num_classes=2, binary=True))
    scorer.update(np.ones(4000), truth)
    scorer.update(np.ones(3), np.array([0.0, 0.0, 1.0]))
    histogram = scorer.result()["loss_histogram"]
    edges, counts = histogram["edges"], histogram["counts"]
    top = float((-np.log(truth)).max())
    assert histogram["max_finite"] == pytest.approx(top, rel=1e-15)
    assert histogram["infinite"] == 2
    assert len(counts) == len(edges) - 1 <= 50
    assert edges[0] == 0
    assert edges[-2] <= top < edges[-1] <= top + (edges[1] - edges[0])
    assert edges[-1] < 5.2
    assert sum(counts) == 4001
    expected, _ = np.histogram(np.concatenate([-np.log(truth), [0.0]]), bins=edges)
    assert counts == expected.tolist()


def test_the_histogram_of_huge_logit_losses_and_of_a_base_below_one():
    scorer = Scorer(Layout(num_classes=2, binary=True, from_logits=True))
    scorer.update(np.array([1.0, 1.0, 0.0]), np.array([-5000.0, 2.0, -1.0]))
    histogram = scorer.result()["loss_histogram"]
    assert histogram["max_finite"] == pytest.approx(5000.0)
    assert histogram["edges"][-2] == 1024.0
    assert 5000.0 < histogram["edges"][-1] < 5000.001
    assert histogram["counts"][-1] == 1
    assert sum(histogram["counts"]) == 3
    negative = Scorer(Layout(num_classes=2, binary=True), ScoreOptions(base=0.5))
    negative.update(np.array([1.0, 1.0]), np.array([0.5, 0.25]))
    histogram = negative.result()["loss_histogram"]
    assert histogram["max_finite"] == pytest.approx(-2.0)
    assert histogram["edges"][-1] == 0.0
    assert histogram["edges"] == sorted(histogram["edges"])
    assert sum(histogram["counts"]) == 2


def test_baseline_is_the_loss_of_the_weighted_class_frequencies():
    labels, probs, weights = _data(n=500, seed=2)
    result = _score(labels, probs, weights, [])
    frequency = np.bincount(labels.astype(int), weights=weights, minlength=4) / weights.sum()
    expected = float((weights * -np.log(frequency[labels.astype(int)])).sum() / weights.sum())
    assert result["baseline_loss"] == pytest.approx(expected, rel=1e-13)
    keras = _score(labels, probs, weights, [], convention="keras")
    assert keras["baseline_loss"] == pytest.approx(expected * weights.sum() / 500, rel=1e-13)
    bits = _score(labels, probs, weights, [], base=2)
    assert bits["baseline_loss"] == pytest.approx(expected / math.log(2), rel=1e-13)
    empty = Scorer(Layout(num_classes=3)).result()
    assert empty["baseline_loss"] is None
    assert empty["loss_histogram"] == {"edges": [], "counts": [], "infinite": 0, "max_finite": None}


def test_per_class_precision_recall_and_predicted():
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    labels = np.array([0, 1, 1, 1, 2.0])
    scorer = Scorer(Layout(num_classes=3))
    scorer.update(labels, probs)
    per_class = scorer.result()["per_class"]
    assert [c["count"] for c in per_class] == [1, 3, 1]
    assert [c["predicted"] for c in per_class] == [3, 2, 0]
    assert [c["recall"] for c in per_class] == [1.0, pytest.approx(2 / 3), 0.0]
    assert [c["precision"] for c in per_class] == [pytest.approx(1 / 3), 1.0, None]
    assert [c["mean_loss"] for c in per_class] == pytest.approx(
        [-np.log(0.7), -(np.log(0.3) + np.log(0.8) + np.log(0.7)) / 3, -np.log(0.4)]
    )
    assert all("accuracy" not in c for c in per_class)


def test_tolerances_follow_the_stored_precision():
    checks = Scorer(Layout(num_classes=3)).checks
    float32_rows = np.array([[0.2, 0.3, 0.5 + 2.123456789e-5]])
    assert checks.tolerance(float32_rows, np.float32) == pytest.approx(np.sqrt(np.finfo(np.float32).eps))
    assert checks.tolerance(float32_rows, np.float64)[0] == pytest.approx(np.sqrt(np.finfo(np.float64).eps))
    six = np.array([[0.333333, 0.333333, 0.333333]])
    assert checks.tolerance(six)[0] == pytest.approx(3 * 0.5e-6)
    assert checks.tolerance(np.array([[0.5, 0.4, 0.0]]))[0] == pytest.approx(np.sqrt(np.finfo(float).eps))
    assert Scorer(Layout(num_classes=3), ScoreOptions(atol=0.25)).checks.tolerance(six) == 0.25


def test_renormalize_rescales_rows_and_rejects_empty_ones():
    scorer = Scorer(Layout(num_classes=2), ScoreOptions(renormalize=True))
    scorer.update(np.array([0, 1, 0.0]), np.array([[2.0, 2.0], [1.0, 3.0], [0.0, 0.0]]))
    result = scorer.result()
    assert result["rows_scored"] == 2
    assert result["mean_loss"] == pytest.approx((np.log(2) - np.log(0.75)) / 2)
    assert result["rejected"][0]["reason"] == "probabilities sum to 0"
