"""Keep the twin server's idea of a PTZ camera's pose in step with the head: read the head's
status from an adapter (`twin.cameras.ptz`: ONVIF ``GetStatus``, Hikvision ISAPI, or the
simulator) every ``interval_s`` seconds and send it, when it changed, with ``PUT
/api/cameras/{id}/ptz`` (operator token), so the AR labels and the detector's rays follow a
camera that an operator turns from another system.

`twin ptz follow --config feeds.yaml` runs one follower thread per feed with a ``ptz`` block::

    - source: rtsp://10.0.0.7/Streaming/Channels/101
      camera: cam-lujiazui-ptz
      ptz:
        interval_s: 2
        onvif: {url: "http://10.0.0.7/onvif/ptz_service", profile: Profile_1,
                username: admin, password_env: CAM7_PASSWORD}
        # or isapi: {url: "http://10.0.0.8", channel: 1, username: admin,
        #            password_env: CAM8_PASSWORD, zoom_ratio: 30}
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.cameras.camera import Camera
from twin.cameras.ptz import (
    DEFAULT_ZOOM_RATIO,
    HikvisionPtz,
    OnvifPtz,
    PtzAdapter,
    PtzModel,
    PtzStatus,
    tele_hfov,
)
from twin.errors import ConfigError, TwinError
from twin.live.client import fetch_camera

log = logging.getLogger(__name__)

PERIOD_S = 3.0


class _Login(BaseModel):
    """A device's address and login; the password inline or, better, in an environment
    variable named by ``password_env``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", title="Device or service URL")
    username: str = Field(min_length=1)
    password: str | None = Field(default=None, title="Password (prefer password_env)")
    password_env: str | None = Field(default=None, title="Environment variable with the password")

    @model_validator(mode="after")
    def _one_password(self) -> _Login:
        if (self.password is None) == (self.password_env is None):
            raise ValueError("give exactly one of password, password_env")
        return self

    def secret(self) -> str:
        """The password; `ConfigError` when its environment variable is not set."""
        if self.password is not None:
            return self.password
        value = os.environ.get(self.password_env or "")
        if value is None:
            raise ConfigError(f"environment variable {self.password_env} is not set")
        return value


class OnvifConfig(_Login):
    """An ONVIF PTZ service (``url``: its XAddr) and media profile; the device's pan and tilt
    ranges (deg) that its generic [-1, 1] positions span."""

    profile: str = Field(min_length=1, title="Media profile token")
    pan_range: tuple[float, float] = (-180.0, 180.0)
    tilt_range: tuple[float, float] = (-90.0, 90.0)


class IsapiConfig(_Login):
    """A Hikvision camera over ISAPI (``url``: its base URL), the channel and the lens' optical
    zoom (f_tele / f_wide) that turns its magnification into a normalised zoom."""

    channel: int = Field(default=1, ge=1)
    zoom_ratio: float = Field(default=DEFAULT_ZOOM_RATIO, gt=1.0, le=200.0)


class PtzConfig(BaseModel):
    """Where a feed's PTZ head reports its pose (exactly one of onvif, isapi) and how often
    to ask it (s)."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=PERIOD_S, ge=0.1, le=3600.0)
    onvif: OnvifConfig | None = None
    isapi: IsapiConfig | None = None

    @model_validator(mode="after")
    def _one_protocol(self) -> PtzConfig:
        if (self.onvif is None) == (self.isapi is None):
            raise ValueError("give exactly one of onvif, isapi")
        return self

    def adapter(self, camera: Camera) -> PtzAdapter:
        """The adapter reading the head of `camera`; for ISAPI the camera's field of view
        anchors the zoom lens (its wide end)."""
        if self.onvif is not None:
            on = self.onvif
            return OnvifPtz(on.url, on.profile, on.username, on.secret(), pan_range=on.pan_range,
                            tilt_range=on.tilt_range)  # fmt: skip
        assert self.isapi is not None
        hik = self.isapi
        wide = camera.hfov
        model = PtzModel(hfov_wide=wide, hfov_tele=tele_hfov(wide, hik.zoom_ratio))
        return HikvisionPtz(hik.url, hik.username, hik.secret(), model, channel=hik.channel)


def follow_ptz(
    server: str,
    token: str,
    camera_id: str,
    adapter: PtzAdapter,
    *,
    stop: threading.Event,
    period_s: float = PERIOD_S,
) -> int:
    """Every `period_s` seconds until `stop` is set, send `adapter`'s status (pan, tilt deg,
    zoom 0–1) as the live pose of `camera_id` when it differs from the last one sent; returns
    the moves the server accepted. A server or head that does not answer is retried on the
    next period; a refused token ends it."""
    url = f"{server.rstrip('/')}/api/cameras/{quote(camera_id, safe=':')}/ptz"
    moves = 0
    sent: PtzStatus | None = None
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5.0) as client:
        while not stop.is_set():
            try:
                status = adapter.status()
                response = client.put(url, json=status.to_dict()) if status != sent else None
            except (TwinError, httpx.HTTPError) as exc:
                log.warning("PTZ %s: %s; retrying in %.1f s", camera_id, exc, period_s)
            else:
                if response is not None and response.status_code in (401, 403):
                    raise TwinError(
                        f"the server refused to move {camera_id} ({response.status_code})",
                        hint="use a token of role operator",
                    )
                if response is not None and response.status_code == 200:
                    moves, sent = moves + 1, status
                elif response is not None:
                    log.warning("PTZ %s: HTTP %d", camera_id, response.status_code)
            stop.wait(period_s)
    return moves


def follow_all(
    heads: Sequence[tuple[str, PtzConfig]], server: str, token: str, stop: threading.Event
) -> dict[str, int]:
    """Follow every (camera, PTZ config) in its own thread until `stop` is set or one of them
    fails (its `TwinError` is raised once all have stopped); moves sent per camera element id.
    A camera may be named as `fetch_camera` allows (element id, layer id, GB/T 28181 code)."""
    adapters = []
    for name, config in heads:
        camera = fetch_camera(server, name, token)
        adapters.append((camera.id, config, config.adapter(camera)))
    moves: dict[str, int] = {}
    errors: list[TwinError] = []

    def run(camera: str, config: PtzConfig, adapter: PtzAdapter) -> None:
        try:
            moves[camera] = follow_ptz(server, token, camera, adapter, stop=stop,
                                       period_s=config.interval_s)  # fmt: skip
        except TwinError as exc:
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=run, args=item, name=f"ptz-{item[0]}", daemon=True)
        for item in adapters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    if errors:
        raise errors[0]
    return moves
