"""A bounded atheris run over the file readers (the longer run is documented in tests/fuzz/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
pytest.importorskip("pyarrow")

HARNESS = Path(__file__).with_name("fuzz") / "fuzz_readers.py"


def test_fuzzing_the_file_readers_finds_no_crash(tmp_path):
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    (seeds / "ok").write_bytes(b"\x00\x00label,p0,p1\n0,0.9,0.1\n1,0.2,0.8\n")
    (seeds / "bad").write_bytes(b"\x00\x01label,p\n1,nan\n")
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "-atheris_runs=3000", "-max_len=512", "-timeout=30", str(seeds)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
