"""Recent video frames of each camera or drone, for the page's AR view and video projection and
for alert evidence crops.

Whoever reads a feed (the detection worker, a drone's ground station) pushes the frame it has
just seen with ``PUT /api/cameras/{id}/frame``; the page fetches the newest with ``GET``. Frames
are live data, not records: they are kept in memory, the newest of every camera, and behind it
a short history per camera, each bounded in bytes over all cameras (the oldest goes first), so
an alert raised a few seconds after its observation still finds the frame the camera pushed
closest to that observation's time. A camera that has pushed nothing for ``ttl_s`` loses its
frames. Where none is kept, a camera whose ``stream`` is a still image file (absolute, or
relative to the workspace) serves that image. One store per workspace (`TwinState.frames`),
like the camera rig.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic

MIB = 2**20
HISTORY_BYTES = 64 * MIB
"""Bytes of frames kept behind every camera's newest, all cameras together, by default
(``TWIN_FRAME_HISTORY_MIB``): about a minute of one 960 px JPEG a second from each of 10
cameras."""
NEWEST_BYTES = 32 * MIB
"""Bytes of the cameras' newest frames, all cameras together, by default
(``TWIN_FRAME_NEWEST_MIB``): a hundred 960 px JPEGs, four 8 MiB frames."""
FRAME_TTL_S = 300.0
"""Seconds a camera's frames are kept after its latest push, by default (``TWIN_FRAME_TTL_S``)."""
MEDIA_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
STILL_SUFFIXES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@dataclass(frozen=True)
class Frame:
    """One image: its bytes, media type, capture time (UTC), a per-camera sequence, and when
    it arrived (s on its store's clock, `time.monotonic` by default, for expiry)."""

    data: bytes
    media_type: str
    time: datetime
    seq: int
    arrived: float = field(default_factory=monotonic, compare=False)

    @property
    def etag(self) -> str:
        return f'"{self.seq}-{int(self.time.timestamp() * 1000)}"'


def media_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the magic bytes; None for anything else."""
    for magic, kind in MEDIA_TYPES.items():
        if data.startswith(magic):
            return kind
    return None


class FrameStore:
    """The newest frame per camera id (at most `newest_bytes` over all cameras: past it the
    camera that pushed longest ago loses its frames) plus a history of earlier ones (at most
    `history_bytes` over all cameras, oldest dropped first); a camera that has pushed nothing
    for `ttl_s` seconds loses its frames. `clock` gives the time in seconds that arrivals and
    expiry are measured on (monotonic). Safe to share between threads."""

    def __init__(
        self,
        history_bytes: int = HISTORY_BYTES,
        newest_bytes: int = NEWEST_BYTES,
        ttl_s: float = FRAME_TTL_S,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.history_bytes, self.newest_bytes, self.ttl_s = history_bytes, newest_bytes, ttl_s
        self.clock = clock
        self._rings: dict[str, deque[Frame]] = {}
        self._pushed: OrderedDict[str, None] = OrderedDict()  # cameras, longest-ago push first
        self._history: deque[tuple[str, Frame]] = deque()  # frames behind a newest, oldest first
        self._kept = 0  # bytes in `_history`
        self._newest = 0  # bytes of the newest frames
        self._lock = threading.Lock()

    def put(self, camera_id: str, data: bytes, kind: str, time: datetime | None = None) -> Frame:
        """Keep `data` (a `kind` image, captured at `time` UTC, default now) as `camera_id`'s
        newest frame; its previous newest joins the history. Then the bounds apply."""
        with self._lock:
            self._expire()
            ring = self._rings.setdefault(camera_id, deque())
            previous = ring[-1] if ring else None
            when = time or datetime.now(UTC)
            frame = Frame(data, kind, when, previous.seq + 1 if previous else 1, self.clock())
            ring.append(frame)
            self._pushed[camera_id] = None
            self._pushed.move_to_end(camera_id)
            self._newest += len(data)
            if previous is not None:
                self._history.append((camera_id, previous))
                self._kept += len(previous.data)
                self._newest -= len(previous.data)
            while self._kept > self.history_bytes:
                oldest_camera, oldest = self._history.popleft()
                self._rings[oldest_camera].popleft()  # a camera's oldest is the oldest in history
                self._kept -= len(oldest.data)
            while self._newest > self.newest_bytes:
                self._forget(next(iter(self._pushed)))
            return frame

    def _expire(self) -> None:
        """Forget cameras that have pushed nothing for `ttl_s`, and history frames older than
        that; the caller holds ``_lock``."""
        oldest = self.clock() - self.ttl_s
        while self._pushed and self._rings[next(iter(self._pushed))][-1].arrived < oldest:
            self._forget(next(iter(self._pushed)))
        while self._history and self._history[0][1].arrived < oldest:
            camera_id, frame = self._history.popleft()
            self._rings[camera_id].popleft()
            self._kept -= len(frame.data)

    def _forget(self, camera_id: str) -> None:
        """Drop every frame of `camera_id`; the caller holds ``_lock``."""
        ring = self._rings.pop(camera_id)
        del self._pushed[camera_id]
        self._newest -= len(ring[-1].data)
        if len(ring) > 1:
            self._history = deque(item for item in self._history if item[0] != camera_id)
            self._kept -= sum(len(frame.data) for frame in list(ring)[:-1])

    def get(self, camera_id: str) -> Frame | None:
        """`camera_id`'s newest frame, or None."""
        with self._lock:
            self._expire()
            ring = self._rings.get(camera_id)
            return ring[-1] if ring else None

    def nearest(self, camera_id: str, time: datetime, within_s: float) -> Frame | None:
        """The kept frame of `camera_id` captured closest to `time` (UTC), when at most
        `within_s` seconds from it; else None."""
        with self._lock:
            self._expire()
            frames = list(self._rings.get(camera_id, ()))
        best, best_gap = None, within_s
        for frame in reversed(frames):  # newest first: of equal gaps the newest wins
            gap = abs((frame.time - time).total_seconds())
            if gap < best_gap or (best is None and gap <= best_gap):
                best, best_gap = frame, gap
        return best

    @property
    def history_kept(self) -> int:
        """Bytes of frames held behind the newest ones."""
        with self._lock:
            return self._kept

    @property
    def kept(self) -> tuple[int, int]:
        """Frames and bytes held, newest and history together."""
        with self._lock:
            self._expire()
            return len(self._history) + len(self._rings), self._kept + self._newest


def still_frame(ws: Path, stream: object) -> Frame | None:
    """The image file a camera's `stream` names (absolute or relative to workspace `ws`), or
    None when it is not an existing JPEG/PNG file (a video, a URL, nothing)."""
    if not isinstance(stream, str) or "://" in stream:
        return None
    path = Path(stream) if Path(stream).is_absolute() else Path(ws) / stream
    kind = STILL_SUFFIXES.get(path.suffix.lower())
    if kind is None or not path.is_file():
        return None
    stat = path.stat()
    return Frame(path.read_bytes(), kind, datetime.fromtimestamp(stat.st_mtime, UTC), 0)
