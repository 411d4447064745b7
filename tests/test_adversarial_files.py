"""Hostile files through every CLI command that reads them: exit 2 and one line naming the problem."""

from __future__ import annotations

import pytest

from crossentropy.cli import main

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def _files(tmp_path):
    ok = "label,p\n1,0.8\n0,0.1\n"
    files = {
        "truncated.csv": ("label,p0,p1\n0,0.9,0.1\n1,0.2", "columns"),
        "empty.csv": ("", "empty"),
        "header-only.csv": ("label,p\n", "no data rows"),
        "wrong-delimiter.csv": ("label;p\n1;0.8\n", "delimiter"),
        "duplicate-columns.csv": ("label,p,p\n1,0.8,0.8\n", "duplicate column names"),
        "missing-value.csv": ("label,p\n1,\n0,0.1\n", "row 1"),
        "ragged.csv": ("label,p\n1,0.8,0.3\n", "CSV"),
    }
    paths = {}
    for name, (text, _) in files.items():
        (tmp_path / name).write_text(text)
        paths[name] = files[name][1]
    (tmp_path / "latin1.csv").write_bytes("label,p\n1,0.8\n0,0.1\xe9\n".encode("latin-1"))
    paths["latin1.csv"] = "latin1.csv"
    (tmp_path / "one-long-line.csv").write_text("label,p\n" + "1," + "9" * 10_000_000 + "\n")
    paths["one-long-line.csv"] = "one-long-line.csv"
    (tmp_path / "ok.csv").write_text(ok)
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    paths["garbage.parquet"] = "Parquet"
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    paths["garbage.npy"] = "NPY"
    (tmp_path / "pickled.npy").write_bytes(b"")
    paths["pickled.npy"] = "empty"
    (tmp_path / "unknown.xlsx").write_text("x")
    paths["unknown.xlsx"] = "unknown file type"
    return paths


def test_hostile_files_exit_2_with_one_line(tmp_path, capsys):
    for name, fragment in _files(tmp_path).items():
        code = main(["score", str(tmp_path / name)])
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (name, out, err)
        assert len(lines) == 1, (name, err)
        assert "Traceback" not in err
        assert name in lines[0], (name, lines[0])
        assert fragment in lines[0], (name, fragment, lines[0])


def test_hostile_values_through_compare(capsys):
    for p in ("0.5,nan", "0.5,inf", "-0.1,1.1", "0.5,0.501", "", "1e400,0"):
        code = main(["compare", "--", p, "0.5,0.5"])
        _, err = capsys.readouterr()
        assert code == 2, (p, err)
        assert err.count("\n") == 1, err
        assert "p" in err.lower(), err
    assert main(["compare", "--", "-0.0,1.0", "0.5,0.5"]) == 0
    capsys.readouterr()
