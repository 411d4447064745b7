"""Generated documentation stays in step with the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conventions_page_is_generated_from_the_code():
    generator = _load(ROOT / "docs" / "generate_conventions.py")
    committed = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    assert generator.render() == committed, "run: python docs/generate_conventions.py"
