"""The 3D scene of the viewer, drawn in a pyvista plotter (offscreen, or the Qt window's
interactor): tileset layers with level of detail (orthophoto-textured terrain, buildings
coloured by height, kind or jurisdiction, point clouds by RGB or class), catalog layers draped
on the ground (roads, water, jurisdictions labelled with their unit, sites, sensors), cameras
with frustums and footprints, the live layer (entities with trails, alert pins, drones), the
selection highlight and measurements. Also: picking, flying, looking through a camera.

Everything is in the workspace's ENU frame (metres); display positions are VTK pixels with the
origin at the bottom-left of the render window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from shapely.geometry import box
from vtkmodules.vtkRenderingCore import vtkActor, vtkCellPicker

from twin.cameras.camera import Camera
from twin.catalog import Element
from twin.viewer import colours as col
from twin.viewer.actors import SHADE_AMBIENT, ActorLayer, above, letterbox, make_actor, sunlit
from twin.viewer.cameras import camera_pose, footprints, frustum_mesh
from twin.viewer.content import CLASSIFICATION, FEATURE, RGB, TileContent
from twin.viewer.district import District
from twin.viewer.labels import label_actor
from twin.viewer.live import LiveState
from twin.viewer.lod import ViewState
from twin.viewer.overlays import COLOUR, Markers, alert_markers, entity_markers, inflated
from twin.viewer.tilelayer import LodOptions, TileLayer
from twin.viewer.vectors import ElementMesh, area_mesh, enu_xy, line_mesh, point_mesh

F64 = NDArray[np.float64]
LAYERS = (
    "terrain", "buildings", "pointcloud", "roads", "water", "jurisdictions", "sites", "sensors",
    "cameras", "footprints", "entities", "alerts", "drones", "measure",
)  # fmt: skip
LOD = {
    "terrain": LodOptions(max_error_px=2.0, budget=1_000_000),
    "buildings": LodOptions(max_error_px=4.0, budget=2_000_000),
    "pointcloud": LodOptions(max_error_px=2.0, budget=3_000_000),
}
HIGHLIGHT_AMBIENT = 0.8
FRAME_S = 1 / 25
"""Frame time an interactive view aims at: detail shrinks while frames take longer."""
MIN_DETAIL = 0.01
VIEW_ANGLE = 30.0
PICK_RADIUS_PX = 10.0
ENTITY_LABELS_MAX = 150
LIFT_M = {"roads": 0.5, "water": 0.5, "jurisdictions": 1.5, "sites": 1.0, "sensors": 2.0}
FRUSTUM_M = 40.0
DRONE_FRUSTUM_M = 30.0
THROUGH_BUILDING_OPACITY = 0.35
THROUGH_HIDDEN = ("cameras", "footprints")
"""Layers hidden while looking through a camera (its own frustum would veil the view)."""
SELECTION_LABEL_M = 6.0
WATER_LABELS = 6


@dataclass(frozen=True)
class CameraView:
    """A 3D view: eye and look-at points (ENU m), up direction and vertical view angle (deg)."""

    position: F64
    focal_point: F64
    up: F64
    view_angle: float = VIEW_ANGLE


@dataclass(frozen=True)
class Picked:
    """What a click hit: a catalog element, a live entity, an open alert, or only a surface
    (terrain, point cloud); `point` is where (ENU m), when known."""

    kind: Literal["element", "entity", "alert", "surface"]
    id: str | None
    point: F64 | None


class SceneView:
    """The district of `district` drawn in `plotter` (pv.Plotter or pyvistaqt QtInteractor).
    An `adaptive` view (the window's) trades detail for frame rate; `text_scale` enlarges
    labels (screenshots larger than a window)."""

    def __init__(self, plotter: Any, district: District, colour_by: col.ColourBy = "height",
                 point_colours: col.PointColours = "rgb", adaptive: bool = False,
                 text_scale: float = 1.0) -> None:  # fmt: skip
        self.plotter = plotter
        self.adaptive = adaptive
        self.detail = 1.0
        self.text_scale = text_scale
        self.frame_s = 0.0
        self.district = district
        self.colour_by: col.ColourBy = colour_by
        self.point_colours: col.PointColours = point_colours
        self.selected: str | None = None
        self.through: str | None = None
        self.cameras: list[Camera] = []
        self._picks: dict[int, tuple[str, ElementMesh]] = {}
        self._markers: dict[str, Markers] = {}
        self._live_version = -1
        self._before_through: dict[str, tuple[bool, float]] = {}
        self._frame: NDArray[np.uint8] | None = None
        renderer = plotter.renderer
        renderer.SetBackground(*(c / 255 for c in col.BACKGROUND))
        renderer.SetNearClippingPlaneTolerance(0.001)
        plotter.ren_win.SetMultiSamples(0)
        bounds = district.bounds()
        self._ground_range = (float(bounds[4]), max(float(bounds[5]), float(bounds[4]) + 1.0))
        if district.ground.mesh is not None:
            z = district.ground.mesh.points[:, 2]
            self._ground_range = (float(z.min()), max(float(z.max()), float(z.min()) + 1.0))
        self.tiles: dict[str, TileLayer] = {}
        makers = {"terrain": self._terrain_actor, "buildings": self._building_actor,
                  "pointcloud": self._point_actor}  # fmt: skip
        for name, roots in district.layers.items():
            self.tiles[name] = TileLayer(name, roots, district.tiles, plotter,
                                         makers.get(name, self._building_actor),
                                         LOD.get(name, LOD["buildings"]))  # fmt: skip
        self.plain = {name: ActorLayer(name, plotter) for name in LAYERS if name not in self.tiles}
        self.highlight = ActorLayer("highlight", plotter)
        self._catalog_layers()
        self.set_cameras(district.cameras())
        self.home()

    # ------------------------------------------------------------------ layers
    @property
    def layer_names(self) -> list[str]:
        """Layers this district has, in drawing order (tile layers first)."""
        present = [n for n in LAYERS if n in self.tiles or n in self.plain]
        return present + [n for n in self.tiles if n not in LAYERS]

    def layer(self, name: str) -> TileLayer | ActorLayer:
        return self.tiles[name] if name in self.tiles else self.plain[name]

    def set_layer_visible(self, name: str, visible: bool) -> None:
        self.layer(name).set_visible(visible)

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        self.layer(name).set_opacity(opacity)

    def show_only(self, names: Sequence[str]) -> None:
        """Show the named layers, hide the others (unknown names are ignored)."""
        for name in self.layer_names:
            self.set_layer_visible(name, name in names)

    def _label(self, points: Any, texts: Sequence[str], *, colour: tuple[int, int, int] = (
            255, 255, 255), size: int = 14) -> Any:  # fmt: skip
        """A label actor with its font size scaled by `text_scale`."""
        return label_actor(points, texts, colour=colour, size=round(size * self.text_scale))

    def _element_layer(self, name: str, mesh: ElementMesh | None, **style: Any) -> list[Any]:
        if mesh is None:
            return []
        actor = make_actor(mesh.mesh, **style)
        self._picks[id(actor)] = (name, mesh)
        return [actor]

    def _catalog_layers(self) -> None:
        d = self.district
        frame, ground, catalog = d.frame, d.ground, d.catalog

        def items(kind: str) -> tuple[list[str], list[Any]]:
            els = list(catalog.all(kind))
            return [e.id for e in els], [e.geometry for e in els]

        ids, shapes = items("road")
        roads = line_mesh(ids, shapes, frame, ground, LIFT_M["roads"])
        self.plain["roads"].set(self._element_layer("roads", roads, colour=(236, 226, 198),
                                                    line_width=2.0, lighting=False))  # fmt: skip
        waters = list(catalog.all("water"))
        water = area_mesh([e.id for e in waters], [e.geometry for e in waters], frame, ground,
                          LIFT_M["water"])  # fmt: skip
        self.plain["water"].set(self._element_layer("water", water, colour=(47, 111, 176),
                                                    opacity=0.85, lighting=False)
                                + self._water_labels(waters))  # fmt: skip  # fmt: skip
        self._jurisdictions()
        points = (("site", "sites", (199, 146, 234), 6.0),
                  ("sensor", "sensors", (107, 229, 143), 11.0))  # fmt: skip
        for kind, layer, colour, size in points:
            els = list(catalog.all(kind))
            lonlat = np.array([[e.lon, e.lat] for e in els], float).reshape(-1, 2)
            mesh = point_mesh([e.id for e in els], lonlat, frame, ground, LIFT_M[layer])
            actors = self._element_layer(layer, mesh, colour=colour, point_size=size)
            if kind == "sensor" and mesh is not None:
                actors.append(self._label(above(mesh.mesh.points, 4.0),
                                          [e.name or e.id for e in els], size=12))  # fmt: skip
            self.plain[layer].set(actors)

    def _water_labels(self, waters: Sequence[Element]) -> list[Any]:
        """Names of the largest water bodies (each name once, at its largest part)."""
        largest: dict[str, Element] = {}
        for el in waters:
            if el.name and (el.name not in largest
                            or el.geometry.area > largest[el.name].geometry.area):  # fmt: skip
                largest[el.name] = el
        chosen = sorted(largest.values(), key=lambda e: -e.geometry.area)[:WATER_LABELS]
        if not chosen:
            return []
        anchors = np.array([[p.x, p.y] for p in (e.geometry.representative_point()
                                                 for e in chosen)])  # fmt: skip
        points = self.district.ground.drape(enu_xy(self.district.frame, anchors), 5.0)
        return [self._label(points, [e.name or "" for e in chosen], colour=(190, 225, 255))]

    def _jurisdictions(self) -> None:
        d = self.district
        els = list(d.catalog.all("jurisdiction"))
        mesh = line_mesh([e.id for e in els], [e.geometry for e in els], d.frame, d.ground,
                         LIFT_M["jurisdictions"])  # fmt: skip
        actors: list[Any] = []
        if mesh is not None:
            owner = np.asarray(mesh.mesh.cell_data["element"])
            mesh.mesh.cell_data[COLOUR] = col.category_colours([els[i].id for i in owner])
            actors = self._element_layer("jurisdictions", mesh, rgb=COLOUR, line_width=3.0,
                                         lighting=False)  # fmt: skip
            lonlat = np.array([[e.lon, e.lat] for e in els], float)
            anchors = d.ground.drape(enu_xy(d.frame, lonlat), 40.0)
            texts = [f"{e.name or e.id}\n{e.unit}" if e.unit else (e.name or e.id) for e in els]
            actors.append(self._label(anchors, texts, size=15))
        self.plain["jurisdictions"].set(actors)

    def set_cameras(self, cameras: Sequence[Camera]) -> None:
        """Draw these cameras' frustums, names and footprints (replacing the previous)."""
        self.cameras = list(cameras)
        d = self.district
        actors: list[Any] = []
        if self.cameras:
            frusta = frustum_mesh(self.cameras, d.frame, FRUSTUM_M)
            actors = self._element_layer("cameras", frusta, colour=(0, 229, 255), opacity=0.35)
            names = {c.id: c.id for c in self.cameras}
            for el in d.catalog.all("camera"):
                names[el.id] = el.name or el.id
            tops = [above(camera_pose(c, d.frame).position, 3.0) for c in self.cameras]
            actors.append(self._label(np.array(tops), [names[c.id] for c in self.cameras],
                                      colour=(160, 240, 255), size=12))  # fmt: skip
        self.plain["cameras"].set(actors)
        fill, outline = footprints(self.cameras, d.frame, d.ground, box(*d.manifest.bounds))
        self.plain["footprints"].set(
            self._element_layer("footprints", fill, colour=(0, 229, 255), opacity=0.12,
                                lighting=False)
            + self._element_layer("footprints", outline, colour=(0, 229, 255), line_width=2.0,
                                  lighting=False)
        )  # fmt: skip

    # ------------------------------------------------------------------ tile styling
    def _terrain_actor(self, content: TileContent) -> vtkActor:
        """Terrain as the page shows it: its orthophoto, else earth tones by elevation (unlit:
        a lit surface filling the window costs a software renderer more than the city)."""
        if content.image is not None:
            return make_actor(content.mesh, texture=content.image, lighting=False)
        mesh = content.mesh
        low, high = self._ground_range
        mesh.point_data[COLOUR] = col.earth_colours((mesh.points[:, 2] - low) / (high - low))
        return make_actor(mesh, rgb=COLOUR, lighting=False)

    def _building_actor(self, content: TileContent) -> vtkActor:
        """Buildings with the sun's shading baked into each face's colour (their faces are
        flat), drawn unlit and with back faces culled: the same look as a lit surface at a
        third of a software renderer's cost."""
        mesh = content.mesh
        if FEATURE in mesh.cell_data and content.features:
            base = self.building_colours(content)[mesh.cell_data[FEATURE]].astype(float)
        else:
            base = np.full((mesh.n_cells, 3), 210.0)
        mesh.cell_data[COLOUR] = sunlit(mesh, base, SHADE_AMBIENT)
        actor = make_actor(mesh, rgb=COLOUR, lighting=False)
        actor.GetProperty().BackfaceCullingOn()
        return actor

    def building_colours(self, content: TileContent) -> NDArray[np.uint8]:
        """(features, 3) colours of a building tile's features for the current `colour_by`."""
        rows = content.features
        if self.colour_by == "jurisdiction":
            return col.category_colours([str(r.get("jurisdiction") or "") for r in rows])
        if self.colour_by == "kind":
            kinds = self.district.building_kinds()
            return col.category_colours([kinds.get(str(r.get("element_id")), "building")
                                         for r in rows])  # fmt: skip
        return col.height_colours(np.array([float(r.get("height") or 0.0) for r in rows]))

    def _point_actor(self, content: TileContent) -> vtkActor:
        mesh = content.mesh
        if self.point_colours == "class" and CLASSIFICATION in mesh.point_data:
            mesh.point_data[COLOUR] = col.class_colours(mesh.point_data[CLASSIFICATION])
        elif RGB in mesh.point_data:
            mesh.point_data[COLOUR] = mesh.point_data[RGB]
        else:
            mesh.point_data[COLOUR] = np.full((mesh.n_points, 3), 220, np.uint8)
        actor = make_actor(mesh, rgb=COLOUR, lighting=False)
        actor.GetProperty().SetPointSize(2.0)
        return actor

    def set_colour_by(self, mode: col.ColourBy) -> None:
        """Colour buildings by height, kind or jurisdiction."""
        self.colour_by = mode
        if "buildings" in self.tiles:
            self.tiles["buildings"].restyle()

    def set_point_colours(self, mode: col.PointColours) -> None:
        """Colour point clouds by their RGB or by ASPRS class."""
        self.point_colours = mode
        if "pointcloud" in self.tiles:
            self.tiles["pointcloud"].restyle()

    # ------------------------------------------------------------------ level of detail, drawing
    def update_lod(self, max_loads: int | None = None) -> int:
        """Refine or coarsen the tile layers for the current view (loading at most
        `max_loads` tiles per layer, all when None); returns how many tiles still wait."""
        view = ViewState.from_renderer(self.plotter.renderer)
        return sum(layer.update(view, max_loads, self.detail) for layer in self.tiles.values())

    def settle(self, rounds: int = 30) -> None:
        """Load every tile the current view needs."""
        for _ in range(rounds):
            if self.update_lod() == 0:
                return

    def render(self) -> None:
        """Draw a frame; an `adaptive` view then lowers its detail while frames take longer
        than `FRAME_S` and raises it slowly while they take under half of it (the next
        `update_lod` draws coarser or finer tiles)."""
        self.plotter.renderer.ResetCameraClippingRange()
        start = time.perf_counter()
        self.plotter.ren_win.Render()
        self.frame_s = time.perf_counter() - start
        if self.adaptive:
            if self.frame_s > FRAME_S:
                factor = max(FRAME_S / self.frame_s, 0.5)
            else:
                factor = 1.1 if self.frame_s < FRAME_S / 2 else 1.0  # hysteresis: no flicker
            self.detail = min(max(self.detail * factor, MIN_DETAIL), 1.0)

    def save_png(self, path: str, size: tuple[int, int] | None = None) -> None:
        """Write the current view to a PNG of `size` (px, default the window's), at full
        detail with tiles fine enough for that size."""
        width, height = size or tuple(self.plotter.window_size)
        scale = height / max(self.plotter.window_size[1], 1)
        saved = self.detail, {n: layer.options for n, layer in self.tiles.items()}
        try:
            self.detail = 1.0
            for layer in self.tiles.values():
                layer.options = LodOptions(layer.options.max_error_px / scale,
                                           layer.options.budget)  # fmt: skip
            self.settle()
            self.plotter.renderer.ResetCameraClippingRange()
            self.plotter.screenshot(path, window_size=(width, height))
        finally:
            self.detail = saved[0]
            for name, options in saved[1].items():
                self.tiles[name].options = options

    def drawn(self) -> dict[str, int]:
        """Triangles or points drawn per tile layer (for status lines and benchmarks)."""
        return {name: layer.drawn() for name, layer in self.tiles.items()}

    # ------------------------------------------------------------------ camera
    def current_view(self) -> CameraView:
        camera = self.plotter.renderer.GetActiveCamera()
        return CameraView(np.array(camera.GetPosition()), np.array(camera.GetFocalPoint()),
                          np.array(camera.GetViewUp()), camera.GetViewAngle())  # fmt: skip

    def set_view(self, view: CameraView) -> None:
        camera = self.plotter.renderer.GetActiveCamera()
        camera.SetPosition(*view.position)
        camera.SetFocalPoint(*view.focal_point)
        camera.SetViewUp(*view.up)
        camera.SetViewAngle(view.view_angle)
        self.plotter.camera_set = True  # pyvista would otherwise reset it on the first render
        self.plotter.renderer.ResetCameraClippingRange()

    @staticmethod
    def view_of(centre: F64, radius: float, azimuth: float = 200.0,
                elevation: float = 40.0) -> CameraView:  # fmt: skip
        """A view of a sphere (ENU centre, radius m) filling the window: from `azimuth` (deg
        clockwise from north) and `elevation` (deg above the horizon)."""
        az, el = math.radians(azimuth), math.radians(elevation)
        look = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
        distance = radius / math.tan(math.radians(VIEW_ANGLE) / 2) * 0.75
        return CameraView(np.asarray(centre) + look * distance, np.asarray(centre, float),
                          np.array([0.0, 0.0, 1.0]))  # fmt: skip

    def home_view(self) -> CameraView:
        """The whole district, obliquely from the south-south-west."""
        b = self.district.bounds()
        centre = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, b[4]])
        radius = max(float(np.hypot(b[1] - b[0], b[3] - b[2])) / 2, 50.0)
        return self.view_of(centre, radius)

    def home(self) -> None:
        self.leave_camera()
        self.set_view(self.home_view())

    def element_view(self, element_id: str) -> CameraView | None:
        """A view that frames an element, None for an unknown id."""
        el = self.district.catalog.get(element_id)
        if el is None:
            return None
        centre, radius = self.district.element_target(el)
        return self.view_of(centre, max(radius * 1.6, 40.0))

    # ------------------------------------------------------------------ selection
    def select(self, element_id: str | None) -> bool:
        """Highlight an element (None clears); False when the id is unknown."""
        self.selected = None
        self.highlight.set([])
        if element_id is None:
            return True
        el = self.district.catalog.get(element_id)
        if el is None:
            return False
        self.selected = el.id
        d, colour = self.district, col.HIGHLIGHT
        actors: list[Any] = []
        solid = d.building_mesh(el.id) if el.kind == "building" else None
        if solid is not None:
            grown = inflated(solid)
            edges = grown.extract_feature_edges(
                feature_angle=30.0, boundary_edges=True, non_manifold_edges=False,
                manifold_edges=False,
            )  # fmt: skip
            outline = make_actor(edges, colour=(90, 60, 0), line_width=3.0, lighting=False)
            grown.cell_data[COLOUR] = sunlit(grown, np.tile(colour, (grown.n_cells, 1)),
                                             HIGHLIGHT_AMBIENT)  # fmt: skip
            actors += [make_actor(grown, rgb=COLOUR, lighting=False), outline]
        elif el.kind == "camera":
            cams = [c for c in self.cameras if c.id == el.id]
            if cams:
                actors.append(make_actor(frustum_mesh(cams, d.frame, FRUSTUM_M).mesh,
                                         colour=colour, opacity=0.6))  # fmt: skip
        if not actors:
            lift = LIFT_M.get(el.layer, 1.0) + 0.3
            area = area_mesh([el.id], [el.geometry], d.frame, d.ground, lift)
            line = line_mesh([el.id], [el.geometry], d.frame, d.ground, lift + 0.1)
            if area is not None:
                actors.append(make_actor(area.mesh, colour=colour, opacity=0.35, lighting=False))
            if line is not None:
                actors.append(make_actor(line.mesh, colour=colour, line_width=5.0,
                                         lighting=False))  # fmt: skip
            if area is None and line is None:
                point = point_mesh([el.id], np.array([[el.lon, el.lat]]), d.frame, d.ground,
                                   lift)  # fmt: skip
                if point is not None:
                    actors.append(make_actor(point.mesh, colour=colour, point_size=18.0))
        centre, _ = d.element_target(el)
        top = centre + np.array([0.0, 0.0, el.height / 2 + SELECTION_LABEL_M])
        actors.append(self._label(top[None, :], [el.name or el.id], colour=colour, size=16))
        self.highlight.set(actors)
        return True

    # ------------------------------------------------------------------ picking
    def world_to_display(self, point: Sequence[float]) -> tuple[float, float]:
        """Display position (px, origin bottom-left) of an ENU point (m)."""
        renderer = self.plotter.renderer
        renderer.SetWorldPoint(*point, 1.0)
        renderer.WorldToDisplay()
        x, y, _ = renderer.GetDisplayPoint()
        return float(x), float(y)

    def _marker_at(self, x: float, y: float) -> Picked | None:
        kinds: tuple[tuple[Literal["alert", "entity"], str], ...] = (
            ("alert", "alerts"), ("entity", "entities"))  # fmt: skip
        for kind, layer in kinds:
            markers = self._markers.get(kind)
            if markers is None or not len(markers.ids) or not self.plain[layer].visible:
                continue
            xy = np.array([self.world_to_display(p) for p in markers.points.points])
            gap = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
            best = int(np.argmin(gap))
            if gap[best] <= PICK_RADIUS_PX:
                return Picked(kind, markers.ids[best], np.asarray(markers.points.points[best]))
        return None

    def pick_surface(self, x: float, y: float) -> tuple[Any, int, F64] | None:
        """The actor, cell and ENU point (m) under display position (x, y), or None."""
        picker = vtkCellPicker()
        picker.SetTolerance(0.002)
        if not picker.Pick(x, y, 0.0, self.plotter.renderer) or picker.GetCellId() < 0:
            return None
        return picker.GetActor(), int(picker.GetCellId()), np.array(picker.GetPickPosition())

    def pick(self, x: float, y: float) -> Picked | None:
        """What is drawn at display position (x, y): an alert or entity marker, a catalog
        element, or a surface; None for the sky."""
        marker = self._marker_at(x, y)
        if marker is not None:
            return marker
        hit = self.pick_surface(x, y)
        if hit is None:
            return None
        actor, cell, point = hit
        owner = self._picks.get(id(actor))
        if owner is not None:
            return Picked("element", owner[1].element_of(cell), point)
        buildings = self.tiles.get("buildings")
        content = buildings.content_of(actor) if buildings is not None else None
        if content is not None and FEATURE in content.mesh.cell_data and content.features:
            feature = int(content.mesh.cell_data[FEATURE][cell])
            if 0 <= feature < len(content.features):
                return Picked("element", content.element_ids[feature], point)
        return Picked("surface", None, point)

    # ------------------------------------------------------------------ looking through a camera
    def look_through(self, camera: Camera, frame: NDArray[np.uint8] | None = None) -> None:
        """Take `camera`'s pose and field of view; with its latest `frame` (RGB, rows from the
        top) as the background, the terrain is hidden and buildings see-through, so the model
        lies over the picture as in the page's AR view."""
        self.leave_camera()
        pose = camera_pose(camera, self.district.frame)
        self.set_view(CameraView(pose.position, pose.position + pose.forward * 100.0, pose.up,
                                 pose.vfov))  # fmt: skip
        self.through = camera.id
        for name in THROUGH_HIDDEN:
            self._before_through[name] = (self.plain[name].visible, self.plain[name].opacity)
            self.plain[name].set_visible(False)
        self._frame = frame
        if frame is None:
            return
        self.fit_frame()
        self.plotter.renderer.TexturedBackgroundOn()
        for name, visible, opacity in (("terrain", False, 1.0),
                                       ("buildings", True, THROUGH_BUILDING_OPACITY)):  # fmt: skip
            if name in self.tiles:
                layer = self.tiles[name]
                self._before_through[name] = (layer.visible, layer.opacity)
                layer.set_visible(visible)
                layer.set_opacity(opacity)

    def fit_frame(self) -> None:
        """Fit the camera frame behind the view to the window's current size."""
        if self._frame is None:
            return
        width, height = self.plotter.renderer.GetSize()
        fitted = letterbox(self._frame, (max(width, 1), max(height, 1)))
        self.plotter.renderer.SetBackgroundTexture(pv.Texture(fitted))

    def leave_camera(self) -> None:
        """Back from a camera's view: the normal background and layers (the view stays)."""
        self.through = None
        self._frame = None
        self.plotter.renderer.TexturedBackgroundOff()
        for name, (visible, opacity) in self._before_through.items():
            self.layer(name).set_visible(visible)
            self.layer(name).set_opacity(opacity)
        self._before_through = {}
        camera = self.plotter.renderer.GetActiveCamera()
        camera.SetViewAngle(VIEW_ANGLE)

    # ------------------------------------------------------------------ live layer
    def update_live(self, state: LiveState) -> bool:
        """Redraw entities, alerts, drones and live camera poses when `state` changed."""
        if state.version == self._live_version:
            return False
        self._live_version = state.version
        entities, trails = entity_markers(state)
        actors = [make_actor(entities.points, rgb=COLOUR, point_size=11.0)]
        if trails is not None:
            actors.append(make_actor(trails, rgb=COLOUR, line_width=2.0, opacity=0.7,
                                     lighting=False))  # fmt: skip
        if 0 < len(entities.ids) <= ENTITY_LABELS_MAX:
            texts = [str(state.tracks[i].payload.get("cls") or state.tracks[i].payload["kind"])
                     for i in entities.ids]  # fmt: skip
            actors.append(self._label(above(entities.points.points, 2.5), texts, size=11))
        self._markers["entity"] = entities
        self.plain["entities"].set(actors if len(entities.ids) else [])
        self._alerts(state)
        self._drones(state)
        if state.cameras:
            poses = {c.id: c for c in self.cameras}
            if any(poses.get(k) != v for k, v in state.cameras.items()):
                poses.update(state.cameras)
                self.set_cameras(list(poses.values()))
        return True

    def _alerts(self, state: LiveState) -> None:
        alerts = list(state.alerts.values())
        places = np.array([self.district.to_enu(float(a["lon"]), float(a["lat"]),
                                                float(a.get("height") or 0.0))
                           for a in alerts], float).reshape(-1, 3)  # fmt: skip
        heads, pins = alert_markers(alerts, places)
        self._markers["alert"] = heads
        actors = []
        if alerts:
            actors.append(make_actor(heads.points, rgb=COLOUR, point_size=16.0))
            if pins is not None:
                actors.append(make_actor(pins, rgb=COLOUR, line_width=3.0, lighting=False))
            actors.append(self._label(above(heads.points.points, 2.0),
                                      [str(a.get("title") or a["rule"]) for a in alerts],
                                      colour=(255, 214, 170), size=12))  # fmt: skip
        self.plain["alerts"].set(actors)

    def _drones(self, state: LiveState) -> None:
        drones = list(state.drones.values())
        actors: list[Any] = []
        if drones:
            frusta = frustum_mesh(drones, self.district.frame, DRONE_FRUSTUM_M)
            actors = [make_actor(frusta.mesh, colour=(255, 120, 200), opacity=0.45)]
            tops = [above(camera_pose(c, self.district.frame).position, 3.0) for c in drones]
            actors.append(self._label(np.array(tops), [c.id for c in drones],
                                      colour=(255, 190, 230), size=12))  # fmt: skip
        self.plain["drones"].set(actors)

    # ------------------------------------------------------------------ measurements
    def show_measurement(self, points: Sequence[F64], text: str) -> None:
        """Draw measured points joined by a line, with `text` at the last point."""
        xyz = np.asarray(points, float).reshape(-1, 3)
        actors: list[Any] = [make_actor(pv.PolyData(xyz), colour=(255, 80, 80), point_size=12.0)]
        if len(xyz) > 1:
            actors.append(make_actor(pv.lines_from_points(xyz), colour=(255, 80, 80),
                                     line_width=3.0, lighting=False))  # fmt: skip
        if text:
            actors.append(self._label(above(xyz[-1:], 1.0), [text], colour=(255, 220, 220)))
        self.plain["measure"].set(actors)

    def clear_measurement(self) -> None:
        self.plain["measure"].set([])
