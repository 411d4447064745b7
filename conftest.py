"""The doctests (README.md, docs/, the modules under src/ and tests/) where an optional package is missing.

The suite runs on the core dependencies and pytest alone (``.ci/run`` checks it): there,

- a module that imports an optional package at its top (``crossentropy.torch``,
  ``crossentropy.dask``, a test helper) is not collected for its doctests;
- a doctest that stops on the import of a missing package (README.md's ``import torch``,
  ``parse_distribution``'s SciPy) skips, naming it.

Test modules skip themselves (``pytest.importorskip``, ``tests/optional.py``).
"""

from __future__ import annotations

import ast
import doctest
import fnmatch
import importlib.util
from collections.abc import Generator
from pathlib import Path

import pytest


def _top_level_names(source: str) -> set[str]:
    """The packages that the statements of ``source`` outside any block import."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return set()  # reported where it is run
    names = set()
    for node in body:
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out a module collected only for its doctests whose import needs a missing package."""
    if collection_path.suffix != ".py" or any(
        fnmatch.fnmatch(collection_path.name, pattern) for pattern in config.getini("python_files")
    ):
        return None
    needed = _top_level_names(collection_path.read_text(encoding="utf-8"))
    return None if all(map(_installed, needed)) else True  # None: no opinion (False would override --ignore)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None]:
    """Skip a doctest that stops on the import of a missing package."""
    try:
        return (yield)
    except doctest.UnexpectedException as failure:
        error = failure.exc_info[1]
        if isinstance(error, ModuleNotFoundError) and error.name and not _installed(error.name.partition(".")[0]):
            pytest.skip(f"could not import {error.name!r}: {error}")
        raise
