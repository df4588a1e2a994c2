"""The viewer's side of the twin server's HTTP API (read permission): element records, search,
pick, camera poses, the newest camera frame and alert evidence crops. Every call raises
`TwinError` with a one-line reason when the server cannot answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from twin.cameras.camera import Camera
from twin.errors import TwinError

TIMEOUT_S = 10.0


class TwinClient:
    """A twin server at `server` (``http://host:port``), called with bearer `token`."""

    def __init__(self, server: str, token: str | None, timeout: float = TIMEOUT_S) -> None:
        self.server = server.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    @property
    def live_url(self) -> str:
        """The ``/ws/live`` URL with the token."""
        base = "ws" + self.server.removeprefix("http")
        return f"{base}/ws/live" + (f"?token={quote(self.token)}" if self.token else "")

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = self._http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise TwinError(
                f"cannot reach the twin server at {self.server} ({type(exc).__name__})",
                hint="is 'twin serve' running? check --server",
            ) from exc
        if response.status_code in (401, 403):
            raise TwinError(
                f"the server refused the token ({response.status_code})",
                hint="pass --token with a token of a role that may read",
            )
        return response

    def _json(self, path: str, **params: Any) -> dict[str, Any] | None:
        response = self._get(path, **params)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TwinError(f"GET {path} answered {response.status_code}")
        data: dict[str, Any] = response.json()
        return data

    def record(self, element_id: str) -> dict[str, Any] | None:
        return self._json(f"/api/elements/{quote(element_id, safe=':')}")

    def search(self, q: str, limit: int = 50) -> list[dict[str, Any]]:
        data = self._json("/api/elements", q=q, limit=limit) or {}
        return list(data.get("items", []))

    def pick(self, lon: float, lat: float) -> dict[str, Any] | None:
        return self._json("/api/pick", lon=lon, lat=lat)

    def cameras(self) -> list[Camera]:
        """Every camera and live drone with its current pose (``GET /api/cameras``)."""
        data = self._json("/api/cameras") or {}
        return [Camera.from_pose(item) for item in data.get("items", [])]

    def frame(self, camera_id: str) -> bytes | None:
        """The newest frame (JPEG/PNG bytes) of a camera, None when it has none yet."""
        response = self._get(f"/api/cameras/{quote(camera_id, safe=':')}/frame")
        return response.content if response.status_code == 200 else None

    def image(self, path: str) -> bytes | None:
        """An image the server names by path (an alert's ``evidence.crop``), None if gone."""
        response = self._get(path)
        return response.content if response.status_code == 200 else None

    def close(self) -> None:
        self._http.close()
