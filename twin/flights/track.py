"""A flight as GeoJSON (RFC 7946: lon, lat, ellipsoidal height in metres): one LineString
feature for the whole track, then a Point feature per sample with its time and camera pose."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twin.flights.pose import FlightPose


def track_geojson(poses: Sequence[FlightPose], drone: str, family: str) -> dict[str, Any]:
    """The FeatureCollection of a flight of drone `drone` logged in `family`'s format."""
    times = [p.time.isoformat() if p.time else None for p in poses]
    line = {
        "type": "Feature",
        "geometry": {
            "type": "LineString",
            "coordinates": [[p.lon, p.lat, round(p.altitude, 3)] for p in poses],
        },
        "properties": {
            "drone": drone, "family": family, "samples": len(poses),
            "start": times[0] if times else None, "end": times[-1] if times else None,
        },
    }  # fmt: skip
    points = [_point(p, when, drone) for p, when in zip(poses, times, strict=True)]
    return {"type": "FeatureCollection", "features": [line, *points]}


def write_track(path: Path, poses: Sequence[FlightPose], drone: str, family: str) -> None:
    """Write the flight's GeoJSON to `path` (replaced whole: written beside it, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(track_geojson(poses, drone, family)), encoding="utf-8")
    tmp.replace(path)


def _point(pose: FlightPose, when: str | None, drone: str) -> dict[str, Any]:
    """One sample as a Point feature with its time and camera pose."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [pose.lon, pose.lat, round(pose.altitude, 3)]},
        "properties": {
            "drone": drone, "time": when, "video_s": pose.sample.start_s,
            "heading": round(pose.heading, 2), "pitch": round(pose.pitch, 2),
            "roll": round(pose.roll, 2), "hfov": round(pose.hfov, 3),
            "rel_alt": pose.sample.rel_alt, "abs_alt": pose.sample.abs_alt,
        },
    }  # fmt: skip
