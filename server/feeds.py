"""Feed health: when each camera and sensor of the catalog last sent an observation (or, for a
camera, a frame), so `/readyz`, `/metrics` and the page can name the feeds that went quiet — a
camera whose stream dropped stops both.

A feed's age is the seconds since its latest observation or frame arrived, or since the server
started when none has arrived since; past `stale_s` it is stale. Kept in memory: a restarted
server gives every feed `stale_s` seconds to be heard from again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable


class FeedTracker:
    """Arrival times (`time.monotonic`) of the latest observation of each feed id."""

    def __init__(self, feeds: Iterable[str], stale_s: float) -> None:
        self.stale_s = stale_s
        self._started = time.monotonic()
        self._last: dict[str, float | None] = dict.fromkeys(sorted(feeds))
        self._lock = threading.Lock()

    def seen(self, sources: Iterable[str]) -> None:
        """Note that observations (or frames) of `sources` arrived now (unknown ids are
        ignored)."""
        now = time.monotonic()
        with self._lock:
            for source in set(sources):
                if source in self._last:
                    self._last[source] = now

    def ages(self) -> dict[str, float]:
        """Seconds since each feed's latest observation (since start when it sent none)."""
        now = time.monotonic()
        with self._lock:
            return {feed: now - (last or self._started) for feed, last in self._last.items()}

    def stale(self) -> list[str]:
        """The feeds quiet for more than `stale_s` seconds, in id order."""
        return [feed for feed, age in self.ages().items() if age > self.stale_s]
