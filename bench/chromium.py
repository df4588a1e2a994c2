"""Headless Chromium for the page tests and the streaming benchmark: Debian's chromium driven by
Playwright, WebGL2 through SwiftShader. Never runs `playwright install` (no downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# The npm CesiumJS build (web/node_modules, `make web`) that test and bench pages load.
CESIUM = Path(__file__).resolve().parent.parent / "web/node_modules/cesium/Build/Cesium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--disable-background-networking",
    # A wall's alert sound plays without a click (as a kiosk browser is started).
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_executable() -> str | None:
    """The Debian chromium binary: /usr/bin/chromium, else `chromium` on PATH; None when absent."""
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")


def chromium_available() -> bool:
    """True when the Debian chromium binary is installed."""
    return chromium_executable() is not None


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless Chromium with WebGL2 (SwiftShader)."""
    executable = chromium_executable()
    if executable is None:
        raise RuntimeError("needs Debian chromium (make install)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
