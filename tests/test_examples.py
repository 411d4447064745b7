"""The scripts in examples/ run and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each example runs in a fresh interpreter

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


QUICK = {"torch_training_loop.py"}
"""Scripts with a --quick option that keeps the test short."""


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    if script.name.startswith("torch_"):
        pytest.importorskip("torch")
    command = [sys.executable, str(script), *(["--quick"] if script.name in QUICK else [])]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_quickstart_prints_the_seed_number():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES[0].with_name("quickstart.py"))], capture_output=True, text=True, check=True
    )
    assert "H(P, Q)  = 3.2879 bits" in proc.stdout


def test_training_loop_losses_agree_with_torch():
    pytest.importorskip("torch")
    script = EXAMPLES[0].with_name("torch_training_loop.py")
    proc = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, check=True)
    difference = float(proc.stdout.split("largest relative difference ")[1].split(")")[0])
    assert difference < 1e-6
