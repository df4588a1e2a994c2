"""A virtual X display (Xvfb, Debian ``xvfb``) for the Qt window tests: started once per test
session, before pytest-qt creates the QApplication."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """``DISPLAY`` of a fresh Xvfb screen (1920×1200, 24-bit), set for this process."""
    xvfb = shutil.which("Xvfb")
    assert xvfb is not None, "Xvfb is missing: `make install` adds the Debian package xvfb"
    reader, writer = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(writer), "-screen", "0", "1920x1200x24", "-nolisten", "tcp"],
        pass_fds=(writer,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(writer)
    with os.fdopen(reader) as stream:
        number = stream.readline().strip()
    assert number, "Xvfb did not report a display"
    saved = {key: os.environ.get(key) for key in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    yield os.environ["DISPLAY"]
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    process.terminate()
    process.wait(timeout=10)
