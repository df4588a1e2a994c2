"""How an observation is laid out as a row, in the live store (SQLite) and in the archive
(GeoParquet): typed columns, times as exact integer microseconds since the Unix epoch (UTC),
a one-second bucket and a ~100 m grid cell for the indexes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scenes.models import Observation

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
CELL_DEG = 0.001  # grid cell side (deg): ~100 m north-south, ~95 m east-west at 30°N
# Columns of the observations table (after its ``rid``), in this order everywhere.
OBSERVATION_COLUMNS = (
    "id", "entity_id", "kind", "cls", "confidence", "source", "track_id", "lon", "lat",
    "height", "time_us", "sec", "cell", "attributes",
)  # fmt: skip
# The columns an `Observation` is rebuilt from (a prefix-free subset of the above).
RECORD_COLUMNS = (
    "id", "kind", "cls", "confidence", "source", "track_id", "lon", "lat", "height",
    "time_us", "attributes",
)  # fmt: skip
ObservationRow = tuple[object, ...]


def to_us(when: datetime) -> int:
    """Microseconds since the Unix epoch of aware `when` (exact, no float rounding)."""
    return (when - EPOCH) // US


def from_us(us: int) -> datetime:
    """The aware UTC datetime `us` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=us)


def cell_of(lon: float, lat: float) -> int:
    """The grid cell holding lon/lat (deg): column and row of `CELL_DEG` squares, packed.
    SQLite computes the same value as ``(CAST((lon+180)*1000 AS INTEGER) << 20) |
    CAST((lat+90)*1000 AS INTEGER)`` (see `scenes.migrations`)."""
    return int((lon + 180.0) * 1000.0) << 20 | int((lat + 90.0) * 1000.0)


def cells_in(minlon: float, minlat: float, maxlon: float, maxlat: float) -> list[int]:
    """Every grid cell that meets the lon/lat box (deg)."""
    x0, x1 = int((minlon + 180.0) * 1000.0), int((maxlon + 180.0) * 1000.0)
    y0, y1 = int((minlat + 90.0) * 1000.0), int((maxlat + 90.0) * 1000.0)
    return [x << 20 | y for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def observation_row(obs: Observation) -> ObservationRow:
    """`obs` (with its id) as the values of `OBSERVATION_COLUMNS`."""
    us = to_us(obs.time)
    return (
        obs.id, obs.entity_id, obs.kind.value, obs.cls, obs.confidence, obs.source,
        obs.track_id, obs.lon, obs.lat, obs.height, us, us // 1_000_000,
        cell_of(obs.lon, obs.lat), json.dumps(obs.attributes, ensure_ascii=False),
    )  # fmt: skip


def observation_from(values: Sequence[object]) -> Observation:
    """The observation whose `RECORD_COLUMNS` values are `values` (trusted: read back from
    the store or the archive)."""
    record = dict(zip(RECORD_COLUMNS, values, strict=True))
    record["time"] = from_us(int(str(record.pop("time_us"))))
    attributes = record["attributes"]
    record["attributes"] = json.loads(str(attributes)) if attributes else {}
    return Observation.model_validate(record)
