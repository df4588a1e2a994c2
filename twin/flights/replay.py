"""Replay a flight to the twin server in step with its video: for each step of video time
``t`` (every `every_s` seconds), the telemetry of the sample covering ``t`` goes to
``POST /api/drones/{id}/telemetry`` and the video frame at ``t`` to ``PUT
/api/cameras/{id}/frame``, both stamped with the sample's own time (frame time = SRT time), so
the page projects each frame from the pose it was taken at. Steps are paced at `speed` × real
time (0: as fast as the server answers)."""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import cv2
import httpx
import numpy as np
from numpy.typing import NDArray

from twin.errors import InputError, TwinError
from twin.flights.pose import FlightPose
from twin.live.client import FramePublisher

log = logging.getLogger(__name__)


class VideoFrames:
    """A video file read forward: `frame_at(t)` is the last frame shown at or before video
    time `t` (s); times must not go back."""

    def __init__(self, path: Path) -> None:
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise InputError("cannot open the video", file=str(path))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._next = 0  # index of the next frame to decode
        self._frame: NDArray[np.uint8] | None = None

    def frame_at(self, t: float) -> NDArray[np.uint8] | None:
        """The frame showing at video time `t` (None past the end or before the first)."""
        while self._next / self.fps <= t:
            ok, image = self._cap.read()
            if not ok:
                return None
            self._frame = np.asarray(image, np.uint8)
            self._next += 1
        return self._frame

    def close(self) -> None:
        self._cap.release()


@dataclass
class ReplayStats:
    """Telemetry samples and frames the server accepted, and those it did not."""

    telemetry: int = 0
    frames: int = 0
    failed: int = 0


def replay_flight(
    poses: Sequence[FlightPose],
    drone: str,
    *,
    server: str,
    token: str | None,
    video: VideoFrames | None = None,
    every_s: float = 0.5,
    speed: float = 1.0,
) -> ReplayStats:
    """Send `poses` (sorted by video time) as drone `drone`'s telemetry, with `video`'s frames
    (see the module docstring). A sample the server refuses (4xx other than auth) or cannot
    take (network) is counted in ``failed`` and the replay goes on; a refused token ends it
    with `TwinError`."""
    if not poses:
        return ReplayStats()
    url = f"{server.rstrip('/')}/api/drones/{quote(drone, safe=':')}/telemetry"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    starts = [p.sample.start_s for p in poses]
    first, last = starts[0], poses[-1].sample.end_s
    began, wall = datetime.now(UTC), time.monotonic()
    stats = ReplayStats()
    frames = FramePublisher(server, drone, token, interval_s=0.0) if video else None
    steps = max(1, math.ceil((last - first) / every_s - 1e-9))  # video times in [first, last)
    try:
        with httpx.Client(headers=headers, timeout=10.0) as client:
            for step in range(steps):
                t = first + step * every_s
                if speed > 0:
                    delay = wall + (t - first) / speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                pose = poses[max(0, bisect.bisect_right(starts, t) - 1)]
                when = pose.time or began + timedelta(seconds=t)
                if not _post(client, url, pose, when, stats):
                    continue
                image = video.frame_at(t) if video is not None else None
                if frames is not None and image is not None and frames.maybe_send(image, when):
                    stats.frames += 1
    finally:
        if frames is not None:
            frames.close()
    return stats


def _post(
    client: httpx.Client, url: str, pose: FlightPose, when: datetime, stats: ReplayStats
) -> bool:
    """POST one telemetry sample; True when the server took it."""
    try:
        response = client.post(url, json=pose.telemetry(when))
    except httpx.HTTPError as exc:
        stats.failed += 1
        log.warning("telemetry at video %.2f s not sent (%s)", pose.sample.start_s, exc)
        return False
    if response.status_code in (401, 403):
        raise TwinError(
            f"the server refused the telemetry ({response.status_code})",
            hint="pass --token with a token of role ingest",
        )
    if response.status_code != 200:
        stats.failed += 1
        log.warning(
            "telemetry of block %d refused: HTTP %d %s",
            pose.sample.block, response.status_code, response.text[:200],
        )  # fmt: skip
        return False
    stats.telemetry += 1
    return True
