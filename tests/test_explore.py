"""crossentropy explore: the JSON API and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crossentropy._explore import serve_in_thread

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def server():
    srv, address = serve_in_thread()
    yield address
    srv.shutdown()
    srv.server_close()


def post(address, path, body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        address + path.lstrip("/"), data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_compare_endpoint(server):
    status, data = post(server, "/api/compare", {"p": [0.1, 0.4, 0.5], "q": [0.8, 0.15, 0.05], "base": 2})
    assert status == 200
    assert data["unit"] == "bits"
    assert data["H(P,Q)"] == pytest.approx(3.2879430946, abs=1e-10)
    assert data["KL(P||Q)"] == pytest.approx(1.9269790472, abs=1e-10)
    status, data = post(server, "/api/compare", {"p": [0.5, 0.5], "q": [1.0, 0.0], "base": None})
    assert data["H(P,Q)"] == "inf"


def test_binary_endpoint(server):
    status, data = post(server, "/api/binary", {"p": 0.5, "base": None})
    assert status == 200
    assert data["cross_entropy"] == pytest.approx(0.6931471806)
    assert len(data["curve"]) == 100
    assert post(server, "/api/binary", {"p": 0.0, "base": None})[1]["cross_entropy"] == "inf"


@pytest.mark.parametrize(
    ("path", "body", "raw", "message"),
    [
        ("/api/compare", None, b"{not json", "not JSON"),
        ("/api/compare", [1, 2], None, "JSON object"),
        ("/api/compare", {"p": [0.5, 0.5]}, None, "Q must be a non-empty list"),
        ("/api/compare", {"p": [0.5, "x"], "q": [0.5, 0.5]}, None, "P[1] = 'x' is not a number"),
        ("/api/compare", {"p": [0.5, 0.6], "q": [0.5, 0.5]}, None, "sums to 1.1"),
        ("/api/compare", {"p": [0.5, 0.5], "q": [1.0]}, None, "P has 2 events but Q has 1"),
        ("/api/compare", {"p": [1.0], "q": [1.0], "base": 1}, None, "base must be"),
        ("/api/binary", {"p": 1.5}, None, "p = 1.5 must lie in [0, 1]"),
        ("/api/binary", {"p": "half"}, None, "p must be a number"),
    ],
)
def test_malformed_requests_get_400_and_a_message(server, path, body, raw, message):
    status, data = post(server, path, body, raw)
    assert status == 400
    assert message in data["error"]


def test_unknown_paths_and_the_page(server):
    assert post(server, "/api/nothing", {})[0] == 404
    with urllib.request.urlopen(server, timeout=10) as response:
        page = response.read().decode()
    assert "crossentropy explore" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # no network assets


def test_cli_serves_and_stops(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossentropy", "explore", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving http://127.0.0.1:" in line
        address = line.split("serving ")[1].split()[0]
        assert post(address, "/api/binary", {"p": 0.5})[0] == 200
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_page_in_headless_chromium(server):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.goto(server)
        page.fill("#p-list", "0.10, 0.40, 0.50")
        page.fill("#q-list", "0.80, 0.15, 0.05")
        page.click("#apply-lists")
        page.wait_for_function("document.getElementById('r-HPQ').textContent === '3.288'")
        assert page.text_content("#r-HPQ") == "3.288"
        assert float(page.get_attribute("#r-HPQ", "title")) == pytest.approx(3.2879430946, abs=1e-9)
        page.select_option("#unit", "null")
        page.wait_for_function("document.getElementById('r-HPQ').textContent === '2.279'")
        assert page.text_content("#r-HPQ") == "2.279"
        page.fill("#events tbody tr:first-child .p", "abc")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert "not a number" in page.text_content("#error")
        # edits keep P normalised: the rows after the edited one take up the rest
        page.fill("#events tbody tr:first-child .p", "0.2")
        page.wait_for_function("document.getElementById('error').textContent === ''")
        values = [float(v) for v in page.input_value("#p-list").split(",")]
        assert sum(values) == pytest.approx(1.0, abs=1e-3)
        page.screenshot(path=str(ARTIFACTS / "explore-compare.png"))
        page.click("#mode-binary")
        page.wait_for_function("document.getElementById('binary-value').textContent.length > 0")
        box = page.locator("#curve").bounding_box()
        page.mouse.move(box["x"] + 40 + 0.25 * 540, box["y"] + 150)
        page.mouse.down()
        page.mouse.up()
        page.wait_for_function("Math.abs(Number(document.getElementById('binary-p').value) - 0.25) < 0.01")
        time.sleep(0.2)
        assert float(page.text_content("#binary-value")) == pytest.approx(1.3863, abs=0.05)
        page.screenshot(path=str(ARTIFACTS / "explore-binary.png"))
        browser.close()
