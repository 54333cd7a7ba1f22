"""The welcome page in headless Chromium: fill the form, see the prediction without leaving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent: `apt-get install -y chromium` (.ci/run does it)",
    ),
]


@pytest.fixture
def page_url(penguins_app: Flask) -> Iterator[str]:
    """Serve the app on a free 127.0.0.1 port from a thread (the page, not gunicorn, is tested)."""
    server = make_server("127.0.0.1", 0, penguins_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_page_form_predicts_in_place(page_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            assert "penguins-random_forest" in page.locator("h1").inner_text()
            assert "accuracy" in page.locator("#metrics th").all_inner_texts()
            assert page.locator("img[alt^='Confusion matrix']").evaluate("i => i.naturalWidth") > 0
            page.select_option("select[name='island']", "Biscoe")
            page.fill("input[name='bill_length_mm']", "47.5")
            page.fill("input[name='bill_depth_mm']", "14.2")
            page.fill("input[name='flipper_length_mm']", "215")
            page.fill("input[name='body_mass_g']", "5000")
            page.select_option("select[name='sex']", "male")
            page.fill("input[name='year']", "2008")
            page.click("button[type='submit']")
            page.wait_for_selector("#prediction")
            assert page.locator("#prediction").inner_text() == "Gentoo"
            probabilities = page.locator("#probabilities th").all_inner_texts()
            assert probabilities == ["Adelie", "Chinstrap", "Gentoo"]
            assert page.url == page_url  # the answer arrived without leaving the page
            page.fill("input[name='body_mass_g']", "")  # optional: sent as a missing value
            page.click("button[type='submit']")
            page.wait_for_function("!document.querySelector('#result').textContent.includes('…')")
            assert page.locator("#prediction").inner_text() == "Gentoo"
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            browser.close()
