"""The statistics merge themselves: a statistic added to the scorer survives the merges of both engines."""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce
from crossentropy.scoring import STATISTICS, Layout, Rows, ScoreOptions, Scorer, Statistic, scorer
from crossentropy.scoring.statistics import Sum


class Brier(Statistic):
    """The Brier score (mean squared error of the probabilities against the one-hot label): a statistic of a user."""

    name = "brier"

    def __init__(self, options, layout):
        super().__init__(options, layout)
        self.total = Sum()
        self.rows = 0

    def update(self, rows: Rows) -> None:
        probs = rows.probabilities.reshape(rows.classes.shape[0], -1)
        if self.layout.binary:
            probs = np.column_stack([1 - probs[:, 0], probs[:, 0]])
        onehot = np.eye(self.layout.num_classes)[rows.classes]
        self.total.add(((probs - onehot) ** 2).sum())
        self.rows += rows.classes.shape[0]

    def merge(self, other):
        self.total.merge(other.total)
        self.rows += other.rows

    def summary(self, partials):
        return {"brier": float(self.total.value) / self.rows if self.rows else None}


@pytest.fixture
def with_brier(monkeypatch):
    monkeypatch.setattr(scorer, "STATISTICS", (*STATISTICS, Brier))


def _data(n=3000, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, k))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return rng.integers(0, k, n), probs


def _brier(labels, probs):
    return float(((probs - np.eye(probs.shape[1])[labels]) ** 2).sum(1).mean())


def test_a_new_statistic_is_kept_through_the_merge_of_pieces(with_brier):
    labels, probs = _data()
    layout = Layout(num_classes=4)
    total = Scorer(layout)
    for a in range(0, len(labels), 700):
        part = Scorer(layout, origin=a)
        part.update(labels[a : a + 700].astype(float), probs[a : a + 700])
        total.merge(part)
    assert set(total.statistics) == {
        "loss",
        "classes",
        "calibration",
        "loss_histogram",
        "worst_rows",
        "bootstrap",
        "temperature",
        "brier",
    }
    assert total.result()["brier"] == pytest.approx(_brier(labels, probs), rel=1e-12)


def test_a_new_statistic_survives_the_dask_merge(with_brier, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pytest.importorskip("dask.dataframe")
    from crossentropy.dask import score

    labels, probs = _data()
    frame = pd.DataFrame({"label": labels, **{f"p_{j}": probs[:, j] for j in range(4)}})
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 5)):
        frame.iloc[rows].to_parquet(tmp_path / f"part-{i}.parquet", row_group_size=200)
    expected = _brier(labels, probs)
    local = ce.scoring.score_file(str(tmp_path), probs=["p_*"])
    on_dask = score(str(tmp_path), probs=["p_*"], partition_bytes=1, scheduler="synchronous")
    assert local["brier"] == pytest.approx(expected, rel=1e-12)
    assert on_dask["brier"] == pytest.approx(expected, rel=1e-12)
    assert on_dask["mean_loss"] == pytest.approx(local["mean_loss"], rel=1e-12)


def test_every_statistic_of_a_scorer_is_merged():
    """A merged scorer equals the scorer of all the rows in every statistic's every field."""
    labels, probs = _data(n=1000, seed=3)
    options = ScoreOptions(bootstrap=7, seed=2, bins=5)
    whole = Scorer(Layout(num_classes=4), options)
    whole.update(labels.astype(float), probs)
    merged = Scorer(Layout(num_classes=4), options)
    for a in (0, 1, 500, 999):
        b = {0: 1, 1: 500, 500: 999, 999: 1000}[a]
        part = Scorer(Layout(num_classes=4), options, origin=a)
        part.update(labels[a:b].astype(float), probs[a:b])
        merged.merge(part)
    for name, statistic in whole.statistics.items():
        other = merged.statistics[name]
        for field, value in vars(statistic).items():
            got = getattr(other, field)
            if isinstance(value, Sum):
                np.testing.assert_allclose(got.value, value.value, rtol=1e-13, err_msg=f"{name}.{field}")
            elif isinstance(value, np.ndarray):
                np.testing.assert_array_equal(got, value, err_msg=f"{name}.{field}")
            else:
                assert got == value, f"{name}.{field}"


def test_scorers_of_other_statistics_or_options_are_not_merged(monkeypatch):
    plain = Scorer(Layout(num_classes=2))
    with pytest.raises(ce.InputError, match="same options"):
        plain.merge(Scorer(Layout(num_classes=2), ScoreOptions(bins=3)))
    monkeypatch.setattr(scorer, "STATISTICS", (*STATISTICS, Brier))
    with pytest.raises(ce.InputError, match="same statistics"):
        plain.merge(Scorer(Layout(num_classes=2)))
