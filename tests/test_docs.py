"""Generated documentation stays in step with the code; the docs hook renders maths and survives without matplotlib."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conventions_page_is_generated_from_the_code():
    generator = _load(DOCS / "generate_conventions.py")
    committed = (DOCS / "conventions.md").read_text(encoding="utf-8")
    assert generator.render() == committed, "run: python docs/generate_conventions.py"


def test_conventions_page_has_no_sphinx_roles_and_no_contradictions():
    page = (DOCS / "conventions.md").read_text(encoding="utf-8")
    assert not re.search(r":(data|func|class|meth):`", page)
    assert page.index("## Why the libraries disagree") < page.index("| input |")
    assert page.split("## Why the libraries disagree")[1].split("##")[0].count("\n- ") == 4
    names = re.findall(r"`([a-z0-9-]+)`", page.split("| input |")[1].splitlines()[0])
    row = next(line for line in page.splitlines() if line.startswith("| CCE, y = [1, 0], p = [0.4, 0.4]"))
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    for name, cell in zip(names, cells, strict=True):
        section = page.split(f"### `{name}`")[1].split("###")[0]
        fact = next(line for line in section.splitlines() if "does not add up to 1" in line)
        if cell == "0.6931472":
            assert "renormalised" in fact, name
        elif cell == "error":
            assert "refused" in fact, name
        else:
            assert "used as given" in fact, name


def test_the_docs_use_no_unexplained_jargon():
    for name in ("index.md", "introduction.md", "concepts.md", "conventions.md", "explore.md", "report.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        assert "main job" not in text, name
        assert "seed" not in text.lower(), name


def test_every_screenshot_is_committed_and_used():
    referenced = set()
    for page in DOCS.glob("*.md"):
        referenced |= set(re.findall(r"\]\((images/[^)\s]+\.png)\)", page.read_text(encoding="utf-8")))
    committed = {f"images/{p.name}" for p in (DOCS / "images").glob("*.png")}
    assert referenced == committed
    for name in ("explore-compare-1280", "explore-compare-390", "report-1280", "report-390"):
        assert f"images/{name}.png" in committed


def test_maths_becomes_mathml_outside_code_only():
    pytest.importorskip("latex2mathml")
    hooks = _load(DOCS / "hooks.py")
    text = "a \\(H(P) \\ge 0\\) b `\\(x\\)`\n\n```\n$$y$$\n```\n\n$$\\mathrm{KL}(P \\,\\|\\, Q)$$\n"
    out = hooks.render_maths(text)
    assert out.count("<math") == 2
    assert 'display="block"' in out
    assert out.count('<div class="math-display" tabindex="0"><math') == 1  # the box that scrolls on a phone
    assert "`\\(x\\)`" in out
    assert "```\n$$y$$\n```" in out


def test_formulas_are_written_as_maths_not_code():
    """Every page renders its formulas (MathML through the hook), as the introduction does; none is left as code."""
    hooks = _load(DOCS / "hooks.py")
    formula = re.compile(r"[Σ∑‖]|log [PQ]\(|= -log")
    for name in ("index.md", "introduction.md", "concepts.md", "explore.md"):
        text = (DOCS / name).read_text(encoding="utf-8")
        prose = hooks._FENCE.sub("", text)
        assert [span for span in hooks._CODE_SPAN.findall(prose) if formula.search(span)] == [], name
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    assert concepts.count("$$") >= 6  # entropy, cross-entropy and KL, Jensen-Shannon on lines of their own
    assert "\\(h(x) = -\\log P(x)\\)" in concepts


def test_the_site_loads_no_web_font():
    """mkdocs-material links Google Fonts unless told not to: the only request that would leave the site."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    theme = config.split("theme:")[1].split("\nnav:")[0]
    assert re.search(r"^  font: false\b", theme, re.MULTILINE)


def test_the_build_hook_skips_figures_without_matplotlib(monkeypatch, tmp_path, caplog):
    hooks = _load(DOCS / "hooks.py")
    monkeypatch.setattr(hooks, "GENERATED", tmp_path / "generated")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with caplog.at_level(logging.INFO, logger="mkdocs.hooks.crossentropy"):
        hooks.on_pre_build(config=None)
    assert "matplotlib is not installed" in caplog.text
    assert (tmp_path / "generated" / "cli.md").exists()
    assert not list((tmp_path / "generated").glob("*.png"))
    page = hooks.on_page_markdown("See ![The loss of one prediction](generated/loss_of_one_prediction.png).")
    assert "generated/" not in page
    assert "The loss of one prediction" in page
