"""The detection worker's side of the twin server's HTTP API: read the camera's record and push
observations. The server may come and go: observations wait in a bounded buffer and are resent
with exponential backoff, without ever blocking the frame loop for long."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from twin.cameras.camera import Camera
from twin.errors import NotFoundError, TwinError

log = logging.getLogger(__name__)

BATCH_SIZE = 500
GB_CODE = re.compile(r"\d{20}")
"""A GB/T 28181 device code: 8 digits of area, 2 of trade, 3 of type, 7 of network and serial."""
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get(
    url: str, token: str | None, timeout: float, params: dict[str, str] | None = None
) -> httpx.Response:
    """GET `url`; a server that does not answer is a `TwinError` naming it."""
    try:
        return httpx.get(url, params=params, headers=_headers(token), timeout=timeout)
    except httpx.HTTPError as exc:
        raise TwinError(
            f"cannot reach the twin server at {url.split('/api/')[0]} ({type(exc).__name__})",
            hint="start it with 'twin serve WS' or pass --server",
        ) from exc


def _refused(response: httpx.Response) -> None:
    """Raise `TwinError` for a refused token or any answer but 200."""
    if response.status_code in (401, 403):
        raise TwinError(
            f"the server refused the token ({response.status_code})",
            hint="pass --token with a token of role ingest",
        )
    if response.status_code != 200:
        raise TwinError(f"GET {response.url} answered {response.status_code}")


def camera_for_gb_code(server: str, code: str, token: str | None, timeout: float = 10.0) -> str:
    """The element id of the camera whose ``gb_code`` attribute (an optional column of the
    cameras layer) is the 20-digit GB/T 28181 device code `code`."""
    response = _get(f"{server.rstrip('/')}/api/elements", token, timeout,
                    {"kind": "camera", "q": code, "limit": "10"})  # fmt: skip
    _refused(response)
    found = [
        str(item["id"])
        for item in response.json()["items"]
        if str(item.get("attributes", {}).get("gb_code")) == code
    ]
    if len(found) != 1:
        raise NotFoundError(
            f"{len(found) or 'no'} camera(s) of {server} with gb_code {code}",
            hint="give each camera its GB/T 28181 code in the gb_code column of the cameras layer",
        )
    return found[0]


def fetch_camera(server: str, camera_id: str, token: str | None, timeout: float = 10.0) -> Camera:
    """The camera `camera_id` (its element id, its layer's own id: ``cam-1`` for
    ``camera:cam-1``, or its 20-digit GB/T 28181 ``gb_code``) as the server sees it now (GET
    /api/cameras/{id}: catalog, then calibration, then the live PTZ/drone pose); its ``id`` is
    the element id."""
    if GB_CODE.fullmatch(camera_id):
        camera_id = camera_for_gb_code(server, camera_id, token, timeout)
    response = _get(
        f"{server.rstrip('/')}/api/cameras/{quote(camera_id, safe=':')}", token, timeout
    )
    if response.status_code == 404:
        raise NotFoundError(
            f"camera '{camera_id}' is not a camera of {server}",
            hint="list cameras with GET /api/cameras",
        )
    _refused(response)
    return Camera.from_pose(response.json())


def fetch_pose(
    server: str, camera_id: str, token: str | None, timeout: float = 5.0
) -> tuple[Camera, str] | None:
    """The camera's current pose and kind (GET /api/cameras/{id}: catalog, then calibration,
    then the live PTZ/drone pose), or None when the server cannot say (network error)."""
    url = f"{server.rstrip('/')}/api/cameras/{quote(camera_id, safe=':')}"
    try:
        response = httpx.get(url, headers=_headers(token), timeout=timeout)
    except httpx.HTTPError as exc:
        log.warning("cannot read the pose of %s (%s)", camera_id, type(exc).__name__)
        return None
    if response.status_code != 200:
        return None
    record = response.json()
    return Camera.from_pose(record), str(record.get("camera_kind") or "fixed")


class PoseFollower:
    """Keeps a moving camera's pose current: every `interval_s` seconds, re-reads the pose of a
    PTZ, eagle-eye or drone camera from the server (fixed cameras are read once)."""

    MOVING_KINDS = frozenset({"ptz", "eagle-eye", "drone"})

    def __init__(
        self, server: str, camera: Camera, token: str | None, interval_s: float = 2.0
    ) -> None:
        self.server, self.token, self.camera = server, token, camera
        pose = fetch_pose(server, camera.id, token)
        self.moving = pose is not None and pose[1] in self.MOVING_KINDS
        self.interval_s = interval_s
        self._next = time.monotonic() + interval_s
        self.updates = 0

    def current(self) -> Camera:
        """The pose to project this frame's detections with."""
        if self.moving and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.interval_s
            pose = fetch_pose(self.server, self.camera.id, self.token)
            if pose is not None and pose[0] != self.camera:
                self.camera = pose[0]
                self.updates += 1
        return self.camera


class ObservationSender:
    """POSTs observations to ``{server}/api/observations`` in batches, buffering while the
    server is down. At most `max_buffer` observations wait; the oldest go first when full."""

    def __init__(
        self, server: str, token: str | None, *, max_buffer: int = 10_000, timeout: float = 5.0
    ) -> None:
        self.url = f"{server.rstrip('/')}/api/observations"
        self._client = httpx.Client(headers=_headers(token), timeout=timeout)
        self._buffer: deque[dict[str, Any]] = deque(maxlen=max_buffer)
        self._backoff = 0.0
        self._next_try = 0.0
        self.sent = 0
        self.lost = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def send(self, observations: list[dict[str, Any]]) -> int:
        """Queue observations and push what the server takes now; returns how many went."""
        overflow = len(self._buffer) + len(observations) - (self._buffer.maxlen or 0)
        if overflow > 0:
            self.lost += min(overflow, len(self._buffer) + len(observations))
        self._buffer.extend(observations)
        if time.monotonic() < self._next_try:
            return 0
        return self._push()

    def flush(self, timeout: float) -> bool:
        """Keep pushing for up to `timeout` seconds; True when the buffer is empty."""
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline:
            wait = self._next_try - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                continue
            self._push()
        return not self._buffer

    def _push(self) -> int:
        pushed = 0
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(BATCH_SIZE, len(self._buffer)))]
            try:
                response = self._client.post(self.url, json={"observations": batch})
            except httpx.HTTPError as exc:
                self._fail(f"{type(exc).__name__}")
                break
            if response.status_code in (401, 403):
                raise TwinError(
                    f"the server refused to take observations ({response.status_code})",
                    hint="pass --token with a token of role ingest",
                )
            if response.status_code >= 500 or response.status_code == 429:
                self._fail(f"HTTP {response.status_code}")
                break
            for _ in batch:
                self._buffer.popleft()
            if response.status_code >= 400:
                self.lost += len(batch)
                log.warning("server rejected %d observations: %s", len(batch), response.text[:200])
                continue
            self._backoff = 0.0
            pushed += len(batch)
        self.sent += pushed
        return pushed

    def _fail(self, why: str) -> None:
        self._backoff = min(BACKOFF_MAX_S, max(BACKOFF_START_S, self._backoff * 2))
        self._next_try = time.monotonic() + self._backoff
        log.warning("cannot send observations (%s); retry in %.1f s", why, self._backoff)

    def close(self) -> None:
        self._client.close()


class FramePublisher:
    """Pushes the camera's latest frame (JPEG, at most `max_side` px) to
    PUT /api/cameras/{id}/frame at most every `interval_s` seconds, so the war room's AR view and
    video projection show what the detector sees. Best effort: a failure is logged, never raised."""

    def __init__(
        self,
        server: str,
        camera_id: str,
        token: str | None,
        interval_s: float = 1.0,
        max_side: int = 960,
    ) -> None:
        self.url = f"{server.rstrip('/')}/api/cameras/{quote(camera_id, safe=':')}/frame"
        self.interval_s, self.max_side = interval_s, max_side
        self._client = httpx.Client(headers=_headers(token), timeout=5.0)
        self._next = 0.0
        self.sent = 0

    def maybe_send(self, image: Any, captured: datetime | None = None) -> bool:
        """Send `image` (BGR array, captured at `captured` UTC when given) if the interval has
        passed; True when it was accepted."""
        import cv2

        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval_s
        height, width = image.shape[:2]
        scale = self.max_side / max(height, width)
        if scale < 1:
            image = cv2.resize(image, (round(width * scale), round(height * scale)))
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if not ok:
            return False
        try:
            headers = {"Content-Type": "image/jpeg"}
            if captured is not None:
                headers["X-Frame-Time"] = captured.isoformat()
            response = self._client.put(self.url, content=jpeg.tobytes(), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("cannot send the frame (%s)", type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("server refused the frame: HTTP %d", response.status_code)
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._client.close()
