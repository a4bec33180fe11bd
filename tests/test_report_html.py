"""report.html of a quick run, opened in a real browser (headless chromium through
selenium): no console error, every picture and the graph's SVG drawn, a screenshot that
is not blank. Skipped where chromium or its driver is missing, unless
DGMC_REQUIRE_BROWSER is set (as CI sets it, having installed both)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
REQUIRED = bool(os.environ.get("DGMC_REQUIRE_BROWSER"))


def test_report_html_is_self_contained(hm_run: Path) -> None:
    page = (hm_run / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing fetched
    assert "<script" not in page
    for heading in ("Students", "Distillation terms per node", "Samples", "Does ours beat scratch?", "Pictures"):
        assert heading in page


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's `dot` is not installed (apt-get install graphviz)")
def test_report_html_holds_the_graph_drawn_by_dot(hm_run: Path) -> None:
    assert "<svg" in (hm_run / "report.html").read_text()


@pytest.mark.skipif(not (CHROMIUM and DRIVER) and not REQUIRED, reason="no chromium/chromedriver (apt: chromium "
                    "chromium-driver)")
def test_report_html_renders_in_a_browser(hm_run: Path) -> None:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,2000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get((hm_run / "report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
        assert images and all(complete and width > 0 for _, complete, width in images), images
        graph = driver.execute_script("const s = document.querySelector('.graph svg'); "
                                      "return s ? s.getBoundingClientRect().width : 0;")
        assert graph > 100
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")
        low, high = shot.getextrema()
        assert high - low > 100 and sum(1 for count in shot.histogram() if count) > 20  # not a blank page
    finally:
        driver.quit()
