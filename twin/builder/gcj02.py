"""GCJ-02 ("Mars") coordinates: China's obfuscated lon/lat, used by Chinese web maps (AMap,
Tencent). A vector layer whose twin.yaml ``crs:`` says ``GCJ-02`` is read as lon/lat and then
moved back to WGS84 with `prcoords` (its iterative inverse, ~0.1 mm). Outside mainland China
(prcoords' box) GCJ-02 equals WGS84, so such points are left as they are.
"""

from __future__ import annotations

import numpy as np
import prcoords
import shapely
from numpy.typing import NDArray

GCJ02_NAMES = frozenset({"gcj-02", "gcj02", "gcj_02"})


def is_gcj02(crs_text: str | None) -> bool:
    """Whether a twin.yaml ``crs:`` value names GCJ-02 (case-insensitive)."""
    return crs_text is not None and crs_text.strip().lower() in GCJ02_NAMES


def gcj02_to_wgs84_lonlat(lonlat: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n, 2) GCJ-02 lon/lat (degrees) → WGS84 lon/lat (degrees)."""
    out = np.array(lonlat, dtype=float, copy=True)
    for row in out:
        lon, lat = float(row[0]), float(row[1])
        gcj = prcoords.Coords(lat, lon)
        if np.isfinite(row).all() and prcoords.sanity_in_china_p(gcj):
            wgs = prcoords.gcj_wgs_bored(gcj, False)
            row[0], row[1] = wgs.lon, wgs.lat
    return out


def gcj02_to_wgs84(geometries: NDArray[np.object_]) -> NDArray[np.object_]:
    """Shapely geometries in GCJ-02 lon/lat → the same geometries in WGS84 lon/lat."""
    return np.asarray(shapely.transform(geometries, gcj02_to_wgs84_lonlat))
