"""Frame sources for the detection worker: a video file, a stream URL, an image folder or one
image, played `loop` times (0 = forever) and paced in real time.

Pacing: frame *i* of a pass is due ``i / fps`` seconds after the pass started. A source waits
for frames that are early; a video or stream skips (grabs without decoding) frames that are
more than one frame late and counts them in `dropped`, so detection keeps up with real time.
Image folders never drop: each image is shown.
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
RECONNECT_TRIES = 5
RECONNECT_BACKOFF_S = 0.5


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
    """Base of the sources: iterate `frames()`; `dropped` counts frames skipped to keep up."""

    def __init__(self, loop: int) -> None:
        self.loop = loop
        self.dropped = 0

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
    """A video file or stream read with OpenCV, in real time; streams reconnect with backoff."""

    def __init__(self, uri: str, loop: int, *, is_stream: bool) -> None:
        super().__init__(loop)
        self.uri, self.is_stream = uri, is_stream

    def _open(self) -> cv2.VideoCapture:
        tries = RECONNECT_TRIES if self.is_stream else 1
        for attempt in range(tries):
            cap = cv2.VideoCapture(self.uri)
            if cap.isOpened():
                return cap
            cap.release()
            if attempt + 1 < tries:
                delay = RECONNECT_BACKOFF_S * 2**attempt
                log.warning("cannot open %s, retrying in %.1f s", self.uri, delay)
                time.sleep(delay)
        raise TwinError(f"cannot open video source {self.uri}")

    def frames(self) -> Iterator[Frame]:
        index = 0
        for _ in _passes(self.loop):
            cap = self._open()
            try:
                fps = cap.get(cv2.CAP_PROP_FPS)
                clock = _Clock(fps if 1.0 <= fps <= 240.0 else DEFAULT_VIDEO_FPS)
                i, failures = 0, 0
                while True:
                    lag = clock.lag(i)
                    if lag > 1.0 / clock.fps:
                        if not cap.grab():
                            break
                        self.dropped += 1
                        i += 1
                        continue
                    clock.wait(i)
                    ok, image = cap.read()
                    if not ok:
                        if not self.is_stream or failures >= RECONNECT_TRIES:
                            break
                        failures += 1
                        cap.release()
                        time.sleep(RECONNECT_BACKOFF_S * 2 ** (failures - 1))
                        cap = self._open()
                        clock, i = _Clock(clock.fps), 0
                        continue
                    failures = 0
                    yield Frame(index, np.asarray(image, np.uint8), datetime.now(UTC))
                    index += 1
                    i += 1
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
