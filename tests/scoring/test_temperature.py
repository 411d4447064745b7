"""The temperature step of the scorer: cross-fitted or held out, recomputed here by hand, for every layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from crossentropy.calibration import fit_temperature
from crossentropy.scoring import Layout, ScoreOptions, Scorer, score_file, temperature
from crossentropy.scoring.temperature import fold_of

sp = pytest.importorskip("scipy.special")


def _model(n=3000, k=3, seed=0, power=1.0):
    """Labels drawn from true probabilities, and the model's probabilities: the truth raised to ``power``."""
    rng = np.random.default_rng(seed)
    truth = sp.softmax(rng.normal(size=(n, k)) * 1.5, axis=1)
    labels = (truth.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    model = truth**power
    return labels, model / model.sum(axis=1, keepdims=True)


def _binary(n=3000, seed=1, power=1.0):
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-2 * rng.normal(size=n)))
    labels = (rng.uniform(size=n) < truth).astype(int)
    model = truth**power / (truth**power + (1 - truth) ** power)
    return labels, model


def _write(path, labels, probs):
    columns = [probs] if probs.ndim == 1 else list(probs.T)
    names = ["p"] if probs.ndim == 1 else [f"p_{j}" for j in range(probs.shape[1])]
    rows = [",".join(["label", *names])]
    rows += [",".join([str(y), *(repr(float(c[i])) for c in columns)]) for i, y in enumerate(labels)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _top_label_ece(labels, probs, bins=10):
    """The expected calibration error of the top label in equal-width bins, written out."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    return sum(
        (index == b).sum() / len(labels) * abs(correct[index == b].mean() - confidence[index == b].mean())
        for b in range(bins)
        if (index == b).any()
    )


def _by_hand(labels, probs, folds=5, seed=0):
    """Cross-fitting written out: each fold calibrated with the temperature fitted on the others."""
    fold = fold_of(np.arange(len(labels)), folds, seed)
    logp = np.log(probs)
    calibrated = np.empty_like(probs)
    temperatures = []
    for k in range(folds):
        train, test = fold != k, fold == k
        t = fit_temperature(labels[train], logits=logp[train])
        temperatures.append(t)
        calibrated[test] = sp.softmax(logp[test] / t, axis=1)
    loss = -sp.log_softmax(logp / np.array(temperatures)[fold][:, None], axis=1)[np.arange(len(labels)), labels]
    return temperatures, float(loss.mean()), _top_label_ece(labels, calibrated), calibrated


@pytest.mark.parametrize("power", [0.3, 1.0, 3.0], ids=["underconfident", "calibrated", "overconfident"])
def test_cross_fitting_equals_the_folds_written_out(tmp_path, power):
    labels, probs = _model(power=power)
    path = _write(tmp_path / "preds.csv", labels, probs)
    got = score_file(path, calibrate="temperature")["calibration"]
    temperatures, loss, ece, _ = _by_hand(labels, probs)
    assert got["method"] == "temperature"
    assert got["fitted_on"] == "5-fold cross-fitting on the scored rows"
    assert got["folds"] == 5
    assert got["temperature"] == pytest.approx(fit_temperature(labels, logits=np.log(probs)), rel=1e-12)
    assert got["fold_temperatures"] == pytest.approx(temperatures, rel=1e-12)
    assert got["mean_loss_before"] == pytest.approx(
        float(ce.sparse_categorical_cross_entropy(labels, probs)), rel=1e-12
    )
    assert got["ece_before"] == pytest.approx(_top_label_ece(labels, probs), rel=1e-12)
    assert got["mean_loss_after"] == pytest.approx(loss, rel=1e-12)
    assert got["ece_after"] == pytest.approx(ece, rel=1e-12)
    assert got["rows_left_out_of_fit"] == 0
    assert got["verdict_after"] == "well calibrated"


def test_the_temperature_undoes_a_power_and_lowers_the_loss(tmp_path):
    """p ** 0.3 needs T ~ 0.3 (sharpen), p ** 3 needs T ~ 3 (soften); both lose their excess loss."""
    for power, low, high in ((0.3, 0.25, 0.35), (3.0, 2.5, 3.5)):
        labels, probs = _model(power=power)
        got = score_file(_write(tmp_path / f"p{power}.csv", labels, probs), calibrate="temperature")
        c = got["calibration"]
        assert low < c["temperature"] < high
        assert c["mean_loss_after"] < c["mean_loss_before"] - 0.1
        assert c["ece_after"] < 0.03 < c["ece_before"]
        assert c["mean_loss_before"] == got["mean_loss"]
        assert c["ece_before"] == c["ece"]


@pytest.mark.parametrize(
    ("power", "verdict"), [(0.3, "underconfident"), (1.0, "well calibrated"), (3.0, "overconfident")]
)
@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_the_verdict_names_the_direction(tmp_path, power, verdict, kind):
    labels, probs = _model(power=power) if kind == "multiclass" else _binary(power=power)
    result = score_file(_write(tmp_path / "preds.csv", labels, probs), calibrate="temperature")
    calibration = result["calibration"]
    assert calibration["verdict"] == verdict
    assert calibration["verdict_after"] == "well calibrated"
    if verdict == "underconfident" and kind == "multiclass":
        assert calibration["verdict_reason"].startswith("observed frequency above confidence in")
    if verdict == "overconfident" and kind == "binary":
        assert calibration["verdict_reason"].startswith("observed frequency of the predicted class below its")
    readings = [b["reading"] for b in calibration["bins"] if b["count"]]
    assert set(readings) <= {"within", "over", "under"}
    assert all(b["reading"] is None for b in calibration["bins"] if not b["count"])


@pytest.mark.parametrize("kind", ["probabilities", "logits", "binary probabilities", "binary logits"])
def test_every_layout_is_calibrated_as_fit_temperature_says(tmp_path, kind):
    binary = kind.startswith("binary")
    labels, probs = _binary(n=800, power=2.0) if binary else _model(n=800, k=4, power=2.0)
    logits = np.log(probs) - np.log1p(-probs) if binary else np.log(probs) + 3.0  # shifted: softmax is unchanged
    given = logits if kind.endswith("logits") else probs
    path = _write(tmp_path / "preds.csv", labels, given)
    settings = {"logits": ["p*"]} if kind.endswith("logits") else {"probs": ["p*"]}
    got = score_file(path, calibrate="temperature", **settings)["calibration"]
    expected = fit_temperature(labels, logits=logits)
    assert got["temperature"] == pytest.approx(expected, rel=1e-10)
    fold = fold_of(np.arange(len(labels)), 5)
    per_row = np.empty(len(labels))
    for k in range(5):
        t = fit_temperature(labels[fold != k], logits=logits[fold != k])
        z = logits[fold == k] / t
        y = labels[fold == k]
        if binary:
            per_row[fold == k] = np.logaddexp(0, np.where(y == 1, -z, z))
        else:
            per_row[fold == k] = -sp.log_softmax(z, axis=1)[np.arange(len(y)), y]
    assert got["mean_loss_after"] == pytest.approx(per_row.mean(), rel=1e-10)


def test_a_named_convention_scores_the_calibrated_probabilities_as_its_library(tmp_path):
    labels, probs = _model(n=600, power=3.0, seed=4)
    path = _write(tmp_path / "preds.csv", labels, probs)
    got = score_file(path, calibrate="temperature", convention="keras")["calibration"]
    _, _, _, calibrated = _by_hand(labels, probs)
    expected = ce.sparse_categorical_cross_entropy(labels, calibrated, convention="keras")
    assert got["mean_loss_after"] == pytest.approx(float(expected), rel=1e-9)


def test_a_held_out_file_fits_and_the_scored_file_streams(tmp_path):
    labels, probs = _model(n=4000, power=3.0, seed=2)
    held = _write(tmp_path / "validation.csv", labels[:1500], probs[:1500])
    scored = _write(tmp_path / "test.csv", labels[1500:], probs[1500:])
    result = score_file(scored, calibrate="temperature", calibrate_on=held, batch_rows=300)
    c = result["calibration"]
    t = fit_temperature(labels[:1500], logits=np.log(probs[:1500]))
    assert c["temperature"] == pytest.approx(t, rel=1e-12)
    assert c["fitted_on"] == held
    assert c["fit_rows"] == 1500
    assert "folds" not in c
    after = sp.softmax(np.log(probs[1500:]) / t, axis=1)
    assert c["mean_loss_after"] == pytest.approx(
        float(ce.sparse_categorical_cross_entropy(labels[1500:], after)), rel=1e-12
    )
    assert c["ece_after"] == pytest.approx(_top_label_ece(labels[1500:], after), rel=1e-12)


def _same_calibration(a, b):
    """Equal, the compensated sums to the last bits (the fitted temperatures exactly: the rows are the same)."""
    assert a.keys() == b.keys()
    assert a["temperature"] == b["temperature"]
    assert a["fold_temperatures"] == b["fold_temperatures"]
    for key in ("ece", "mce", "mean_loss_before", "mean_loss_after", "ece_before", "ece_after"):
        assert a[key] == pytest.approx(b[key], rel=1e-13), key
    assert (a["verdict"], a["verdict_reason"], a["verdict_after"]) == (
        b["verdict"],
        b["verdict_reason"],
        b["verdict_after"],
    )


def test_pieces_and_batches_do_not_change_the_numbers(tmp_path):
    labels, probs = _model(n=2000, power=2.0, seed=3)
    path = _write(tmp_path / "preds.csv", labels, probs)
    one = score_file(path, calibrate="temperature", worst_rows=7)
    many = score_file(path, calibrate="temperature", worst_rows=7, batch_rows=97)
    _same_calibration(one["calibration"], many["calibration"])
    assert one["worst_rows"] == many["worst_rows"]
    # and scorers of pieces merged in order are the scorer of the whole
    options = ScoreOptions(calibrate="temperature", worst_rows=7)
    whole = Scorer(Layout(num_classes=3), options)
    whole.update(labels.astype(float), probs)
    merged = Scorer(Layout(num_classes=3), options)
    for a, b in ((0, 1), (1, 900), (900, 2000)):
        part = Scorer(Layout(num_classes=3), options, origin=a)
        part.update(labels[a:b].astype(float), probs[a:b])
        merged.merge(part)
    _same_calibration(merged.result()["calibration"], whole.result()["calibration"])
    assert merged.result()["worst_rows"] == whole.result()["worst_rows"]


def test_rows_whose_label_has_probability_0_are_left_out_and_stay_infinite(tmp_path):
    labels, probs = _model(n=500, power=2.0, seed=5)
    probs[[3, 7]] = 0.0
    probs[3, (labels[3] + 1) % 3] = 1.0
    probs[7, (labels[7] + 1) % 3] = 1.0
    path = _write(tmp_path / "preds.csv", labels, probs)
    c = score_file(path, calibrate="temperature")["calibration"]
    keep = np.ones(500, dtype=bool)
    keep[[3, 7]] = False
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    assert c["rows_left_out_of_fit"] == 2
    assert c["temperature"] == pytest.approx(fit_temperature(labels[keep], logits=logp[keep]), rel=1e-12)
    assert c["mean_loss_before"] == math.inf
    assert c["mean_loss_after"] == math.inf
    clipped = score_file(path, calibrate="temperature", convention="sklearn")["calibration"]
    assert math.isfinite(clipped["mean_loss_after"])
    assert clipped["mean_loss_after"] < clipped["mean_loss_before"]


def test_weights_weigh_the_fit_and_the_after(tmp_path):
    labels, probs = _model(n=700, power=2.0, seed=6)
    w = np.random.default_rng(0).uniform(0.2, 3.0, 700)
    w[:50] = 0.0
    path = tmp_path / "preds.csv"
    rows = ["label,w,p_0,p_1,p_2"] + [
        ",".join(map(repr, [int(y), *r])) for y, r in zip(labels, np.column_stack([w, probs]).tolist(), strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    c = score_file(str(path), probs=["p_*"], sample_weight="w", calibrate="temperature")["calibration"]
    logp = np.log(probs)
    assert c["temperature"] == pytest.approx(fit_temperature(labels, logits=logp, sample_weight=w), rel=1e-12)
    fold = fold_of(np.arange(700), 5)
    loss = np.empty(700)
    for k in range(5):
        t = fit_temperature(labels[fold != k], logits=logp[fold != k], sample_weight=w[fold != k])
        loss[fold == k] = -sp.log_softmax(logp[fold == k] / t, axis=1)[np.arange((fold == k).sum()), labels[fold == k]]
    assert c["mean_loss_after"] == pytest.approx(float((w * loss).sum() / w.sum()), rel=1e-12)


def test_the_folds_depend_on_the_row_and_the_seed_only():
    whole = fold_of(np.arange(100_000), 5)
    assert np.array_equal(fold_of(np.arange(500, 1000), 5), whole[500:1000])
    assert abs(np.bincount(whole) / 100_000 - 0.2).max() < 0.01
    assert (fold_of(np.arange(1000), 5, seed=1) != whole[:1000]).mean() > 0.7
    assert (whole[1:] == whole[:-1]).mean() == pytest.approx(0.2, abs=0.01)  # neighbours are not in one fold


def test_bad_calibration_options_name_the_option(tmp_path):
    labels, probs = _model(n=50)
    path = _write(tmp_path / "preds.csv", labels, probs)
    with pytest.raises(ce.InputError, match="calibrate must be None or 'temperature'"):
        score_file(path, calibrate="platt")
    with pytest.raises(ce.InputError, match=r"folds must be in \[2, 100\]"):
        score_file(path, calibrate="temperature", folds=1)
    with pytest.raises(ce.InputError, match="worst_rows must be in"):
        score_file(path, worst_rows=-1)
    binary_labels, binary = _binary(n=40)
    other = _write(tmp_path / "binary.csv", binary_labels, binary)
    with pytest.raises(
        ce.InputError, match=r"calibrate_on: .*binary.csv has a binary model, but the scored data has 3"
    ):
        score_file(path, calibrate="temperature", calibrate_on=other)
    with pytest.raises(ce.InputError, match="calibrate_on is read by the engines"):
        Scorer(Layout(num_classes=3), ScoreOptions(calibrate="temperature", calibrate_on=other))


def test_cross_fitting_stops_before_memory_runs_out(tmp_path, monkeypatch):
    labels, probs = _model(n=400)
    path = _write(tmp_path / "preds.csv", labels, probs)
    held = _write(tmp_path / "held.csv", labels[:100], probs[:100])
    monkeypatch.setattr(temperature, "MAX_VALUES", 600)
    with pytest.raises(ce.InputError, match=r"at most 600 values .*--calibrate-on FILE"):
        score_file(path, calibrate="temperature", batch_rows=100)
    # a held-out sample small enough is held; the scored rows then stream, whatever their number
    streamed = score_file(path, calibrate="temperature", calibrate_on=held, batch_rows=100)["calibration"]
    assert streamed["fit_rows"] == 100


def test_the_worst_rows_are_the_largest_losses_with_their_row_and_label(tmp_path):
    labels, probs = _model(n=1000, power=2.0, seed=8)
    probs[[10, 20]] = probs[[30, 30]]  # ties: the earlier row comes first
    labels[[10, 20]] = labels[30]
    path = _write(tmp_path / "preds.csv", labels, probs)
    worst = score_file(path, worst_rows=12, batch_rows=64)["worst_rows"]
    loss = -np.log(probs[np.arange(1000), labels])
    order = np.lexsort((np.arange(1000), -loss))[:12]
    assert [w["row"] for w in worst] == [int(i) + 1 for i in order]
    assert [w["label"] for w in worst] == labels[order].tolist()
    assert [w["loss"] for w in worst] == pytest.approx(loss[order].tolist(), rel=1e-12)
    assert [w["label_probability"] for w in worst] == pytest.approx(probs[order, labels[order]].tolist())
    assert [w["predicted"] for w in worst] == probs[order].argmax(axis=1).tolist()
    assert "worst_rows" not in score_file(path)
