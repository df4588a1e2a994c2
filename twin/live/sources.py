"""Frame sources for the detection worker: a video file, an image folder or one image, played
`loop` times (0 = forever) and paced in real time; a stream URL is a `twin.live.stream` source.

Pacing: frame *i* of a pass is due ``i / fps`` seconds after the pass started. A source waits
for frames that are early; a video skips (grabs without decoding) frames that are more than
one frame late and counts them in `dropped`, so detection keeps up with real time. Image
folders never drop: each image is shown.

A video file that cannot be opened (being replaced, say) is retried `FILE_OPEN_TRIES` times,
`FILE_RETRY_S` apart; a file that ends early (truncated) ends its pass.
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

from twin.errors import InputError, TwinError
from twin.live.frames import Frame, FrameSource
from twin.live.stream import StreamSource

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_VIDEO_FPS = 25.0
FILE_OPEN_TRIES = 3
FILE_RETRY_S = 0.5


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
    """A video file read with OpenCV (FFmpeg), in real time."""

    def __init__(self, path: str, loop: int) -> None:
        super().__init__(loop)
        self.path = path

    def _open(self) -> cv2.VideoCapture:
        for attempt in range(1, FILE_OPEN_TRIES + 1):
            cap = cv2.VideoCapture(self.path)
            if cap.isOpened():
                return cap
            cap.release()
            if attempt < FILE_OPEN_TRIES:
                log.warning("cannot open %s, retrying in %.1f s", self.path, FILE_RETRY_S)
                time.sleep(FILE_RETRY_S)
        raise TwinError(f"cannot open video source {self.path} ({FILE_OPEN_TRIES} tries)")

    def frames(self) -> Iterator[Frame]:
        index = 0
        for _ in _passes(self.loop):
            cap = self._open()
            try:
                fps = cap.get(cv2.CAP_PROP_FPS)
                clock = _Clock(fps if 1.0 <= fps <= 240.0 else DEFAULT_VIDEO_FPS)
                i = 0
                while True:
                    late = clock.lag(i) > 1.0 / clock.fps
                    if not late:
                        clock.wait(i)
                    ok, image = (cap.grab(), None) if late else cap.read()
                    if not ok:
                        break
                    i += 1
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
        return VideoSource(str(path), loop)
    if "://" in source:
        return StreamSource(source)
    raise InputError("no such file, folder or stream URL", file=source)
