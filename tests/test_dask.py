"""Scoring on Dask: the same partials as one process, for any partitioning; a killed worker; the CLI."""

from __future__ import annotations

import contextlib
import json
import math
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
from crossentropy.cli import main  # noqa: E402
from crossentropy.io import open_table  # noqa: E402
from crossentropy.scoring import poisson_weights, score_file  # noqa: E402

pytestmark = pytest.mark.slow  # local Dask clusters of worker processes

N, K = 60_000, 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (N, K))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    frame = pd.DataFrame(
        {"label": rng.integers(0, K, N), "w": rng.uniform(0.5, 2, N), **{f"p_{j}": probs[:, j] for j in range(K)}}
    )
    directory = tmp_path_factory.mktemp("parts")
    for i, part in enumerate(np.array_split(np.arange(N), 6)):
        frame.iloc[part].to_parquet(directory / f"part-{i}.parquet")
    single = tmp_path_factory.mktemp("single") / "all.parquet"
    frame.to_parquet(single, row_group_size=N // 7 + 1)
    text = frame.copy()
    text.loc[[5, 17_000, 17_001, 43_210], "p_0"] = np.nan
    text.loc[29_999, "label"] = K
    csv = tmp_path_factory.mktemp("csv") / "all.csv"
    text.to_csv(csv, index=False)
    return directory, single, csv, frame


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        yield c, client


def _close(a, b, rel):
    """``a`` equals ``b`` within ``rel``; a missing value (None: an empty class or bin has no mean) only equals None.

    pytest.approx(None) is an error since pytest 9.
    """
    return a is None if b is None else a == pytest.approx(b, rel=rel)


def _same(a, b, *, rel=1e-12):
    for key in ("rows_read", "rows_scored", "rows_rejected", "rejected", "rejected_reasons", "classes"):
        assert a[key] == b[key], key
    for key in ("mean_loss", "sum_loss", "baseline_loss", "accuracy", "total_weight"):
        assert _close(a[key], b[key], rel), key
    for x, y in zip(a["per_class"], b["per_class"], strict=True):
        assert (x["count"], x["predicted"], x["recall"], x["precision"]) == (
            y["count"],
            y["predicted"],
            y["recall"],
            y["precision"],
        )
        assert _close(x["mean_loss"], y["mean_loss"], rel), x
    assert _close(a["calibration"]["ece"], b["calibration"]["ece"], rel)
    for x, y in zip(a["calibration"]["bins"], b["calibration"]["bins"], strict=True):
        assert x["count"] == y["count"]
        assert _close(x["confidence"], y["confidence"], rel), x
        assert _close(x["observed"], y["observed"], rel), x
    assert a["loss_histogram"] == b["loss_histogram"]
    if "bootstrap" in b:
        assert _close(a["bootstrap"]["ci95"], b["bootstrap"]["ci95"], rel)
        assert _close(a["bootstrap"]["std"], b["bootstrap"]["std"], rel)


def _partition_bytes(path, parts):
    """A piece size that cuts ``path`` into ``parts`` pieces (Parquet: whole row groups, 7 in the fixture)."""
    if parts == 1:
        return 1 << 40
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        largest = max(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        return 1 if parts == meta.num_row_groups else largest * -(-meta.num_row_groups // parts)
    return -(-open_table(str(path)).size_bytes // parts)


@pytest.mark.parametrize("parts", [1, 2, 7])
def test_both_engines_agree_for_1_2_and_7_partitions(dataset, parts):
    _, single, csv, _ = dataset
    for path, extra in ((single, {"sample_weight": "w"}), (csv, {"on_bad_row": "skip"})):
        target = _partition_bytes(path, parts)
        assert len(open_table(str(path)).split(target)) == parts
        for convention in ("exact", "keras"):
            expected = score_file(str(path), probs=["p_*"], convention=convention, bootstrap=50, seed=3, **extra)
            got = ce_dask.score(
                str(path),
                probs=["p_*"],
                convention=convention,
                bootstrap=50,
                seed=3,
                partition_bytes=target,
                scheduler="synchronous",
                **extra,
            )
            _same(got, expected)


def _same_temperature(a, b, *, rel=1e-12):
    """The temperature step: the same fits (the same rows in the same order) and the same before and after."""
    x, y = a["calibration"], b["calibration"]
    for key in ("method", "fitted_on", "folds", "rows_left_out_of_fit", "verdict", "verdict_after", "fit_rows"):
        assert x.get(key) == y.get(key), key
    numbers = [x[k] for k in ("temperature", "mean_loss_before", "mean_loss_after", "ece_before", "ece_after")]
    others = [y[k] for k in ("temperature", "mean_loss_before", "mean_loss_after", "ece_before", "ece_after")]
    numbers += x.get("fold_temperatures", [])
    others += y.get("fold_temperatures", [])
    assert len(numbers) == len(others)
    for u, v in zip(numbers, others, strict=True):  # a temperature may be "inf" (JSON): labels random here
        assert u == v if isinstance(v, str) or math.isinf(v) else u == pytest.approx(v, rel=rel)
    assert a["worst_rows"] == b["worst_rows"]


@pytest.fixture(scope="module")
def overconfident(tmp_path_factory):
    """A model whose probabilities are the truth's cubed (so T is near 3), as Parquet and CSV, and a held-out file."""
    rng = np.random.default_rng(5)
    n = 20_000
    logits = rng.normal(0, 1.5, (n, K))
    truth = np.exp(logits - logits.max(1, keepdims=True))
    truth /= truth.sum(1, keepdims=True)
    labels = (truth.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    model = truth**3 / (truth**3).sum(1, keepdims=True)
    frame = pd.DataFrame({"label": labels, "w": rng.uniform(0.5, 2, n), **{f"p_{j}": model[:, j] for j in range(K)}})
    directory = tmp_path_factory.mktemp("overconfident")
    frame.iloc[:15_000].to_parquet(directory / "scored.parquet", row_group_size=15_000 // 7 + 1)
    frame.iloc[:15_000].to_csv(directory / "scored.csv", index=False)
    frame.iloc[15_000:].to_parquet(directory / "held.parquet")
    return directory


@pytest.mark.parametrize("parts", [2, 7])
def test_the_temperature_and_the_worst_rows_are_the_same_on_dask(overconfident, parts):
    """Cross-fitted (folds keyed by the row's index: a CSV's pieces are counted first) and held out."""
    held = overconfident / "held.parquet"
    for name, extra in (("scored.parquet", {"sample_weight": "w"}), ("scored.csv", {})):
        path = overconfident / name
        target = _partition_bytes(path, parts)
        assert len(open_table(str(path)).split(target)) == parts
        for calibration in ({}, {"calibrate_on": str(held)}):
            settings = {"probs": ["p_*"], "calibrate": "temperature", "worst_rows": 6, **calibration, **extra}
            expected = score_file(str(path), **settings)
            assert 2.5 < expected["calibration"]["temperature"] < 3.5
            got = ce_dask.score(str(path), partition_bytes=target, scheduler="synchronous", **settings)
            assert got["mean_loss"] == pytest.approx(expected["mean_loss"], rel=1e-12)
            _same_temperature(got, expected)


def test_the_csv_rejected_rows_keep_their_lines_across_pieces(dataset):
    _, _, csv, _ = dataset
    got = ce_dask.score(
        str(csv), probs=["p_*"], on_bad_row="skip", partition_bytes=_partition_bytes(csv, 7), scheduler="synchronous"
    )
    assert [(r["row"], r["line"], r["reason"]) for r in got["rejected"]] == [
        (6, 7, "missing value"),  # pandas writes NaN as an empty cell
        (17_001, 17_002, "missing value"),
        (17_002, 17_003, "missing value"),
        (30_000, 30_001, "label is outside [0, 5)"),
        (43_211, 43_212, "missing value"),
    ]
    with pytest.raises(ce.InputError, match=r"all.csv: line 7, column 'p_0': missing value"):
        ce_dask.score(str(csv), probs=["p_*"], partition_bytes=_partition_bytes(csv, 7), scheduler="synchronous")


def test_bootstrap_weights_depend_only_on_the_row_index():
    whole = poisson_weights(11, 1000, 5000, 7)
    pieces = np.concatenate([poisson_weights(11, 1000 + a, b - a, 7) for a, b in ((0, 1), (1, 1234), (1234, 5000))])
    assert np.array_equal(whole, pieces)
    assert whole.mean() == pytest.approx(1.0, abs=0.02)
    assert whole.var() == pytest.approx(1.0, abs=0.05)
    assert not np.array_equal(whole, poisson_weights(12, 1000, 5000, 7))


def test_dask_on_a_cluster_equals_single_process(dataset, cluster):
    directory, single, _, _ = dataset
    for convention in ("exact", "keras"):
        expected = score_file(str(single), probs=["p_*"], sample_weight="w", convention=convention)
        got = ce_dask.score(str(directory), probs=["p_*"], sample_weight="w", convention=convention)
        _same(got, expected)
    seen = []
    got = ce_dask.score(str(directory), probs=["p_*"], progress=lambda rows, done: seen.append((rows, done)))
    assert len(seen) == 6
    assert seen[-1] == (N, pytest.approx(1.0))
    c, _ = cluster
    with distributed.Client(c.scheduler_address, set_as_default=False) as other:
        _same(ce_dask.score(str(directory), probs=["p_*"], scheduler=other), score_file(str(single), probs=["p_*"]))


def test_directories_globs_and_urls_for_both_engines(dataset, tmp_path):
    import fsspec

    directory, single, _, _ = dataset
    expected = score_file(str(single), probs=["p_*"])
    memory = fsspec.filesystem("memory")
    for part in sorted(directory.iterdir()):
        memory.pipe(f"/ce-test/{part.name}", part.read_bytes())
    for source in (str(directory), str(directory / "part-*.parquet"), f"file://{directory}", "memory://ce-test"):
        _same(score_file(source, probs=["p_*"]), expected)
        _same(ce_dask.score(source, probs=["p_*"], scheduler="synchronous"), expected)


def test_killed_worker_is_retried_and_the_result_is_unchanged(dataset, cluster):
    directory, single, _, _ = dataset
    _, client = cluster
    expected = score_file(str(single), probs=["p_*"])
    frame = dd.read_parquet(str(directory))
    data = frame.map_partitions(_slow, meta=frame._meta)

    def kill_one():
        time.sleep(1.0)
        workers = list(client.scheduler_info()["workers"])
        with contextlib.suppress(distributed.comm.core.CommClosedError, OSError):
            client.run(os._exit, 1, workers=workers[:1])  # the worker dies before it can answer

    killer = threading.Thread(target=kill_one)
    killer.start()
    got = ce_dask.score(data, probs=["p_*"], bootstrap=20)
    killer.join()
    _same(got, score_file(str(single), probs=["p_*"], bootstrap=20))
    assert got["mean_loss"] == pytest.approx(expected["mean_loss"], rel=1e-12)


def test_a_worker_killed_while_it_reads_files_is_replaced_and_the_result_is_unchanged(dataset, cluster):
    _, _, csv, _ = dataset
    _, client = cluster
    expected = score_file(str(csv), probs=["p_*"], on_bad_row="skip", bootstrap=20)
    killed = []

    def kill_a_worker_once(rows, done):
        if not killed:
            workers = list(client.scheduler_info()["workers"])
            killed.append(workers[0])
            with contextlib.suppress(distributed.comm.core.CommClosedError, OSError):
                client.run(os._exit, 1, workers=workers[:1])

    got = ce_dask.score(
        str(csv),
        probs=["p_*"],
        on_bad_row="skip",
        bootstrap=20,
        partition_bytes=_partition_bytes(csv, 30),
        progress=kill_a_worker_once,
    )
    assert killed
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


def test_cli_engine_dask_with_bootstrap(dataset, capsys, cluster):
    directory, single, _, _ = dataset
    c, _ = cluster
    argv = ["--probs", "p_*", "--per-class", "--calibration", "--bootstrap", "200", "--format", "json"]
    assert main(["score", str(directory), *argv, "--engine", "dask", "--scheduler", c.scheduler_address]) == 0
    got = json.loads(capsys.readouterr().out)
    assert main(["score", str(single), *argv]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert got["bootstrap"]["replicates"] == 200
    assert got["bootstrap"]["ci95"] == pytest.approx(expected["bootstrap"]["ci95"], rel=1e-12)
    assert got["mean_loss"] == pytest.approx(expected["mean_loss"], rel=1e-12)
    assert main(["score", str(directory / "missing"), "--engine", "dask", "--scheduler", c.scheduler_address]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_engine_dask_calibrates_as_one_process(overconfident, capsys, cluster):
    c, _ = cluster
    path = str(overconfident / "scored.csv")
    argv = ["--probs", "p_*", "--calibrate", "temperature", "--worst-rows", "5", "--format", "json"]
    assert main(["score", path, *argv, "--engine", "dask", "--scheduler", c.scheduler_address]) == 0
    got = json.loads(capsys.readouterr().out)
    assert main(["score", path, *argv]) == 0
    expected = json.loads(capsys.readouterr().out)
    _same_temperature(got, expected)


def test_cli_engine_dask_starts_a_local_cluster_and_shows_the_dashboard(dataset, capsys):
    directory, single, _, _ = dataset
    argv = ["score", str(directory), "--probs", "p_*", "--format", "json", "--engine", "dask", "--workers", "1"]
    assert main([*argv, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "Dask dashboard at http://" in err
    assert json.loads(out)["mean_loss"] == pytest.approx(score_file(str(single), probs=["p_*"])["mean_loss"], rel=1e-12)
