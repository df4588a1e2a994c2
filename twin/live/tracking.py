"""Tracks in world coordinates: each detector track's ground position smoothed by a
constant-velocity Kalman filter, with its speed and heading, and implausible jumps gated out.

Frame and units: the filter runs in a local ENU frame (metres, x east, y north) whose origin is
the first position the tracker sees (`twin.geo.LocalFrame`); time in seconds from the
observations' ``time``. State ``[x, y, vx, vy]``; the motion model is a constant velocity
driven by white-noise acceleration of spectral density ``q`` (m²/s³, per observation kind).
A measurement's noise is its ``attributes.uncertainty_m`` (1 σ, m), clamped to
[`MIN_SIGMA_M`, `MAX_SIGMA_M`].

Gating: a position whose squared Mahalanobis distance from the prediction exceeds `GATE_CHI2`
(χ², 2 degrees of freedom, p = 0.001) *and* that would need more than the kind's top speed is
rejected: the observation goes out at the predicted position with ``attributes.gated = true``.
After `MAX_GATED` rejections in a row the track restarts at the new position (the detector
handed the id to another object, or the object really jumped).

What the tracker adds to an observation's ``attributes``: ``speed_mps`` (m/s) and, when the
speed is at least `MIN_HEADING_SPEED_MPS`, ``heading_deg`` (degrees clockwise from north),
once a track has two positions; ``raw`` ([lon, lat] of the unsmoothed position) when the
position was changed; ``gated`` when a jump was rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.geo import LocalFrame

Array = NDArray[np.float64]

ACCEL_DENSITY = {"person": 0.5, "vehicle": 2.0}
"""Spectral density q (m²/s³) of the white-noise acceleration, per observation kind."""
DEFAULT_ACCEL_DENSITY = 2.0
TOP_SPEED_MPS = {"person": 12.0, "vehicle": 70.0}
"""Fastest plausible speed (m/s) per observation kind."""
DEFAULT_TOP_SPEED_MPS = 70.0
MIN_SIGMA_M = 0.2
MAX_SIGMA_M = 25.0
DEFAULT_SIGMA_M = 1.0
INITIAL_SPEED_SIGMA_MPS = 5.0
GATE_CHI2 = 13.8
MAX_GATED = 3
MIN_HEADING_SPEED_MPS = 0.5
TRACK_TTL_S = 10.0
"""A track not updated for this long is forgotten."""

_H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])


@dataclass
class KalmanCV:
    """A 2-D constant-velocity Kalman filter: state [x, y, vx, vy] (m, m/s), covariance P."""

    x: Array
    p: Array
    q: float

    @classmethod
    def start(cls, position: Array, sigma_m: float, q: float) -> KalmanCV:
        """A filter at `position` (x, y m) with position σ `sigma_m` and unknown velocity."""
        v2 = INITIAL_SPEED_SIGMA_MPS**2
        p = np.diag([sigma_m**2, sigma_m**2, v2, v2])
        return cls(np.array([position[0], position[1], 0.0, 0.0]), p, q)

    def predicted(self, dt: float) -> tuple[Array, Array]:
        """State and covariance `dt` seconds ahead (not stored)."""
        f = np.eye(4)
        f[0, 2] = f[1, 3] = dt
        g3, g2, g1 = dt**3 / 3.0, dt**2 / 2.0, dt
        q = self.q * np.array(
            [[g3, 0, g2, 0], [0, g3, 0, g2], [g2, 0, g1, 0], [0, g2, 0, g1]], float
        )
        return f @ self.x, f @ self.p @ f.T + q

    def innovation(self, dt: float, z: Array, sigma_m: float) -> tuple[float, Array, Array]:
        """Squared Mahalanobis distance of measurement `z` (x, y m) from the prediction `dt`
        seconds ahead, and that prediction (state, covariance)."""
        x, p = self.predicted(dt)
        s = _H @ p @ _H.T + np.eye(2) * sigma_m**2
        r = z - _H @ x
        return float(r @ np.linalg.solve(s, r)), x, p

    def update(self, x: Array, p: Array, z: Array, sigma_m: float) -> None:
        """Correct the predicted state `x`, `p` with measurement `z` (x, y m) of σ `sigma_m`."""
        s = _H @ p @ _H.T + np.eye(2) * sigma_m**2
        k = p @ _H.T @ np.linalg.inv(s)
        self.x = x + k @ (z - _H @ x)
        self.p = (np.eye(4) - k @ _H) @ p

    @property
    def speed(self) -> float:
        """m/s."""
        return float(math.hypot(self.x[2], self.x[3]))

    @property
    def heading(self) -> float:
        """Direction of motion, degrees clockwise from north (y) in [0, 360)."""
        return math.degrees(math.atan2(self.x[2], self.x[3])) % 360.0


@dataclass
class _Track:
    kalman: KalmanCV
    time: float
    gated: int = 0


@dataclass
class WorldTracker:
    """Smooths the observations of every (source, track id) in world coordinates."""

    ttl_s: float = TRACK_TTL_S
    frame: LocalFrame | None = None
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)

    @property
    def tracks(self) -> int:
        """Tracks held now."""
        return len(self._tracks)

    def update(self, observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Smooth `observations` (JSON-ready dicts as `detections_to_observations` makes) in
        place and return them; those without a ``track_id`` pass unchanged."""
        latest = None
        for obs in observations:
            if obs.get("track_id") is None:
                continue
            now = _seconds(obs["time"])
            latest = now if latest is None else max(latest, now)
            self._update_one(obs, now)
        if latest is not None:
            self._forget(latest)
        return observations

    def _forget(self, now: float) -> None:
        stale = [key for key, track in self._tracks.items() if now - track.time > self.ttl_s]
        for key in stale:
            del self._tracks[key]

    def _update_one(self, obs: dict[str, Any], now: float) -> None:
        if self.frame is None:
            self.frame = LocalFrame(obs["lon"], obs["lat"], obs["height"])
        attributes = obs.setdefault("attributes", {})
        z = self.frame.to_enu(obs["lon"], obs["lat"], obs["height"])[:2]
        sigma = min(MAX_SIGMA_M, max(MIN_SIGMA_M, attributes.get("uncertainty_m", DEFAULT_SIGMA_M)))
        kind = str(obs.get("kind", ""))
        key = (str(obs["source"]), str(obs["track_id"]))
        track = self._tracks.get(key)
        if track is None or now - track.time > self.ttl_s:
            q = ACCEL_DENSITY.get(kind, DEFAULT_ACCEL_DENSITY)
            self._tracks[key] = _Track(KalmanCV.start(z, sigma, q), now)
            return
        dt = max(0.0, now - track.time)
        d2, x, p = track.kalman.innovation(dt, z, sigma)
        jump = float(np.hypot(*(z - track.kalman.x[:2])))
        top = TOP_SPEED_MPS.get(kind, DEFAULT_TOP_SPEED_MPS)
        implausible = d2 > GATE_CHI2 and jump > top * dt + 3.0 * sigma
        if implausible and track.gated < MAX_GATED:
            track.gated += 1
            track.kalman.x, track.kalman.p = x, p
            track.time = now
            attributes["gated"] = True
            self._write(obs, track)
            return
        if implausible:  # too many rejections in a row: start over here
            q = ACCEL_DENSITY.get(kind, DEFAULT_ACCEL_DENSITY)
            self._tracks[key] = _Track(KalmanCV.start(z, sigma, q), now)
            return
        track.kalman.update(x, p, z, sigma)
        track.time, track.gated = now, 0
        self._write(obs, track)

    def _write(self, obs: dict[str, Any], track: _Track) -> None:
        """Put the track's smoothed position, speed and heading into `obs`."""
        assert self.frame is not None
        kalman = track.kalman
        attributes = obs["attributes"]
        up = float(self.frame.to_enu(obs["lon"], obs["lat"], obs["height"])[2])
        lon, lat, _ = (float(c) for c in self.frame.to_geodetic([kalman.x[0], kalman.x[1], up]))
        attributes["raw"] = [obs["lon"], obs["lat"]]
        obs["lon"], obs["lat"] = lon, lat
        attributes["speed_mps"] = round(kalman.speed, 2)
        if kalman.speed >= MIN_HEADING_SPEED_MPS:
            attributes["heading_deg"] = round(kalman.heading, 1)


def _seconds(value: datetime | str) -> float:
    """POSIX seconds of a datetime or ISO 8601 text."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when.timestamp()
