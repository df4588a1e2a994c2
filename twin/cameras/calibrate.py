"""Camera pose (and optionally focal length) from image ↔ world point pairs, with OpenCV.

Each pair (`twin.cameras.pairs.PointPair`) is a pixel (u, v) of the calibrated image size and the
lon/lat (deg) and ellipsoidal height (m) of the same point in the world (a roof corner, a road
marking). The pose is solved in
the ENU frame of the camera's current position (`Camera.frame`) with ``cv2.solvePnP`` (SQPnP,
and the iterative solver started from the current pose) and refined with
``cv2.solvePnPRefineLM``; the best by reprojection error wins. With `fit_focal`, the focal
length (square pixels, fixed principal point) is found by a one-dimensional search on the
reprojection error, the pose being solved again at each focal length. The result is expressed
in our conventions (`twin.cameras.camera`): lon/lat, mount height above the camera's ground,
heading/pitch/roll.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from twin.cameras.camera import Camera, orientation_from_rotation
from twin.cameras.pairs import PointPair
from twin.errors import InputError
from twin.geo import enu_rotation

Array = NDArray[np.float64]
MIN_PAIRS = 4
MIN_PAIRS_WITH_FOCAL = 6


class CalibrationError(InputError):
    """The point pairs do not determine a pose (too few, degenerate, or no solution)."""


@dataclass(frozen=True)
class Calibration:
    """A solved camera and how well it fits: reprojection error RMS and max (px), the
    residual (px) of each pair, and the pose's 1-σ uncertainty from the fit (deg, m)."""

    camera: Camera
    rms_px: float
    max_px: float
    residuals_px: list[float]
    angle_sigma_deg: float
    position_sigma_m: float
    fit_focal: bool

    def override(self) -> dict[str, Any]:
        """The workspace override (`twin.cameras.store`) that gives a camera this pose."""
        cam = self.camera
        attributes: dict[str, Any] = {
            "heading": cam.heading,
            "pitch": cam.pitch,
            "roll": cam.roll,
            "angle_sigma": self.angle_sigma_deg,
            "position_sigma": self.position_sigma_m,
        }
        if self.fit_focal:
            attributes.update(fx=cam.focal_x, fy=cam.focal_y, hfov=cam.hfov)
        return {
            "lon": cam.lon,
            "lat": cam.lat,
            "base_height": cam.ground_height,
            "height": cam.mount_height,
            "attributes": attributes,
            "calibration": self.report(),
        }

    def report(self) -> dict[str, Any]:
        """JSON-ready summary: pose, errors, uncertainty."""
        cam = self.camera
        return {
            "pairs": len(self.residuals_px),
            "rms_px": self.rms_px,
            "max_px": self.max_px,
            "residuals_px": self.residuals_px,
            "angle_sigma_deg": self.angle_sigma_deg,
            "position_sigma_m": self.position_sigma_m,
            "fit_focal": self.fit_focal,
            "lon": cam.lon,
            "lat": cam.lat,
            "height": cam.ground_height + cam.mount_height,
            "heading": cam.heading,
            "pitch": cam.pitch,
            "roll": cam.roll,
            "hfov": cam.hfov,
            "fx": cam.focal_x,
            "fy": cam.focal_y,
        }


def _rms(residuals: Array) -> float:
    return float(np.sqrt(np.mean(residuals**2))) if len(residuals) else 0.0


def _residuals(obj: Array, img: Array, rvec: Array, tvec: Array, camera: Camera) -> Array:
    dist = np.asarray(camera.distortion, float)
    projected, _ = cv2.projectPoints(obj, rvec, tvec, camera.matrix, dist)
    return np.asarray(np.linalg.norm(projected.reshape(-1, 2) - img, axis=1), float)


def _solve_pose(obj: Array, img: Array, camera: Camera) -> tuple[Array, Array, float]:
    """Best (rvec, tvec, rms px) over SQPnP and the iterative solver seeded with `camera`."""
    k, dist = camera.matrix, np.asarray(camera.distortion, float)
    world_to_cam = camera.rotation.T
    seed_r, _ = cv2.Rodrigues(world_to_cam)
    seed_t = -world_to_cam @ camera.position_enu
    candidates: list[tuple[Array, Array]] = []
    attempts: list[tuple[int, bool]] = [(cv2.SOLVEPNP_SQPNP, False), (cv2.SOLVEPNP_ITERATIVE, True)]
    for flag, guess in attempts:
        r0, t0 = seed_r.copy(), seed_t.reshape(3, 1).copy()
        try:
            ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, r0, t0, guess, flag)
        except cv2.error:
            continue
        if not ok:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
        candidates.append((np.asarray(rvec, float).reshape(3), np.asarray(tvec, float).reshape(3)))
    best: tuple[Array, Array, float] | None = None
    for rvec, tvec in candidates:
        cam_pts = obj @ cv2.Rodrigues(rvec)[0].T + tvec
        if (cam_pts[:, 2] <= 0).any():  # a solution with points behind the camera is a mirror
            continue
        rms = _rms(_residuals(obj, img, rvec, tvec, camera))
        if best is None or rms < best[2]:
            best = (rvec, tvec, rms)
    if best is None:
        raise CalibrationError(f"camera {camera.id}: no pose fits the point pairs")
    return best


def _fit_focal(obj: Array, img: Array, camera: Camera) -> Camera:
    """The camera with the focal length (square pixels) that minimises reprojection error."""

    def error(log_f: float) -> float:
        cam = replace(camera, fx=math.exp(log_f), fy=math.exp(log_f))
        try:
            return _solve_pose(obj, img, cam)[2]
        except CalibrationError:
            return math.inf

    f0 = math.log(camera.focal_x)
    grid = np.linspace(f0 - math.log(4.0), f0 + math.log(4.0), 25)
    errors = [error(float(g)) for g in grid]
    i = int(np.argmin(errors))
    lo, hi = float(grid[max(0, i - 1)]), float(grid[min(len(grid) - 1, i + 1)])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    ea, eb = error(a), error(b)
    for _ in range(40):
        if ea < eb:
            hi, b, eb = b, a, ea
            a = hi - ratio * (hi - lo)
            ea = error(a)
        else:
            lo, a, ea = a, b, eb
            b = lo + ratio * (hi - lo)
            eb = error(b)
    f = math.exp((lo + hi) / 2.0)
    return replace(camera, fx=f, fy=f)


def _uncertainty(
    obj: Array, img: Array, rvec: Array, tvec: Array, camera: Camera, residuals: Array
) -> tuple[float, float]:
    """1-σ orientation (deg, RMS over the three axes) and position (m, RMS over the axes) of
    the camera from the fit's Jacobian and residual variance (at least `camera.pixel_sigma`)."""
    dist = np.asarray(camera.distortion, float)
    _, jac = cv2.projectPoints(obj, rvec, tvec, camera.matrix, dist)
    j = jac[:, :6]
    dof = max(1, 2 * len(obj) - 6)
    sigma2 = max(float(np.sum(residuals**2)) / dof, camera.pixel_sigma**2 / 4.0)
    try:
        cov = sigma2 * np.linalg.inv(j.T @ j)
    except np.linalg.LinAlgError:
        return math.inf, math.inf

    # Camera centre C = -R(r)ᵀ t: its Jacobian in (r, t) by central differences.
    def centre(params: Array) -> Array:
        rot, _ = cv2.Rodrigues(params[:3])
        return np.asarray(-rot.T @ params[3:], float)

    params = np.concatenate([rvec, tvec])
    jc = np.zeros((3, 6))
    for k in range(6):
        step = np.zeros(6)
        step[k] = 1e-6
        jc[:, k] = (centre(params + step) - centre(params - step)) / 2e-6
    cov_c = jc @ cov @ jc.T
    angle = math.degrees(math.sqrt(max(0.0, float(np.trace(cov[:3, :3])) / 3.0)))
    position = math.sqrt(max(0.0, float(np.trace(cov_c)) / 3.0))
    return angle, position


def calibrate(
    camera: Camera, pairs: Sequence[PointPair], *, fit_focal: bool = False
) -> Calibration:
    """Solve `camera`'s pose (and focal length with `fit_focal`) from point pairs.

    Parameters
    ----------
    camera : the camera as known now: its image size, intrinsics and distortion are used, its
        pose seeds the solver and its ground height is kept as the mount height's reference.
    pairs : at least 4 pairs (6 with `fit_focal`), pixels of the calibrated image size.
    """
    need = MIN_PAIRS_WITH_FOCAL if fit_focal else MIN_PAIRS
    if len(pairs) < need:
        raise CalibrationError(
            f"camera {camera.id}: {len(pairs)} point pair(s) given, at least {need} needed"
            + (" to fit the focal length" if fit_focal else "")
        )
    ref = camera.frame
    obj = ref.to_enu([p.lon for p in pairs], [p.lat for p in pairs], [p.height for p in pairs])
    obj = np.ascontiguousarray(obj, np.float64)
    img = np.ascontiguousarray([[p.u, p.v] for p in pairs], np.float64)
    if np.linalg.matrix_rank(obj - obj.mean(axis=0), tol=1e-3) < 2:
        raise CalibrationError(f"camera {camera.id}: the world points are collinear")
    if fit_focal:
        camera = _fit_focal(obj, img, camera)
    rvec, tvec, _ = _solve_pose(obj, img, camera)
    world_to_cam, _ = cv2.Rodrigues(rvec)
    centre_enu = -world_to_cam.T @ tvec
    lon, lat, height = (float(c) for c in ref.to_geodetic(centre_enu))
    # Camera axes in ECEF, then in the ENU frame at the solved position (our convention).
    cam_to_ecef = ref.rotation.T @ world_to_cam.T
    heading, pitch, roll = orientation_from_rotation(enu_rotation(lon, lat) @ cam_to_ecef)
    residuals = _residuals(obj, img, rvec, tvec, camera)
    angle_sigma, position_sigma = _uncertainty(obj, img, rvec, tvec, camera, residuals)
    solved = replace(
        camera, lon=lon, lat=lat, mount_height=height - camera.ground_height, heading=heading,
        pitch=pitch, roll=roll, angle_sigma=angle_sigma, position_sigma=position_sigma,
    )  # fmt: skip
    return Calibration(
        camera=solved,
        rms_px=_rms(residuals),
        max_px=float(residuals.max()),
        residuals_px=[round(float(r), 4) for r in residuals],
        angle_sigma_deg=angle_sigma,
        position_sigma_m=position_sigma,
        fit_focal=fit_focal,
    )
