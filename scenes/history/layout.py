"""The archive's layout: where each file goes and what it holds.

```
WS/history/observations/date=YYYY-MM-DD/hour=HH/*.parquet
WS/history/alerts/date=YYYY-MM-DD/hour=HH/*.parquet
```

Partitions are UTC hours (of the observation's time, of the alert's creation). Every file is
GeoParquet 1.1 (zstd): a WKB ``geometry`` point column in EPSG:4326 (x = longitude,
y = latitude, degrees) plus ``lon``/``lat`` columns, times as UTC timestamps (µs), the
observation or alert fields as columns and JSON-valued fields (``attributes``, an alert's
``evidence``) as JSON text. A file whose name starts with "." is a file being written, which
GeoParquet readers skip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from scenes.models import Alert
from scenes.rows import OBSERVATION_COLUMNS

KINDS = ("observations", "alerts")
HOUR_S = 3600
TIME = pa.timestamp("us", tz="UTC")
OBSERVATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("time", TIME),
        ("kind", pa.string()),
        ("cls", pa.string()),
        ("confidence", pa.float64()),
        ("source", pa.string()),
        ("track_id", pa.string()),
        ("entity_id", pa.string()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("height", pa.float64()),
        ("attributes", pa.string()),
        ("geometry", pa.binary()),
    ]
)
_ALERT_TIMES = (
    "observed_at", "created_at", "acknowledged_at", "dispatched_at", "on_scene_at",
    "resolved_at", "false_alarm_at", "closed_at",
)  # fmt: skip
_ALERT_TEXT = (
    "id", "rule", "app", "board", "title", "severity", "status", "element_id",
    "jurisdiction_id", "unit", "entity_id", "acknowledged_by", "dispatched_by", "on_scene_by",
    "resolved_by", "false_alarm_by",
)  # fmt: skip
ALERT_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _ALERT_TEXT]
    + [(name, TIME) for name in _ALERT_TIMES]
    + [
        ("response_s", pa.float64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("height", pa.float64()),
        ("record", pa.string()),
        ("geometry", pa.binary()),
    ]
)
SCHEMAS = {"observations": OBSERVATION_SCHEMA, "alerts": ALERT_SCHEMA}
# Columns compressed better split into byte streams (floats that vary in their low bytes).
FLOAT_COLUMNS = ("lon", "lat", "height", "confidence", "response_s")


def hour_of(epoch_s: float) -> int:
    """The start (epoch seconds) of the UTC hour holding `epoch_s`."""
    return int(epoch_s // HOUR_S) * HOUR_S


def partition_dir(root: Path, kind: str, hour_s: int) -> Path:
    """`root`/kind/date=YYYY-MM-DD/hour=HH for the UTC hour starting at `hour_s`."""
    start = datetime.fromtimestamp(hour_s, UTC)
    return root / kind / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"


@cache
def _crs_projjson() -> dict[str, Any]:
    from pyproj import CRS

    return dict(CRS.from_epsg(4326).to_json_dict())


def geo_metadata(bbox: Sequence[float]) -> bytes:
    """The GeoParquet 1.1 file metadata (key ``geo``) of a file of points within `bbox`
    (minlon, minlat, maxlon, maxlat)."""
    column = {
        "encoding": "WKB",
        "geometry_types": ["Point"],
        "crs": _crs_projjson(),
        "bbox": [float(v) for v in bbox],
    }
    document = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return json.dumps(document).encode()


def wkb_points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """Little-endian WKB points (21 bytes each) for lon/lat (deg)."""
    count = len(lon)
    packed = np.zeros(
        count,
        dtype=np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")], align=False),
    )
    packed["order"], packed["type"], packed["x"], packed["y"] = 1, 1, lon, lat
    offsets = np.arange(0, 21 * (count + 1), 21, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(packed.tobytes())]
    )


def observation_table(rows: Sequence[Sequence[object]]) -> pa.Table:
    """The archive table of store rows (the values of `scenes.rows.OBSERVATION_COLUMNS`)."""
    columns = dict(zip(OBSERVATION_COLUMNS, zip(*rows, strict=True), strict=True)) if rows else {}

    def col(name: str, kind: pa.DataType) -> pa.Array:
        return pa.array(columns.get(name, ()), type=kind)

    lon = np.asarray(columns.get("lon", ()), dtype=np.float64)
    lat = np.asarray(columns.get("lat", ()), dtype=np.float64)
    time_us = pa.array(columns.get("time_us", ()), type=pa.int64())
    return pa.Table.from_arrays(
        [
            col("id", pa.string()),
            time_us.cast(TIME),
            col("kind", pa.string()),
            col("cls", pa.string()),
            col("confidence", pa.float64()),
            col("source", pa.string()),
            col("track_id", pa.string()),
            col("entity_id", pa.string()),
            pa.array(lon),
            pa.array(lat),
            col("height", pa.float64()),
            col("attributes", pa.string()),
            wkb_points(lon, lat),
        ],
        schema=OBSERVATION_SCHEMA,
    )


def alert_table(alerts: Sequence[Alert]) -> pa.Table:
    """The archive table of `alerts` (every field; the full record as JSON in ``record``)."""
    records = [alert.model_dump(mode="json") for alert in alerts]
    arrays: list[pa.Array] = []
    for name in _ALERT_TEXT:
        arrays.append(pa.array([r.get(name) for r in records], type=pa.string()))
    for name in _ALERT_TIMES:
        values = [getattr(alert, name) for alert in alerts]
        arrays.append(pa.array(values, type=TIME))
    arrays.append(pa.array([a.response_s() for a in alerts], type=pa.float64()))
    lon = np.array([a.lon for a in alerts], dtype=np.float64)
    lat = np.array([a.lat for a in alerts], dtype=np.float64)
    arrays += [pa.array(lon), pa.array(lat), pa.array([a.height for a in alerts], pa.float64())]
    arrays.append(pa.array([a.model_dump_json() for a in alerts], type=pa.string()))
    arrays.append(wkb_points(lon, lat))
    return pa.Table.from_arrays(arrays, schema=ALERT_SCHEMA)
