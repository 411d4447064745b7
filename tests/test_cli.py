"""The command line, through main([...]) and once through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sp

import crossentropy as ce
from crossentropy.cli import main

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- compare ---------------------------------------------------------------------------------------


def test_compare_seed_example_in_bits(capsys):
    code, out, _ = run(capsys, "compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--base", "2", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["unit"] == "bits"
    assert data["H(P,Q)"] == pytest.approx(3.2879430946, abs=1e-10)
    assert data["H(Q,P)"] == pytest.approx(2.9058316901, abs=1e-10)
    assert data["KL(P||Q)"] == pytest.approx(1.9269790472, abs=1e-10)
    assert data["JS(P,Q)"] == pytest.approx(0.4202005704, abs=1e-10)


def test_compare_table_csv_and_plot(capsys, tmp_path):
    plot = tmp_path / "pq.png"
    code, out, _ = run(
        capsys, "compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--names", "red,green,blue", "--plot", str(plot)
    )
    assert code == 0
    assert "H(P,Q)" in out
    assert "2.279028" in out
    assert plot.stat().st_size > 1000
    code, out, _ = run(capsys, "compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--format", "csv")
    assert out.splitlines()[0] == "section,quantity,nats"


def test_compare_reads_files(capsys, tmp_path):
    np.save(tmp_path / "p.npy", np.array([0.1, 0.4, 0.5]))
    (tmp_path / "q.txt").write_text("0.8 0.15\n0.05\n")
    code, out, _ = run(capsys, "compare", str(tmp_path / "p.npy"), str(tmp_path / "q.txt"), "--format", "json")
    assert code == 0
    assert json.loads(out)["H(P,Q)"] == pytest.approx(2.2790284859, abs=1e-10)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "0.1,abc", "0.5,0.5"], r"P\[1\] = 'abc' is not a number"),
        (["compare", "0.5,0.5", "0.2,0.3,0.5"], "P has 2 events but Q has 3"),
        (["compare", "0.5,0.6", "0.5,0.5"], r"p\[:\] sums to 1.1"),
        (["compare", "0.5,0.5", "0.5,0.5", "--names", "a"], "--names has 1 names for 2 events"),
        (["compare", "0.5,0.5", "0.5,0.5", "--base", "1"], "invalid base"),
        (["compare", "0.5,0.5"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_compare_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message.replace("\\", "") in one_line_error(err) or __import__("re").search(message, err)


def test_version_and_help(capsys):
    assert run(capsys, "--version")[1].strip() == f"crossentropy {ce.__version__}"
    code, out, _ = run(capsys, "score", "--help")
    assert code == 0
    assert "examples:" in out
    assert "--on-bad-row" in out


# --- score -----------------------------------------------------------------------------------------


def _multiclass(n=200, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, k))
    probs = sp.softmax(logits, -1)
    labels = rng.integers(0, k, n)
    weights = rng.uniform(0.5, 2, n)
    return labels, logits, probs, weights


def test_score_matches_the_library_for_every_format(capsys, tmp_path):
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
        code, out, _ = run(capsys, "score", str(tmp_path / name), *extra, "--format", "json")
        assert code == 0, name
        data = json.loads(out)
        assert data["rows_read"] == 200
        assert data["rows_scored"] == 200
        assert data["mean_loss"] == pytest.approx(expected, rel=1e-12), name


def test_score_logits_weights_conventions_and_bits(capsys, tmp_path):
    labels, logits, _, weights = _multiclass(seed=1)
    frame = pd.DataFrame({"y": labels, "w": weights, **{f"x{j}": logits[:, j] for j in range(4)}})
    frame.to_parquet(tmp_path / "l.parquet")
    for conv in ce.conventions.NAMES:
        code, out, _ = run(
            capsys,
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


def test_score_binary_per_class_calibration_bootstrap_report(capsys, tmp_path):
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3])
    pd.DataFrame({"label": y, "p": p}).to_csv(tmp_path / "b.csv", index=False)
    report = tmp_path / "report.html"
    code, out, _ = run(
        capsys,
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
    assert sum(b["count"] for b in data["calibration"]["bins"]) == 10
    lo, hi = data["bootstrap"]["ci95"]
    assert lo < 0.2469198908 < hi
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "http" not in html.split("<body>")[1]
    code, out, _ = run(capsys, "score", str(tmp_path / "b.csv"), "--per-class", "--calibration")
    assert "per class" in out
    assert "calibration" in out


def test_score_stdin(capsys, monkeypatch, tmp_path):
    import io

    data = b"label,p\n1,0.8\n0,0.1\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "score", "-", "--format", "json")
    assert code == 0
    assert json.loads(out)["mean_loss"] == pytest.approx((-np.log(0.8) - np.log(0.9)) / 2)


def test_score_skip_counts_and_lists_bad_rows(capsys, tmp_path):
    (tmp_path / "bad.csv").write_text("label,p0,p1\n0,0.9,0.1\n1,nan,0.8\n1,0.3,0.7\n5,0.5,0.5\n1,0.4,0.4\n")
    code, out, _ = run(capsys, "score", str(tmp_path / "bad.csv"), "--on-bad-row", "skip", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["rows_read"] == 5
    assert data["rows_scored"] == 2
    assert data["rows_rejected"] == 3
    assert data["rows_read"] == data["rows_scored"] + data["rows_rejected"]
    assert [r["row"] for r in data["rejected"]] == [2, 4, 5]


def test_score_fail_above_exits_1(capsys, tmp_path):
    pd.DataFrame({"label": [1, 0], "p": [0.6, 0.4]}).to_csv(tmp_path / "f.csv", index=False)
    assert run(capsys, "score", str(tmp_path / "f.csv"), "--fail-above", "0.1")[0] == 1
    assert run(capsys, "score", str(tmp_path / "f.csv"), "--fail-above", "1.0")[0] == 0


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
        ("nan.csv", [], ["nan.csv", "row 3", "'p0'", "NaN"]),
        ("range.csv", [], ["range.csv", "row 2", "'p0'", "outside [0, 1]"]),
        ("sums.csv", [], ["sums.csv", "row 2", "'p0'..'p1'", "do not sum to 1"]),
        ("text.csv", [], ["text.csv", "row 2", "'p0'", "'abc' is not a number"]),
        ("label.csv", [], ["label.csv", "row 2", "'label'", "outside [0, 2)"]),
        ("nan.csv", ["--labels", "target"], ["nan.csv", "no label column 'target'", "'p0'"]),
        ("nan.csv", ["--probs", "q*"], ["nan.csv", "no probability column matches 'q*'"]),
        ("empty.csv", [], ["empty.csv", "empty"]),
        ("header.csv", [], ["header.csv", "no data rows"]),
        ("semicolon.csv", [], ["semicolon.csv", "no label column", "delimiter"]),
        ("truncated.parquet", [], ["truncated.parquet", "Parquet"]),
        ("ok.parquet", ["--sample-weight", "w"], ["ok.parquet", "no sample-weight column 'w'"]),
    ],
)
def test_score_bad_input_exits_2_naming_file_row_and_column(capsys, tmp_path, name, extra, fragments):
    _bad_files(tmp_path)
    code, _, err = run(capsys, "score", str(tmp_path / name), *extra)
    assert code == 2
    line = one_line_error(err)
    for fragment in fragments:
        assert fragment in line, (fragment, line)


# --- tutorial ---------------------------------------------------------------------------------------


def test_tutorial_reproduces_every_seed_number(capsys, tmp_path):
    code, out, _ = run(capsys, "tutorial", "--format", "json", "--plots", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["all_reproduced"] is True
    checks = {c["quantity"]: c for s in data["sections"] for c in s["checks"]}
    assert [s["key"] for s in data["sections"]] == ["000", "001", "001-train", "002", "003", "004", "continuous"]
    expected = {
        "H(P, Q) in bits": "3.2879430946",
        "H(P, Q) in nats": "2.2790284859",
        "H(Q, P) in bits": "2.9058316901",
        "KL(P || Q) in bits": "1.9269790472",
        "JS(P, Q) in bits": "0.4202005704",
        "mean binary cross-entropy, nats": "0.2469198908",
    }
    for quantity, reported in expected.items():
        assert checks[quantity]["reported"] == reported
        assert checks[quantity]["ok"] is True
    reported = [c for c in checks.values() if c["reported"] is not None]
    assert len(reported) >= 55
    assert all(c["ok"] for c in reported)
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 6
    assert all(p.stat().st_size > 5000 for p in pngs)


def test_tutorial_in_korean(capsys):
    code, out, err = run(capsys, "tutorial", "--lang", "ko")
    assert code == 0
    assert "교차 엔트로피" in out
    assert "재현" in err


# --- a real subprocess ----------------------------------------------------------------------------------


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossentropy",
            "compare",
            "0.1,0.4,0.5",
            "0.8,0.15,0.05",
            "--base",
            "2",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["H(P,Q)"] == pytest.approx(3.2879430946, abs=1e-10)
    bad = subprocess.run(
        [sys.executable, "-m", "crossentropy", "compare", "x", "0.5"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
