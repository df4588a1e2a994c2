"""The desktop viewer: an offscreen screenshot through the CLI, and programmatic picking."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import TWIN
from PIL import Image
from shapely.geometry import Point, box

from twin.catalog import CatalogWriter, Element
from twin.geo import LocalFrame, metres_per_degree
from twin.workspace import Manifest, WorkspacePaths

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

ORIGIN = LocalFrame(121.4900, 31.2400, 5.0)
# (id, name, east, north, half-size, height): metres in the workspace frame.
BUILDINGS = [
    ("building:tower", "Tower", 0.0, 0.0, 15.0, 90.0),
    ("building:hall", "Hall", 70.0, 30.0, 20.0, 20.0),
    ("building:shed", "Shed", -60.0, -40.0, 10.0, 8.0),
]


def _box(cx: float, cy: float, half: float, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    x0, x1, y0, y1 = cx - half, cx + half, cy - half, cy + half
    vertices = np.array(
        [[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
         [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], float,
    )  # fmt: skip
    faces = np.array(
        [[4, 5, 6], [4, 6, 7],  # roof
         [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]],
    )  # fmt: skip
    return vertices, faces


def _element_from_enu(
    el_id: str, kind: str, name: str, east: float, north: float, half: float, **kw: object
) -> Element:
    lon, lat, _ = ORIGIN.to_geodetic([east, north, 0.0])
    mx, my = metres_per_degree(float(lat))
    geometry = (
        box(lon - half / mx, lat - half / my, lon + half / mx, lat + half / my)
        if half
        else Point(lon, lat)
    )
    return Element(
        id=el_id, kind=kind, name=name, layer=kind + "s", lon=float(lon), lat=float(lat),
        geometry=geometry, base_height=ORIGIN.height, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-building workspace with terrain and one camera, written by hand."""
    paths = WorkspacePaths(tmp_path_factory.mktemp("viewer") / "ws")
    paths.meshes.mkdir(parents=True)
    Manifest(
        name="tiny", crs="EPSG:4326",
        origin={"lon": ORIGIN.lon, "lat": ORIGIN.lat, "height": ORIGIN.height},
        bounds=[121.488, 31.238, 121.492, 31.242], counts={"building": 3, "camera": 1},
    ).write(paths.manifest)  # fmt: skip
    writer = CatalogWriter(paths.catalog)
    writer.add(
        _element_from_enu(i, "building", name, x, y, h, height=z)
        for i, name, x, y, h, z in BUILDINGS
    )
    writer.add(
        [
            _element_from_enu(
                "camera:gate", "camera", "Gate camera", 0.0, -120.0, 0.0, height=8.0,
                attributes={"camera_kind": "fixed", "heading": 10, "pitch": -15, "roll": 0,
                            "hfov": 60, "image_width": 1280, "image_height": 720},
            )
        ]
    )  # fmt: skip
    writer.close()
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    face_el: list[np.ndarray] = []
    for k, (_, _, x, y, h, z) in enumerate(BUILDINGS):
        v, f = _box(x, y, h, 0.0, z)
        faces.append(f + sum(len(p) for p in verts))
        verts.append(v)
        face_el.append(np.full(len(f), k, np.int32))
    np.savez(
        paths.building_mesh, vertices=np.vstack(verts), faces=np.vstack(faces),
        face_element=np.concatenate(face_el), element_ids=np.array([b[0] for b in BUILDINGS]),
    )  # fmt: skip
    xs = np.linspace(-300.0, 300.0, 13)
    gx, gy = np.meshgrid(xs, xs)
    gz = 0.02 * gx - 0.01 * gy - 0.5
    n = len(xs)
    quads = [(i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j)
             for i in range(n - 1) for j in range(n - 1)]  # fmt: skip
    tri = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    np.savez(
        paths.terrain_mesh, vertices=np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()]),
        faces=tri,
    )  # fmt: skip
    return paths.root


def test_twin_view_screenshot_renders_the_district(tiny_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "shots" / "view.png"
    result = subprocess.run(
        [TWIN, "view", str(tiny_ws), "--screenshot", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (900, 1600, 3)
    assert image.std() > 20
    colours = {tuple(c) for c in image.reshape(-1, 3)[::7]}
    assert len(colours) > 200
    assert np.all(image == (0x1B, 0x24, 0x30), axis=2).mean() > 0.01  # some sky around
    # The 90 m tower's roof: the top of the height colour map (plasma, yellow), nothing else is
    # (the colour bar sits in the right tenth of the window).
    r, g, b = (image[:, : int(0.88 * 1600), k].astype(int) for k in range(3))
    assert ((r > 150) & (g > 150) & (b < 60)).sum() > 200


def test_twin_view_missing_workspace_fails_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [TWIN, "view", str(tmp_path / "nope"), "--screenshot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert "twin.json" in result.stderr


def test_pick_at_returns_the_building_under_the_cursor(tiny_ws: Path) -> None:
    from twin.viewer.app import build_plotter, pick_at, world_to_display
    from twin.viewer.scene import load_scene, marker_length

    plotter = build_plotter(tiny_ws, offscreen=True, window_size=(800, 600))
    try:
        image = plotter.screenshot(return_img=True)
        assert image.shape[:2] == (600, 800)
        for el_id, _, x, y, _, z in BUILDINGS:
            dx, dy = world_to_display(plotter, (x, y, z))  # the middle of the roof
            assert 0 <= dx < 800 and 0 <= dy < 600
            picked = pick_at(plotter, dx, dy)
            assert picked is not None and picked.id == el_id, (el_id, picked)
            # The roof pixel shows the building, not the background (display y is bottom-up).
            pixel = image[600 - 1 - int(dy), int(dx)]
            assert tuple(pixel) != (0x1B, 0x24, 0x30)
        marker = load_scene(tiny_ws).cameras[0]
        assert marker.position == pytest.approx([0.0, -120.0, 8.0], abs=0.01)  # curvature: 1 mm
        assert marker.direction[1] > 0.9 and marker.direction[2] < 0  # north-ish, down
        inside_cone = marker.position + marker.direction * marker_length(None) * 0.6
        cam_x, cam_y = world_to_display(plotter, tuple(inside_cone))
        camera = pick_at(plotter, cam_x, cam_y)
        assert camera is not None and camera.id == "camera:gate"
        assert pick_at(plotter, 5, 595) is None  # the sky in the top-left corner
    finally:
        plotter.close()
