"""The README as a newcomer uses it: each code block runs pasted alone, its commands exist, CI runs its Quick start;
and the license it ships under.

pytest also runs README.md as one doctest (``--doctest-glob``), where each block sees the names of
the blocks above it; here each block starts from nothing, as in a new interpreter.
"""

from __future__ import annotations

import doctest
import pickle
import re
import shlex
import subprocess
import sys
import tomllib
import traceback
from pathlib import Path

import pytest

import crossentropy as ce
from crossentropy.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARKER = "<!-- .ci/run runs this block verbatim"


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of each fenced block of ``language``."""
    return [
        (README.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(README) if m.group(1) == language
    ]


def _skip_without_imports(source: str) -> None:
    """Skip, naming it, when a module the block imports cannot be imported (as the README's doctest does)."""
    for name in re.findall(r"^(?:>>> )?(?:import|from) ([\w.]+)", source, re.MULTILINE):
        pytest.importorskip(name)


PYTHON = _blocks("python")


@pytest.mark.parametrize(("line", "source"), PYTHON, ids=[f"line {line}" for line, _ in PYTHON])
def test_each_python_block_runs_alone(line, source):
    _skip_without_imports(source)
    name = f"README.md, line {line}"
    examples = doctest.DocTestParser().get_examples(source)
    if examples:
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(doctest.DocTest(examples, {}, name, "README.md", line, source), out=report.append)
        assert runner.failures == 0, "".join(report)
        assert runner.tries == len(examples)
    else:  # a plain listing: it runs as a script
        exec(compile(source, name, "exec"), {"__name__": "__main__"})


def _command_lines() -> list[str]:
    """The ``crossentropy`` commands shown: runnable as they are (bash) or on the reader's files (text)."""
    lines = []
    for _, source in _blocks("bash") + _blocks("text"):
        for text in source.splitlines():
            command = text.split("  #", 1)[0].strip()
            if command.startswith("crossentropy "):
                lines.append(command)
    return lines


@pytest.mark.parametrize("command", _command_lines())
def test_every_command_line_shown_parses(command):
    argv = shlex.split(command)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
    assert args.command == argv[0]


def test_ci_runs_the_quick_start_commands_verbatim():
    """.ci/run takes each block after the marker from the README itself, so the two cannot drift apart."""
    blocks = README.split(MARKER)[1:]
    commands = [FENCE.search(block.split("-->", 1)[1]).group(2).strip() for block in blocks]
    assert len(commands) == 2
    assert commands[0].endswith("crossentropy tutorial")
    assert commands[1].startswith("python -m pip install torch==")
    assert commands[1].endswith("&& python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert r"/^<!-- \.ci\/run/" in ci
    assert "pip install torch==" not in ci
    assert "crossentropy tutorial" not in ci


def test_the_docs_show_the_same_two_commands():
    readme = {source.strip() for _, source in _blocks("bash")}
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    shown = [m.group(2).strip() for m in FENCE.finditer(index) if m.group(1) == "bash"]
    assert len(shown) == 2
    assert set(shown) <= readme


def test_the_main_job_is_named_for_what_it_is():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "main job" not in README
    for fact in ("tutorial", "five teaching texts", "Python 3.11", "C compiler is optional", "crossentropy info"):
        assert fact in quick_start, fact
    flowing = " ".join(quick_start.split())
    for need in ("GB of disk", "minutes to install", "minutes to run", "GiB of memory", "Chromium"):
        assert need in flowing, need


def test_no_arguments_prints_the_help_and_the_commands(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: crossentropy")
    for command in ("compare", "score", "tutorial", "train", "explore", "perplexity", "info"):
        assert f"\n    {command} " in err or f"\n    {command}\n" in err, command


def test_the_command_with_no_arguments_exits_2():
    proc = subprocess.run([sys.executable, "-m", "crossentropy"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "tutorial" in proc.stderr
    assert "examples:" in proc.stderr


def test_the_license_file_is_the_one_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]  # in the sdist and the wheel (.ci/wheels checks both)
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "crossentropy developers" in text


def test_input_errors_are_shown_and_pickled_under_their_public_name():
    with pytest.raises(ce.InputError) as caught:
        ce.entropy([[0.5, 0.5], [0.5, 0.4]])
    assert traceback.format_exception_only(caught.value)[0].startswith("crossentropy.InputError: p[1, :] sums to 0.9")
    again = pickle.loads(pickle.dumps(caught.value))  # Dask's workers send errors back this way
    assert type(again) is ce.InputError
    assert again.args == caught.value.args
