"""The desktop viewer rendering offscreen (EGL): `twin view --screenshot` through the CLI, and
the scene in-process — orthophoto on the terrain, the selection highlight, picking, level of
detail for buildings and point clouds, looking through a camera, CJK labels."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from paths import SAMPLE_SRC, TWIN
from PIL import Image
from pyproj import Transformer
from viewer_workspace import CLOUD_POINTS, CLOUD_RGB, viewer_ws

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pyvista as pv

from twin.cameras.camera import Camera
from twin.viewer.actors import above
from twin.viewer.colours import HIGHLIGHT
from twin.viewer.district import District
from twin.viewer.fonts import cjk_font
from twin.viewer.live import STALE_S, LiveState
from twin.viewer.measure import distance
from twin.viewer.scene import CameraView, SceneView

# A large flat-roofed building of the sample, on the Bund side of the river.
BUILDING = "building:-6651434"
BACKGROUND = (0x0B, 0x12, 0x20)


def _highlight_pixels(image: np.ndarray) -> int:
    """Pixels within a small tolerance of the highlight colour (#ffd54a)."""
    diff = np.abs(image[:, :, :3].astype(int) - np.array(HIGHLIGHT)).max(axis=2)
    return int((diff <= 24).sum())


__all__ = ["viewer_ws"]  # the session fixture, used by name


@pytest.fixture
def scene(viewer_ws: Path) -> Iterator[SceneView]:
    plotter = pv.Plotter(off_screen=True, window_size=[800, 600])
    view = SceneView(plotter, District.open(viewer_ws))
    yield view
    plotter.close()


def _look_down(view: SceneView, centre: np.ndarray, height_m: float) -> None:
    """A view straight down on `centre` (ENU m) from `height_m` above it, north up."""
    view.set_view(CameraView(above(centre, height_m), centre, np.array([0.0, 1.0, 0.0])))
    view.settle()
    view.render()


def test_cli_screenshot_highlights_the_selected_building(viewer_ws: Path, tmp_path: Path) -> None:
    plain, chosen = tmp_path / "plain.png", tmp_path / "shots" / "selected.png"
    for out, extra in ((plain, []), (chosen, ["--select", BUILDING])):
        result = subprocess.run(
            [TWIN, "view", str(viewer_ws), "--screenshot", str(out), "--size", "1200x750",
             *extra], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    selected = np.asarray(Image.open(chosen).convert("RGB"))
    before = np.asarray(Image.open(plain).convert("RGB"))
    assert selected.shape == before.shape == (750, 1200, 3)
    # The selected building is framed in the middle of the picture and drawn in the highlight
    # colour; without a selection that colour is (almost) nowhere.
    middle = selected[200:550, 300:900]
    assert _highlight_pixels(middle) > 5000
    assert _highlight_pixels(before) < 200
    assert len({tuple(c) for c in before.reshape(-1, 3)[::11]}) > 300  # a real picture


def test_terrain_pixels_carry_the_orthophoto(scene: SceneView) -> None:
    scene.show_only(["terrain"])
    centre = scene.district.to_enu(121.4935, 31.2410, scene.district.frame.height)
    _look_down(scene, centre, 900.0)
    image = scene.plotter.screenshot(return_img=True)
    # Ground points on a grid over the view, where they land in the picture, and the
    # orthophoto's colour at the same place (read from the source GeoTIFF in UTM 51N).
    xs, ys = np.meshgrid(np.linspace(-150, 150, 25), np.linspace(-100, 100, 17))
    xy = centre[:2] + np.column_stack([xs.ravel(), ys.ravel()])
    ground = scene.district.ground.drape(xy)
    pixels = np.array([scene.world_to_display(p) for p in ground])
    rendered = image[599 - np.rint(pixels[:, 1]).astype(int), np.rint(pixels[:, 0]).astype(int)]
    lonlat = np.array([scene.district.to_geodetic(p)[:2] for p in ground])
    utm = Transformer.from_crs(4326, 32651, always_xy=True).transform(*lonlat.T)
    with rasterio.open(SAMPLE_SRC / "drone" / "ortho.tif") as ortho:
        source = np.array(list(ortho.sample(zip(*utm, strict=True))), float)
    assert rendered.std(axis=0).min() > 10  # not a flat tint
    for channel in range(3):
        r = np.corrcoef(rendered[:, channel].astype(float), source[:, channel])[0, 1]
        assert r > 0.8, (channel, r)
    assert np.abs(rendered.mean(axis=0) - source.mean(axis=0)).max() < 25  # unlit: true colours


def test_pick_at_a_buildings_projected_roof_returns_it(scene: SceneView) -> None:
    roof = scene.district.building_mesh(BUILDING)
    assert roof is not None
    top = np.asarray(roof.points)[np.asarray(roof.points)[:, 2] > roof.bounds[5] - 0.01]
    target = scene.element_view(BUILDING)
    assert target is not None
    scene.set_view(target)
    scene.settle()
    scene.render()
    x, y = scene.world_to_display(top.mean(axis=0))
    picked = scene.pick(x, y)
    assert picked is not None and picked.kind == "element" and picked.id == BUILDING
    assert picked.point is not None and abs(picked.point[2] - roof.bounds[5]) < 0.5
    scene.home()
    scene.render()
    assert scene.pick(3, 597) is None  # the sky in the top-left corner of the whole district


def test_point_cloud_is_decimated_far_away_and_refined_close_up(scene: SceneView) -> None:
    scene.settle()
    far = scene.drawn()["pointcloud"]
    assert 0 < far < CLOUD_POINTS / 2  # the home view draws the cloud's coarse subsample
    centre = scene.district.to_enu(121.5005, 31.2387, 20.0)
    _look_down(scene, centre, 150.0)
    near = scene.drawn()["pointcloud"]
    assert near == CLOUD_POINTS  # close up every point (ADD refinement, all tiles)

    def magenta() -> float:
        image = scene.plotter.screenshot(return_img=True)
        return float((np.abs(image.astype(int) - CLOUD_RGB).max(axis=2) < 30).mean())

    assert magenta() > 0.05  # the cloud's own RGB (about one point a square metre)
    scene.set_point_colours("class")
    scene.render()
    assert magenta() < 0.001  # ground class colour instead


def test_buildings_are_refined_when_the_view_closes_in(scene: SceneView) -> None:
    scene.settle()
    home = set(scene.tiles["buildings"].shown)
    target = scene.element_view(BUILDING)
    assert target is not None
    scene.set_view(target)
    scene.settle()
    close = set(scene.tiles["buildings"].shown)
    assert home and close and home != close
    # A tiny budget coarsens the selection to the top tile (what keeps an interactive view at
    # speed on a slow renderer).
    scene.detail = 0.0001
    scene.update_lod()
    assert scene.tiles["buildings"].shown == [scene.tiles["buildings"].tree.roots[0].uri]


def test_look_through_a_camera_takes_its_pose_and_shows_its_frame(scene: SceneView) -> None:
    camera = next(c for c in scene.cameras if c.id == "camera:cam-bund-road")
    frame = np.zeros((1080, 810, 3), np.uint8)
    frame[:] = (250, 20, 20)  # a red picture
    scene.look_through(camera, frame)
    scene.settle()
    scene.render()
    view = scene.current_view()
    eye = scene.district.to_enu(camera.lon, camera.lat, camera.ground_height + camera.mount_height)
    assert np.linalg.norm(view.position - eye) < 0.01
    assert view.view_angle == pytest.approx(camera.vfov)
    assert not scene.plain["cameras"].visible and not scene.tiles["terrain"].visible
    image = scene.plotter.screenshot(return_img=True)
    assert (np.abs(image.astype(int) - (250, 20, 20)).max(axis=2) < 40).mean() > 0.2  # sky
    scene.leave_camera()
    assert scene.plain["cameras"].visible and scene.tiles["terrain"].visible


def test_live_state_follows_the_socket_and_the_scene_draws_it(scene: SceneView) -> None:
    state = LiveState(scene.district.to_enu)
    state.apply({"topic": "ready", "payload": {"entities": 0, "alerts": 0}})
    assert scene.update_live(state)  # an empty live layer: nothing drawn, nothing broken
    assert not scene.plain["entities"].actors and not scene.plain["alerts"].actors
    lon, lat = 121.4860, 31.2390
    steps = [{"id": "cam/1", "kind": "vehicle", "cls": "car", "lon": lon + k * 1e-5,
              "lat": lat, "height": 4.0, "source": "cam", "time": "2026-12-04T10:00:00Z"}
             for k in range(3)]  # fmt: skip
    state.apply({"topic": "entities", "payload": steps})
    alert = {"id": "a1", "rule": "r", "title": "车辆 stopped", "severity": "warning",
             "status": "new", "lon": lon, "lat": lat, "height": 4.0}  # fmt: skip
    state.apply({"topic": "alert", "payload": alert})
    drone = Camera("drone-1", lon=lon, lat=lat, ground_height=4.0, mount_height=60.0,
                   pitch=-60.0, image_width=1920, image_height=1080)  # fmt: skip
    state.apply({"topic": "drone", "payload": drone.to_record()})
    assert len(state.tracks["cam/1"].trail) == 3  # ~1 m steps: a short trail
    assert scene.update_live(state) and not scene.update_live(state)  # redrawn once per change
    assert scene.plain["entities"].actors and scene.plain["alerts"].actors
    assert scene.plain["drones"].actors
    marker = scene._markers["entity"].points.points[0]
    assert np.allclose(marker, scene.district.to_enu(lon + 2e-5, lat, 4.0), atol=1e-6)
    state.apply({"topic": "alert", "payload": {**alert, "status": "resolved"}})
    assert not state.alerts  # closed alerts leave the map
    assert state.prune(now=time.monotonic() + STALE_S + 1) == 1
    scene.update_live(state)
    assert not scene.plain["entities"].actors and not scene.plain["alerts"].actors


def test_labels_use_a_cjk_font() -> None:
    font = cjk_font()
    assert font is not None and font.is_file(), "fonts-noto-cjk is part of `make install`"
    from twin.viewer.labels import label_actor

    actor = label_actor(np.zeros((1, 3)), ["黄浦江"])
    style = actor.GetMapper().GetInputAlgorithm().GetTextProperty()
    assert style.GetFontFile() == str(font)


def test_distance_measures_3d_and_horizontal() -> None:
    d = distance([0.0, 0.0, 10.0], [30.0, 40.0, 40.0])
    assert d.straight == pytest.approx(np.sqrt(50**2 + 30**2))
    assert d.horizontal == pytest.approx(50.0)
    assert d.vertical == pytest.approx(30.0)


@pytest.mark.slow
def test_qt_loads_only_with_the_window() -> None:
    """`twin serve` and offscreen screenshots never import Qt (or pyvistaqt)."""
    code = (
        "import sys, twin.cli, twin.viewer.app, twin.viewer.offscreen, twin.viewer.scene, "
        "server.app; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'qtpy', 'pyvistaqt')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_twin_view_missing_workspace_fails_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [TWIN, "view", str(tmp_path / "nope"), "--screenshot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert "twin.json" in result.stderr
