"""Frame sources for the detection worker: a video file, a stream URL, an image folder or one
image, played `loop` times (0 = forever) and paced in real time.

Pacing: frame *i* of a pass is due ``i / fps`` seconds after the pass started. A source waits
for frames that are early; a video or stream skips (grabs without decoding) frames that are
more than one frame late and counts them in `dropped`, so detection keeps up with real time.
Image folders never drop: each image is shown.

Reconnection: a stream that fails to open or stops delivering frames is reopened with
exponential backoff (`RECONNECT_BACKOFF_S` doubling up to `RECONNECT_MAX_S`), forever unless
`max_tries` is given; each reopening after a drop counts in `reconnects`. A video file that
cannot be opened (being replaced, say) is retried `FILE_OPEN_TRIES` times; a file that ends
early (truncated) ends its pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from twin.errors import InputError, TwinError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_VIDEO_FPS = 25.0
FILE_OPEN_TRIES = 3
RECONNECT_BACKOFF_S = 0.5
RECONNECT_MAX_S = 30.0


@dataclass(frozen=True)
class Frame:
    """One decoded BGR frame, its running number (across loops) and capture time (UTC)."""

    index: int
    image: NDArray[np.uint8]
    time: datetime

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) px."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def _passes(loop: int) -> Iterator[int]:
    n = 0
    while loop <= 0 or n < loop:
        yield n
        n += 1


@dataclass
class _Clock:
    """Real-time schedule of one pass: frame i is due at start + i / fps."""

    fps: float
    start: float = field(default_factory=time.monotonic)

    def lag(self, i: int) -> float:
        """Seconds frame i is late (negative: early)."""
        return time.monotonic() - (self.start + i / self.fps)

    def wait(self, i: int) -> None:
        early = -self.lag(i)
        if early > 0:
            time.sleep(early)


class FrameSource:
    """Base of the sources: iterate `frames()`; `dropped` counts frames skipped to keep up,
    `reconnects` the times a dropped stream was reopened."""

    def __init__(self, loop: int) -> None:
        self.loop = loop
        self.dropped = 0
        self.reconnects = 0

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError


class ImageSource(FrameSource):
    """Images (sorted by name) shown at `fps` frames per second."""

    def __init__(self, paths: list[Path], fps: float, loop: int) -> None:
        super().__init__(loop)
        if not paths:
            raise InputError("no images to play")
        if fps <= 0:
            raise InputError(f"fps must be positive, not {fps}")
        self.paths, self.fps = paths, fps

    def frames(self) -> Iterator[Frame]:
        index = 0
        for _ in _passes(self.loop):
            clock = _Clock(self.fps)
            for i, path in enumerate(self.paths):
                clock.wait(i)
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise InputError("cannot read image", file=str(path))
                yield Frame(index, np.asarray(image, np.uint8), datetime.now(UTC))
                index += 1


class VideoSource(FrameSource):
    """A video file or stream read with OpenCV (FFmpeg), in real time; streams reconnect with
    backoff (at most `max_tries` openings in a row; None: forever)."""

    def __init__(
        self, uri: str, loop: int, *, is_stream: bool, max_tries: int | None = None
    ) -> None:
        super().__init__(loop)
        self.uri, self.is_stream = uri, is_stream
        self.max_tries = max_tries if is_stream else FILE_OPEN_TRIES

    def _open(self) -> cv2.VideoCapture:
        attempt = 0
        while True:
            cap = cv2.VideoCapture(self.uri)
            if cap.isOpened():
                return cap
            cap.release()
            attempt += 1
            if self.max_tries is not None and attempt >= self.max_tries:
                raise TwinError(f"cannot open video source {self.uri} ({attempt} tries)")
            delay = min(RECONNECT_MAX_S, RECONNECT_BACKOFF_S * 2 ** (attempt - 1))
            log.warning("cannot open %s, retrying in %.1f s", self.uri, delay)
            time.sleep(delay)

    def frames(self) -> Iterator[Frame]:
        index = 0
        for _ in _passes(self.loop):
            cap = self._open()
            try:
                fps = cap.get(cv2.CAP_PROP_FPS)
                clock = _Clock(fps if 1.0 <= fps <= 240.0 else DEFAULT_VIDEO_FPS)
                i, barren = 0, 0
                while True:
                    late = clock.lag(i) > 1.0 / clock.fps
                    if not late:
                        clock.wait(i)
                    ok, image = (cap.grab(), None) if late else cap.read()
                    if not ok:
                        if not self.is_stream:
                            break
                        cap.release()
                        delay = min(RECONNECT_MAX_S, RECONNECT_BACKOFF_S * 2**barren) * (barren > 0)
                        barren += 1  # drops in a row without a frame back off
                        log.warning("stream %s dropped; reconnecting in %.1f s", self.uri, delay)
                        time.sleep(delay)
                        cap = self._open()
                        self.reconnects += 1
                        clock, i = _Clock(clock.fps), 0
                        continue
                    i, barren = i + 1, 0
                    if late:
                        self.dropped += 1
                        continue
                    yield Frame(index, np.asarray(image, np.uint8), datetime.now(UTC))
                    index += 1
            finally:
                cap.release()


def open_source(source: str, *, fps: float, loop: int) -> FrameSource:
    """The frame source for `source`: an image folder, an image file, a video file or a URL."""
    path = Path(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError("folder holds no images", file=source)
        return ImageSource(images, fps, loop)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageSource([path], fps, loop)
        return VideoSource(str(path), loop, is_stream=False)
    if "://" in source:
        return VideoSource(source, loop, is_stream=True)
    raise InputError("no such file, folder or stream URL", file=source)
