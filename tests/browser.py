"""A headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver` driven by selenium
(the flags of tests/test_flower.py: no sandbox as root in CI, no GPU, /dev/shm not assumed big)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def require_chromium() -> None:
    """Debian's chromium and its driver: a normal user without them gets the browser tests skipped."""
    from tests.conftest import debian_tool

    debian_tool(str(CHROMIUM), "chromium", "the browser test")
    debian_tool(str(CHROMEDRIVER), "chromium-driver", "the browser test")


@contextmanager
def chromium(profile: Path, width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """A WebDriver on a fresh headless Chromium whose profile lives in `profile`; quit on exit."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
