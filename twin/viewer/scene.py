"""What the desktop viewer shows, as pyvista meshes in the workspace's ENU frame (metres):
buildings (coloured by height), terrain, and camera markers (cones along the view direction).

Pickable meshes carry cell data ``element_index`` (-1: none) and field data ``element_ids``, so a
picked cell leads back to its catalog element without any other state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvista as pv
from numpy.typing import NDArray

from twin.cameras.camera import Camera
from twin.catalog import Catalog, Element
from twin.errors import InputError, WorkspaceError
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

ELEMENT_INDEX = "element_index"
ELEMENT_IDS = "element_ids"
CATALOG_PATH = "catalog_path"
CAMERA_MARKER_M = 12.0
"""Least length of a camera marker cone (m); larger districts get 1.5 % of their extent."""


@dataclass
class CameraMarker:
    """A camera as shown: its element, optical centre and unit view direction (workspace ENU)."""

    element: Element
    position: NDArray[np.float64]
    direction: NDArray[np.float64]


@dataclass
class Scene:
    """Everything the viewer draws, in the workspace's ENU frame."""

    frame: LocalFrame
    catalog: Catalog
    buildings: pv.PolyData | None
    terrain: pv.PolyData | None
    cameras: list[CameraMarker]
    camera_mesh: pv.PolyData | None

    @property
    def focus_bounds(self) -> tuple[float, float, float, float, float, float]:
        """xmin, xmax, ymin, ymax, zmin, zmax (m) of the district: buildings and cameras, or the
        terrain when there are none."""
        parts = [m for m in (self.buildings, self.camera_mesh) if m is not None]
        if not parts and self.terrain is not None:
            parts = [self.terrain]
        if not parts:
            return (-100.0, 100.0, -100.0, 100.0, 0.0, 10.0)
        b = np.array([p.bounds for p in parts])
        return (b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(), b[:, 4].min(),
                b[:, 5].max())  # fmt: skip


def _polydata(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> pv.PolyData:
    cells = np.hstack([np.full((len(faces), 1), 3, np.int64), faces]).ravel()
    return pv.PolyData(np.asarray(vertices, float), cells)


def _tag(mesh: pv.PolyData, index: NDArray[np.int64], ids: list[str], catalog: Path) -> None:
    mesh.cell_data[ELEMENT_INDEX] = index.astype(np.int32)
    mesh.field_data[ELEMENT_IDS] = np.array(ids if ids else [""])
    mesh.field_data[CATALOG_PATH] = np.array([str(catalog)])


def _buildings(paths: WorkspacePaths, catalog: Catalog) -> pv.PolyData | None:
    if not paths.building_mesh.is_file():
        return None
    with np.load(paths.building_mesh) as data:
        vertices, faces = data["vertices"], data["faces"]
        face_element = np.asarray(data["face_element"], np.int64)
        ids = [str(e) for e in data["element_ids"]]
    if len(faces) == 0:
        return None
    mesh = _polydata(vertices, faces)
    _tag(mesh, face_element, ids, catalog.path)
    heights = {el.id: el.height for el in catalog.all("building")}
    per_element = np.array([heights.get(i, np.nan) for i in ids], float)
    if np.isnan(per_element).any():  # fall back on the mesh's own vertical extent
        top = np.full(len(ids), -np.inf)
        bottom = np.full(len(ids), np.inf)
        z = vertices[faces][:, :, 2]
        np.maximum.at(top, face_element, z.max(axis=1))
        np.minimum.at(bottom, face_element, z.min(axis=1))
        per_element = np.where(np.isnan(per_element), top - bottom, per_element)
    mesh.cell_data["height_m"] = per_element[face_element]
    return mesh


def _terrain(paths: WorkspacePaths) -> pv.PolyData | None:
    if not paths.terrain_mesh.is_file():
        return None
    with np.load(paths.terrain_mesh) as data:
        mesh = _polydata(data["vertices"], data["faces"])
    mesh.point_data["elevation_m"] = mesh.points[:, 2]
    return mesh


def _camera_markers(frame: LocalFrame, catalog: Catalog) -> list[CameraMarker]:
    markers = []
    rot = frame.rotation
    for el in catalog.all("camera"):
        try:
            cam = Camera.from_element(el)
        except InputError:
            continue
        position = (cam.position_ecef - frame.origin_ecef) @ rot.T
        direction = (cam.direction_enu(*cam.principal_point) @ cam.frame.rotation) @ rot.T
        markers.append(CameraMarker(el, position, direction / np.linalg.norm(direction)))
    return markers


def marker_length(buildings: pv.PolyData | None) -> float:
    """Length (m) of camera cones: visible at the scale of the district."""
    if buildings is None:
        return CAMERA_MARKER_M
    xmin, xmax, ymin, ymax, _, _ = buildings.bounds
    return max(CAMERA_MARKER_M, 0.015 * max(xmax - xmin, ymax - ymin))


def _camera_mesh(
    markers: list[CameraMarker], catalog: Catalog, length: float
) -> pv.PolyData | None:
    if not markers:
        return None
    cones = []
    for i, marker in enumerate(markers):
        cone = pv.Cone(
            center=marker.position + marker.direction * length / 2,
            direction=-marker.direction,  # apex at the optical centre, opening along the view
            height=length,
            radius=length * 0.4,
            resolution=12,
        )
        cone.cell_data[ELEMENT_INDEX] = np.full(cone.n_cells, i, np.int32)
        cones.append(cone)
    merged = pv.merge(cones)
    _tag(merged, np.asarray(merged.cell_data[ELEMENT_INDEX]), [m.element.id for m in markers],
         catalog.path)  # fmt: skip
    return merged


def load_scene(ws: Path) -> Scene:
    """Read a workspace's manifest, catalog and meshes into a `Scene`."""
    paths = WorkspacePaths(Path(ws))
    frame = Manifest.read(paths.manifest).frame
    catalog = Catalog(paths.catalog)
    buildings = _buildings(paths, catalog)
    terrain = _terrain(paths)
    if buildings is None and terrain is None:
        raise WorkspaceError(f"workspace {ws} has no meshes", hint="rebuild it with 'twin build'")
    markers = _camera_markers(frame, catalog)
    cones = _camera_mesh(markers, catalog, marker_length(buildings))
    return Scene(frame, catalog, buildings, terrain, markers, cones)
