"""Write the screenshots in docs/images/: the explorer and a score report, at 1280 × 800 and 390 × 844.

Run ``python docs/make_screenshots.py`` after changing the explorer page or the
report (``python docs/make_screenshots.py report`` or ``explorer`` for one of
them). It needs Chromium (``/usr/bin/chromium``, Debian's package), the
playwright package and matplotlib. The report is that of a synthetic,
imbalanced three-class prediction file scored by ``crossentropy score
--calibrate temperature --report``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from crossentropy._explore import serve_in_thread
from crossentropy._report import render
from crossentropy.scoring import score_file

IMAGES = Path(__file__).with_name("images")
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


def example_predictions(path: Path, rows: int = 3000, seed: int = 0) -> None:
    """An imbalanced three-class prediction file of an overconfident model: labels and softmax probabilities
    whose logits are 1.5 times what they should be."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=rows, p=[0.05, 0.7, 0.25])
    logits = rng.normal(size=(rows, 3)) * 1.2
    logits[np.arange(rows), labels] += 1.5
    logits *= 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    lines = ["label,p_0,p_1,p_2"] + [f"{y},{a},{b},{c}" for y, (a, b, c) in zip(labels, probs.tolist(), strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    wanted = set(argv) or {"explorer", "report"}
    if not wanted <= {"explorer", "report"}:
        print("usage: python docs/make_screenshots.py [explorer] [report]", file=sys.stderr)
        return 2

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs Debian's chromium", file=sys.stderr)
        return 1
    IMAGES.mkdir(exist_ok=True)
    server, address = serve_in_thread()
    workdir = Path(tempfile.mkdtemp())
    try:
        data = workdir / "predictions.csv"
        example_predictions(data)
        report = workdir / "report.html"
        result = score_file(str(data), calibrate="temperature", worst_rows=10)
        result["file"] = "predictions.csv"
        report.write_text(render({}, result), encoding="utf-8")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)

            def page(width: int, height: int) -> Any:
                context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
                return context.new_page()

            def ready(p: Any) -> None:
                p.goto(address)
                p.wait_for_function("document.getElementById('r-HPQ').textContent.endsWith('bits')")

            written = []
            if "explorer" in wanted:
                wide = page(1280, 800)
                ready(wide)
                wide.screenshot(path=str(IMAGES / "explore-compare-1280.png"), full_page=True)
                wide.click("#mode-binary")
                wide.click("#show-ten")
                wide.wait_for_function("document.getElementById('ten-mean').textContent.endsWith('bits')")
                wide.screenshot(path=str(IMAGES / "explore-binary-1280.png"), full_page=True)

                phone = page(390, 844)
                ready(phone)
                phone.screenshot(path=str(IMAGES / "explore-compare-390.png"))
                phone.click("text=Type whole lists instead")
                phone.fill("#p-list", "0.5, 0.5, 0.2")
                phone.click("#apply-lists")
                phone.wait_for_function("document.getElementById('error').textContent.includes('add up to')")
                phone.evaluate("document.getElementById('results').scrollIntoView()")
                phone.screenshot(path=str(IMAGES / "explore-invalid-390.png"))
                written += ["explore-compare-1280", "explore-binary-1280", "explore-compare-390", "explore-invalid-390"]

            if "report" in wanted:
                for width, height in ((1280, 800), (390, 844)):
                    p = page(width, height)
                    p.goto(report.as_uri())
                    p.screenshot(path=str(IMAGES / f"report-{width}.png"))
                    written.append(f"report-{width}")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
    for name in written:
        print(f"wrote {IMAGES / name}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
