"""Drone telemetry → a live camera model.

Telemetry gives the aircraft's position — lon, lat (deg) and ``altitude``, a WGS84
*ellipsoidal* height in metres (`twin.geo.VERTICAL_DATUM`; convert barometric or take-off
relative altitudes before sending) — its attitude (yaw clockwise from north, pitch, roll, deg)
and, for a gimbal camera, the gimbal's angles. As with stabilised gimbals (e.g. DJI), the
gimbal's pitch and roll are relative to the horizon and its yaw relative to the airframe's
heading; without a gimbal the camera looks along the airframe's axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twin.cameras.camera import Camera


@dataclass(frozen=True)
class Gimbal:
    """Gimbal angles (deg): yaw relative to the airframe, pitch and roll to the horizon."""

    yaw: float = 0.0
    pitch: float = -90.0
    roll: float = 0.0


@dataclass(frozen=True)
class DroneTelemetry:
    """One telemetry sample of a drone camera (units in the module docstring)."""

    lon: float
    lat: float
    altitude: float
    yaw: float
    time: datetime
    pitch: float = 0.0
    roll: float = 0.0
    gimbal: Gimbal | None = None
    hfov: float = 70.0
    image_width: int = 1920
    image_height: int = 1080

    def camera(self, drone_id: str, ground_height: float) -> Camera:
        """The drone's camera now; `ground_height` (ellipsoidal m) is the flat ground its rays
        fall back on where the workspace meshes are missed."""
        if self.gimbal is not None:
            heading = self.yaw + self.gimbal.yaw
            pitch, roll = self.gimbal.pitch, self.gimbal.roll
        else:
            heading, pitch, roll = self.yaw, self.pitch, self.roll
        return Camera(
            drone_id, lon=self.lon, lat=self.lat, ground_height=ground_height,
            mount_height=self.altitude - ground_height, heading=heading % 360.0, pitch=pitch,
            roll=roll, hfov=self.hfov, image_width=self.image_width,
            image_height=self.image_height,
        )  # fmt: skip
