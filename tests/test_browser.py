"""The explorer page and the HTML report in a real browser (Playwright driving Debian's Chromium).

Skipped where Chromium or the playwright package is missing; the axe-core
checks are skipped where axe-core's ``axe.min.js`` cannot be found (``.ci/run``
installs it and names it in ``AXE_CORE_JS``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from crossentropy._explore import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SIZES = [(390, 844), (1280, 800)]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUANTITY = re.compile(r"^(−?\d+(\.\d+)?|∞) (bits|nats)$")

pytestmark = [
    pytest.mark.slow,  # a headless browser per test
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)"),
]


def _axe_source() -> str | None:
    candidates = [os.environ.get("AXE_CORE_JS"), ROOT / "node_modules" / "axe-core" / "axe.min.js"]
    for path in candidates:
        if path and Path(path).is_file():
            return Path(path).read_text(encoding="utf-8")
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def address():
    srv, url = serve_in_thread()
    try:
        yield url
    finally:
        srv.shutdown()
        srv.server_close()


def _page(browser, size, *, touch=False):
    # bypass_csp: the page's Content-Security-Policy forbids eval, which Playwright's wait_for_function uses
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, has_touch=touch, is_mobile=touch, bypass_csp=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page, errors


def _open(browser, address, size, **kwargs):
    page, errors = _page(browser, size, **kwargs)
    page.goto(address)
    page.wait_for_function("document.getElementById('r-HPQ').textContent.endsWith('bits')")
    return page, errors


def _no_horizontal_overflow(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def _unnamed_controls(page) -> list[str]:
    """Controls without an accessible name, from Chromium's own accessibility tree."""
    session = page.context.new_cdp_session(page)
    nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    roles = {"textbox", "slider", "combobox", "checkbox", "button", "spinbutton", "radio", "searchbox"}
    unnamed = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in roles:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            unnamed.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    session.detach()
    return unnamed


def _quantities(page, scope):
    return page.eval_on_selector_all(
        f"{scope} [data-quantity]", "nodes => nodes.filter(n => n.offsetParent !== null).map(n => n.textContent)"
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_view_fits_names_every_control_and_gives_units(browser, address, size):
    page, errors = _open(browser, address, size)
    _no_horizontal_overflow(page)
    assert _unnamed_controls(page) == []
    assert len(_quantities(page, "#results-table")) == 7
    values = _quantities(page, "#compare")
    assert len(values) == 7 + 2 * 3 + 2  # the table, each event's two shares, their two sums
    assert all(QUANTITY.match(v) for v in values), values
    assert page.text_content("#r-HPQ") == "3.288 bits"
    assert float(page.get_attribute("#r-HPQ", "title").split()[0]) == pytest.approx(3.2879430946, abs=1e-9)
    assert page.get_attribute("#mode-compare", "aria-pressed") == "true"
    assert page.get_attribute("#mode-binary", "aria-pressed") == "false"
    assert page.locator("main").count() == 1
    assert page.eval_on_selector_all("th", "ths => ths.filter(t => !t.textContent.trim()).length") == 0
    # the identity is drawn: H(P, Q) = H(P) + KL(P || Q)
    assert "3.288 bits = 1.361 bits + 1.927 bits" in page.text_content("#identity-text")
    page.select_option("#unit", "null")
    page.wait_for_function("document.getElementById('r-HPQ').textContent === '2.279 nats'")
    assert all(v.endswith(" nats") for v in _quantities(page, "#compare"))
    page.click("#mode-binary")
    page.wait_for_function("document.getElementById('binary-value').textContent.endsWith('nats')")
    _no_horizontal_overflow(page)
    page.click("#show-ten")
    page.wait_for_function("document.getElementById('ten-mean').textContent.endsWith('nats')")
    assert page.text_content("#ten-mean") == "0.247 nats"
    _no_horizontal_overflow(page)
    assert _unnamed_controls(page) == []
    values = _quantities(page, "#binary")
    assert len(values) == 12
    assert all(QUANTITY.match(v.split(" = ")[-1]) for v in values), values
    assert page.get_attribute("#mode-binary", "aria-pressed") == "true"
    assert errors == []


def _all_cleared(page):
    return all(v == "—" for v in _quantities(page, "#compare"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_invalid_input_never_shows_a_value(browser, address, size):
    page, _ = _open(browser, address, size)
    page.click("text=Type whole lists instead")
    page.fill("#p-list", "0.5, 0.5, 0.2")
    page.click("#apply-lists")
    page.wait_for_function("document.getElementById('error').textContent.includes('add up to 1.2')")
    assert _all_cleared(page)
    assert "Lower its values by 0.2" in page.text_content("#error")
    assert "each slice" not in page.text_content("#error")  # plain words, not the library's wording
    page.fill("#p-list", "0.1, 0.4, 0.5")
    page.click("#apply-lists")
    page.wait_for_function("document.getElementById('r-HPQ').textContent === '3.288 bits'")
    # a value that is not a number, typed into the first row
    first = page.locator("#events .event").first.locator("input.num.p")
    first.fill("abc")
    page.wait_for_function("document.getElementById('error').textContent.includes('is not a number')")
    assert _all_cleared(page)
    assert first.get_attribute("aria-invalid") == "true"
    # a valid edit then an invalid one at once: the late answer to the valid one must not show
    first.fill("0.2")
    first.fill("1.5")
    page.wait_for_timeout(500)
    assert _all_cleared(page)
    assert "between 0 and 1" in page.text_content("#error")
    first.fill("0.2")
    page.wait_for_function("document.getElementById('error').textContent === ''")
    values = [float(v) for v in page.input_value("#p-list").split(",")]
    assert sum(values) == pytest.approx(1.0, abs=1e-3)
    assert all(QUANTITY.match(v) for v in _quantities(page, "#compare"))
    # without "keep adding up to 1", an edit that breaks the sum is an error in plain words
    page.uncheck("#keep-sum")
    first.fill("0.9")
    page.wait_for_function("document.getElementById('error').textContent.includes('add up to')")
    assert _all_cleared(page)


def test_event_names_are_text_not_markup(browser, address):
    page, errors = _open(browser, address, (1280, 800))
    name = 'a"b<i>x'
    page.locator("#events .event").first.locator("input.name").fill(name)
    labels = page.eval_on_selector_all("#chart text", "nodes => nodes.map(n => n.firstChild.nodeValue)")
    assert name in labels
    assert page.locator("#chart i, #events i").count() == 0
    assert page.get_attribute("#events .event >> nth=0", "aria-label") == f"Event 1: {name}"
    assert (
        page.locator("#events .event").first.locator("input.num.p").get_attribute("aria-label").startswith(f"P({name})")
    )
    assert errors == []


def test_touch_drag_moves_the_binary_point(browser, address):
    page, errors = _open(browser, address, (390, 844), touch=True)
    page.click("#mode-binary")
    page.wait_for_function("document.getElementById('binary-value').textContent.endsWith('bits')")
    page.locator("#curve").scroll_into_view_if_needed()
    point = page.locator("#point").bounding_box()
    box = page.locator("#curve").bounding_box()
    plot_left, plot_right = box["x"] + 52, box["x"] + box["width"] - 14
    start = (point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    end_x = plot_left + 0.25 * (plot_right - plot_left)
    session = page.context.new_cdp_session(page)
    session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})
    for k in range(1, 11):
        x = start[0] + (end_x - start[0]) * k / 10
        session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": start[1]}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_function("document.getElementById('binary-value').textContent.endsWith('= 2.000 bits')")
    assert float(page.input_value("#binary-p")) == pytest.approx(0.25, abs=0.005)
    moved = page.locator("#point").bounding_box()
    assert moved["x"] < point["x"] - 50  # the point itself moved left, to q = 0.25
    _no_horizontal_overflow(page)
    assert errors == []


def _shake(page):
    """Resize the window and back: the page redraws; what it says must not change."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    page.set_viewport_size({"width": width - 37, "height": height})
    page.wait_for_timeout(150)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(150)


def _text(page, selector):
    return page.text_content(selector) or ""


def _summary(page):
    """The sticky bar's text on a phone (it is hidden on a wide screen)."""
    return page.evaluate("getComputedStyle(document.getElementById('summary-bar')).display !== 'none'"), _text(
        page, "#summary-text"
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_error_stays_until_the_input_changes(browser, address, size):
    page, errors = _open(browser, address, size)
    page.click("text=Type whole lists instead")
    for p_list, reason in [
        ("0.5, 0.5", "P lists 2 numbers and Q lists 3."),
        ("0.1, x, 0.5", "P[2]: “x” is not a number."),
    ]:
        page.fill("#p-list", p_list)
        page.click("#apply-lists")
        page.wait_for_function(f"document.getElementById('error').textContent.includes({reason!r})")
        page.wait_for_timeout(400)
        _shake(page)
        assert reason in _text(page, "#error")
        assert reason in _text(page, "#lists-error")  # at the field, too
        assert page.get_attribute("#p-list", "aria-invalid") == "true"
        assert _all_cleared(page)
        shown, summary = _summary(page)
        assert shown == (size[0] < 900)
        if shown:
            assert summary == f"⚠ {reason}"
    # typing in the list is a change of the input: the message goes and the editor's numbers come back
    page.type("#p-list", " ")
    page.wait_for_function("document.getElementById('r-HPQ').textContent === '3.288 bits'")
    assert _text(page, "#error") == _text(page, "#lists-error") == ""
    # removing the last event is refused, and the page says so until something changes
    for _ in range(2):
        page.locator("#events .event .remove").first.click()
    page.locator("#events .event .remove").first.click()
    page.wait_for_function("document.getElementById('error').textContent.includes('at least one event')")
    _shake(page)
    page.wait_for_timeout(300)
    assert "at least one event" in _text(page, "#error")
    assert "at least one event" in _text(page, "#row-error-0")
    page.click("#add")
    page.wait_for_function("document.getElementById('error').textContent === ''")
    assert errors == []


def test_the_point_on_the_curve_is_a_slider_that_keeps_the_focus(browser, address):
    page, errors = _open(browser, address, (1280, 800))
    page.click("#mode-binary")
    page.wait_for_function("document.getElementById('binary-value').textContent === '−log₂ 0.7 = 0.515 bits'")
    page.focus("#binary-range")
    page.keyboard.press("Tab")  # the point follows the slider in the Tab order
    assert page.evaluate("document.activeElement.id") == "point"
    expected = [
        ("ArrowLeft", "0.69"),
        ("ArrowLeft", "0.68"),
        ("ArrowDown", "0.67"),
        ("ArrowRight", "0.68"),
        ("PageUp", "0.78"),
        ("PageDown", "0.68"),
        ("End", "1"),
        ("ArrowUp", "1"),
        ("Home", "0"),
        ("ArrowDown", "0"),
        ("PageUp", "0.1"),
    ]
    for key, q in expected:
        page.keyboard.press(key)
        page.wait_for_function(f"document.getElementById('point').getAttribute('aria-valuenow') === String({q})")
        assert page.evaluate("document.activeElement.id") == "point", key
        assert page.input_value("#binary-p") == q
    assert page.text_content("#binary-value") == "−log₂ 0.1 = 3.322 bits"
    assert page.get_attribute("#point", "aria-valuetext") == "q = 0.1, loss 3.322 bits"
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('binary-value').textContent === '−log₂ 0 = ∞ bits'")
    assert "off the chart: ∞ bits" in page.text_content("#curve")
    assert page.evaluate("document.activeElement.id") == "point"
    assert errors == []


def _text_boxes(page, selector):
    return page.eval_on_selector_all(
        f"{selector} text",
        "nodes => nodes.map(n => { const b = n.getBoundingClientRect();"
        " return {text: n.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom}; })",
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_identity_bars_name_every_part(browser, address, size):
    page, errors = _open(browser, address, size)
    legend = page.text_content("#compare .figure .legend")
    assert "H(P) in the upper bar, H(Q) in the lower" in " ".join(legend.split())
    texts = " ".join(t["text"] for t in _text_boxes(page, "#identity"))
    for part in ("H(P) 1.361 bits", "KL(P ‖ Q) 1.927 bits", "3.288 bits", "H(Q) 0.884 bits", "KL(Q ‖ P) 2.022 bits"):
        assert part in texts, (part, texts)
    svg = page.locator("#identity").bounding_box()
    for box in _text_boxes(page, "#identity"):  # every label is whole: none runs off the picture
        assert box["left"] >= svg["x"] - 6, box
        assert box["right"] <= svg["x"] + svg["width"] + 1, box
    page.click("[data-preset=miss]")
    page.wait_for_function("document.getElementById('r-HPQ').textContent === '∞ bits'")
    marks = [t for t in _text_boxes(page, "#identity") if t["text"] == "∞"]
    assert len(marks) == 1
    assert marks[0]["right"] <= svg["x"] + svg["width"]
    assert page.locator("#identity polygon").count() == 1  # the arrow: the bar goes on without end
    assert "KL(P ‖ Q) ∞ bits" in " ".join(t["text"] for t in _text_boxes(page, "#identity"))
    assert "Infinite" in page.text_content("#identity-text")
    _no_horizontal_overflow(page)
    assert errors == []


def test_the_reason_is_at_the_field_and_in_the_sticky_bar_on_a_phone(browser, address):
    page, errors = _open(browser, address, (390, 844))
    row = page.locator("#events .event").nth(1)
    field = row.locator("input.num.q")
    field.fill("abc")
    page.wait_for_function("document.getElementById('row-error-1').textContent.includes('is not a number')")
    message = page.locator("#row-error-1")
    assert field.get_attribute("aria-describedby") == "row-error-1"
    below = message.bounding_box()["y"] - (field.bounding_box()["y"] + field.bounding_box()["height"])
    assert 0 <= below < 60  # just under the field, not far below in the results
    assert message.bounding_box()["y"] >= 0
    assert message.bounding_box()["y"] + 20 <= 844 - 60  # in view, above the sticky bar
    assert _summary(page) == (True, "⚠ Q(green): “abc” is not a number.")
    assert page.evaluate("getComputedStyle(document.getElementById('summary-bar')).color") == "rgb(179, 38, 30)"
    page.uncheck("#keep-sum")
    field.fill("0.5")
    page.wait_for_function("document.getElementById('row-error-1').textContent.includes('add up to 1.35')")
    assert _summary(page) == (True, "⚠ The probabilities of Q (the model) add up to 1.35, not 1.")
    assert _text(page, "#row-error-0") == ""
    field.fill("0.15")
    page.wait_for_function("document.getElementById('r-HPQ').textContent === '3.288 bits'")
    assert _text(page, "#row-error-1") == ""
    assert _summary(page) == (True, "H(P, Q) 3.288 bits = H(P) 1.361 bits + KL 1.927 bits")
    assert errors == []


def test_each_events_share_of_the_sum(browser, address):
    page, errors = _open(browser, address, (1280, 800))
    rows = page.eval_on_selector_all(
        "#terms-table tbody tr",
        "rows => rows.map(r => [r.querySelector('th').textContent,"
        " ...[...r.querySelectorAll('[data-quantity]')].map(n => n.textContent),"
        " ...[...r.querySelectorAll('.explain')].map(n => n.textContent)])",
    )
    assert rows == [
        ["red", "0.032 bits", "−0.300 bits", "0.1 × 0.322 bits", "0.1 × log₂(0.1 / 0.8)"],
        ["green", "1.095 bits", "0.566 bits", "0.4 × 2.737 bits", "0.4 × log₂(0.4 / 0.15)"],
        ["blue", "2.161 bits", "1.661 bits", "0.5 × 4.322 bits", "0.5 × log₂(0.5 / 0.05)"],
    ]
    assert page.text_content("#terms-HPQ") == "3.288 bits"
    assert page.text_content("#terms-KL") == "1.927 bits"
    assert page.text_content("#terms-table tr.largest th") == "blue"
    assert page.text_content("#terms-note").startswith("“blue” adds the most to H(P, Q)")
    page.select_option("#unit", "null")
    page.wait_for_function("document.getElementById('terms-HPQ').textContent === '2.279 nats'")
    assert "−ln Q(x)" in page.text_content("#terms-table thead")
    assert page.text_content("#js-bound") == "ln 2 = 0.693 nats"
    assert errors == []


def _overlaps(a, b):
    return not (
        a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_smaller_fixes(browser, address, size):
    page, errors = _open(browser, address, size)
    if size == (1280, 800):  # the bars are in view beside the sliders: moving one shows a bar moving
        page.locator("#events .event").first.locator("input.p-range").fill("0.3")
        page.wait_for_function("document.getElementById('r-HPQ').textContent !== '3.288 bits'")
        for figure in ("#identity", "#chart"):
            assert page.locator(figure).bounding_box()["y"] + page.locator(figure).bounding_box()["height"] <= 800
    assert page.text_content("#js-bound") == "1 bit"
    page.click("#mode-binary")
    page.click("#show-ten")
    page.wait_for_function("document.getElementById('curve').textContent.includes('×4')")
    boxes = _text_boxes(page, "#curve")
    counts = [b for b in boxes if b["text"].startswith("×")]
    ticks = [b for b in boxes if re.fullmatch(r"[\d.]+", b["text"])]
    assert len(counts) == 3  # ×2, ×3 and ×4
    assert not [(c, t) for c in counts for t in ticks if _overlaps(c, t)]
    assert any(b["text"] == "loss −log₂ q (bits)" for b in boxes)
    page.fill("#binary-p", "1e-300")
    page.wait_for_function("document.getElementById('binary-value').textContent === '−log₂ 1e-300 = 996.6 bits'")
    page.select_option("#unit", "null")
    page.wait_for_function("document.getElementById('binary-value').textContent === '−ln 1e-300 = 690.8 nats'")
    assert any(b["text"] == "loss −ln q (nats)" for b in _text_boxes(page, "#curve"))
    _no_horizontal_overflow(page)
    assert errors == []


def _report_html() -> str:
    pytest.importorskip("matplotlib")
    from crossentropy._report import render
    from test_report import example_result

    result = example_result()
    return render({}, result, generated="2026-01-02 03:04 UTC")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_report_fits_the_screen(browser, size, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(_report_html(), encoding="utf-8")
    page, errors = _page(browser, size)
    page.goto(path.as_uri())
    _no_horizontal_overflow(page)
    assert page.locator("main").count() == 1
    assert page.eval_on_selector_all("th", "ths => ths.filter(t => !t.textContent.trim()).length") == 0
    assert page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.complete || !i.naturalWidth).length") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{size[0]}.png"), full_page=True)
    assert errors == []


def _scored_report(tmp_path, power: float) -> str:
    """The report of a real score: a three-class model whose probabilities are the truth's to ``power``."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("pyarrow")
    import numpy as np

    from crossentropy._report import render
    from crossentropy.scoring import score_file

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3000, 3)) * 1.5
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (truth.cumsum(axis=1) > rng.uniform(size=(3000, 1))).argmax(axis=1)
    model = truth**power / (truth**power).sum(axis=1, keepdims=True)
    path = tmp_path / f"model-{power}.csv"
    rows = [f"{y},{a!r},{b!r},{c!r}" for y, (a, b, c) in zip(labels, model.tolist(), strict=True)]
    path.write_text("label,p_0,p_1,p_2\n" + "\n".join(rows) + "\n")
    result = score_file(str(path), calibrate="temperature", worst_rows=10)
    report = tmp_path / f"report-{power}.html"
    report.write_text(render({}, result, generated="2026-01-02 03:04 UTC"), encoding="utf-8")
    return report.as_uri()


# The smallest text of each figure as the browser shows it: SVG font sizes (user units) scaled by the image's
# displayed width over its viewBox's.
FIGURE_TEXT = """imgs => imgs.map(img => {
  const svg = atob(img.src.split("base64,")[1]);
  const sizes = [...svg.matchAll(/font-size: ([0-9.]+)px/g)].map(m => Number(m[1]));
  const box = Number(svg.match(/viewBox="0 0 ([0-9.]+)/)[1]);
  return Math.min(...sizes) * img.getBoundingClientRect().width / box;
})"""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_report_leads_with_the_verdict_and_reads_on_a_phone(browser, size, tmp_path):
    page, errors = _page(browser, size)
    for power, verdict in ((3.0, "overconfident"), (0.3, "underconfident"), (1.0, "well calibrated")):
        page.goto(_scored_report(tmp_path, power))
        _no_horizontal_overflow(page)
        # the verdict first: the title, then the verdict in words, then the cards; the file's facts last
        order = page.eval_on_selector_all("main > *", "nodes => nodes.map(n => n.tagName + '.' + n.className)")
        assert order[:3] == ["H1.", "DIV.verdict", "DIV.headline"]
        assert order[-1] == "FOOTER."
        said = page.inner_text(".verdict")
        assert f"Calibration: {verdict}:" in said
        assert sum(word in said for word in ("overconfident", "underconfident", "well calibrated")) == 1
        if verdict == "well calibrated":  # nothing to recover, and the report says so
            assert re.search(r"No temperature lowers the loss: [0-9.]+ nats before, [0-9.]+ nats with the", said)
        else:
            assert re.search(r"A temperature of [0-9.]+ would lower the loss from [0-9.]+ nats to [0-9.]+ nats", said)
        # the calibration card: coloured, the direction in words
        card = page.locator(".card", has_text="calibration").first
        assert card.locator(".value").inner_text() == verdict
        assert card.evaluate("c => getComputedStyle(c).backgroundColor") not in (
            "rgba(0, 0, 0, 0)",
            "rgb(255, 255, 255)",
        )
        # figures: SVG whose smallest text is at least 10 CSS pixels, on a phone too
        smallest = page.eval_on_selector_all("figure img", FIGURE_TEXT)
        assert len(smallest) == 3
        assert min(smallest) >= 10, smallest
        assert page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.complete || !i.naturalWidth).length") == 0
        # the reliability diagram's caption says where the counts are
        assert "The number at the foot of each bar is how many rows the bin holds." in page.inner_text("main")
        # where to look next: the loss histogram on a log scale and the worst rows with their row and label
        assert "the counts are on a log scale" in page.inner_text("main")
        worst = page.locator("table", has=page.locator("th", has_text="P(label)"))
        assert worst.locator("tbody tr").count() == 10
    # the per-class table scrolls visibly on a phone: a shadow at the edge and a line saying so
    wrap = page.locator(".table-wrap").first
    overflowing = wrap.evaluate("w => w.scrollWidth > w.clientWidth")
    hint = page.locator(".scroll-hint").first
    assert overflowing == (size[0] < 600)
    assert hint.is_visible() == overflowing
    assert "radial-gradient" in wrap.evaluate("w => getComputedStyle(w).backgroundImage")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-verdict-{size[0]}.png"), full_page=True)
    assert errors == []


def _axe_violations(page, source):
    page.add_script_tag(content=source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_axe_finds_no_serious_violations(browser, address, size, tmp_path):
    source = _axe_source()
    if source is None:
        pytest.skip("axe-core not found (set AXE_CORE_JS to axe.min.js; .ci/run installs it)")
    page, _ = _open(browser, address, size)
    assert _axe_violations(page, source) == []
    page.locator("#events .event").first.locator("input.num.p").fill("abc")  # the invalid state too
    page.wait_for_function("document.getElementById('row-error-0').textContent.includes('is not a number')")
    assert _axe_violations(page, source) == []
    page.click("#mode-binary")
    page.click("#show-ten")
    page.wait_for_function("document.getElementById('ten-mean').textContent.endsWith('bits')")
    assert _axe_violations(page, source) == []
    report = tmp_path / "report.html"
    report.write_text(_report_html(), encoding="utf-8")
    page.goto(report.as_uri())
    assert _axe_violations(page, source) == []
    page.goto(_scored_report(tmp_path, 3.0))  # the verdict, the coloured card, the worst rows
    assert _axe_violations(page, source) == []
