"""The command line as a whole: help, version, table widths and precision, the tutorial, a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import crossentropy as ce

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def test_version_and_help(cli):
    version = cli("--version")[1].splitlines()
    assert version[0] == f"crossentropy {ce.__version__}"
    assert version[1].startswith("kernels: ")  # the same facts as `crossentropy info`
    code, out, _ = cli("score", "--help")
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
def test_tables_fit_80_columns(cli, monkeypatch, argv):
    pytest.importorskip("sklearn")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(*argv)
    assert code == 0
    assert _widest(out) <= 80


def test_precision_sets_the_significant_digits(cli):
    argv = ["compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--base", "2"]
    assert "3.2879430946 " in cli(*argv, "--precision", "11")[1]
    assert "3.29 " in cli(*argv, "--precision", "3")[1]
    assert cli(*argv, "--precision", "3", "--format", "csv")[1].splitlines()[3] == 'P versus Q,"H(P,Q)",3.29'
    assert json.loads(cli(*argv, "--precision", "3", "--format", "json")[1])["H(P,Q)"] == pytest.approx(
        3.2879430946, abs=1e-10
    )
    code, _, err = cli(*argv, "--precision", "0")
    assert code == 2
    assert "1 to 17 significant digits" in err


# --- a real subprocess ----------------------------------------------------------------------------------


@pytest.mark.slow
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


def test_the_command_line_calls_engines_and_the_public_face_only():
    """No command imports an integration's or a measure's internals, nor a private name of the library."""
    import ast
    from pathlib import Path

    import crossentropy.cli

    forbidden = {"_information", "_validation", "_dispatch", "_kernels", "transformers", "torch", "distributed"}
    for path in Path(crossentropy.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                module = (node.module or "").split(".")[0]
                assert module not in forbidden, (path.name, node.module)
                if module in ("io", "scoring", "conventions", "learn", "continuous"):  # public modules
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, (path.name, node.module, private)
