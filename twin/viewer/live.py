"""The live layer's data: what ``/ws/live`` has said (docs/architecture.md, "Live messages"),
kept as tracks with short trails, open alerts, and live camera and drone poses; and the
WebSocket feed that receives it in a background thread, reconnecting with backoff.

Positions are kept in the workspace ENU frame (metres); an entity not heard from for
`STALE_S` seconds is dropped, as on the page."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect

from twin.cameras.camera import Camera
from twin.errors import InputError, TwinError

F64 = NDArray[np.float64]
TOPICS = "entities,alert,camera,drone"
TRAIL_POINTS = 12
TRAIL_STEP_M = 0.3
STALE_S = 60.0
CLOSED = frozenset({"resolved", "false_alarm"})
REFUSED = frozenset({4401, 4403})
BACKOFF_S = (0.5, 10.0)
ToEnu = Callable[[float, float, float], F64]


@dataclass
class Track:
    """A live entity: its latest message and its recent positions (ENU m), oldest first."""

    payload: dict[str, Any]
    trail: deque[F64] = field(default_factory=lambda: deque(maxlen=TRAIL_POINTS))
    seen: float = 0.0

    @property
    def position(self) -> F64:
        return self.trail[-1]


@dataclass
class LiveState:
    """Tracks, open alerts and live camera/drone poses; `version` grows with every change."""

    to_enu: ToEnu
    tracks: dict[str, Track] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    cameras: dict[str, Camera] = field(default_factory=dict)
    drones: dict[str, Camera] = field(default_factory=dict)
    ready: bool = False
    version: int = 0

    def apply(self, message: dict[str, Any], now: float | None = None) -> None:
        """Take one ``{topic, payload}`` message."""
        now = time.monotonic() if now is None else now
        topic, payload = message.get("topic"), message.get("payload")
        if topic == "entity" and isinstance(payload, dict):
            self._entity(payload, now)
        elif topic == "entities" and isinstance(payload, list):
            for item in payload:
                self._entity(item, now)
        elif topic == "alert" and isinstance(payload, dict):
            if payload.get("status") in CLOSED:
                self.alerts.pop(str(payload.get("id")), None)
            else:
                self.alerts[str(payload["id"])] = payload
        elif topic in ("camera", "drone") and isinstance(payload, dict):
            try:
                camera = Camera.from_pose(payload)
            except InputError:
                return
            (self.drones if topic == "drone" else self.cameras)[camera.id] = camera
        elif topic == "ready":
            self.ready = True
        else:
            return
        self.version += 1

    def _entity(self, payload: dict[str, Any], now: float) -> None:
        track = self.tracks.setdefault(str(payload["id"]), Track(payload))
        track.payload, track.seen = payload, now
        point = self.to_enu(float(payload["lon"]), float(payload["lat"]),
                            float(payload.get("height") or 0.0))  # fmt: skip
        if not track.trail or np.linalg.norm(point - track.trail[-1]) >= TRAIL_STEP_M:
            track.trail.append(point)

    def prune(self, now: float | None = None) -> int:
        """Drop tracks not heard from for `STALE_S`; how many went."""
        now = time.monotonic() if now is None else now
        stale = [key for key, track in self.tracks.items() if now - track.seen > STALE_S]
        for key in stale:
            del self.tracks[key]
        if stale:
            self.version += 1
        return len(stale)


class LiveFeed:
    """Messages of ``/ws/live`` at `url`, received in a daemon thread into `messages`;
    `status` says how the connection stands, in a few words."""

    def __init__(self, url: str) -> None:
        separator = "&" if "?" in url else "?"
        self.url = f"{url}{separator}topics={TOPICS}"
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status = "connecting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="twin-live", daemon=True)

    def start(self) -> LiveFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def drain(self, state: LiveState) -> int:
        """Apply every message received so far to `state`; how many there were."""
        count = 0
        while True:
            try:
                state.apply(self.messages.get_nowait())
            except queue.Empty:
                return count
            count += 1

    def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                with connect(self.url, open_timeout=5, close_timeout=1) as socket:
                    self.status = "connected"
                    backoff = BACKOFF_S[0]
                    while not self._stop.is_set():
                        try:
                            raw = socket.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self.messages.put(json.loads(raw))
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code in REFUSED:
                    self.status = f"the server refused the token ({code})"
                    return
                self.status = "disconnected, reconnecting"
            except (OSError, InvalidStatus, WebSocketException, TimeoutError) as exc:
                self.status = f"cannot connect ({type(exc).__name__}), retrying"
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])


def snapshot(url: str, state: LiveState, timeout: float = 10.0) -> None:
    """Fill `state` with what ``/ws/live`` at `url` holds now (messages up to ``ready``).
    Raises `TwinError` when the server cannot be reached or refuses the token."""
    separator = "&" if "?" in url else "?"
    deadline = time.monotonic() + timeout
    try:
        with connect(f"{url}{separator}topics={TOPICS}", open_timeout=timeout) as socket:
            while not state.ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TwinError(f"no live snapshot from the server within {timeout:.0f} s")
                state.apply(json.loads(socket.recv(timeout=remaining)))
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        raise TwinError(
            f"the live socket closed ({code})",
            hint="pass --token with a token of a role that may read",
        ) from exc
    except (OSError, InvalidStatus, WebSocketException, TimeoutError) as exc:
        raise TwinError(
            f"cannot open the live socket ({type(exc).__name__})",
            hint="is 'twin serve' running? check --server",
        ) from exc
