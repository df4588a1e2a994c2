"""Coordinate frames: WGS84 lon/lat/height, ECEF and a local east-north-up (ENU) frame.

Vertical datum: every height in the model is a WGS84 *ellipsoidal* height in metres. Geoid grids
(EGM96/EGM2008) are not available offline, so heights read from rasters and layers are taken as
ellipsoidal; this is the one place that assumption lives (`VERTICAL_DATUM`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer

VERTICAL_DATUM = "WGS84 ellipsoid (geoid undulation not applied)"
WGS84_3D = CRS.from_epsg(4979)
ECEF = CRS.from_epsg(4978)
WGS84 = CRS.from_epsg(4326)

_GEODETIC_TO_ECEF = Transformer.from_crs(WGS84_3D, ECEF, always_xy=True)
_ECEF_TO_GEODETIC = Transformer.from_crs(ECEF, WGS84_3D, always_xy=True)

Array = NDArray[np.float64]


def geodetic_to_ecef(lon: ArrayLike, lat: ArrayLike, height: ArrayLike) -> Array:
    """Degrees, degrees, metres (ellipsoidal) → ECEF metres, shape (..., 3)."""
    x, y, z = _GEODETIC_TO_ECEF.transform(
        np.asarray(lon, float), np.asarray(lat, float), np.asarray(height, float)
    )
    return np.stack([x, y, z], axis=-1)


def ecef_to_geodetic(xyz: ArrayLike) -> Array:
    """ECEF metres (..., 3) → lon (deg), lat (deg), ellipsoidal height (m), shape (..., 3)."""
    pts = np.asarray(xyz, float)
    lon, lat, h = _ECEF_TO_GEODETIC.transform(pts[..., 0], pts[..., 1], pts[..., 2])
    return np.stack([lon, lat, h], axis=-1)


def enu_rotation(lon: float, lat: float) -> Array:
    """3×3 matrix whose rows are the east, north and up unit vectors in ECEF at lon/lat (deg)."""
    lam, phi = np.radians(lon), np.radians(lat)
    sl, cl, sp, cp = np.sin(lam), np.cos(lam), np.sin(phi), np.cos(phi)
    return np.array(
        [
            [-sl, cl, 0.0],
            [-sp * cl, -sp * sl, cp],
            [cp * cl, cp * sl, sp],
        ]
    )


@dataclass(frozen=True)
class LocalFrame:
    """A local ENU frame (metres) whose origin is lon/lat (deg) and ellipsoidal height (m).

    Conversions are rigorous (through ECEF), so the Earth's curvature is honoured: a point on the
    ellipsoid 2 km from the origin has ``up`` ≈ -0.31 m.
    """

    lon: float
    lat: float
    height: float = 0.0

    @property
    def origin_ecef(self) -> Array:
        return geodetic_to_ecef(self.lon, self.lat, self.height)

    @property
    def rotation(self) -> Array:
        return enu_rotation(self.lon, self.lat)

    def to_enu(self, lon: ArrayLike, lat: ArrayLike, height: ArrayLike) -> Array:
        """lon/lat (deg), ellipsoidal height (m) → ENU metres, shape (..., 3)."""
        return (geodetic_to_ecef(lon, lat, height) - self.origin_ecef) @ self.rotation.T

    def to_geodetic(self, enu: ArrayLike) -> Array:
        """ENU metres (..., 3) → lon (deg), lat (deg), ellipsoidal height (m)."""
        ecef = np.asarray(enu, float) @ self.rotation + self.origin_ecef
        return ecef_to_geodetic(ecef)

    def enu_to_ecef_matrix(self) -> Array:
        """4×4 column-major-ready matrix taking ENU metres to ECEF metres (a 3D Tiles transform)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = self.origin_ecef
        return m


def transformer_to_wgs84(crs: CRS) -> Transformer:
    """Transformer from `crs` to lon/lat degrees (always x=lon, y=lat)."""
    return Transformer.from_crs(crs, WGS84, always_xy=True)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Approximate metres per degree of longitude and latitude at `lat` (deg), for search radii."""
    phi = np.radians(lat)
    return 111_320.0 * float(np.cos(phi)), 110_574.0
