"""The built documentation in a real browser: nothing is requested from outside the site, formulas are MathML, and
a display formula wider than a phone scrolls inside its own box, with a visible cue.

Slow (the module builds the whole site with ``mkdocs build --strict``, about 20 s); skipped where Chromium, the
playwright package or the docs tools (mkdocs-material, mkdocstrings, latex2mathml) are missing.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import test_browser
from test_browser import ARTIFACTS, CHROMIUM, SIZES

ROOT = Path(__file__).resolve().parents[1]
browser = test_browser.browser  # the same module-scoped Chromium fixture

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)"),
    pytest.mark.slow,
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        return


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for name in ("mkdocs", "material", "mkdocstrings", "latex2mathml"):
        pytest.importorskip(name)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    result = subprocess.run(build, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", out
    finally:
        server.shutdown()
        server.server_close()


def _pages(out: Path) -> list[str]:
    """The address of every page of the site, relative to its root ("" for the home page)."""
    relative = (path.parent.relative_to(out).as_posix() for path in out.rglob("index.html"))
    return sorted("" if rel == "." else f"{rel}/" for rel in relative)


def test_no_page_requests_anything_from_outside_the_site(browser, site):
    address, out = site
    pages = _pages(out)
    assert len(pages) >= 15, pages
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path in pages:
        page.goto(address + path, wait_until="networkidle")
    outside = sorted({url for url in requested if not url.startswith((address, "data:", "blob:"))})
    assert outside == []
    assert any(url.endswith(".js") for url in requested)  # the theme's own scripts did load, from the site
    context.close()


FORMULA_CODE = "nodes => nodes.filter(n => /[Σ∑‖]|log [PQ]|= -log/.test(n.textContent)).map(n => n.textContent)"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_formulas_are_rendered_and_scroll_within_a_phone(browser, site, size):
    address, _ = site
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    overflowing = []
    for path, least in (("", 2), ("introduction/", 8), ("concepts/", 6), ("explore/", 3)):
        page.goto(address + path)
        assert page.locator(".md-content math").count() >= least, path
        assert page.eval_on_selector_all(".md-content code", FORMULA_CODE) == [], path  # formulas, not code
        assert page.evaluate("document.documentElement.scrollWidth") <= size[0], path  # the page never scrolls
        for box in page.query_selector_all(".md-content .math-display"):
            overflow, background = box.evaluate(
                "b => [getComputedStyle(b).overflowX, getComputedStyle(b).backgroundImage]"
            )
            assert overflow == "auto"
            assert background.count("radial-gradient") == 2  # the shadows at the edges: the cue
            assert box.get_attribute("tabindex") == "0"
            if box.evaluate("b => b.scrollWidth > b.clientWidth + 1"):
                overflowing.append(path)
                box.scroll_into_view_if_needed()
                box.screenshot(path=str(ARTIFACTS / f"docs-formula-{len(overflowing)}-{size[0]}.png"))
                box.focus()
                page.keyboard.press("ArrowRight")
                page.wait_for_function("b => b.scrollLeft > 0", arg=box, timeout=5000)  # it scrolls, by keyboard too
        page.screenshot(path=str(ARTIFACTS / f"docs-{path.strip('/') or 'index'}-{size[0]}.png"))
    if size[0] < 500:
        assert overflowing, "at 390 px the long identity of the introduction overflows: it must scroll"
    else:
        assert overflowing == []
    context.close()
