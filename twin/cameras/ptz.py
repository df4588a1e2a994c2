"""Pan/tilt/zoom cameras: a PTZ head's status → the camera's pose and focal length, and the
adapters that read that status from a device (ONVIF ``GetStatus``, Hikvision ISAPI) or from a
simulator.

Conventions (degrees):
- ``pan`` turns clockwise seen from above; the camera's heading is ``pan_zero_heading + pan``
  (``pan_zero_heading`` is where the head's pan 0 points, found once when the camera is
  installed or calibrated; north by default).
- ``tilt`` is the optical axis' elevation above the horizon (negative looks down), the camera's
  pitch: the head is assumed levelled (roll 0).
- ``zoom`` is normalised, 0 (widest) to 1 (longest). The zoom curve is linear in focal length:
  ``f(z) = f_wide + z · (f_tele - f_wide)`` with ``f = (w/2) / tan(hfov/2)`` at the two ends.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from twin.cameras.camera import Camera
from twin.errors import InputError, TwinError

DEFAULT_ZOOM_RATIO = 20.0
"""Optical zoom of a PTZ camera whose tele end is not configured (f_tele / f_wide)."""


@dataclass(frozen=True)
class PtzStatus:
    """Where a PTZ head points: pan, tilt (deg, see the module docstring), zoom in [0, 1]."""

    pan: float
    tilt: float
    zoom: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pan) and math.isfinite(self.tilt)):
            raise InputError("pan and tilt must be finite degrees")
        if not -90.0 <= self.tilt <= 90.0:
            raise InputError(f"tilt {self.tilt} is not in [-90, 90] degrees", field="tilt")
        if not 0.0 <= self.zoom <= 1.0:
            raise InputError(f"zoom {self.zoom} is not in [0, 1]", field="zoom")

    def to_dict(self) -> dict[str, float]:
        return {"pan": self.pan, "tilt": self.tilt, "zoom": self.zoom}


def tele_hfov(hfov_wide: float, zoom_ratio: float) -> float:
    """Horizontal field of view (deg) at the tele end of a lens `zoom_ratio` times longer than
    its wide end of `hfov_wide` degrees."""
    return math.degrees(2.0 * math.atan(math.tan(math.radians(hfov_wide) / 2.0) / zoom_ratio))


def _focal(width: int, hfov: float) -> float:
    return (width / 2.0) / math.tan(math.radians(hfov) / 2.0)


@dataclass(frozen=True)
class PtzModel:
    """A PTZ camera's head and zoom lens: hfov at the wide and tele ends (deg) and the heading
    of pan 0 (deg clockwise from north)."""

    hfov_wide: float
    hfov_tele: float
    pan_zero_heading: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.hfov_tele <= self.hfov_wide < 180.0:
            raise InputError(
                f"PTZ hfov must satisfy 0 < tele ({self.hfov_tele}) <= wide ({self.hfov_wide}) "
                "< 180 degrees"
            )

    @classmethod
    def for_camera(cls, camera: Camera, config: dict[str, Any] | None = None) -> PtzModel:
        """The model of `camera` from a ``ptz`` config (keys as the fields), defaulting to the
        camera's hfov as the wide end and a `DEFAULT_ZOOM_RATIO` lens."""
        config = dict(config or {})
        unknown = set(config) - {"hfov_wide", "hfov_tele", "pan_zero_heading"}
        if unknown:
            raise InputError(f"camera {camera.id}: unknown PTZ key(s) {sorted(unknown)}")
        wide = float(config.get("hfov_wide", camera.hfov))
        return cls(
            hfov_wide=wide,
            hfov_tele=float(config.get("hfov_tele", tele_hfov(wide, DEFAULT_ZOOM_RATIO))),
            pan_zero_heading=float(config.get("pan_zero_heading", 0.0)),
        )

    @property
    def zoom_ratio(self) -> float:
        """f_tele / f_wide (the lens' optical zoom)."""
        return _focal(2, self.hfov_tele) / _focal(2, self.hfov_wide)

    def focal(self, width: int, zoom: float) -> float:
        """Focal length (px) at normalised `zoom` for an image `width` px wide."""
        wide, tele = _focal(width, self.hfov_wide), _focal(width, self.hfov_tele)
        return wide + zoom * (tele - wide)

    def hfov(self, zoom: float) -> float:
        """Horizontal field of view (deg) at normalised `zoom`."""
        return math.degrees(2.0 * math.atan(1.0 / self.focal(2, zoom)))

    def zoom_for_magnification(self, magnification: float) -> float:
        """Normalised zoom for an optical magnification (f / f_wide, 1 = widest), clamped."""
        if self.zoom_ratio <= 1.0:
            return 0.0
        return min(1.0, max(0.0, (magnification - 1.0) / (self.zoom_ratio - 1.0)))

    def apply(self, camera: Camera, status: PtzStatus) -> Camera:
        """`camera` turned and zoomed to `status`: heading, pitch, roll 0 and focal length.
        A calibrated principal point, aspect ratio and distortion are kept."""
        fx = self.focal(camera.image_width, status.zoom)
        aspect = camera.focal_y / camera.focal_x
        return replace(
            camera, heading=(self.pan_zero_heading + status.pan) % 360.0, pitch=status.tilt,
            roll=0.0, fx=fx, fy=fx * aspect,
        )  # fmt: skip


class PtzAdapter(Protocol):
    """Reads a PTZ head's current status (blocking; adapters to devices do network I/O)."""

    def status(self) -> PtzStatus: ...


class SimulatedPtz:
    """A PTZ head that sweeps its pan back and forth over `sweep_deg` around `centre_pan` at
    `speed_dps` degrees per second, at a fixed tilt and zoom: for tests and the demo. A
    `move_to` sets a new centre; `clock` returns seconds (default: wall time)."""

    def __init__(
        self,
        centre_pan: float = 0.0,
        tilt: float = -15.0,
        zoom: float = 0.0,
        *,
        sweep_deg: float = 60.0,
        speed_dps: float = 5.0,
        clock: Any = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC).timestamp())
        self._start = float(self._clock())
        self.centre = PtzStatus(centre_pan, tilt, zoom)
        self.sweep_deg, self.speed_dps = sweep_deg, speed_dps

    def move_to(self, status: PtzStatus) -> None:
        """Centre the sweep on `status` and restart it there."""
        self.centre = status
        self._start = float(self._clock())

    def status(self) -> PtzStatus:
        """The head's status now: a triangle wave of the pan around the centre."""
        if self.sweep_deg <= 0 or self.speed_dps <= 0:
            return self.centre
        travelled = (float(self._clock()) - self._start) * self.speed_dps
        period = 2.0 * self.sweep_deg
        phase = travelled % period
        offset = phase if phase <= self.sweep_deg else period - phase
        pan = self.centre.pan + offset - self.sweep_deg / 2.0
        return replace(self.centre, pan=pan)


# ------------------------------------------------------------------------------------ ONVIF
ONVIF_NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
}
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)


def _scale(value: float, lo: float, hi: float) -> float:
    """[-1, 1] → [lo, hi], linearly."""
    return lo + (value + 1.0) / 2.0 * (hi - lo)


def parse_onvif_status(
    xml: str,
    *,
    pan_range: tuple[float, float] = (-180.0, 180.0),
    tilt_range: tuple[float, float] = (-90.0, 90.0),
) -> PtzStatus:
    """A PTZ status from an ONVIF ``GetStatusResponse`` (SOAP envelope or bare ``PTZStatus``).

    Positions are read in the generic position spaces: PanTilt ``x``, ``y`` in [-1, 1] are
    scaled linearly onto `pan_range` and `tilt_range` (deg, device-specific), Zoom ``x`` in
    [0, 1] is taken as the normalised zoom (linear in focal length, as our zoom curve).
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise TwinError(f"ONVIF GetStatus answer is not XML ({exc})") from exc
    position = root.find(".//tt:Position", ONVIF_NS)
    pan_tilt = position.find("tt:PanTilt", ONVIF_NS) if position is not None else None
    if pan_tilt is None:
        raise TwinError("ONVIF GetStatus answer has no PTZStatus/Position/PanTilt")
    zoom = position.find("tt:Zoom", ONVIF_NS) if position is not None else None
    try:
        x, y = float(pan_tilt.attrib["x"]), float(pan_tilt.attrib["y"])
        z = float(zoom.attrib["x"]) if zoom is not None else 0.0
    except (KeyError, ValueError) as exc:
        raise TwinError(f"ONVIF PanTilt/Zoom position is malformed ({exc})") from exc
    return PtzStatus(
        pan=_scale(x, *pan_range),
        tilt=_scale(y, *tilt_range),
        zoom=min(1.0, max(0.0, z)),
    )


def onvif_get_status_envelope(
    profile_token: str, username: str, password: str, *, nonce: bytes | None = None,
    created: datetime | None = None,
) -> str:  # fmt: skip
    """The SOAP 1.2 ``GetStatus`` request, signed with a WS-Security UsernameToken whose
    PasswordDigest is Base64(SHA-1(nonce + created + password)) (ONVIF Core, 5.12)."""
    nonce = nonce if nonce is not None else os.urandom(16)
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(
        hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()
    ).decode()
    return (
        f'<s:Envelope xmlns:s="{ONVIF_NS["s"]}"><s:Header>'
        f'<wsse:Security xmlns:wsse="{_WSSE}" xmlns:wsu="{_WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{_xml_text(username)}</wsse:Username>"
        f'<wsse:Password Type="{_DIGEST}">{digest}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"
        f'<s:Body><GetStatus xmlns="{ONVIF_NS["tptz"]}">'
        f"<ProfileToken>{_xml_text(profile_token)}</ProfileToken></GetStatus></s:Body>"
        "</s:Envelope>"
    )


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class OnvifPtz:
    """Reads the status of an ONVIF PTZ service (`xaddr`, e.g. ``http://cam/onvif/ptz``)."""

    def __init__(
        self,
        xaddr: str,
        profile_token: str,
        username: str,
        password: str,
        *,
        pan_range: tuple[float, float] = (-180.0, 180.0),
        tilt_range: tuple[float, float] = (-90.0, 90.0),
        timeout: float = 5.0,
    ) -> None:
        self.xaddr, self.profile_token = xaddr, profile_token
        self._username, self._password = username, password
        self.pan_range, self.tilt_range, self.timeout = pan_range, tilt_range, timeout

    def status(self) -> PtzStatus:
        body = onvif_get_status_envelope(self.profile_token, self._username, self._password)
        headers = {"Content-Type": 'application/soap+xml; charset=utf-8; action="'
                   f'{ONVIF_NS["tptz"]}/GetStatus"'}  # fmt: skip
        try:
            response = httpx.post(self.xaddr, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TwinError(f"cannot reach ONVIF PTZ service {self.xaddr} ({exc})") from exc
        if response.status_code != 200:
            raise TwinError(f"ONVIF GetStatus at {self.xaddr} answered {response.status_code}")
        return parse_onvif_status(
            response.text, pan_range=self.pan_range, tilt_range=self.tilt_range
        )


# ----------------------------------------------------------------------------- Hikvision
ISAPI_NS = {"hik": "http://www.hikvision.com/ver20/XMLSchema"}


def parse_isapi_status(xml: str, model: PtzModel, *, elevation_down: bool = True) -> PtzStatus:
    """A PTZ status from a Hikvision ISAPI ``PTZStatus`` (``GET
    /ISAPI/PTZCtrl/channels/{ch}/status``): ``AbsoluteHigh`` ``azimuth`` and ``elevation`` in
    tenths of a degree, ``absoluteZoom`` in tenths of optical magnification (10 = 1×).
    Hikvision's elevation grows downward (`elevation_down`), so tilt = -elevation / 10; the
    magnification becomes a normalised zoom through `model`'s zoom ratio."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise TwinError(f"ISAPI PTZ status is not XML ({exc})") from exc

    def value(tag: str, default: float | None = None) -> float:
        node = root.find(f".//hik:AbsoluteHigh/hik:{tag}", ISAPI_NS)
        if node is None:
            node = root.find(f".//AbsoluteHigh/{tag}")  # devices that omit the namespace
        if node is None or node.text is None:
            if default is None:
                raise TwinError(f"ISAPI PTZ status has no AbsoluteHigh/{tag}")
            return default
        try:
            return float(node.text)
        except ValueError as exc:
            raise TwinError(f"ISAPI PTZ status {tag} '{node.text}' is not a number") from exc

    elevation = value("elevation") / 10.0
    tilt = -elevation if elevation_down else elevation
    tilt = min(90.0, max(-90.0, tilt))
    magnification = value("absoluteZoom", 10.0) / 10.0
    return PtzStatus(
        pan=value("azimuth") / 10.0, tilt=tilt, zoom=model.zoom_for_magnification(magnification)
    )


class HikvisionPtz:
    """Reads a Hikvision camera's PTZ status over ISAPI (HTTP digest authentication)."""

    def __init__(
        self, base_url: str, username: str, password: str, model: PtzModel, *,
        channel: int = 1, timeout: float = 5.0,
    ) -> None:  # fmt: skip
        self.url = f"{base_url.rstrip('/')}/ISAPI/PTZCtrl/channels/{channel}/status"
        self._auth = httpx.DigestAuth(username, password)
        self.model, self.timeout = model, timeout

    def status(self) -> PtzStatus:
        try:
            response = httpx.get(self.url, auth=self._auth, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TwinError(f"cannot reach ISAPI PTZ status {self.url} ({exc})") from exc
        if response.status_code != 200:
            raise TwinError(f"ISAPI PTZ status at {self.url} answered {response.status_code}")
        return parse_isapi_status(response.text, self.model)
