"""Pages in headless Chromium (bench/chromium.py) for the page tests: opening a page with its
console log, a loopback site around a test page and CesiumJS, and waiting for the war-room page."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page

from bench.chromium import CESIUM

LOAD_TIMEOUT_MS = 90_000
READY_TIMEOUT_MS = 90_000
SCREENSHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"
# Console noise that says nothing about the page: GPU driver chatter from SwiftShader.
IGNORED_CONSOLE = ("GPU stall due to ReadPixels", "WebGL", "swiftshader", "Automatic fallback")


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors seen while a page was open."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(s in message.text for s in IGNORED_CONSOLE):
            self.errors.append(message.text)


def open_page(
    browser: Browser, url: str, width: int = 1600, height: int = 900
) -> tuple[Page, ConsoleLog]:
    """Open `url` in a new context of `width`×`height` CSS px; returns the page and its log."""
    context = browser.new_context(viewport={"width": width, "height": height})
    # SwiftShader shares the CPU with every other page: a second page can take long to load.
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = context.new_page()
    log = ConsoleLog()
    log.attach(page)
    page.goto(url)
    return page, log


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder quietly and appends every requested path to `requested`."""

    def __init__(self, *args: Any, requested: list[str], **kwargs: Any) -> None:
        self.requested = requested
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class CesiumSite:
    """A loopback HTTP server over `root`: its base URL and the paths requested so far."""

    base: str
    root: Path
    requested: list[str]


@contextmanager
def cesium_site(root: Path, page: str) -> Iterator[CesiumSite]:
    """A loopback HTTP server over `root`, holding `page` as index.html and the npm CesiumJS
    build under /cesium/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(page)
    (root / "cesium").symlink_to(CESIUM)
    (root / "favicon.ico").write_bytes(b"")
    requested: list[str] = []
    handler = functools.partial(_SiteHandler, directory=str(root), requested=requested)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield CesiumSite(f"http://127.0.0.1:{server.server_address[1]}", root, requested)
    finally:
        server.shutdown()


def wait_ready(page: Page) -> None:
    """Until the war-room page's tileset root and initial view's tiles are loaded."""
    page.wait_for_function(
        "document.body.dataset.ready === '1' || document.body.dataset.ready === 'error'",
        timeout=READY_TIMEOUT_MS,
    )
    assert page.evaluate("document.body.dataset.ready") == "1", page.evaluate(
        "twin.state().tilesetError"
    )


def wait_live(page: Page) -> None:
    """Until the page's live socket is open and has sent its snapshot."""
    page.wait_for_function(
        "window.twin && typeof twin.state === 'function' && twin.state().connected"
        " && twin.state().live",
        timeout=60_000,
    )
