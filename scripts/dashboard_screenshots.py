"""Screenshots of a running dashboard (e.g. `asicfleet demo --dashboard --count 300`) into docs/:

    .venv/bin/python scripts/dashboard_screenshots.py http://127.0.0.1:8080/ IP [--password PW]

IP is the miner whose page is taken; with --password the miner page is taken logged in (its actions shown).
Needs Debian's chromium and chromium-driver (as the browser tests)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import chromium


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("ip")
    parser.add_argument("--password", default="")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as profile, chromium(Path(profile), 1500, 1000) as driver:
        pages = [("fleet", "/"), ("miners", "/miners?sort=ratio"), ("rules", "/rules"), ("scans", "/scans")]
        for name, path in pages:
            driver.get(base + path)
            time.sleep(2.5)
            driver.save_screenshot(str(args.out / f"dashboard-{name}.png"))
        if args.password:
            driver.get(f"{base}/login?next=/miners/{args.ip}")
            driver.find_element(By.NAME, "password").send_keys(args.password)
            driver.find_element(By.CSS_SELECTOR, "form.login button").click()
            time.sleep(1)
        driver.set_window_size(1500, 2300)
        driver.get(f"{base}/miners/{args.ip}")
        time.sleep(3)
        if args.password:  # an action from the page: a one-miner rollout the page then follows
            driver.find_element(By.CSS_SELECTOR, '[data-action="restart"]').click()
            time.sleep(40)  # the restart, its verification, and a collection round after it
        driver.save_screenshot(str(args.out / "dashboard-miner.png"))
        driver.set_window_size(1500, 1000)
        driver.get(f"{base}/rollouts")
        time.sleep(2)
        driver.save_screenshot(str(args.out / "dashboard-rollouts.png"))


if __name__ == "__main__":
    main()
