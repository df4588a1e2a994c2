"""Calibrated intrinsics and distortion, PTZ, calibration from point pairs, and pixel ↔ world on
meshes with occlusion: each checked against an independent computation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.cameras.calibrate import CalibrationError, calibrate
from twin.cameras.camera import Camera, _rotation, orientation_from_rotation
from twin.cameras.drone import DroneTelemetry, Gimbal
from twin.cameras.labels import labels
from twin.cameras.pairs import PointPair, read_pairs
from twin.cameras.ptz import (
    PtzModel,
    PtzStatus,
    SimulatedPtz,
    onvif_get_status_envelope,
    parse_isapi_status,
    parse_onvif_status,
)
from twin.cameras.raycast import MeshRaycaster
from twin.cameras.store import CameraStore, apply_override
from twin.cameras.world import MIN_SIN_INCIDENCE, World
from twin.catalog import Element
from twin.errors import InputError, WorkspaceError
from twin.geo import LocalFrame
from twin.workspace import WorkspacePaths

LON, LAT, GROUND = 121.4905, 31.2400, 4.0
FRAME = LocalFrame(LON, LAT, GROUND)  # the workspace frame of the synthetic scenes


def cam(**kw: object) -> Camera:
    base: dict[str, object] = dict(
        lon=LON, lat=LAT, ground_height=GROUND, mount_height=30.0, heading=0.0, pitch=-25.0,
        roll=0.0, hfov=60.0, image_width=1280, image_height=720,
    )  # fmt: skip
    base.update(kw)
    return Camera("camera:t", **base)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- intrinsics
DISTORTED = dict(
    fx=1000.0, fy=1010.0, cx=650.0, cy=350.0, distortion=(-0.2, 0.05, 1e-3, -5e-4, -0.01)
)


def test_calibrated_intrinsics_replace_hfov() -> None:
    c = cam(**DISTORTED)
    assert c.principal_point == (650.0, 350.0)
    assert c.hfov == pytest.approx(math.degrees(2 * math.atan(640 / 1000)))
    assert c.vfov == pytest.approx(math.degrees(2 * math.atan(360 / 1010)))
    assert c.matrix.tolist() == [[1000.0, 0, 650.0], [0, 1010.0, 350.0], [0, 0, 1]]
    # The principal point's ray is the optical axis.
    assert c.direction_enu(650.0, 350.0) == pytest.approx(c.rotation[:, 2], abs=1e-12)


def test_projection_matches_opencv_project_points() -> None:
    c = cam(heading=33.0, pitch=-20.0, roll=4.0, **DISTORTED)
    rng = np.random.default_rng(3)
    enu = np.column_stack(
        [rng.uniform(-60, 60, 200), rng.uniform(60, 200, 200), rng.uniform(-5, 40, 200)]
    )
    enu = enu @ np.array(  # turn the cloud to the camera's heading
        [[math.cos(math.radians(-33)), -math.sin(math.radians(-33)), 0],
         [math.sin(math.radians(-33)), math.cos(math.radians(-33)), 0], [0, 0, 1]]
    ).T  # fmt: skip
    u, v, depth = c.project_enu(enu)
    rvec, _ = cv2.Rodrigues(c.rotation.T)
    tvec = -c.rotation.T @ c.position_enu
    ref, _ = cv2.projectPoints(enu, rvec, tvec, c.matrix, np.array(c.distortion))
    ref = ref.reshape(-1, 2)
    ok = ~np.isnan(u) & (depth > 0)
    assert ok.sum() > 100
    assert np.abs(u[ok] - ref[ok, 0]).max() < 1e-6
    assert np.abs(v[ok] - ref[ok, 1]).max() < 1e-6


@settings(max_examples=80, deadline=None)
@given(st.floats(0, 1280), st.floats(0, 720))
def test_pixel_to_ray_undistorts_what_projection_distorts(u: float, v: float) -> None:
    c = cam(**DISTORTED)
    d = c.direction_enu(u, v)
    enu = c.position_enu + 50.0 * d
    pu, pv, _ = c.project_enu(enu)
    assert (float(pu), float(pv)) == pytest.approx((u, v), abs=1e-6)
    # project_enu's distortion is OpenCV's (test above), so this checks the undistortion.


def test_image_size_scaling_keeps_calibrated_field_of_view() -> None:
    c = cam(**DISTORTED).with_image_size(640, 360)
    assert (c.focal_x, c.focal_y, *c.principal_point) == (500.0, 505.0, 325.0, 175.0)
    assert c.hfov == pytest.approx(cam(**DISTORTED).hfov)


def test_from_record_reads_calibrated_intrinsics() -> None:
    rec: dict[str, Any] = {
        "id": "camera:x", "lon": LON, "lat": LAT, "base_height": 2.0, "height": 5.0,
        "attributes": {"heading": 10, "image_width": 1280, "image_height": 720,
                       "fx": 900, "cx": 600, "distortion": [0.1, 0, 0, 0, 0]}}  # fmt: skip
    c = Camera.from_record(rec)
    assert (c.focal_x, c.focal_y, c.principal_point) == (900.0, 900.0, (600.0, 360.0))
    assert c.distortion == (0.1, 0.0, 0.0, 0.0, 0.0)
    rec["attributes"]["distortion"] = [1, 2]
    with pytest.raises(InputError, match="distortion"):
        Camera.from_record(rec)


def test_orientation_from_rotation_inverts_the_convention() -> None:
    rng = np.random.default_rng(5)
    for h, p, r in zip(rng.uniform(0, 360, 300), rng.uniform(-89, 89, 300),
                       rng.uniform(-45, 45, 300), strict=True):  # fmt: skip
        hh, pp, rr = orientation_from_rotation(_rotation(h, p, r))
        assert ((hh - h + 180) % 360 - 180, pp - p, rr - r) == pytest.approx((0, 0, 0), abs=1e-9)
    assert orientation_from_rotation(_rotation(120.0, -90.0, 0.0)) == pytest.approx(
        (120.0, -90.0, 0.0)
    )


# ------------------------------------------------------------------------- PTZ
def test_zoom_curve_is_linear_in_focal_length() -> None:
    model = PtzModel(hfov_wide=60.0, hfov_tele=3.0, pan_zero_heading=100.0)
    f_wide = 640 / math.tan(math.radians(30))
    f_tele = 640 / math.tan(math.radians(1.5))
    assert model.focal(1280, 0.0) == pytest.approx(f_wide)
    assert model.focal(1280, 1.0) == pytest.approx(f_tele)
    assert model.focal(1280, 0.25) == pytest.approx(f_wide + 0.25 * (f_tele - f_wide))
    assert model.hfov(1.0) == pytest.approx(3.0)
    turned = model.apply(cam(roll=5.0), PtzStatus(pan=300.0, tilt=-12.0, zoom=0.5))
    assert (turned.heading, turned.pitch, turned.roll) == (40.0, -12.0, 0.0)
    assert turned.focal_x == pytest.approx(model.focal(1280, 0.5))
    assert model.zoom_for_magnification(model.zoom_ratio) == 1.0
    with pytest.raises(InputError):
        PtzStatus(0.0, 0.0, 1.5)
    with pytest.raises(InputError, match="unknown PTZ"):
        PtzModel.for_camera(cam(), {"hfov_wid": 50})


def test_default_ptz_lens_is_twenty_times_zoom() -> None:
    model = PtzModel.for_camera(cam(hfov=60.0))
    assert model.hfov_wide == 60.0 and model.zoom_ratio == pytest.approx(20.0)


ONVIF_STATUS = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
  xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">
 <SOAP-ENV:Body><tptz:GetStatusResponse><tptz:PTZStatus>
  <tt:Position>
   <tt:PanTilt x="0.5" y="-0.25"
     space="http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"/>
   <tt:Zoom x="0.4" space="http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"/>
  </tt:Position>
  <tt:MoveStatus><tt:PanTilt>IDLE</tt:PanTilt><tt:Zoom>IDLE</tt:Zoom></tt:MoveStatus>
  <tt:UtcTime>2024-05-01T10:00:00Z</tt:UtcTime>
 </tptz:PTZStatus></tptz:GetStatusResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"""

ISAPI_STATUS = """<?xml version="1.0" encoding="UTF-8"?>
<PTZStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <AbsoluteHigh><elevation>150</elevation><azimuth>2755</azimuth>
  <absoluteZoom>40</absoluteZoom></AbsoluteHigh>
</PTZStatus>"""


def test_onvif_status_parses_generic_position_spaces() -> None:
    status = parse_onvif_status(ONVIF_STATUS, tilt_range=(-90.0, 30.0))
    assert status == PtzStatus(pan=90.0, tilt=-45.0, zoom=0.4)
    with pytest.raises(Exception, match="PanTilt"):
        parse_onvif_status("<a/>")


def test_onvif_request_carries_a_password_digest() -> None:
    import base64
    import hashlib
    import xml.etree.ElementTree as ET

    when = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    xml = onvif_get_status_envelope("prof<1>", "admin", "secret", nonce=b"0123456789abcdef",
                                    created=when)  # fmt: skip
    root = ET.fromstring(xml)  # well-formed, the token escaped
    expected = base64.b64encode(
        hashlib.sha1(b"0123456789abcdef" + b"2024-05-01T10:00:00Z" + b"secret").digest()
    ).decode()
    texts = {el.tag.split("}")[1]: el.text for el in root.iter()}
    assert texts["Password"] == expected and texts["ProfileToken"] == "prof<1>"


def test_isapi_status_parses_tenths_of_degrees_and_magnification() -> None:
    model = PtzModel(hfov_wide=60.0, hfov_tele=6.0)
    status = parse_isapi_status(ISAPI_STATUS, model)
    assert (status.pan, status.tilt) == (275.5, -15.0)
    ratio = model.zoom_ratio
    assert status.zoom == pytest.approx((4.0 - 1.0) / (ratio - 1.0))
    assert model.focal(2, status.zoom) == pytest.approx(4.0 * model.focal(2, 0.0))  # 4× zoom


def test_simulated_ptz_sweeps_and_moves() -> None:
    now = [0.0]
    sim = SimulatedPtz(100.0, tilt=-10.0, zoom=0.2, sweep_deg=40.0, speed_dps=10.0,
                       clock=lambda: now[0])  # fmt: skip
    pans = []
    for t in (0.0, 2.0, 4.0, 6.0, 8.0):
        now[0] = t
        pans.append(sim.status().pan)
    assert pans == [80.0, 100.0, 120.0, 100.0, 80.0]
    sim.move_to(PtzStatus(10.0, -30.0, 0.0))
    assert sim.status() == PtzStatus(-10.0, -30.0, 0.0)


# ------------------------------------------------------------------------- calibration
TRUE = cam(lon=LON + 0.0004, lat=LAT - 0.0002, mount_height=45.0, heading=47.0, pitch=-18.0,
           roll=1.2, hfov=55.0, image_width=1920, image_height=1080,
           distortion=(-0.08, 0.02, 0.0, 0.0, 0.0))  # fmt: skip


def _pairs(n: int, sigma_px: float, seed: int = 0) -> list[PointPair]:
    """World points on the ground and on roofs at several heights, seen by TRUE, their pixels
    with Gaussian noise."""
    rng = np.random.default_rng(seed)
    pairs: list[PointPair] = []
    while len(pairs) < n:
        u, v = rng.uniform(60, 1860), rng.uniform(420, 1040)
        roof = float(rng.choice([0.0, 12.0, 25.0, 40.0]))
        ground = TRUE.ground_point(u, v, ground_height=GROUND + roof)
        if ground is None:
            continue
        pixel = TRUE.project(*ground)
        assert pixel is not None
        noise = rng.normal(0.0, sigma_px, 2)
        pairs.append(PointPair(pixel[0] + noise[0], pixel[1] + noise[1], *ground))
    return pairs


def _pose_error(solved: Camera) -> tuple[float, float]:
    """Position error (m) and the largest angle error (deg) against TRUE."""
    pos = solved.frame.to_enu(solved.lon, solved.lat, solved.ground_height + solved.mount_height)
    true_pos = TRUE.frame.to_enu(TRUE.lon, TRUE.lat, TRUE.ground_height + TRUE.mount_height)
    angles = (
        (solved.heading - TRUE.heading + 180) % 360 - 180,
        solved.pitch - TRUE.pitch,
        solved.roll - TRUE.roll,
    )
    return float(np.linalg.norm(pos - true_pos)), max(abs(a) for a in angles)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibration_recovers_pose_from_noisy_pairs(seed: int) -> None:
    guess = replace(TRUE, lon=TRUE.lon - 0.0001, mount_height=38.0, heading=40.0, pitch=-10.0,
                    roll=0.0)  # fmt: skip
    result = calibrate(guess, _pairs(12, 0.5, seed))
    dist, angle = _pose_error(result.camera)
    assert dist < 0.5 and angle < 0.2, (dist, angle)
    assert 0.2 < result.rms_px < 1.0  # the noise shows in the residuals
    assert result.angle_sigma_deg < 0.2 and result.position_sigma_m < 0.5
    assert result.camera.ground_height == TRUE.ground_height


def test_calibration_fits_focal_length() -> None:
    guess = replace(TRUE, hfov=45.0, heading=50.0, pitch=-15.0)
    result = calibrate(guess, _pairs(16, 0.5, 7), fit_focal=True)
    dist, angle = _pose_error(result.camera)
    assert result.camera.hfov == pytest.approx(TRUE.hfov, abs=0.2)
    assert dist < 0.5 and angle < 0.2
    assert result.override()["attributes"]["fx"] == pytest.approx(TRUE.focal_x, rel=0.01)


def test_four_pairs_suffice_without_noise() -> None:
    result = calibrate(replace(TRUE, heading=44.0), _pairs(4, 0.0, 11))
    dist, angle = _pose_error(result.camera)
    assert dist < 0.05 and angle < 0.01 and result.rms_px < 0.01


def test_calibration_refuses_too_few_or_degenerate_pairs(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="at least 4"):
        calibrate(TRUE, _pairs(3, 0.0))
    with pytest.raises(CalibrationError, match="at least 6"):
        calibrate(TRUE, _pairs(5, 0.0), fit_focal=True)
    line = [PointPair(100.0 * i, 500.0, LON + 1e-5 * i, LAT, GROUND) for i in range(5)]
    with pytest.raises(CalibrationError, match="collinear"):
        calibrate(TRUE, line)


def test_read_pairs_names_the_bad_row(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_text("name,u,v,lon,lat,height\na,1,2,121.5,31.2,4.5\nb,3,4,121.6,31.3,5\n")
    assert read_pairs(good)[1] == PointPair(3.0, 4.0, 121.6, 31.3, 5.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("u,v,lon,lat,height\n1,2,121.5,31.2,4.5\n1,x,121.5,31.2,4.5\n")
    with pytest.raises(InputError, match="row 3"):
        read_pairs(bad)
    (tmp_path / "cols.csv").write_text("u,v,lon,lat\n")
    with pytest.raises(InputError, match="height"):
        read_pairs(tmp_path / "cols.csv")


# ------------------------------------------------------------------------- overrides
def test_overrides_replace_catalog_fields_key_by_key(tmp_path: Path) -> None:
    record: dict[str, Any] = {
        "id": "camera:c", "lon": 1.0, "lat": 2.0, "base_height": 3.0, "height": 4.0,
        "name": "C", "attributes": {"heading": 10, "hfov": 60, "stream": "x"}}  # fmt: skip
    store = CameraStore(tmp_path)
    store.update("camera:c", {"lat": 2.5, "attributes": {"heading": 20}})
    store.update("camera:c", {"attributes": {"pitch": -5}, "ptz": {"hfov_tele": 2}})
    merged = apply_override(record, CameraStore(tmp_path).get("camera:c"))  # read back
    assert (merged["lon"], merged["lat"], merged["height"]) == (1.0, 2.5, 4.0)
    assert merged["attributes"] == {"heading": 20, "hfov": 60, "stream": "x", "pitch": -5}
    assert record["attributes"]["heading"] == 10  # the catalog record is not touched
    (tmp_path / "cameras.json").write_text('{"version": 1, "cameras": {"c": {"bogus": 1}}}')
    with pytest.raises(WorkspaceError, match="bogus"):
        CameraStore(tmp_path)


# ------------------------------------------------------------------------- meshes
def _box(x0: float, y0: float, x1: float, y1: float, top: float) -> tuple[np.ndarray, np.ndarray]:
    """A closed box from z=0 to `top` (ENU m), outward-facing triangles."""
    v = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0],
                  [x0, y0, top], [x1, y0, top], [x1, y1, top], [x0, y1, top]], float)  # fmt: skip
    f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                  [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])  # fmt: skip
    return v, f


def _scene() -> World:
    """Flat ground 2 km square at z=0 plus two boxes north of the origin: 'near' (20 m tall,
    north 60–80 m) in front of 'far' (10 m tall, north 120–140 m), and 'side' to the east."""
    ground_v = np.array([[-1000, -1000, 0], [1000, -1000, 0], [1000, 1000, 0], [-1000, 1000, 0]])
    parts = [(ground_v, np.array([[0, 1, 2], [0, 2, 3]]), -1)]
    for i, box in enumerate([(-20, 60, 20, 80, 20.0), (-20, 120, 20, 140, 10.0),
                             (150, 100, 190, 130, 35.0)]):  # fmt: skip
        v, f = _box(*box)
        parts.append((v, f, i))
    verts, faces, face_el, offset = [], [], [], 0
    for v, f, el in parts:
        verts.append(v)
        faces.append(f + offset)
        face_el.append(np.full(len(f), el))
        offset += len(v)
    caster = MeshRaycaster(
        FRAME, np.vstack(verts), np.vstack(faces), np.concatenate(face_el),
        ["building:near", "building:far", "building:side"],
    )  # fmt: skip
    return World(caster, has_terrain=True)


SCENE = _scene()
VIEWER = cam(lon=LON, lat=LAT, mount_height=12.0, heading=0.0, pitch=-10.0)


def test_ray_lands_on_flat_roof_as_computed_analytically() -> None:
    above = cam(mount_height=60.0, heading=0.0, pitch=-35.0)
    us, vs = np.meshgrid(np.linspace(400, 880, 9), np.linspace(100, 500, 11))
    results = SCENE.rays(above, us.ravel(), vs.ravel())
    n_roof = 0
    for u, v, res in zip(us.ravel(), vs.ravel(), results, strict=True):
        assert res is not None
        # Independent: intersect the pixel's ray with the plane z = 20 m of the workspace ENU.
        d = above.direction_enu(u, v)  # camera ENU = workspace ENU here (same origin)
        t = (20.0 - above.mount_height) / d[2]
        x, y, _ = above.position_enu + t * d
        if -20 <= x <= 20 and 60 <= y <= 80:  # the roof is the first thing on this ray
            assert res.element_id == "building:near"
            n_roof += 1
            hit = FRAME.to_enu(res.lon, res.lat, res.height)
            assert np.linalg.norm(hit - (x, y, 20.0)) < 0.1
            assert res.distance_m == pytest.approx(t, abs=0.1)
    assert n_roof >= 5


def test_uncertainty_grows_with_range_and_obliquity() -> None:
    c = replace(VIEWER, pixel_sigma=1.0, angle_sigma=0.1, position_sigma=0.2)
    res = SCENE.ray(c, 640.0, 700.0)
    assert res is not None and res.element_id is None
    d = c.direction_enu(640.0, 700.0)
    sin_inc = max(abs(d[2]), MIN_SIN_INCIDENCE)  # the ground's normal is up
    sigma = math.hypot(1.0 / c.focal, math.radians(0.1))
    assert res.uncertainty_m == pytest.approx(
        math.hypot(res.distance_m * sigma / sin_inc, 0.2), rel=1e-3
    )
    wall = SCENE.ray(c, 640.0, 360.0)  # at the near box's south wall (normal -y)
    assert wall is not None and wall.element_id == "building:near"
    d = c.direction_enu(640.0, 360.0)
    assert wall.uncertainty_m == pytest.approx(
        math.hypot(wall.distance_m * sigma / abs(d[1]), 0.2), rel=1e-3
    )
    far = SCENE.ray(c, 640.0, 500.0)  # farther along the ground, more grazing
    assert far is not None and far.uncertainty_m > res.uncertainty_m


def test_sky_misses() -> None:
    assert SCENE.ray(replace(VIEWER, pitch=20.0), 640.0, 100.0) is None


def test_world_to_pixel_to_world_round_trip() -> None:
    rng = np.random.default_rng(2)
    us, vs = rng.uniform(0, 1280, 300), rng.uniform(0, 720, 300)
    results = SCENE.rays(VIEWER, us, vs)
    hits = [(u, v, r) for u, v, r in zip(us, vs, results, strict=True) if r is not None]
    assert len(hits) > 250
    lon, lat, h = np.array([(r.lon, r.lat, r.height) for _, _, r in hits]).T
    ids = [r.element_id for _, _, r in hits]
    proj = SCENE.project(VIEWER, lon, lat, h, element_ids=ids)
    assert proj.visible.all()  # what a ray hits first is visible
    assert np.abs(proj.u - [u for u, _, _ in hits]).max() < 1e-4
    assert np.abs(proj.v - [v for _, v, _ in hits]).max() < 1e-4
    back = SCENE.rays(VIEWER, proj.u, proj.v)
    for r0, r1 in zip([r for _, _, r in hits], back, strict=True):
        assert r1 is not None and r1.element_id == r0.element_id
        assert abs(r1.distance_m - r0.distance_m) < 1e-3


def test_occlusion_by_a_building_is_detected() -> None:
    # The far box's roof centre (north 130 m, 10 m up) is behind the near, taller box.
    far_roof = FRAME.to_geodetic([0.0, 130.0, 10.0])
    ground_east = FRAME.to_geodetic([60.0, 130.0, 0.0])  # in the open, east of both boxes
    lon, lat, h = np.array([far_roof, ground_east]).T
    proj = SCENE.project(VIEWER, lon, lat, h, element_ids=["building:far", None])
    assert proj.in_view.tolist() == [True, True]
    assert proj.visible.tolist() == [False, True]
    # Passing through the near box (as if the camera were mounted on it) shows the far roof.
    through = SCENE.project(VIEWER, lon, lat, h, ["building:far", None], skip=["building:near"])
    assert through.visible.tolist() == [True, True]
    # A point behind the camera is neither in view nor visible.
    behind = SCENE.project(VIEWER, *FRAME.to_geodetic([0.0, -50.0, 0.0]))
    assert not behind.in_view[0] and not behind.visible[0]


def _building(el_id: str, x: float, y: float, height: float) -> Element:
    from shapely.geometry import Point

    lon, lat, _ = FRAME.to_geodetic([x, y, 0.0])
    return Element(el_id, "building", el_id, "buildings", float(lon), float(lat),
                   Point(lon, lat).buffer(1e-4), base_height=GROUND, height=height)  # fmt: skip


def test_labels_are_occlusion_aware() -> None:
    from shapely.geometry import Point

    els = [
        _building("building:near", 0.0, 70.0, 20.0),
        _building("building:far", 0.0, 130.0, 10.0),
        _building("building:side", 170.0, 115.0, 35.0),
    ]
    lon, lat, _ = FRAME.to_geodetic([-5.0, 40.0, 0.0])
    els.append(Element("sensor:s", "sensor", "S", "sensors", float(lon), float(lat),
                       Point(lon, lat), base_height=GROUND, height=2.0))  # fmt: skip
    wide = replace(VIEWER, hfov=100.0, pitch=0.0)
    items = {item["element_id"]: item for item in labels(wide, SCENE, els)}
    assert not items["building:far"]["visible"]  # entirely behind the near box
    assert items["building:near"]["visible"] and items["building:side"]["visible"]
    assert items["sensor:s"]["visible"]
    # A visible roof-centre anchor labels at its projected pixel.
    sensor_px = wide.project(*FRAME.to_geodetic([-5.0, 40.0, 2.0]))
    assert sensor_px is not None
    assert (items["sensor:s"]["u"], items["sensor:s"]["v"]) == pytest.approx(sensor_px, abs=0.01)
    ordered = [i["element_id"] for i in labels(wide, SCENE, els)]
    assert ordered[-1] == "building:far"  # hidden ones last
    assert labels(wide, SCENE, els, limit=2) == labels(wide, SCENE, els)[:2]


def test_drone_gimbal_pose() -> None:
    t = DroneTelemetry(lon=LON, lat=LAT, altitude=GROUND + 100.0, yaw=350.0, pitch=5.0, roll=3.0,
                       gimbal=Gimbal(yaw=20.0, pitch=-60.0, roll=0.0), hfov=80.0,
                       time=datetime.now(UTC))  # fmt: skip
    c = t.camera("drone:d", ground_height=GROUND)
    assert (c.heading, c.pitch, c.roll, c.mount_height) == pytest.approx((10.0, -60.0, 0.0, 100.0))
    bare = replace(t, gimbal=None).camera("drone:d", GROUND)
    assert (bare.heading, bare.pitch, bare.roll) == (350.0, 5.0, 3.0)


def test_world_from_workspace_without_meshes_is_flat(tmp_path: Path) -> None:
    (tmp_path / "twin.json").write_text("{}")
    world = World.from_workspace(tmp_path)
    assert world.raycaster is None
    res = world.ray(VIEWER, 640.0, 700.0)
    assert res is not None and res.element_id is None
    assert res.height == pytest.approx(GROUND, abs=0.05)
    assert WorkspacePaths(tmp_path).building_mesh.name == "buildings.npz"
