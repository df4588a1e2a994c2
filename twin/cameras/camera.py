"""A pinhole camera placed on the globe: pixel ↔ world projection.

Frames and units
----------------
- World positions are WGS84 lon/lat (degrees) and ellipsoidal height (metres); rays are returned
  in ECEF metres.
- The camera works in its own local ENU frame (`twin.geo.LocalFrame`) whose origin is the ground
  below the camera (lon, lat, ``ground_height``); the optical centre sits at
  ``(0, 0, mount_height)`` in it.
- Image: ``u`` grows to the right, ``v`` grows downward, both in pixels, with ``(0, 0)`` the
  top-left corner of the image.
- Camera axes: x = image right, y = image down, z = optical axis (forward).

Intrinsics: calibrated focal lengths ``fx``, ``fy`` and principal point ``cx``, ``cy`` (pixels)
when known, else ``fx = fy = (w/2) / tan(hfov/2)`` and the principal point at ``(w/2, h/2)``.
Lens distortion follows OpenCV's model, ``distortion = (k1, k2, p1, p2, k3)``: a pixel is
undistorted before it becomes a ray, and a projected point is distorted before it becomes a
pixel, so `project` and `direction_enu` invert each other.

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
PIXEL_SIGMA_PX = 1.0
"""Default standard deviation of a pixel position (px): detector box edges, clicks."""
ANGLE_SIGMA_DEG = 0.5
"""Default orientation standard deviation of a surveyed, uncalibrated camera (deg)."""
POSITION_SIGMA_M = 1.0
"""Default position standard deviation of a surveyed, uncalibrated camera (m)."""
UNDISTORT_ITERATIONS = 30


def _rotation(heading: float, pitch: float, roll: float) -> Array:
    """3×3 matrix whose columns are the camera's x (right), y (down), z (forward) axes in ENU."""
    h, p, r = np.radians([heading, pitch, roll])
    forward = np.array([np.sin(h) * np.cos(p), np.cos(h) * np.cos(p), np.sin(p)])
    right0 = np.array([np.cos(h), -np.sin(h), 0.0])
    up0 = np.cross(right0, forward)
    right = right0 * np.cos(r) - up0 * np.sin(r)
    up = up0 * np.cos(r) + right0 * np.sin(r)
    return np.column_stack([right, -up, forward])


def orientation_from_rotation(rot: ArrayLike) -> tuple[float, float, float]:
    """Heading, pitch, roll (deg) of a camera → ENU rotation (columns right, down, forward):
    the inverse of the convention above. Looking straight up or down, the heading is where
    the top of the image points and the roll is 0."""
    m = np.asarray(rot, float)
    right, up, forward = m[:, 0], -m[:, 1], m[:, 2]
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(forward[2])))))
    horizontal = math.hypot(float(forward[0]), float(forward[1]))
    if horizontal < 1e-9:
        top = up if forward[2] < 0 else -up
        heading = math.degrees(math.atan2(float(top[0]), float(top[1]))) % 360.0
        return heading, pitch, 0.0
    heading = math.degrees(math.atan2(float(forward[0]), float(forward[1]))) % 360.0
    h = math.radians(heading)
    right0 = np.array([math.cos(h), -math.sin(h), 0.0])
    up0 = np.cross(right0, forward / np.linalg.norm(forward))
    roll = math.degrees(math.atan2(-float(right @ up0), float(right @ right0)))
    return heading, pitch, roll


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
    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    pixel_sigma: float = PIXEL_SIGMA_PX
    angle_sigma: float = ANGLE_SIGMA_DEG
    position_sigma: float = POSITION_SIGMA_M
    _rot: Array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.image_width <= 0 or self.image_height <= 0:
            raise InputError(f"camera {self.id}: image size must be positive")
        if self.fx is not None:
            if self.fx <= 0 or (self.fy is not None and self.fy <= 0):
                raise InputError(f"camera {self.id}: focal lengths must be positive")
            hfov = math.degrees(2.0 * math.atan((self.image_width / 2.0) / self.fx))
            object.__setattr__(self, "hfov", hfov)
        if not 0.0 < self.hfov < 180.0:
            raise InputError(f"camera {self.id}: hfov {self.hfov} is not in (0, 180) degrees")
        if len(self.distortion) != 5:
            raise InputError(f"camera {self.id}: distortion must be (k1, k2, p1, p2, k3)")
        object.__setattr__(self, "distortion", tuple(float(c) for c in self.distortion))
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

        def optional(key: str) -> float | None:
            return None if attrs.get(key) is None else number(key, None)

        distortion = attrs.get("distortion") or (0.0, 0.0, 0.0, 0.0, 0.0)
        try:
            k1, k2, p1, p2, k3 = (float(c) for c in distortion)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"camera {cam_id}: 'distortion' is not 5 numbers (k1, k2, p1, p2, k3)",
                field="distortion",
            ) from exc
        fx = optional("fx")
        return cls(
            id=cam_id,
            lon=float(rec["lon"]),
            lat=float(rec["lat"]),
            ground_height=float(rec.get("base_height") or 0.0),
            mount_height=float(rec.get("height") or 0.0),
            heading=number("heading", 0.0),
            pitch=number("pitch", 0.0),
            roll=number("roll", 0.0),
            hfov=number("hfov", None) if fx is None else number("hfov", 60.0),
            image_width=int(number("image_width", None)),
            image_height=int(number("image_height", None)),
            fx=fx,
            fy=optional("fy"),
            cx=optional("cx"),
            cy=optional("cy"),
            distortion=(k1, k2, p1, p2, k3),
            pixel_sigma=number("pixel_sigma", PIXEL_SIGMA_PX),
            angle_sigma=number("angle_sigma", ANGLE_SIGMA_DEG),
            position_sigma=number("position_sigma", POSITION_SIGMA_M),
        )

    @classmethod
    def from_pose(cls, rec: dict[str, Any]) -> Camera:
        """A camera from its pose record (`to_record()`, `GET /api/cameras/{id}`): the pose that
        calibration and live PTZ/drone moves have made current."""
        try:
            return cls(
                id=str(rec["id"]),
                lon=float(rec["lon"]),
                lat=float(rec["lat"]),
                ground_height=float(rec["ground_height"]),
                mount_height=float(rec["mount_height"]),
                heading=float(rec["heading"]),
                pitch=float(rec["pitch"]),
                roll=float(rec["roll"]),
                hfov=float(rec["hfov"]),
                image_width=int(rec["image_width"]),
                image_height=int(rec["image_height"]),
                fx=float(rec["fx"]),
                fy=float(rec["fy"]),
                cx=float(rec["cx"]),
                cy=float(rec["cy"]),
                distortion=tuple(float(c) for c in rec["distortion"]),  # type: ignore[arg-type]
                pixel_sigma=float(rec.get("pixel_sigma", PIXEL_SIGMA_PX)),
                angle_sigma=float(rec.get("angle_sigma", ANGLE_SIGMA_DEG)),
                position_sigma=float(rec.get("position_sigma", POSITION_SIGMA_M)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"camera pose record is incomplete or malformed: {exc}") from exc

    def to_record(self) -> dict[str, Any]:
        """Pose and intrinsics as JSON-ready numbers: lon, lat (deg), ``height`` (ellipsoidal m
        of the optical centre), ``ground_height`` and ``mount_height`` (m), heading, pitch,
        roll, hfov, vfov (deg), fx, fy, cx, cy (px), distortion (k1, k2, p1, p2, k3), image
        size (px) and the uncertainties used for ray results."""
        cx, cy = self.principal_point
        return {
            "id": self.id,
            "lon": self.lon,
            "lat": self.lat,
            "height": self.ground_height + self.mount_height,
            "ground_height": self.ground_height,
            "mount_height": self.mount_height,
            "heading": self.heading,
            "pitch": self.pitch,
            "roll": self.roll,
            "hfov": self.hfov,
            "vfov": self.vfov,
            "image_width": self.image_width,
            "image_height": self.image_height,
            "fx": self.focal_x,
            "fy": self.focal_y,
            "cx": cx,
            "cy": cy,
            "distortion": list(self.distortion),
            "pixel_sigma": self.pixel_sigma,
            "angle_sigma": self.angle_sigma,
            "position_sigma": self.position_sigma,
        }

    # ----------------------------------------------------------------- intrinsics and pose
    @property
    def focal_x(self) -> float:
        """Horizontal focal length (px): calibrated ``fx``, else (w/2) / tan(hfov/2)."""
        if self.fx is not None:
            return self.fx
        return (self.image_width / 2.0) / math.tan(math.radians(self.hfov) / 2.0)

    @property
    def focal_y(self) -> float:
        """Vertical focal length (px): calibrated ``fy``, else ``focal_x`` (square pixels)."""
        return self.fy if self.fy is not None else self.focal_x

    @property
    def focal(self) -> float:
        """Horizontal focal length (px); see `focal_x`."""
        return self.focal_x

    @property
    def principal_point(self) -> tuple[float, float]:
        """(cx, cy) px: calibrated, else the image centre."""
        cx = self.cx if self.cx is not None else self.image_width / 2.0
        cy = self.cy if self.cy is not None else self.image_height / 2.0
        return cx, cy

    @property
    def matrix(self) -> Array:
        """The 3×3 intrinsic matrix K (px) of OpenCV."""
        cx, cy = self.principal_point
        return np.array([[self.focal_x, 0.0, cx], [0.0, self.focal_y, cy], [0.0, 0.0, 1.0]])

    @property
    def distorted(self) -> bool:
        return any(c != 0.0 for c in self.distortion)

    @property
    def vfov(self) -> float:
        """Vertical field of view (deg)."""
        return math.degrees(2.0 * math.atan((self.image_height / 2.0) / self.focal_y))

    def distort(self, x: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
        """Ideal normalised image coordinates (x/z, y/z) → distorted ones (OpenCV model)."""
        k1, k2, p1, p2, k3 = self.distortion
        xx, yy = np.asarray(x, float), np.asarray(y, float)
        r2 = xx * xx + yy * yy
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = xx * radial + 2.0 * p1 * xx * yy + p2 * (r2 + 2.0 * xx * xx)
        yd = yy * radial + p1 * (r2 + 2.0 * yy * yy) + 2.0 * p2 * xx * yy
        return xd, yd

    def undistort(self, xd: ArrayLike, yd: ArrayLike) -> tuple[Array, Array]:
        """Distorted normalised coordinates → ideal ones, inverting `distort` by fixed-point
        iteration (to ~1e-12 for the moderate distortion of surveillance lenses)."""
        xd, yd = np.asarray(xd, float), np.asarray(yd, float)
        if not self.distorted:
            return xd, yd
        k1, k2, p1, p2, k3 = self.distortion
        x, y = xd.copy(), yd.copy()
        for _ in range(UNDISTORT_ITERATIONS):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
            dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
            x_new, y_new = (xd - dx) / radial, (yd - dy) / radial
            done = np.nanmax(np.abs(np.concatenate([(x_new - x).ravel(), (y_new - y).ravel()])))
            x, y = x_new, y_new
            if not done > 1e-13:
                break
        return x, y

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
        """The same camera with another image size (same field of view; calibrated focal
        lengths and principal point scale with the image)."""
        if self.fx is None and self.cx is None and self.cy is None:
            return replace(self, image_width=width, image_height=height)
        sx, sy = width / self.image_width, height / self.image_height
        cx, cy = self.principal_point
        return replace(
            self, image_width=width, image_height=height, fx=self.focal_x * sx,
            fy=self.focal_y * sy, cx=cx * sx, cy=cy * sy,
        )  # fmt: skip

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
        uu, vv = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float))
        x, y = self.undistort((uu - cx) / self.focal_x, (vv - cy) / self.focal_y)
        cam = np.stack([x, y, np.ones_like(x)], axis=-1)
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
        axis (m); depth <= 0 means behind the camera.

        With lens distortion, points far outside the field of view (where the distortion
        polynomial folds back) get NaN pixels rather than false positions in the image."""
        rel = np.asarray(enu, float) - self.position_enu
        cam = rel @ self._rot
        cx, cy = self.principal_point
        depth = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = cam[..., 0] / depth, cam[..., 1] / depth
            if self.distorted:
                # Keep the distortion polynomial where it is monotonic: within half an image of
                # the frame on each side.
                lim_x = 1.0 * self.image_width / self.focal_x
                lim_y = 1.0 * self.image_height / self.focal_y
                far = (np.abs(x) > lim_x) | (np.abs(y) > lim_y)
                x, y = self.distort(x, y)
                x, y = np.where(far, np.nan, x), np.where(far, np.nan, y)
            u = cx + self.focal_x * x
            v = cy + self.focal_y * y
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
