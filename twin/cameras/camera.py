"""A pinhole camera placed on the globe: pixel ↔ world projection.

Frames and units
----------------
- World positions are WGS84 lon/lat (degrees) and ellipsoidal height (metres); rays are returned
  in ECEF metres.
- The camera works in its own local ENU frame (`twin.geo.LocalFrame`) whose origin is the ground
  below the camera (lon, lat, ``ground_height``); the optical centre sits at
  ``(0, 0, mount_height)`` in it.
- Image: ``u`` grows to the right, ``v`` grows downward, both in pixels, with ``(0, 0)`` the
  top-left corner of the image and the principal point at ``(w/2, h/2)``; no lens distortion.
- Camera axes: x = image right, y = image down, z = optical axis (forward).

Orientation (degrees), applied as heading, then pitch, then roll:
- ``heading``: clockwise from north of the horizontal viewing direction (0 north, 90 east).
- ``pitch``: elevation of the optical axis above the horizon; negative looks down, -90 looks
  straight down (the top of the image then points along ``heading``).
- ``roll``: rotation about the optical axis. Positive roll turns the camera clockwise as seen
  from behind it (its right side goes down), so the image frame turns clockwise and the scene
  in the picture turns counter-clockwise: a point on the horizon right of centre appears
  *above* the centre row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import Polygon

from twin.catalog import Element
from twin.errors import InputError
from twin.geo import LocalFrame

Array = NDArray[np.float64]

MAX_RANGE_M = 5000.0
"""Ground points farther than this (horizontal distance from the camera, m) are not located."""


def _rotation(heading: float, pitch: float, roll: float) -> Array:
    """3×3 matrix whose columns are the camera's x (right), y (down), z (forward) axes in ENU."""
    h, p, r = np.radians([heading, pitch, roll])
    forward = np.array([np.sin(h) * np.cos(p), np.cos(h) * np.cos(p), np.sin(p)])
    right0 = np.array([np.cos(h), -np.sin(h), 0.0])
    up0 = np.cross(right0, forward)
    right = right0 * np.cos(r) - up0 * np.sin(r)
    up = up0 * np.cos(r) + right0 * np.sin(r)
    return np.column_stack([right, -up, forward])


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera. Angles in degrees, lengths in metres, image size in pixels.

    Examples
    --------
    >>> cam = Camera("c", lon=121.49, lat=31.24, ground_height=10.0, mount_height=6.0,
    ...              heading=90.0, pitch=0.0, hfov=60.0, image_width=800, image_height=600)
    >>> round(float(cam.direction_enu(400, 300)[0]), 6)  # the centre pixel looks east
    1.0
    """

    id: str
    lon: float
    lat: float
    ground_height: float = 0.0
    mount_height: float = 0.0
    heading: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    hfov: float = 60.0
    image_width: int = 1920
    image_height: int = 1080
    max_range: float = MAX_RANGE_M
    _rot: Array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.hfov < 180.0:
            raise InputError(f"camera {self.id}: hfov {self.hfov} is not in (0, 180) degrees")
        if self.image_width <= 0 or self.image_height <= 0:
            raise InputError(f"camera {self.id}: image size must be positive")
        object.__setattr__(self, "_rot", _rotation(self.heading, self.pitch, self.roll))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_element(cls, el: Element) -> Camera:
        """A camera from a catalog element of kind ``camera`` (see docs/architecture.md)."""
        return cls.from_record(el.to_dict(with_geometry=False))

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Camera:
        """A camera from an element record (`Element.to_dict()` or `GET /api/elements/{id}`)."""
        attrs = rec.get("attributes") or {}
        cam_id = str(rec.get("id", "camera"))

        def number(key: str, default: float | None) -> float:
            value = attrs.get(key, default)
            if value is None:
                raise InputError(f"camera {cam_id} has no '{key}'", field=key)
            try:
                return float(value)
            except (TypeError, ValueError) as exc:
                raise InputError(f"camera {cam_id}: '{key}' is not a number", field=key) from exc

        return cls(
            id=cam_id,
            lon=float(rec["lon"]),
            lat=float(rec["lat"]),
            ground_height=float(rec.get("base_height") or 0.0),
            mount_height=float(rec.get("height") or 0.0),
            heading=number("heading", 0.0),
            pitch=number("pitch", 0.0),
            roll=number("roll", 0.0),
            hfov=number("hfov", None),
            image_width=int(number("image_width", None)),
            image_height=int(number("image_height", None)),
        )

    # ----------------------------------------------------------------- intrinsics and pose
    @property
    def focal(self) -> float:
        """Focal length in pixels, fx = fy = (w/2) / tan(hfov/2)."""
        return (self.image_width / 2.0) / math.tan(math.radians(self.hfov) / 2.0)

    @property
    def principal_point(self) -> tuple[float, float]:
        return self.image_width / 2.0, self.image_height / 2.0

    @property
    def vfov(self) -> float:
        """Vertical field of view (deg)."""
        return math.degrees(2.0 * math.atan((self.image_height / 2.0) / self.focal))

    @property
    def frame(self) -> LocalFrame:
        """The camera's local ENU frame: origin on the ground below the camera."""
        return LocalFrame(self.lon, self.lat, self.ground_height)

    @property
    def rotation(self) -> Array:
        """Camera → ENU rotation; columns are the camera's right, down and forward axes."""
        return self._rot.copy()

    @property
    def position_enu(self) -> Array:
        return np.array([0.0, 0.0, self.mount_height])

    @property
    def position_ecef(self) -> Array:
        frame = self.frame
        return self.position_enu @ frame.rotation + frame.origin_ecef

    def with_image_size(self, width: int, height: int) -> Camera:
        """The same camera with another image size (same hfov)."""
        return replace(self, image_width=width, image_height=height)

    def scale_pixels(
        self, u: ArrayLike, v: ArrayLike, frame_width: int, frame_height: int
    ) -> tuple[Array, Array]:
        """Pixels of a video frame of another size → pixels of the calibrated image size."""
        return (
            np.asarray(u, float) * (self.image_width / frame_width),
            np.asarray(v, float) * (self.image_height / frame_height),
        )

    # ----------------------------------------------------------------- pixel → world
    def direction_enu(self, u: ArrayLike, v: ArrayLike) -> Array:
        """Unit view directions (..., 3) in the camera's ENU frame through pixels (u, v)."""
        cx, cy = self.principal_point
        f = self.focal
        uu, vv = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float))
        cam = np.stack([(uu - cx) / f, (vv - cy) / f, np.ones_like(uu)], axis=-1)
        cam /= np.linalg.norm(cam, axis=-1, keepdims=True)
        return cam @ self._rot.T

    def pixel_to_ray(self, u: float, v: float) -> tuple[Array, Array]:
        """Ray through pixel (u, v): origin (ECEF m) and unit direction (ECEF)."""
        direction = self.direction_enu(u, v) @ self.frame.rotation
        return self.position_ecef, direction

    def ground_points_enu(
        self, u: ArrayLike, v: ArrayLike, ground_height: float | None = None
    ) -> Array:
        """Intersections (..., 3) in the camera's ENU frame of pixel rays with the horizontal
        plane at `ground_height` (ellipsoidal m, default the camera's ground); NaN rows where the
        ray does not reach the plane in front of the camera or lands beyond `max_range`."""
        plane_z = 0.0 if ground_height is None else ground_height - self.ground_height
        d = self.direction_enu(u, v)
        drop = plane_z - self.mount_height
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d[..., 2] * drop > 0, drop / d[..., 2], np.nan)
        pts = self.position_enu + t[..., None] * d
        far = np.hypot(pts[..., 0], pts[..., 1]) > self.max_range
        pts[far] = np.nan
        return pts

    def ground_point(
        self, u: float, v: float, ground_height: float | None = None
    ) -> tuple[float, float, float] | None:
        """Where pixel (u, v) meets flat ground: lon, lat (deg), ellipsoidal height (m).

        The ground is the plane tangent to the ellipsoid below the camera, at `ground_height`
        (default: the camera's ground height). None when the ray points at or above the horizon
        or lands farther than `max_range`.
        """
        pt = self.ground_points_enu(u, v, ground_height)
        if np.isnan(pt).any():
            return None
        lon, lat, h = self.frame.to_geodetic(pt)
        return float(lon), float(lat), float(h)

    # ----------------------------------------------------------------- world → pixel
    def project_enu(self, enu: ArrayLike) -> tuple[Array, Array, Array]:
        """Points (..., 3) in the camera's ENU frame → u, v (px) and depth along the optical
        axis (m); depth <= 0 means behind the camera."""
        rel = np.asarray(enu, float) - self.position_enu
        cam = rel @ self._rot
        cx, cy = self.principal_point
        depth = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cx + self.focal * cam[..., 0] / depth
            v = cy + self.focal * cam[..., 1] / depth
        return u, v, depth

    def project(self, lon: float, lat: float, height: float) -> tuple[float, float] | None:
        """Pixel (u, v) where lon/lat (deg) and ellipsoidal height (m) appear; None when the
        point is behind the camera or outside the image."""
        u, v, depth = self.project_enu(self.frame.to_enu(lon, lat, height))
        if not depth > 0:
            return None
        uf, vf = float(u), float(v)
        if not (0.0 <= uf <= self.image_width and 0.0 <= vf <= self.image_height):
            return None
        return uf, vf

    # ----------------------------------------------------------------- footprint
    def footprint_enu(self, ground_height: float | None = None, segments: int = 64) -> Array:
        """Vertices (n, 2) east/north (m, camera ENU) of the flat ground seen by the camera,
        clipped to `max_range`; empty when no ground is seen."""
        plane_z = 0.0 if ground_height is None else ground_height - self.ground_height
        angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
        poly = self.max_range * np.column_stack([np.cos(angles), np.sin(angles)])
        w, h = self.image_width, self.image_height
        corners = self.direction_enu([0, w, w, 0], [0, 0, h, h])
        centre = self.position_enu
        for i in range(4):
            # Side plane through the optical centre and two adjacent corner rays; its normal
            # points into the view pyramid. A ground point p is seen when n·(p - c) >= 0.
            normal = np.cross(corners[i], corners[(i + 1) % 4])
            a, b = normal[0], normal[1]
            c = -normal[2] * (plane_z - centre[2])
            poly = _clip_half_plane(poly, a, b, c)
            if len(poly) == 0:
                break
        return poly

    def view_footprint(self, ground_height: float | None = None) -> Polygon:
        """Polygon (lon/lat deg) of the flat ground area the camera sees, within `max_range`;
        an empty polygon when it sees no ground."""
        poly = self.footprint_enu(ground_height)
        if len(poly) < 3:
            return Polygon()
        plane_z = 0.0 if ground_height is None else ground_height - self.ground_height
        enu = np.column_stack([poly, np.full(len(poly), plane_z)])
        geo = self.frame.to_geodetic(enu)
        return Polygon(geo[:, :2])


def _clip_half_plane(poly: Array, a: float, b: float, c: float) -> Array:
    """Sutherland–Hodgman: keep the part of convex polygon `poly` (n, 2) with a·x + b·y >= c."""
    if len(poly) == 0:
        return poly
    value = poly @ np.array([a, b]) - c
    out: list[Array] = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        vp, vq = value[i], value[(i + 1) % n]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out) if out else np.empty((0, 2))
