"""The page at ``/`` in a real browser (Debian's chromium + chromium-driver, driven by selenium).

Uploads a generated frame, waits for the target table and the boxed overlay, moves the threshold
slider (which re-runs the frame) and saves a screenshot (to ``docs/images/serve_page.png`` with
``IRSTD_UPDATE_SCREENSHOTS=1``; else into the test's temporary folder, so a test run leaves the clone clean).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_frames import encode, near, scene

from irstd.inference import Predictor
from irstd.serve import BackgroundServer, ServeConfig, create_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "serve_page.png"


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_uploads_a_frame_and_shows_boxed_targets(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    frame, xy = scene(21, size=128, bit_depth=16)
    path = tmp_path / "frame16.png"
    path.write_bytes(encode(frame, "PNG", bit_depth=16))
    app = create_app(Predictor.from_checkpoint("tophat", device="cpu"), ServeConfig(threshold=0.9), name="tophat")
    with BackgroundServer(app) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "tophat" in d.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "picker").send_keys(str(path))
        rows = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#frame-0 table.targets tr")))
        cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows[1:]]
        targets = [{"x": float(c[1]), "y": float(c[2])} for c in cells]
        assert near(targets, xy, tol=3.5), (cells, xy)
        img = browser.find_element(By.CSS_SELECTOR, "#frame-0 img.overlay")
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 128)
        # the overlay really has the red box drawn into it (the stretched frame itself is grey)
        red = browser.execute_script("""
            const img = arguments[0], c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 100 && d[i + 2] < 100) n++;
            return n;""", img)
        assert red > 8, red
        assert "1 frame(s)" in browser.find_element(By.ID, "status").text
        assert browser.find_element(By.ID, "download").is_enabled()
        shot = SCREENSHOT if os.environ.get("IRSTD_UPDATE_SCREENSHOTS") == "1" else tmp_path / SCREENSHOT.name
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
        # the page took the server's default threshold; the slider re-runs the frame at the new one
        assert browser.find_element(By.ID, "threshold-value").text == "0.90"
        before = len(rows) - 1
        browser.execute_script("const s = document.getElementById('threshold'); s.value = 0.5;"
                               "s.dispatchEvent(new Event('input'));")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#frame-0 table.targets tr")) - 1 > before)
        assert browser.find_element(By.ID, "threshold-value").text == "0.50"
