"""The scripts in examples/ run and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    if script.name == "torch_dropin.py":
        pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_quickstart_prints_the_seed_number():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES[0].with_name("quickstart.py"))], capture_output=True, text=True, check=True
    )
    assert "H(P, Q)  = 3.2879 bits" in proc.stdout
