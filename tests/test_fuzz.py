"""A bounded atheris run over the file readers (the longer run is documented in tests/fuzz/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
pytest.importorskip("pyarrow")

pytestmark = pytest.mark.slow  # atheris runs the readers thousands of times

HARNESS = Path(__file__).with_name("fuzz") / "fuzz_readers.py"

# libFuzzer's -rss_limit_mb reads the peak RSS that Linux reports, and a process that Python
# starts with vfork and exec inherits the peak of the process it replaced: pytest's, gigabytes
# into a full run. A small launcher in between starts the harness from a process of its own size.
LAUNCH = [sys.executable, "-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"]


def test_fuzzing_the_file_readers_finds_no_crash(tmp_path):
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    (seeds / "ok").write_bytes(b"\x00\x00label,p0,p1\n0,0.9,0.1\n1,0.2,0.8\n")
    (seeds / "bad").write_bytes(b"\x00\x01label,p\n1,nan\n")
    (seeds / "non-utf8-header").write_bytes(b"\x00label\x84.2,.\x01\x00\x00\x008\n\n")  # a past finding
    (seeds / "ragged").write_bytes(b"\x00\x01label,p0,p1\n1,0.5\n0,0.5,0.5,0.5\n\r\n1,x,\n")
    findings = tmp_path / "findings"
    findings.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.run(
        [
            *LAUNCH,
            sys.executable,
            str(HARNESS),
            "-atheris_runs=3000",
            "-max_len=512",
            "-timeout=30",
            f"-artifact_prefix={findings}/",
            str(seeds),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(findings.iterdir()) == []
    assert list(work.iterdir()) == []


def test_the_harness_keeps_findings_out_of_the_working_directory(tmp_path):
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    (seeds / "ok").write_bytes(b"\x00\x00label,p0,p1\n0,0.9,0.1\n")
    proc = subprocess.run(
        [*LAUNCH, sys.executable, str(HARNESS), "-atheris_runs=10", str(seeds)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fuzz findings go to" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
