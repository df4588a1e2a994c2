"""World-coordinate tracking: a constant-velocity Kalman filter on synthetic straight-line tracks
with noise recovers speed and heading; implausible jumps are gated out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.geo import LocalFrame
from twin.live.tracking import MAX_GATED, MIN_HEADING_SPEED_MPS, WorldTracker

FRAME = LocalFrame(121.4903, 31.2400, 8.0)
T0 = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)


def _observation(
    east: float, north: float, seconds: float, *, sigma: float, kind: str
) -> dict[str, Any]:
    lon, lat, height = (float(c) for c in FRAME.to_geodetic([east, north, 0.0]))
    return {
        "kind": kind,
        "cls": kind,
        "source": "camera:test",
        "track_id": "7",
        "lon": lon,
        "lat": lat,
        "height": height,
        "time": (T0 + timedelta(seconds=seconds)).isoformat(),
        "attributes": {"uncertainty_m": sigma},
    }


def _run(
    speed: float, heading: float, sigma: float, *, seed: int, kind: str = "vehicle",
    rate_hz: float = 10.0, seconds: float = 8.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Feed a straight-line track (start at 20 m east, 30 m north) with Gaussian noise."""
    rng = np.random.default_rng(seed)
    tracker = WorldTracker()
    direction = np.array([math.sin(math.radians(heading)), math.cos(math.radians(heading))])
    out = []
    for k in range(int(seconds * rate_hz)):
        t = k / rate_hz
        east, north = np.array([20.0, 30.0]) + speed * t * direction + rng.normal(0, sigma, 2)
        (obs,) = tracker.update([_observation(east, north, t, sigma=sigma, kind=kind)])
        out.append(obs)
    return out


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


VELOCITY_TOLERANCE_MPS = 2.0
"""Velocity error allowed once settled: ~3 σ of the vehicle filter's steady state at 10 Hz
with 0.3 m position noise."""


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    speed=st.floats(1.0, 30.0),
    heading=st.floats(0.0, 360.0, exclude_max=True),
    sigma=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.slow
def test_speed_and_heading_of_a_noisy_straight_track(
    speed: float, heading: float, sigma: float, seed: int
) -> None:
    observations = _run(speed, heading, sigma, seed=seed)
    assert "speed_mps" not in observations[0]["attributes"]  # one position: no velocity yet
    truth = speed * np.array([math.sin(math.radians(heading)), math.cos(math.radians(heading))])
    for obs in observations[-20:]:  # the last 2 s, after the filter has settled
        attrs = obs["attributes"]
        assert "gated" not in attrs
        assert abs(attrs["speed_mps"] - speed) <= VELOCITY_TOLERANCE_MPS
        if "heading_deg" in attrs:
            h = math.radians(attrs["heading_deg"])
            estimate = attrs["speed_mps"] * np.array([math.sin(h), math.cos(h)])
        else:  # too slow for a heading
            assert attrs["speed_mps"] < MIN_HEADING_SPEED_MPS
            estimate = np.zeros(2)
        assert float(np.hypot(*(estimate - truth))) <= VELOCITY_TOLERANCE_MPS
        if speed >= 10.0:
            assert _angle_diff(attrs["heading_deg"], heading) <= 12.0


@settings(max_examples=30, deadline=None, derandomize=True)
@given(sigma=st.floats(0.2, 0.5), seed=st.integers(0, 2**32 - 1))
@pytest.mark.slow
def test_smoothing_reduces_position_noise(sigma: float, seed: int) -> None:
    observations = _run(1.4, 45.0, sigma, seed=seed, kind="person")
    direction = np.array([math.sin(math.radians(45.0)), math.cos(math.radians(45.0))])
    raw_err, smooth_err = [], []
    for k, obs in enumerate(observations[30:], start=30):
        truth = np.array([20.0, 30.0]) + 1.4 * (k / 10.0) * direction
        raw_lon, raw_lat = obs["attributes"]["raw"]
        raw = FRAME.to_enu(raw_lon, raw_lat, obs["height"])[:2]
        smooth = FRAME.to_enu(obs["lon"], obs["lat"], obs["height"])[:2]
        raw_err.append(float(np.hypot(*(raw - truth))))
        smooth_err.append(float(np.hypot(*(smooth - truth))))
    assert np.sqrt(np.mean(np.square(smooth_err))) < 0.8 * np.sqrt(np.mean(np.square(raw_err)))


def test_a_standing_person_has_no_heading() -> None:
    observations = _run(0.0, 0.0, 0.1, seed=1, kind="person")
    last = observations[-1]["attributes"]
    assert last["speed_mps"] < 0.5 and "heading_deg" not in last


def test_an_implausible_jump_is_gated_then_accepted_when_it_persists() -> None:
    tracker = WorldTracker()
    for k in range(20):  # a person walking north at 1.5 m/s
        tracker.update([_observation(0.0, 1.5 * k / 10, k / 10, sigma=0.2, kind="person")])
    t = 2.0
    (jumped,) = tracker.update([_observation(80.0, 3.0, t, sigma=0.2, kind="person")])
    assert jumped["attributes"]["gated"] is True
    east, north, _ = FRAME.to_enu(jumped["lon"], jumped["lat"], jumped["height"])
    assert abs(east) < 0.5 and abs(north - 3.0) < 0.5  # kept at the prediction
    for k in range(1, MAX_GATED):
        (obs,) = tracker.update([_observation(80.0, 3.0, t + k / 10, sigma=0.2, kind="person")])
    assert obs["attributes"].get("gated") is True
    (restart,) = tracker.update([_observation(80.0, 3.0, t + 0.5, sigma=0.2, kind="person")])
    assert "gated" not in restart["attributes"] and "speed_mps" not in restart["attributes"]
    east, _, _ = FRAME.to_enu(restart["lon"], restart["lat"], restart["height"])
    assert abs(east - 80.0) < 0.01  # the track starts over at the new place


def test_a_fast_vehicle_is_not_gated() -> None:
    observations = _run(25.0, 90.0, 0.3, seed=3, kind="vehicle", rate_hz=5.0)
    assert not any(obs["attributes"].get("gated") for obs in observations)


def test_tracks_are_separate_and_untracked_observations_pass() -> None:
    tracker = WorldTracker(ttl_s=1.0)
    a = _observation(0.0, 0.0, 0.0, sigma=0.2, kind="person")
    b = {**_observation(50.0, 0.0, 0.0, sigma=0.2, kind="person"), "track_id": "8"}
    loose = {**_observation(9.0, 9.0, 0.0, sigma=0.2, kind="person"), "track_id": None}
    tracker.update([a, b, loose])
    assert tracker.tracks == 2 and "raw" not in loose["attributes"]
    later = _observation(0.0, 0.0, 5.0, sigma=0.2, kind="person")
    tracker.update([later])
    assert tracker.tracks == 1  # both stale tracks went; the new one started over
    assert "speed_mps" not in later["attributes"]
