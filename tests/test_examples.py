"""The scripts in examples/ run and print what they promise."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each example runs in a fresh interpreter

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


QUICK = {"torch_training_loop.py", "distill.py"}
"""Scripts with a --quick option that keeps the test short."""

NEEDS = {"distill.py": ("torch", "transformers")}
"""Optional packages a script imports (the torch_* scripts need torch)."""


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    for package in NEEDS.get(script.name, ("torch",) if script.name.startswith("torch_") else ()):
        pytest.importorskip(package)
    proc = _run(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


@functools.cache
def _run(script: Path) -> subprocess.CompletedProcess[str]:
    """The script's run (``--quick`` where it has one), once per session: two tests read it."""
    command = [sys.executable, str(script), *(["--quick"] if script.name in QUICK else [])]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


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


def test_distillation_example_losses_agree():
    """The fused and the naive distillation give the same loss curve (examples/distill.py)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    proc = _run(EXAMPLES[0].with_name("distill.py"))
    assert proc.returncode == 0, proc.stderr
    difference = float(proc.stdout.split("largest relative difference ")[1].split()[0])
    assert difference < 1e-5
    assert "MB saved" in proc.stdout
