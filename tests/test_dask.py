"""Scoring on Dask: a LocalCluster of 2 workers over partitioned Parquet, and a killed worker."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import crossentropy as ce  # noqa: E402
from crossentropy import dask as ce_dask  # noqa: E402
from crossentropy._scoring import score_file  # noqa: E402
from crossentropy.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    n, k = 60_000, 5
    logits = rng.normal(0, 2, (n, k))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    frame = pd.DataFrame(
        {"label": rng.integers(0, k, n), "w": rng.uniform(0.5, 2, n), **{f"p_{j}": probs[:, j] for j in range(k)}}
    )
    directory = tmp_path_factory.mktemp("parts")
    for i, part in enumerate(np.array_split(np.arange(n), 6)):
        frame.iloc[part].to_parquet(directory / f"part-{i}.parquet")
    single = tmp_path_factory.mktemp("single") / "all.parquet"
    frame.to_parquet(single)
    return directory, single, frame


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        yield c, client


def _same(a, b):
    assert a["rows_scored"] == b["rows_scored"]
    assert a["mean_loss"] == pytest.approx(b["mean_loss"], rel=1e-12)
    assert a["accuracy"] == b["accuracy"]
    for x, y in zip(a["per_class"], b["per_class"], strict=True):
        assert x["count"] == y["count"]
        assert x["mean_loss"] == pytest.approx(y["mean_loss"], rel=1e-12)
    for x, y in zip(a["calibration"]["bins"], b["calibration"]["bins"], strict=True):
        assert x["count"] == y["count"]


def test_dask_equals_single_process(dataset, cluster):
    directory, single, _ = dataset
    for convention in ("exact", "keras"):
        expected = score_file(str(single), probs=["p_*"], sample_weight="w", convention=convention)
        got = ce_dask.score(str(directory), probs=["p_*"], sample_weight="w", convention=convention)
        _same(got, expected)


def test_killed_worker_is_retried_and_the_result_is_unchanged(dataset, cluster):
    directory, single, _ = dataset
    _, client = cluster
    expected = score_file(str(single), probs=["p_*"])
    data = ce_dask.read(str(directory)).map_partitions(_slow, meta=ce_dask.read(str(directory))._meta)

    def kill_one():
        time.sleep(1.0)
        workers = list(client.scheduler_info()["workers"])
        client.run(os._exit, 1, workers=workers[:1])

    killer = threading.Thread(target=kill_one)
    killer.start()
    got = ce_dask.score(data, probs=["p_*"])
    killer.join()
    _same(got, expected)


def _slow(frame):
    time.sleep(0.5)
    return frame


def test_dask_arrays_through_the_array_api_functions():
    da = pytest.importorskip("dask.array")
    x = np.random.default_rng(1).normal(size=(200, 6))
    t = np.random.default_rng(2).integers(0, 6, 200)
    got = ce.sparse_categorical_cross_entropy(
        da.from_array(t, chunks=50), da.from_array(x, chunks=50), from_logits=True
    )
    assert isinstance(got, da.Array)
    assert float(got) == pytest.approx(float(ce.sparse_categorical_cross_entropy(t, x, from_logits=True)), rel=1e-14)


def test_cli_engine_dask(dataset, capsys, cluster):
    directory, single, _ = dataset
    c, _ = cluster
    assert (
        main(
            [
                "score",
                str(directory),
                "--probs",
                "p_*",
                "--engine",
                "dask",
                "--scheduler",
                c.scheduler_address,
                "--per-class",
                "--calibration",
                "--format",
                "json",
            ]
        )
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    _same(got, score_file(str(single), probs=["p_*"]))
    assert main(["score", str(directory / "missing"), "--engine", "dask", "--scheduler", c.scheduler_address]) == 2
    assert "no such file" in capsys.readouterr().err
