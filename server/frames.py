"""The latest video frame of each camera or drone, for the page's AR view and video projection.

Whoever reads a feed (the detection worker, a drone's ground station) pushes the frame it has
just seen with ``PUT /api/cameras/{id}/frame``; the page fetches it with ``GET``. Only the newest
frame per camera is kept, in memory: a frame is live data, not a record. Where none was pushed,
a camera whose ``stream`` is a still image file (absolute, or relative to the workspace) serves
that image. Kept beside `TwinState`, keyed by its catalog, like the camera rig.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from weakref import WeakKeyDictionary

from server.state import TwinState
from twin.catalog import Catalog

MAX_FRAME_BYTES = 8 * 1024 * 1024
"""Largest frame accepted (bytes): a 4K JPEG fits with room to spare."""
MEDIA_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
STILL_SUFFIXES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


@dataclass(frozen=True)
class Frame:
    """One image: its bytes, media type, when it arrived (UTC) and a per-camera sequence."""

    data: bytes
    media_type: str
    time: datetime
    seq: int

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
    """The newest frame per camera id; safe to share between threads."""

    def __init__(self) -> None:
        self._frames: dict[str, Frame] = {}
        self._lock = threading.Lock()

    def put(self, camera_id: str, data: bytes, kind: str) -> Frame:
        """Keep `data` (a `kind` image) as `camera_id`'s newest frame."""
        with self._lock:
            previous = self._frames.get(camera_id)
            frame = Frame(data, kind, datetime.now(UTC), previous.seq + 1 if previous else 1)
            self._frames[camera_id] = frame
            return frame

    def get(self, camera_id: str) -> Frame | None:
        with self._lock:
            return self._frames.get(camera_id)


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


_STORES: WeakKeyDictionary[Catalog, FrameStore] = WeakKeyDictionary()
_LOCK = threading.Lock()


def frame_store(state: TwinState) -> FrameStore:
    """The frame store of `state`'s workspace (made on first call)."""
    with _LOCK:
        store = _STORES.get(state.catalog)
        if store is None:
            store = FrameStore()
            _STORES[state.catalog] = store
        return store
