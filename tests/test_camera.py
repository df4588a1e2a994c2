"""Camera model conventions, pixel ↔ world round trips, flat-ground and mesh ray casting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import Point

from twin.cameras.camera import Camera
from twin.cameras.raycast import MeshRaycaster
from twin.catalog import Element
from twin.errors import InputError
from twin.geo import LocalFrame

LON, LAT, GROUND = 121.4905, 31.2400, 12.5
GEOD = Geod(ellps="WGS84")


def make(**kw: float) -> Camera:
    base: dict[str, float] = dict(
        lon=LON, lat=LAT, ground_height=GROUND, mount_height=6.0, heading=0.0, pitch=0.0,
        roll=0.0, hfov=60.0, image_width=800, image_height=600,
    )  # fmt: skip
    base.update(kw)
    return Camera("camera:test", **base)  # type: ignore[arg-type]


def _ground(
    cam: Camera, u: float, v: float, ground_height: float | None = None
) -> tuple[float, float, float]:
    """Where pixel (u, v) meets the ground (lon, lat deg, height m); it must."""
    point = cam.ground_point(u, v, ground_height)
    assert point is not None, (u, v)
    return point


def test_intrinsics_follow_hfov_and_image_size() -> None:
    cam = make(hfov=90.0, image_width=1000, image_height=500)
    assert cam.focal == pytest.approx(500.0)
    assert cam.principal_point == (500.0, 250.0)
    assert cam.vfov == pytest.approx(math.degrees(2 * math.atan(0.5)))


@pytest.mark.parametrize(
    ("heading", "expected"),
    [(0.0, (0, 1, 0)), (90.0, (1, 0, 0)), (180.0, (0, -1, 0)), (270.0, (-1, 0, 0))],
)
def test_heading_is_clockwise_from_north(heading: float, expected: tuple[int, int, int]) -> None:
    cam = make(heading=heading)
    assert cam.direction_enu(400, 300) == pytest.approx(np.array(expected, float), abs=1e-12)


def test_pitch_minus_90_looks_straight_down_with_image_top_along_heading() -> None:
    cam = make(heading=90.0, pitch=-90.0)
    assert cam.direction_enu(400, 300) == pytest.approx([0, 0, -1], abs=1e-12)
    top = cam.direction_enu(400, 0)
    assert top[0] > 0 and abs(top[1]) < 1e-12  # the top row leans east, the heading
    right = cam.direction_enu(800, 300)
    assert right[1] < 0  # image right is south when the top faces east


def test_pixel_axes_u_right_v_down() -> None:
    cam = make(heading=0.0, pitch=0.0)
    assert cam.direction_enu(800, 300)[0] > 0  # right of centre looks east of north
    assert cam.direction_enu(400, 600)[2] < 0  # below centre looks down


def test_positive_roll_turns_scene_counter_clockwise_in_the_image() -> None:
    cam = make(heading=0.0, pitch=0.0, roll=10.0)
    # A point 100 m north and 30 m east at the camera's eye height: on the horizon, right of centre.
    lon, lat, h = cam.frame.to_geodetic([30.0, 100.0, 6.0])
    pixel = cam.project(lon, lat, h)
    assert pixel is not None
    u, v = pixel
    assert u > 400 and v < 300  # the camera's right side went down, so the point moved up
    dx, dy = u - 400, v - 300
    assert math.degrees(math.atan2(-dy, dx)) == pytest.approx(
        10.0 + math.degrees(math.atan2(0.0, 30.0)), abs=0.2
    )


def test_project_rejects_points_behind_or_outside() -> None:
    cam = make(heading=0.0, pitch=-10.0)
    behind = cam.frame.to_geodetic([0.0, -50.0, 0.0])
    assert cam.project(*behind) is None
    far_left = cam.frame.to_geodetic([-500.0, 20.0, 0.0])
    assert cam.project(*far_left) is None


def test_ground_point_none_above_horizon_and_beyond_range() -> None:
    cam = make(pitch=0.0)
    assert cam.ground_point(400, 100) is None  # above the horizon
    assert cam.ground_point(400, 300) is None  # exactly on the horizon
    assert cam.ground_point(400, 300.5) is None  # hits the ground > 5 km away
    assert cam.ground_point(400, 600) is not None


def _camera_strategy() -> st.SearchStrategy[Camera]:
    return st.builds(
        make,
        heading=st.floats(0, 360),
        pitch=st.floats(-89, -15),
        roll=st.floats(-20, 20),
        hfov=st.floats(20, 100),
        mount_height=st.floats(2, 80),
    )


@settings(max_examples=150, deadline=None)
@given(_camera_strategy(), st.floats(0, 1), st.floats(0, 1))
def test_pixel_to_ground_to_pixel_round_trip(cam: Camera, fu: float, fv: float) -> None:
    u, v = fu * cam.image_width, fv * cam.image_height
    ground = cam.ground_point(u, v)
    assume(ground is not None)
    assert ground is not None
    # On the ground's tangent plane (which rises above the ellipsoid by d²/2R, ~2 m at 5 km).
    assert cam.frame.to_enu(*ground)[2] == pytest.approx(0.0, abs=1e-3)
    pixel = cam.project(*ground)
    assume(pixel is not None)  # a corner pixel may round just outside
    assert pixel is not None
    scale = cam.image_width
    assert pixel[0] == pytest.approx(u, rel=1e-6, abs=1e-6 * scale)
    assert pixel[1] == pytest.approx(v, rel=1e-6, abs=1e-6 * scale)


@settings(max_examples=100, deadline=None)
@given(_camera_strategy(), st.floats(-300, 300), st.floats(-300, 300))
@pytest.mark.slow
def test_world_to_pixel_to_world_round_trip(cam: Camera, east: float, north: float) -> None:
    lon, lat, h = cam.frame.to_geodetic([east, north, 0.0])
    pixel = cam.project(lon, lat, h)
    assume(pixel is not None)
    assert pixel is not None
    back = cam.ground_point(*pixel)
    assert back is not None
    rng = math.hypot(east, north) + cam.mount_height
    _, _, dist = GEOD.inv(lon, lat, back[0], back[1])
    assert dist <= 1e-6 * rng + 1e-6


def test_straight_down_camera_matches_independent_geometry() -> None:
    h = 40.0
    cam = make(heading=0.0, pitch=-90.0, mount_height=h)
    lon, lat, height = _ground(cam, 400, 300)
    _, _, dist = GEOD.inv(LON, LAT, lon, lat)
    assert dist < 0.01
    assert height == pytest.approx(GROUND, abs=0.01)
    # 150 px right of centre: angle atan(150/f) off nadir → h·tan(angle) to the east.
    lon, lat, _ = _ground(cam, 550, 300)
    azimuth, _, dist = GEOD.inv(LON, LAT, lon, lat)
    assert dist == pytest.approx(h * 150.0 / cam.focal, abs=0.01)
    assert azimuth == pytest.approx(90.0, abs=0.01)
    # 120 px above centre: the top of the image points north (heading 0).
    lon, lat, _ = _ground(cam, 400, 180)
    azimuth, _, dist = GEOD.inv(LON, LAT, lon, lat)
    assert dist == pytest.approx(h * math.tan(math.atan(120.0 / cam.focal)), abs=0.01)
    assert azimuth == pytest.approx(0.0, abs=0.01)


def test_oblique_camera_distance_matches_trigonometry() -> None:
    cam = make(heading=30.0, pitch=-20.0, mount_height=10.0)
    lon, lat, _ = _ground(cam, 400, 300)
    azimuth, _, dist = GEOD.inv(LON, LAT, lon, lat)
    assert dist == pytest.approx(10.0 / math.tan(math.radians(20.0)), abs=0.01)
    assert azimuth == pytest.approx(30.0, abs=0.01)


def test_ground_point_at_other_height() -> None:
    cam = make(pitch=-45.0, mount_height=10.0)
    lon, lat, height = _ground(cam, 400, 300, ground_height=GROUND + 4.0)
    _, _, dist = GEOD.inv(LON, LAT, lon, lat)
    assert dist == pytest.approx(6.0, abs=0.01)
    assert height == pytest.approx(GROUND + 4.0, abs=0.01)


def test_view_footprint_contains_seen_points_only() -> None:
    cam = make(heading=45.0, pitch=-15.0, mount_height=8.0)  # the top rows see the sky
    footprint = cam.view_footprint()
    assert footprint.is_valid and not footprint.is_empty
    for u, v in [(400, 300), (10, 590), (790, 400), (400, 200)]:
        lon, lat, _ = _ground(cam, u, v)
        assert footprint.buffer(1e-9).contains(Point(lon, lat))
    behind = cam.frame.to_geodetic([-20.0, -20.0, 0.0])
    assert not footprint.contains(Point(behind[0], behind[1]))
    # The footprint reaches the horizon, so it is clipped at the 5 km range.
    assert max(GEOD.inv(LON, LAT, x, y)[2] for x, y in footprint.exterior.coords) == pytest.approx(
        5000.0, rel=0.01
    )
    assert make(pitch=40.0, hfov=40.0).view_footprint().is_empty  # looks at the sky


def test_frame_size_scaling() -> None:
    cam = make(image_width=800, image_height=600)
    u, v = cam.scale_pixels([1600.0], [300.0], 1600, 1200)
    assert (float(u[0]), float(v[0])) == (800.0, 150.0)


def test_from_element_reads_catalog_attributes() -> None:
    el = Element(
        id="camera:c1", kind="camera", name="C1", layer="cameras", lon=LON, lat=LAT,
        geometry=Point(LON, LAT), base_height=GROUND, height=7.0,
        attributes={"camera_kind": "fixed", "heading": 45, "pitch": -12, "roll": 0, "hfov": 60,
                    "image_width": 810, "image_height": 1080},
    )  # fmt: skip
    cam = Camera.from_element(el)
    assert (cam.id, cam.mount_height, cam.ground_height, cam.heading, cam.pitch) == (
        "camera:c1",
        7.0,
        GROUND,
        45.0,
        -12.0,
    )
    assert (cam.image_width, cam.image_height) == (810, 1080)
    el.attributes.pop("hfov")
    with pytest.raises(InputError, match="hfov"):
        Camera.from_element(el)


def _sloped_plane(frame: LocalFrame, slope: tuple[float, float], z0: float) -> MeshRaycaster:
    xs = np.linspace(-400.0, 400.0, 9)
    gx, gy = np.meshgrid(xs, xs)
    gz = z0 + slope[0] * gx + slope[1] * gy
    vertices = np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()])
    faces = []
    n = len(xs)
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j
            faces += [(a, b, c), (a, c, d)]
    return MeshRaycaster(frame, vertices, np.array(faces))


def test_raycast_on_sloped_terrain_matches_analytic_intersection() -> None:
    # The mesh lives in a workspace frame 120 m west and 80 m south of the camera.
    ws_frame = LocalFrame(LON - 120.0 / 95_000.0, LAT - 80.0 / 110_900.0, 3.0)
    slope, z0 = (0.05, 0.12), 2.0
    caster = _sloped_plane(ws_frame, slope, z0)
    cam = make(heading=20.0, pitch=-30.0, mount_height=15.0)
    us, vs = np.meshgrid(np.linspace(0, 800, 7), np.linspace(320, 600, 6))
    origin, _ = cam.pixel_to_ray(0, 0)
    dirs = np.array(
        [cam.pixel_to_ray(u, v)[1] for u, v in zip(us.ravel(), vs.ravel(), strict=True)]
    )
    hits = caster.cast(np.broadcast_to(origin, dirs.shape), dirs)
    # Analytic: in the workspace ENU frame, solve n·(o + t d) = z0 for the plane z - sx - sy = z0.
    rot = ws_frame.rotation
    o = (origin - ws_frame.origin_ecef) @ rot.T
    d = dirs @ rot.T
    normal = np.array([-slope[0], -slope[1], 1.0])
    t = (z0 - o @ normal) / (d @ normal)
    expected = (o + t[:, None] * d) @ rot + ws_frame.origin_ecef
    assert not np.isnan(hits.points_ecef).any()
    err = np.linalg.norm(hits.points_ecef - expected, axis=1)
    assert err.max() < 0.01
    assert hits.distance == pytest.approx(t, abs=0.01)
    # A ray toward the sky misses.
    up = cam.pixel_to_ray(400, 0)[1]
    miss = caster.cast(origin[None], up[None] * np.array([1, 1, 1]) + rot[2] * 2.0)
    assert np.isnan(miss.distance).all() and miss.element_ids == [None]
