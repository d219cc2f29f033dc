"""A real browser for the review pages: Debian's headless Chromium and chromedriver driven by Selenium, and the Flask
app served on a free loopback port by Werkzeug in a thread. Shared by the browser tests, the screenshot script and the
page bench.

Chromium starts headless, without sandbox or GPU, with background networking, component updates and sync off (it
must not reach out anywhere), and with a fresh profile folder each time. Selenium is given the driver's path, so its
own driver manager never runs (it would download).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from werkzeug.serving import make_server

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--lang=en-US")
INSTALL_HINT = "install them with `make browser` (apt-get install -y chromium chromium-driver)"


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) from PATH.

    Raises:
        RuntimeError: either is missing, with the command that installs them.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise RuntimeError(f"headless Chromium and chromedriver are needed for the page tests: {INSTALL_HINT}")
    return chromium, driver


@contextmanager
def headless_chromium(width: int = 1360, height: int = 1000) -> Iterator[Any]:
    """A Selenium WebDriver on a fresh headless Chromium; quit and its profile removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = browser_paths()
    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="ovp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """``app`` served on 127.0.0.1 at a free port by a threaded Werkzeug server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ovp-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
