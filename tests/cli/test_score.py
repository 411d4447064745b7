"""``crossentropy score``: formats, options, messages, and hostile input through ``main([...])``."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import crossentropy as ce

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
sp = pytest.importorskip("scipy.special")


def _multiclass(n=200, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, k))
    probs = sp.softmax(logits, -1)
    labels = rng.integers(0, k, n)
    weights = rng.uniform(0.5, 2, n)
    return labels, logits, probs, weights


def test_score_matches_the_library_for_every_format(cli, tmp_path):
    labels, _, probs, _ = _multiclass()
    expected = float(ce.sparse_categorical_cross_entropy(labels, probs))
    frame = pd.DataFrame({"label": labels, **{f"p_{j}": probs[:, j] for j in range(4)}})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    np.save(tmp_path / "a.npy", np.column_stack([labels, probs]))
    np.savez(tmp_path / "a.npz", label=labels, probs=probs)
    pd.DataFrame({"label": labels, "probs": list(probs)}).to_parquet(tmp_path / "lists.parquet")
    cases = [
        ("a.csv", ["--probs", "p_*"]),
        ("a.parquet", []),
        ("a.npy", ["--labels", "0", "--probs", "1,2,3,4"]),
        ("a.npz", ["--probs", "probs_*"]),
        ("lists.parquet", []),
    ]
    for name, extra in cases:
        code, out, _ = cli("score", str(tmp_path / name), *extra, "--format", "json")
        assert code == 0, name
        data = json.loads(out)
        assert data["rows_read"] == 200
        assert data["rows_scored"] == 200
        assert data["mean_loss"] == pytest.approx(expected, rel=1e-12), name


def test_score_logits_weights_conventions_and_bits(cli, tmp_path):
    labels, logits, _, weights = _multiclass(seed=1)
    frame = pd.DataFrame({"y": labels, "w": weights, **{f"x{j}": logits[:, j] for j in range(4)}})
    frame.to_parquet(tmp_path / "l.parquet")
    for conv in ce.conventions.NAMES:
        code, out, _ = cli(
            "score",
            str(tmp_path / "l.parquet"),
            "--labels",
            "y",
            "--logits",
            "x*",
            "--sample-weight",
            "w",
            "--convention",
            conv,
            "--base",
            "2",
            "--format",
            "json",
        )
        assert code == 0
        expected = ce.sparse_categorical_cross_entropy(
            labels, logits, from_logits=True, sample_weight=weights, convention=conv
        ) / np.log(2)
        assert json.loads(out)["mean_loss"] == pytest.approx(float(expected), rel=1e-12), conv


def test_score_binary_per_class_calibration_bootstrap_report(cli, tmp_path):
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
    pd.DataFrame({"label": y, "p": p}).to_csv(tmp_path / "b.csv", index=False)
    report = tmp_path / "report.html"
    code, out, _ = cli(
        "score",
        str(tmp_path / "b.csv"),
        "--per-class",
        "--calibration",
        "--bootstrap",
        "200",
        "--report",
        str(report),
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["mean_loss"] == pytest.approx(0.2469198908, abs=1e-10)
    assert data["accuracy"] == 1.0
    assert [c["count"] for c in data["per_class"]] == [5, 5]
    assert [c["recall"] for c in data["per_class"]] == [1.0, 1.0]
    assert [c["precision"] for c in data["per_class"]] == [1.0, 1.0]
    assert [c["predicted"] for c in data["per_class"]] == [5, 5]
    assert "accuracy" not in data["per_class"][0]
    assert data["baseline_loss"] == pytest.approx(np.log(2), rel=1e-15)
    assert sum(b["count"] for b in data["calibration"]["bins"]) == 10
    lo, hi = data["bootstrap"]["ci95"]
    assert lo < 0.2469198908 < hi
    html = report.read_text()
    assert html.count("data:image/svg+xml;base64,") == 3
    assert "http" not in html.split("<body>")[1]
    code, out, _ = cli("score", str(tmp_path / "b.csv"), "--per-class", "--calibration")
    assert "per class" in out
    assert "calibration" in out


def test_score_stdin(cli, monkeypatch, tmp_path):
    import io

    data = b"label,p\n1,0.8\n0,0.1\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = cli("score", "-", "--format", "json")
    assert code == 0
    assert json.loads(out)["mean_loss"] == pytest.approx((-np.log(0.8) - np.log(0.9)) / 2)


def test_score_skip_counts_and_lists_bad_rows(cli, tmp_path):
    (tmp_path / "bad.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,nan,0.8\n1,0.3,0.7\n5,0.5,0.5\n1,0.4,0.4\n")
    code, out, _ = cli("score", str(tmp_path / "bad.csv"), "--on-bad-row", "skip", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["rows_read"] == 5
    assert data["rows_scored"] == 2
    assert data["rows_rejected"] == 3
    assert data["rows_read"] == data["rows_scored"] + data["rows_rejected"]
    assert [r["row"] for r in data["rejected"]] == [2, 4, 5]
    assert [r["line"] for r in data["rejected"]] == [3, 5, 6]
    assert data["rejected_reasons"] == {
        "prediction is NaN": 1,
        "label is outside [0, 2)": 1,
        "probabilities do not sum to 1": 1,
    }


def test_score_fail_above_exits_1(cli, tmp_path):
    pd.DataFrame({"label": [1, 0], "p": [0.6, 0.4]}).to_csv(tmp_path / "f.csv", index=False)
    assert cli("score", str(tmp_path / "f.csv"), "--fail-above", "0.1")[0] == 1
    assert cli("score", str(tmp_path / "f.csv"), "--fail-above", "1.0")[0] == 0


def _bad_files(tmp_path):
    (tmp_path / "nan.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,0.2,0.8\n1,nan,0.7\n")
    (tmp_path / "range.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,1.2,-0.2\n")
    (tmp_path / "sums.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,0.5,0.3\n")
    (tmp_path / "text.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,abc,0.8\n")
    (tmp_path / "label.csv").write_text("label,p0,p1\n0,0.9,0.1\n2,0.5,0.5\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("label,p0,p1\n")
    (tmp_path / "semicolon.csv").write_text("label;p0;p1\n0;0.9;0.1\n")
    pd.DataFrame({"label": [0, 1], "p": [0.2, 0.7]}).to_parquet(tmp_path / "ok.parquet")
    raw = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(raw[: len(raw) // 2])
    return tmp_path


@pytest.mark.parametrize(
    ("name", "extra", "fragments"),
    [
        ("missing.csv", [], ["missing.csv", "no such file"]),
        ("nan.csv", [], ["nan.csv", "line 4", "column 'p0'", "NaN"]),
        ("range.csv", [], ["range.csv", "line 3", "column 'p0'", "outside [0, 1]", "value 1.2"]),
        (
            "sums.csv",
            [],
            ["sums.csv", "line 3", "columns 'p0'..'p1'", "do not sum to 1", "sum 0.8", "tolerance 1.49e-08"],
        ),
        ("text.csv", [], ["text.csv", "line 3", "column 'p0'", "not a number", "'abc'"]),
        ("label.csv", [], ["label.csv", "line 3", "column 'label'", "outside [0, 2)"]),
        ("nan.csv", ["--labels", "target"], ["nan.csv", "no label column 'target'", "'p0'"]),
        ("nan.csv", ["--probs", "q*"], ["nan.csv", "no probability column matches 'q*'"]),
        ("empty.csv", [], ["empty.csv", "empty"]),
        ("header.csv", [], ["header.csv", "no data rows"]),
        ("semicolon.csv", [], ["semicolon.csv", "no label column", "delimiter"]),
        ("truncated.parquet", [], ["truncated.parquet", "Parquet"]),
        ("ok.parquet", ["--sample-weight", "w"], ["ok.parquet", "no sample-weight column 'w'"]),
    ],
)
def test_score_bad_input_exits_2_naming_file_row_and_column(cli, tmp_path, name, extra, fragments):
    _bad_files(tmp_path)
    failed = cli("score", str(tmp_path / name), *extra)
    assert failed.code == 2
    line = failed.error_line
    for fragment in fragments:
        assert fragment in line, (fragment, line)


# --- tolerances follow the stored precision (issues 18.9 and 21) -------------------------------------------


def _softmax32(n=1000, k=10, seed=3):
    rng = np.random.default_rng(seed)
    probs = sp.softmax(rng.normal(0, 3, (n, k)).astype(np.float32), axis=-1).astype(np.float32)
    return rng.integers(0, k, n), probs


def test_float32_probabilities_score_like_the_library(cli, tmp_path):
    labels, probs = _softmax32()
    assert np.abs(probs.astype(np.float64).sum(1) - 1).max() > np.sqrt(np.finfo(np.float64).eps)
    assert float(ce.sparse_categorical_cross_entropy(labels, probs)) > 0  # the library accepts the float32 rows
    expected = -np.log(probs.astype(np.float64)[np.arange(1000), labels]).mean()
    np.save(tmp_path / "f32.npy", probs)
    np.save(tmp_path / "y.npy", labels)
    np.savez(tmp_path / "f32.npz", label=labels, p=probs)
    pd.DataFrame({"label": labels, **{f"p{j}": probs[:, j] for j in range(10)}}).to_parquet(tmp_path / "f32.parquet")
    for name, extra in [("f32.npz", ["--probs", "p_*"]), ("f32.parquet", [])]:
        code, out, err = cli("score", str(tmp_path / name), *extra, "--format", "json")
        assert code == 0, err
        data = json.loads(out)
        assert data["rows_scored"] == 1000
        assert data["mean_loss"] == pytest.approx(expected, rel=1e-12)
        failed = cli("score", str(tmp_path / name), *extra, "--atol", "1e-12")
        assert failed.code == 2
        assert "tolerance 1e-12" in failed.error_line


def _rounded_csv(path, n=2000, k=7, decimals=6, seed=5):
    rng = np.random.default_rng(seed)
    probs = np.round(sp.softmax(rng.normal(0, 2, (n, k)), axis=-1), decimals)
    labels = rng.integers(0, k, n)
    frame = pd.DataFrame({"label": labels, **{f"p{j}": probs[:, j] for j in range(k)}})
    frame.to_csv(path, index=False, float_format=f"%.{decimals}f")
    return labels, probs


def test_a_csv_rounded_to_6_decimals_scores_by_default_and_can_be_renormalised(cli, tmp_path):
    labels, probs = _rounded_csv(tmp_path / "r.csv")
    off = np.abs(probs.sum(1) - 1)
    assert (off > 1.5e-8).mean() > 0.4
    code, out, err = cli("score", str(tmp_path / "r.csv"), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["rows_scored"] == 2000
    assert data["mean_loss"] == pytest.approx(-np.log(probs[np.arange(2000), labels]).mean(), rel=1e-12)
    code, out, _ = cli("score", str(tmp_path / "r.csv"), "--renormalize", "--format", "json")
    renormalised = probs / probs.sum(1, keepdims=True)
    assert json.loads(out)["mean_loss"] == pytest.approx(
        -np.log(renormalised[np.arange(2000), labels]).mean(), rel=1e-12
    )
    assert json.loads(out)["renormalized"] is True
    first = int(np.argmax(off > 1e-9))
    failed = cli("score", str(tmp_path / "r.csv"), "--atol", "1e-9")
    line = failed.error_line
    assert failed.code == 2
    for fragment in (f"line {first + 2}", "columns 'p0'..'p6'", f"sum {probs[first].sum():.10g}", "tolerance 1e-09"):
        assert fragment in line, (fragment, line)
    assert "--renormalize" in line


def test_decimal_tolerance_accepts_what_rounding_explains_and_nothing_more(cli, tmp_path):
    rows = [
        "0,0.333,0.333,0.333",  # 1/3 written with 3 decimals: allowed 3 * 0.0005
        "0,0.52,0.31,0.12",  # off by 0.05
        "1,0.33,0.33,0.33",  # 2 decimals are too coarse to be allowed by default
        "2,0.3333333,0.3333333,0.3333333",
        "1,0,0,0",
        "1,0.3335,0.3335,0.3335",  # off by 5e-4 > 3 * 0.00005
    ]
    (tmp_path / "r.csv").write_text("label,p0,p1,p2\n" + "\n".join(rows) + "\n")
    code, out, _ = cli("score", str(tmp_path / "r.csv"), "--on-bad-row", "skip", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert [r["line"] for r in data["rejected"]] == [3, 4, 6, 7]
    assert data["rejected"][0]["detail"] == "sum 0.95, off by 0.05; tolerance 1.49e-08"
    assert data["rejected"][3]["detail"] == "sum 1.0005, off by 0.0005; tolerance 0.00015"
    assert data["rows_scored"] == 2
    code, out, _ = cli("score", str(tmp_path / "r.csv"), "--atol", "0.011", "--on-bad-row", "skip", "--format", "json")
    assert code == 0
    assert [r["line"] for r in json.loads(out)["rejected"]] == [3, 6]


def test_skipping_more_than_one_percent_warns_with_count_and_reasons(cli, tmp_path):
    rows = ["label,p"] + ["1,0.9"] * 95 + ["1,abc"] * 3 + ["1,"] * 2
    (tmp_path / "w.csv").write_text("\n".join(rows) + "\n")
    code, out, err = cli("score", str(tmp_path / "w.csv"), "--on-bad-row", "skip", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["rows_read"], data["rows_scored"], data["rows_rejected"]) == (100, 95, 5)
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert "skipped 5 of 100 rows (5.0%)" in warning[0]
    assert "3 not a number" in warning[0]
    assert "2 missing value" in warning[0]
    assert "line 97, column 'p': not a number ('abc')" in warning[0]
    rows = ["label,p"] + ["1,0.9"] * 999 + ["1,abc"]
    (tmp_path / "few.csv").write_text("\n".join(rows) + "\n")
    code, _, err = cli("score", str(tmp_path / "few.csv"), "--on-bad-row", "skip")
    assert code == 0
    assert "warning" not in err


# --- one reader for files and streams (issues 18.10, 18.11, 18.16) ----------------------------------------


def _integers_then_a_fraction(path):
    body = "label,p\n" + "1,1\n" * 1_200_000 + "0,0.75\nnan,0.5\n"
    path.write_text(body)
    return body.encode()


@pytest.mark.slow
def test_stdin_and_file_read_the_same_way(cli, monkeypatch, tmp_path):
    import io

    data = _integers_then_a_fraction(tmp_path / "big.csv")
    code, out, err = cli("score", str(tmp_path / "big.csv"), "--on-bad-row", "skip", "--format", "json")
    assert code == 0, err
    from_file = json.loads(out)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = cli("score", "-", "--on-bad-row", "skip", "--format", "json")
    assert code == 0, err
    from_stdin = json.loads(out)
    assert from_file["rows_rejected"] == from_stdin["rows_rejected"] == 1
    assert from_file["rejected"][0]["line"] == from_stdin["rejected"][0]["line"] == 1_200_003
    for key in ("rows_read", "rows_scored", "mean_loss", "accuracy"):
        assert from_file[key] == from_stdin[key], key
    assert from_file["mean_loss"] == pytest.approx(-np.log(0.25) / 1_200_001, rel=1e-12)


def test_skip_counts_non_numeric_empty_and_null_cells(cli, tmp_path):
    (tmp_path / "cells.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,NA,0.8\n1,,0.7\n1, 0.3 ,0.7\nx,0.5,0.5\n1,0.4,0.6\n")
    pd.DataFrame({"label": [0, 1, None, 1], "p": [0.2, None, 0.5, 0.7]}).to_parquet(tmp_path / "nulls.parquet")
    expected = {"cells.csv": (6, 3, 3), "nulls.parquet": (4, 2, 2)}
    for name, (read, scored, rejected) in expected.items():
        code, out, err = cli("score", str(tmp_path / name), "--on-bad-row", "skip", "--format", "json")
        assert code == 0, err
        data = json.loads(out)
        assert (data["rows_read"], data["rows_scored"], data["rows_rejected"]) == (read, scored, rejected), name
        assert data["rows_read"] == data["rows_scored"] + data["rows_rejected"]
        assert set(data["rejected_reasons"]) <= {"not a number", "missing value"}
        failed = cli("score", str(tmp_path / name))
        assert failed.code == 2
        assert failed.error_line


def test_a_fifo_is_read_as_a_stream(cli, tmp_path):
    import os
    import threading

    fifo = tmp_path / "preds.csv"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "w") as handle:
            handle.write("label,p\n1,0.8\n0,0.1\n")

    writer = threading.Thread(target=write)
    writer.start()
    code, out, err = cli("score", str(fifo), "--format", "json")
    writer.join(timeout=10)
    assert code == 0, err
    assert json.loads(out)["mean_loss"] == pytest.approx((-np.log(0.8) - np.log(0.9)) / 2)


@pytest.mark.slow
def test_progress_reports_the_fraction_done_when_the_size_is_known(tmp_path):
    from crossentropy.scoring import score_file

    labels, probs = _rounded_csv(tmp_path / "p.csv", n=200_000)
    pd.DataFrame({"label": labels, "p": list(probs)}).to_parquet(tmp_path / "p.parquet", row_group_size=70_000)
    for name in ("p.csv", "p.parquet"):
        seen = []
        score_file(str(tmp_path / name), progress=lambda rows, fraction, seen=seen: seen.append((rows, fraction)))
        assert len(seen) >= 2, name
        assert all(f is not None for _, f in seen)
        assert seen[-1] == (200_000, pytest.approx(1.0)), name
        assert [f for _, f in seen] == sorted(f for _, f in seen)


def test_the_progress_bar_counts_the_rows_and_leaves_the_result_alone(cli, tmp_path, monkeypatch):
    from rich.progress import Progress

    _rounded_csv(tmp_path / "p.csv", n=50_000)
    updates = []
    real = Progress.update
    monkeypatch.setattr(
        Progress, "update", lambda bar, task, **fields: (updates.append(fields), real(bar, task, **fields))
    )
    code, plain, err = cli("score", str(tmp_path / "p.csv"), "--format", "json", "--no-progress")
    assert code == 0, err
    assert updates == []
    code, shown, err = cli("score", str(tmp_path / "p.csv"), "--format", "json", "--progress")
    assert code == 0, err
    assert json.loads(shown) == json.loads(plain)
    assert updates[-1]["count"] == 50_000
    assert updates[-1]["completed"] == pytest.approx(updates[-1]["total"])


@pytest.mark.slow
def test_report_is_written_atomically(cli, tmp_path, monkeypatch):
    import os

    pd.DataFrame({"label": [1, 0], "p": [0.6, 0.4]}).to_csv(tmp_path / "f.csv", index=False)
    report = tmp_path / "report.html"
    report.write_text("old report")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        failed = cli("score", str(tmp_path / "f.csv"), "--report", str(report))
    assert failed.code == 2
    assert "cannot write the report" in failed.error_line
    assert "No space left on device" in failed.err
    assert report.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "report.html"]
    failed = cli("score", str(tmp_path / "f.csv"), "--report", str(tmp_path / "no" / "r.html"))
    assert failed.code == 2
    assert "cannot write the report" in failed.error_line
    assert cli("score", str(tmp_path / "f.csv"), "--report", str(report)).code == 0
    assert report.read_text().startswith("<!DOCTYPE html>")
    assert oct(report.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
