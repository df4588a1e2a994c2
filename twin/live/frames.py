"""What a frame source gives the detection worker: decoded frames (`Frame`) from a
`FrameSource` (`twin.live.sources` for files and folders, `twin.live.stream` for live streams)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray


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


class FrameSource:
    """Base of the sources: iterate `frames()`; `dropped` counts frames skipped to keep up,
    `reconnects` the times a dropped stream came back, `gaps` how long each outage lasted (s)."""

    def __init__(self, loop: int) -> None:
        self.loop = loop
        self.dropped = 0
        self.reconnects = 0
        self.gaps: list[float] = []

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError
