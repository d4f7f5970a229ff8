"""The page of `backdrop serve` in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): upload a photo, paint a "remove" stroke across the
subject, download the PNG and check its alpha dropped under the stroke and not far away.
Screenshots go to BACKDROP_SCREENSHOTS (a folder) when it is set, else to the test's tmp."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from servehelp import ASTRONAUT, decode

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.downloads = tmp_path
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BACKDROP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _card_state(driver) -> str:
    cards = driver.find_elements("css selector", ".card")
    if not cards:
        return ""
    card = cards[0]
    return card.get_attribute("data-state") + ": " + card.find_element("css selector", ".status").text


def test_page_upload_remove_stroke_download(serve_server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    shots = _shots(tmp_path)
    browser.get(serve_server.url + "/")
    browser.find_element("id", "quality").send_keys("fast")
    browser.find_element("id", "files").send_keys(str(ASTRONAUT))
    _wait(lambda: _card_state(browser).startswith("ready"), "the first cut-out")
    browser.save_screenshot(str(shots / "serve-page-1-cutout.png"))
    before = decode(httpx.post(serve_server.url + "/v1/remove?quality=fast", timeout=120,
                               content=ASTRONAUT.read_bytes(),
                               headers={"Content-Type": "image/png"}).content)[..., 3]

    browser.find_element("css selector", "button[data-mode=remove]").click()
    canvas = browser.find_element("css selector", "canvas.strokes")
    shown = canvas.size["width"]
    scale = 512 / shown                     # the astronaut is 512x512
    y, x0, x1 = 340, 150, 350               # image pixels: across the suit
    to_screen = lambda v: round(v / scale - shown / 2)   # offsets from the canvas's centre
    (ActionChains(browser).move_to_element_with_offset(canvas, to_screen(x0), to_screen(y))
     .click_and_hold().move_by_offset(round((x1 - x0) / scale) // 2, 0)
     .move_by_offset(round((x1 - x0) / scale) // 2, 0).release().perform())
    _wait(lambda: _card_state(browser).startswith("ready") and
          browser.find_element("css selector", "button.undo").is_enabled(), "the refined cut-out")
    browser.save_screenshot(str(shots / "serve-page-2-stroke.png"))
    assert not _card_state(browser).startswith("ready: error"), _card_state(browser)

    browser.find_element("css selector", "button.download[data-format=png]").click()
    target = browser.downloads / "astronaut.cutout.png"
    _wait(target.exists, "the download")
    after = np.asarray(Image.open(target))
    assert after.shape == (512, 512, 4)
    alpha, before = after[..., 3].astype(int), before.astype(int)
    half = round(28 * scale / 2)            # the brush's default 28 px on screen
    line = slice(y - half // 2, y + half // 2 + 1), slice(x0 + half, x1 - half)
    assert before[line].mean() > 200, "the stroke must cross the subject"
    assert alpha[line].max() <= 10, "the subject must be gone under the stroke"
    far = np.ones_like(alpha, bool)
    far[y - half - 60:y + half + 60, x0 - half - 60:x1 + half + 60] = False
    assert np.mean(np.abs(alpha[far] - before[far])) < 0.5, "nothing far from the stroke moves"

    browser.find_element("css selector", "button.download[data-format=webp]").click()
    webp = browser.downloads / "astronaut.cutout.webp"
    _wait(webp.exists, "the WebP download")
    same = np.asarray(Image.open(webp).convert("RGBA"))[..., 3].astype(int)
    assert np.abs(same - alpha).max() <= 1, "the WebP is the same touch-up"

    browser.find_element("css selector", "button.undo").click()
    _wait(lambda: "undone" in _card_state(browser), "undo")
    browser.find_element("css selector", "button[data-bg=black]").click()
    browser.save_screenshot(str(shots / "serve-page-3-undone-black.png"))


DROP_A_FILE = """
const canvas = document.createElement("canvas");
canvas.width = canvas.height = 96;
const context = canvas.getContext("2d");
context.fillStyle = "#3060c0"; context.fillRect(0, 0, 96, 96);
context.fillStyle = "#f0d020"; context.beginPath(); context.arc(48, 48, 30, 0, 7); context.fill();
canvas.toBlob((blob) => {
  const data = new DataTransfer();
  data.items.add(new File([blob], "dropped.png", { type: "image/png" }));
  document.body.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true,
                                                      cancelable: true }));
}, "image/png");
"""


def test_a_dropped_photo_gets_its_card_and_the_servers_warning(serve_server, browser):
    browser.get(serve_server.url + "/")
    browser.find_element("id", "quality").send_keys("fast")
    browser.execute_script(DROP_A_FILE)
    _wait(lambda: _card_state(browser).startswith("ready"), "the dropped photo's cut-out")
    card = browser.find_element("css selector", ".card")
    assert card.find_element("css selector", ".name").text == "dropped.png"
    assert "only 96x96 px" in _card_state(browser)      # X-Backdrop-Warnings, shown
    assert card.find_element("css selector", "img.result").get_attribute("naturalWidth") == "96"
