"""The command line, through main([...]) and once through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

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
    assert "2.27903 " in out  # six significant digits by default
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
    version = run(capsys, "--version")[1].splitlines()
    assert version[0] == f"crossentropy {ce.__version__}"
    assert version[1].startswith("kernels: ")  # the same facts as `crossentropy info`
    code, out, _ = run(capsys, "score", "--help")
    assert code == 0
    assert "examples:" in out
    assert "--on-bad-row" in out


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--names", "red,green,blue"],
        ["tutorial"],
        ["tutorial", "--lang", "ko"],
        ["train", "--epochs", "20"],
    ],
    ids=["compare", "tutorial", "tutorial-ko", "train"],
)
def test_tables_fit_80_columns(capsys, monkeypatch, argv):
    pytest.importorskip("sklearn")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert _widest(out) <= 80


def test_precision_sets_the_significant_digits(capsys):
    argv = ["compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--base", "2"]
    assert "3.2879430946 " in run(capsys, *argv, "--precision", "11")[1]
    assert "3.29 " in run(capsys, *argv, "--precision", "3")[1]
    assert run(capsys, *argv, "--precision", "3", "--format", "csv")[1].splitlines()[3] == 'P versus Q,"H(P,Q)",3.29'
    assert json.loads(run(capsys, *argv, "--precision", "3", "--format", "json")[1])["H(P,Q)"] == pytest.approx(
        3.2879430946, abs=1e-10
    )
    code, _, err = run(capsys, *argv, "--precision", "0")
    assert code == 2
    assert "1 to 17 significant digits" in err


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
