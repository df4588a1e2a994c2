"""Polling until a condition holds, for tests that watch a server or a page settle."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0, poll_s: float = 0.1) -> float:
    """Call `check` every `poll_s` seconds until it returns true; fail the test when `timeout_s`
    seconds pass first. Returns the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() < start + timeout_s, "timed out"
        time.sleep(poll_s)
    return time.monotonic() - start
