"""Image ↔ world point pairs, the input of camera calibration (`twin.cameras.calibrate`): a
pixel (u, v) of the calibrated image size and the lon/lat (deg) and ellipsoidal height (m) of the
same point in the world. Plain data and CSV reading, no OpenCV: the server builds pairs from a
request without loading the solver.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from twin.errors import InputError

PAIR_COLUMNS = ("u", "v", "lon", "lat", "height")


@dataclass(frozen=True)
class PointPair:
    """A pixel (u, v, px) and the world point it shows: lon, lat (deg), ellipsoidal height (m)."""

    u: float
    v: float
    lon: float
    lat: float
    height: float


def read_pairs(path: Path) -> list[PointPair]:
    """Point pairs from a CSV file with a header naming at least u, v, lon, lat, height."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PAIR_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"missing column(s) {', '.join(missing)}", file=str(path))
            pairs = []
            for row_no, row in enumerate(reader, start=2):
                try:
                    pairs.append(PointPair(*(float(row[c]) for c in PAIR_COLUMNS)))
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        "u, v, lon, lat, height must be numbers", file=str(path), row=row_no
                    ) from exc
    except OSError as exc:
        raise InputError(f"cannot read point pairs ({exc.strerror})", file=str(path)) from exc
    return pairs
