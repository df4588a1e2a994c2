"""Flight samples → the drone camera's pose: ellipsoidal height, heading, gimbal pitch and roll,
horizontal field of view and the UTC time of each sample.

Heights (m, WGS84 ellipsoidal as everywhere, `twin.geo.VERTICAL_DATUM`): the take-off point's
height plus the logged height above take-off (``rel_alt``, ``BAROMETER``) when the take-off
height is known; else the logged height above sea level (``abs_alt``, ``altitude``) taken as
ellipsoidal (no geoid grid is applied: off by the local geoid undulation, and DJI's sea-level
heights drift with the barometer; give the take-off height when it matters).

Heading (deg clockwise from north): the gimbal's yaw when the log has one, else the course over
ground between fixes `COURSE_S` apart (DJI logs positions to 1e-6 deg), held while hovering.
Pitch and roll: the gimbal's, else the pitch given (default straight down) and level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from pyproj import Geod

from twin.cameras.camera import Camera
from twin.cameras.world import World
from twin.errors import InputError
from twin.flights.srt import FlightSample
from twin.workspace import Manifest, WorkspacePaths

FULL_FRAME_DIAGONAL_MM = 43.2666
"""Diagonal of a 36 × 24 mm frame: 35 mm-equivalent focal lengths refer to it."""
DEFAULT_FOCAL_MM = 24.0
"""35 mm-equivalent focal length assumed when the log has none (DJI's usual wide camera)."""
COURSE_S = 1.0
MIN_COURSE_M = 2.0
SURVEY_HEIGHT_M = 2000.0
"""Height above the workspace origin from which `surface_height` looks straight down, m."""
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class PoseOptions:
    """How to turn samples into poses: the take-off point's ellipsoidal height (m, None when
    unknown), the camera pitch when the log has no gimbal angles (deg), a horizontal field of
    view that overrides the logged focal length (deg), the video's size (px) and the time
    zone of the drone's clock."""

    takeoff_height: float | None = None
    pitch: float = -90.0
    hfov: float | None = None
    image_size: tuple[int, int] = (1920, 1080)
    tz: tzinfo = UTC


@dataclass(frozen=True)
class FlightPose:
    """One sample's camera: position (deg, ellipsoidal m), orientation (deg), field of view
    (deg), image size (px) and time (UTC; None when the log has no clock)."""

    sample: FlightSample
    lon: float
    lat: float
    altitude: float
    heading: float
    pitch: float
    roll: float
    hfov: float
    image_size: tuple[int, int]
    time: datetime | None

    def telemetry(self, when: datetime) -> dict[str, Any]:
        """The body of ``POST /api/drones/{id}/telemetry`` for this pose at time `when`: the
        gimbal's angles carry the whole orientation (its yaw relative to an airframe heading
        of `heading`, i.e. 0)."""
        width, height = self.image_size
        return {
            "lon": self.lon, "lat": self.lat, "altitude": self.altitude, "yaw": self.heading,
            "gimbal": {"yaw": 0.0, "pitch": self.pitch, "roll": self.roll},
            "hfov": self.hfov, "image_width": width, "image_height": height,
            "time": when.isoformat(),
        }  # fmt: skip


def hfov_from_focal(focal_mm: float, width: int, height: int) -> float:
    """Horizontal field of view (deg) of a `width` × `height` px image taken at a 35 mm-
    equivalent focal length (mm): the equivalent frame's diagonal spans the image's."""
    span = FULL_FRAME_DIAGONAL_MM * width / math.hypot(width, height)
    return math.degrees(2.0 * math.atan(span / (2.0 * focal_mm)))


def flight_poses(samples: Sequence[FlightSample], options: PoseOptions) -> list[FlightPose]:
    """The pose of every sample (see the module docstring). Raises `InputError` when the log
    gives heights above take-off only and no take-off height is known."""
    if options.takeoff_height is None and all(s.abs_alt is None for s in samples):
        raise InputError(
            "the log gives heights above the take-off point only",
            hint="pass --takeoff-height (ellipsoidal m) or --workspace",
        )
    headings = _courses(samples)
    poses = []
    for sample, course in zip(samples, headings, strict=True):
        gimbal = sample.gimbal
        width, height = options.image_size
        focal = sample.focal_mm or DEFAULT_FOCAL_MM
        poses.append(FlightPose(
            sample=sample, lon=sample.lon, lat=sample.lat,
            altitude=_altitude(sample, options.takeoff_height),
            heading=(gimbal.yaw if gimbal else course) % 360.0,
            pitch=max(-90.0, min(90.0, gimbal.pitch if gimbal else options.pitch)),
            roll=max(-90.0, min(90.0, gimbal.roll)) if gimbal else 0.0,
            hfov=options.hfov or hfov_from_focal(focal, width, height),
            image_size=options.image_size,
            time=sample.time.replace(tzinfo=options.tz).astimezone(UTC) if sample.time else None,
        ))  # fmt: skip
    return poses


def _altitude(sample: FlightSample, takeoff_height: float | None) -> float:
    if takeoff_height is not None and sample.rel_alt is not None:
        return takeoff_height + sample.rel_alt
    if sample.abs_alt is not None:
        return sample.abs_alt
    return (takeoff_height or 0.0) + (sample.rel_alt or 0.0)


def _courses(samples: Sequence[FlightSample]) -> list[float]:
    """Course over ground (deg) at each sample from the fix `COURSE_S` earlier, held while
    the aircraft moved less than `MIN_COURSE_M`; before the first move, the first course."""
    courses: list[float | None] = []
    back = 0
    current: float | None = None
    for i, sample in enumerate(samples):
        while back < i and sample.start_s - samples[back + 1].start_s >= COURSE_S:
            back += 1
        origin = samples[back]
        azimuth, _, distance = _GEOD.inv(origin.lon, origin.lat, sample.lon, sample.lat)
        if back < i and distance >= MIN_COURSE_M:
            current = azimuth % 360.0
        courses.append(current)
    first = next((c for c in courses if c is not None), 0.0)
    return [first if c is None else c for c in courses]


def surface_height(ws: Path, lon: float, lat: float) -> float:
    """Ellipsoidal height (m) of workspace `ws`'s surface at lon/lat (deg): a roof where a
    building stands, else the terrain, else the workspace origin's height — where a drone
    taking off there starts."""
    origin = Manifest.read(WorkspacePaths(ws).manifest).frame.height
    above = Camera(
        "takeoff", lon=lon, lat=lat, ground_height=origin, mount_height=SURVEY_HEIGHT_M,
        pitch=-90.0, hfov=1.0, image_width=2, image_height=2, max_range=2 * SURVEY_HEIGHT_M,
    )  # fmt: skip
    hit = World.from_workspace(ws).ray(above, 1.0, 1.0)
    return origin if hit is None else hit.height
