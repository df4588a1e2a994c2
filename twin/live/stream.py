"""A live camera stream (RTSP, HTTP MJPEG, ...) read on its own thread into a bounded queue.

Decoding never waits for the detector: a reader thread decodes frames as the camera sends
them and keeps the newest `queue_frames`; when the model is slower than the camera the oldest
waiting frame is dropped (counted in ``dropped``), so the detector always works on a frame at
most `queue_frames` behind live instead of falling further behind.

When the stream stops delivering (the camera or media gateway restarts, the network drops) the
reader reopens it with exponential backoff — at once after a drop, then `RECONNECT_BACKOFF_S`
doubling up to `RECONNECT_MAX_S` while it stays down — forever unless `max_tries` openings in a
row fail. Each outage is measured from the last frame before it to the first frame after it
(``gaps``, seconds) and logged; meanwhile the worker sends nothing, so the server sees the
camera's frames and observations stop (its feed health, ``/readyz``).

OpenCV's FFmpeg backend reads the stream, with `OPEN_TIMEOUT_S` and `READ_TIMEOUT_S` so a dead
peer is noticed within seconds. RTSP is read over TCP (RTP interleaved in the RTSP connection:
no lost packets, through firewalls and NAT, and a closed connection is noticed at once) unless
``OPENCV_FFMPEG_CAPTURE_OPTIONS`` says otherwise (e.g. ``rtsp_transport;udp``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime

import cv2
import numpy as np
from numpy.typing import NDArray

from twin.errors import TwinError
from twin.live.frames import Frame, FrameSource

log = logging.getLogger(__name__)

QUEUE_FRAMES = 2
RECONNECT_BACKOFF_S = 0.5
RECONNECT_MAX_S = 10.0
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0
FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
RTSP_OPTIONS = "rtsp_transport;tcp"


def backoff_s(failures: int) -> float:
    """Seconds to wait before the next opening after `failures` failed ones in a row."""
    return 0.0 if failures <= 0 else min(RECONNECT_MAX_S, RECONNECT_BACKOFF_S * 2 ** (failures - 1))


class StreamSource(FrameSource):
    """Frames of the live stream at `uri` (see the module docstring). ``reconnects`` counts
    reopenings after a drop, ``gaps`` the seconds each outage lasted, ``dropped`` the frames
    the detector was too slow for."""

    def __init__(
        self, uri: str, *, queue_frames: int = QUEUE_FRAMES, max_tries: int | None = None
    ) -> None:
        super().__init__(loop=1)
        self.uri, self.max_tries = uri, max_tries
        self._queue: deque[tuple[NDArray[np.uint8], datetime]] = deque(maxlen=queue_frames)
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._error: TwinError | None = None
        self._done = False

    @property
    def longest_gap_s(self) -> float:
        """The longest outage so far, s (0 without one)."""
        return max(self.gaps, default=0.0)

    def frames(self) -> Iterator[Frame]:
        """Frames as decoded, oldest waiting first; ends with `TwinError` when the stream
        cannot be opened `max_tries` times in a row."""
        reader = threading.Thread(target=self._read, name=f"stream {self.uri}", daemon=True)
        reader.start()
        index = 0
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._done:
                        self._ready.wait()
                    if not self._queue:
                        break
                    image, taken = self._queue.popleft()
                yield Frame(index, image, taken)
                index += 1
        finally:
            self._stop.set()
            reader.join(READ_TIMEOUT_S + 1.0)
        if self._error is not None:
            raise self._error

    def _read(self) -> None:
        """The reader thread: open, decode into the queue, reopen after a drop."""
        failures, last_frame = 0, None
        try:
            while not self._stop.is_set():
                cap = self._open()
                if cap is None:
                    failures += 1
                    if self.max_tries is not None and failures >= self.max_tries:
                        self._error = TwinError(
                            f"cannot open video source {self.uri} ({failures} tries)"
                        )
                        return
                    delay = backoff_s(failures)
                    log.warning("cannot open %s, retrying in %.1f s", self.uri, delay)
                    self._stop.wait(delay)
                    continue
                got = self._decode(cap, last_frame)
                if got is not None:
                    last_frame, failures = got, 0
                else:
                    failures += 1  # opened, but no frame came: back off too
                if not self._stop.is_set():
                    log.warning("stream %s dropped; reconnecting", self.uri)
                    self._stop.wait(backoff_s(failures))
        finally:
            with self._ready:
                self._done = True
                self._ready.notify_all()

    def _open(self) -> cv2.VideoCapture | None:
        if self.uri.startswith(("rtsp://", "rtsps://")):
            os.environ.setdefault(FFMPEG_OPTIONS, RTSP_OPTIONS)  # read by OpenCV at each open
        cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(OPEN_TIMEOUT_S * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(READ_TIMEOUT_S * 1000),
        ])  # fmt: skip
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _decode(self, cap: cv2.VideoCapture, last_frame: float | None) -> float | None:
        """Read frames into the queue until the stream fails; the monotonic time of the last
        frame read (None when none came). The first frame after an outage closes its gap."""
        got = None
        try:
            while not self._stop.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                got = time.monotonic()
                if last_frame is not None:
                    gap, last_frame = got - last_frame, None
                    self.gaps.append(gap)
                    self.reconnects += 1
                    log.warning("stream %s back after %.1f s without frames", self.uri, gap)
                with self._ready:
                    if len(self._queue) == self._queue.maxlen:
                        self.dropped += 1
                    self._queue.append((np.asarray(image, np.uint8), datetime.now(UTC)))
                    self._ready.notify()
        finally:
            cap.release()
        return got
