"""The desktop 3D viewer (`twin view WS`): buildings coloured by height, terrain in earth tones,
cameras as cones with labels; click a building or camera to print its catalog record.

With a screenshot path it renders offscreen (EGL, no display needed) and exits. `pick_at` picks
programmatically, so the click path can be tested offscreen too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from twin.catalog import Catalog, Element
from twin.errors import TwinError

DEFAULT_WINDOW = (1600, 900)
BACKGROUND = "#1b2430"
TEXT_NAME = "picked"
EARTH_TONES = ["#4f5d3f", "#7a7a4e", "#a58d62", "#c2ad88"]
"""Terrain colours from low to high ground."""


def _pyvista(offscreen: bool) -> Any:
    """Import pyvista, choosing the EGL render window for offscreen use (before vtk loads)."""
    if offscreen:
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    if offscreen:
        pv.OFF_SCREEN = True
    return pv


def build_plotter(
    ws: Path, *, offscreen: bool, window_size: tuple[int, int] = DEFAULT_WINDOW
) -> Any:
    """A pyvista Plotter showing workspace `ws`, its camera set obliquely over the district."""
    pv = _pyvista(offscreen)
    from twin.viewer.scene import load_scene

    scene = load_scene(ws)
    plotter = pv.Plotter(off_screen=offscreen, window_size=list(window_size))
    plotter.set_background(BACKGROUND)
    if scene.terrain is not None:
        plotter.add_mesh(
            scene.terrain, scalars="elevation_m", cmap=_earth_tones(), clim=_terrain_clim(scene),
            show_scalar_bar=False, pickable=False, smooth_shading=True, name="terrain",
        )  # fmt: skip
    else:
        plotter.add_mesh(_ground_plane(pv, scene.focus_bounds), color=EARTH_TONES[2],
                         pickable=False, name="ground")  # fmt: skip
    if scene.buildings is not None:
        plotter.add_mesh(
            scene.buildings, scalars="height_m", cmap="plasma", name="buildings",
            scalar_bar_args={"title": "Building height (m)", "color": "white", "vertical": True,
                             "position_x": 0.9, "position_y": 0.25},
        )  # fmt: skip
    if scene.camera_mesh is not None:
        plotter.add_mesh(scene.camera_mesh, color="#00e5ff", name="cameras")
        plotter.add_point_labels(
            np.array([m.position for m in scene.cameras]),
            [m.element.name or m.element.id for m in scene.cameras],
            font_size=12, point_size=6, text_color="white", shape_opacity=0.4,
            always_visible=True, name="camera-labels",
        )  # fmt: skip
    _oblique_view(plotter, scene.focus_bounds)
    plotter.add_text(
        f"{ws.name}: click a building or camera", position="upper_left", font_size=10,
        color="white", name="help",
    )  # fmt: skip
    return plotter


def _ground_plane(pv: Any, bounds: tuple[float, ...]) -> Any:
    """A flat ground under the district (when the workspace has no terrain), 20 % margin."""
    xmin, xmax, ymin, ymax, zmin, _ = bounds
    size = (1.4 * (xmax - xmin), 1.4 * (ymax - ymin))
    centre = ((xmin + xmax) / 2, (ymin + ymax) / 2, zmin - 0.05)
    return pv.Plane(center=centre, i_size=size[0], j_size=size[1])


def _earth_tones() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("earth", EARTH_TONES)


def _terrain_clim(scene: Any) -> tuple[float, float]:
    z = scene.terrain.points[:, 2]
    low, high = float(z.min()), float(z.max())
    return low, max(high, low + 1.0)


def _oblique_view(plotter: Any, bounds: tuple[float, ...]) -> None:
    """Look at the middle of `bounds` from the south-south-west, about 40° down."""
    xmin, xmax, ymin, ymax, zmin, zmax = bounds
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2, (zmin + zmax) / 2])
    radius = max(float(np.linalg.norm([xmax - xmin, ymax - ymin, zmax - zmin])) / 2, 50.0)
    azimuth, elevation = np.radians(200.0), np.radians(40.0)
    view = np.array([np.sin(azimuth) * np.cos(elevation), np.cos(azimuth) * np.cos(elevation),
                     np.sin(elevation)])  # fmt: skip
    distance = radius / np.tan(np.radians(30.0) / 2) * 0.75
    plotter.camera_position = [tuple(centre + view * distance), tuple(centre), (0.0, 0.0, 1.0)]
    plotter.camera.view_angle = 30.0
    plotter.reset_camera_clipping_range()


def pick_at(plotter: Any, x: float, y: float) -> Element | None:
    """The catalog element drawn at display position (x, y) — VTK display pixels, origin at the
    bottom-left of the window — or None when nothing pickable is there."""
    import vtk

    picker = vtk.vtkCellPicker()
    picker.SetTolerance(0.0005)
    if not picker.Pick(x, y, 0.0, plotter.renderer):
        return None
    dataset = picker.GetDataSet()
    cell = picker.GetCellId()
    if dataset is None or cell < 0:
        return None
    cell_data = dataset.GetCellData().GetArray("element_index")
    field_data = dataset.GetFieldData()
    ids, catalog = (
        field_data.GetAbstractArray("element_ids"),
        field_data.GetAbstractArray("catalog_path"),
    )
    if cell_data is None or ids is None or catalog is None:
        return None
    index = int(cell_data.GetValue(cell))
    if index < 0 or index >= ids.GetNumberOfValues():
        return None
    return Catalog(Path(catalog.GetValue(0))).get(ids.GetValue(index))


def world_to_display(plotter: Any, point: tuple[float, float, float]) -> tuple[float, float]:
    """Display position (VTK pixels, origin bottom-left) of a workspace ENU point (m)."""
    renderer = plotter.renderer
    renderer.SetWorldPoint(*point, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    return float(x), float(y)


def _show_pick(plotter: Any, element: Element | None) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.pretty import Pretty

    text = "nothing here" if element is None else f"{element.name or element.id} ({element.kind})"
    plotter.add_text(text, position="lower_left", font_size=14, color="yellow", name=TEXT_NAME)
    if element is not None:
        record = element.to_dict(with_geometry=False)
        Console().print(Panel(Pretty(record), title=element.id, expand=False))
    plotter.render()


def view(
    ws: Path, screenshot: Path | None = None, window_size: tuple[int, int] = DEFAULT_WINDOW
) -> None:
    """Open the desktop viewer on workspace `ws`; with `screenshot`, render that PNG and return."""
    plotter = build_plotter(Path(ws), offscreen=screenshot is not None, window_size=window_size)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        try:
            plotter.screenshot(str(screenshot))
        except (RuntimeError, OSError) as exc:
            raise TwinError(f"cannot render {screenshot}: {exc}") from exc
        finally:
            plotter.close()
        return

    def on_click(*_: object) -> None:
        x, y = plotter.iren.get_event_position()
        _show_pick(plotter, pick_at(plotter, x, y))

    plotter.iren.add_observer("LeftButtonPressEvent", on_click)
    plotter.show(title=f"twin view {ws}")
