"""A workspace opened for viewing: manifest and ENU frame, catalog, tileset layers (level of
detail trees), ground heights and the cameras (catalog poses with their calibration
overrides). Positions are workspace ENU metres unless named lon/lat (deg) or ellipsoidal
heights (m)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyvista as pv
from numpy.typing import NDArray

from twin.cameras.camera import Camera
from twin.cameras.rig import CameraRig
from twin.catalog import Catalog, Element
from twin.errors import TwinError
from twin.geo import LocalFrame
from twin.viewer.content import triangle_mesh
from twin.viewer.ground import Ground
from twin.viewer.tileset import TileNode, read_tileset
from twin.viewer.tilesource import TileSource
from twin.workspace import Manifest, WorkspacePaths, open_workspace

F64 = NDArray[np.float64]
KIND_ATTRIBUTES = ("building", "building_kind", "landuse_kind", "kind")
"""Attributes naming what a building is (OSM ``building=*`` first); the first present wins."""


@dataclass
class District:
    """Everything the viewer reads from workspace `paths`."""

    paths: WorkspacePaths
    manifest: Manifest
    catalog: Catalog
    tiles: TileSource
    layers: dict[str, list[TileNode]]
    ground: Ground
    rig: CameraRig
    _kinds: dict[str, str] | None = field(default=None, init=False, repr=False)
    _buildings: dict[str, NDArray[np.int64]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, ws: Path) -> District:
        """Open a built workspace; `WorkspaceError` naming what is missing otherwise."""
        paths, manifest = open_workspace(Path(ws))
        catalog = Catalog(paths.catalog)
        tiles = TileSource(paths)
        return cls(paths, manifest, catalog, tiles, read_tileset(tiles),
                   Ground.from_workspace(paths), CameraRig(paths.root, catalog))  # fmt: skip

    @property
    def frame(self) -> LocalFrame:
        return self.manifest.frame

    def to_enu(self, lon: float, lat: float, height: float) -> F64:
        """Workspace ENU (m) of lon/lat (deg) and ellipsoidal height (m)."""
        return np.asarray(self.frame.to_enu(lon, lat, height), float).reshape(3)

    def to_geodetic(self, point: F64) -> tuple[float, float, float]:
        """lon, lat (deg) and ellipsoidal height (m) of a workspace ENU point."""
        lon, lat, height = np.asarray(self.frame.to_geodetic(point), float).reshape(3)
        return float(lon), float(lat), float(height)

    def bounds(self) -> F64:
        """xmin, xmax, ymin, ymax, zmin, zmax (m) of the buildings and terrain tiles (all
        tiles when there are neither)."""
        roots = self.layers.get("buildings", []) + self.layers.get("terrain", [])
        roots = roots or [node for nodes in self.layers.values() for node in nodes]
        if not roots:
            return np.array([-100.0, 100.0, -100.0, 100.0, 0.0, 10.0])
        corners = np.vstack([node.corners for node in roots])
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        return np.array([lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]])

    def element_target(self, el: Element) -> tuple[F64, float]:
        """Where to look at an element: its centre (ENU m; a building at mid-height) and the
        radius (m) of the area it covers."""
        xmin, ymin, xmax, ymax = el.geometry.bounds
        corners = [self.to_enu(x, y, el.base_height) for x, y in ((xmin, ymin), (xmax, ymax))]
        radius = float(np.linalg.norm(corners[1][:2] - corners[0][:2])) / 2
        centre = self.to_enu(el.lon, el.lat, el.base_height + el.height / 2)
        return centre, max(radius, el.height / 2, 10.0)

    def cameras(self) -> list[Camera]:
        """The catalog cameras with their calibrated poses (`WS/cameras.json`)."""
        found = []
        for camera_id in self.rig.ids():
            try:
                found.append(self.rig.camera(camera_id))
            except TwinError:
                continue
        return found

    def building_kinds(self) -> dict[str, str]:
        """Building id → what it is (`KIND_ATTRIBUTES`, else ``building``); read once."""
        if self._kinds is None:
            self._kinds = {
                el.id: str(next((el.attributes[k] for k in KIND_ATTRIBUTES
                                 if el.attributes.get(k)), "building"))
                for el in self.catalog.all("building")
            }  # fmt: skip
        return self._kinds

    def building_mesh(self, element_id: str) -> pv.PolyData | None:
        """The full-detail mesh (ENU m) of one building from ``WS/meshes/buildings.npz``, None
        when the workspace has no such building."""
        path = self.paths.building_mesh
        if not path.is_file():
            return None
        with np.load(path) as data:
            if self._buildings is None:
                order = np.argsort(data["face_element"], kind="stable")
                counts = np.bincount(data["face_element"], minlength=len(data["element_ids"]))
                self._buildings = dict(
                    zip(
                        [str(i) for i in data["element_ids"]],
                        np.split(order, np.cumsum(counts)[:-1]),
                        strict=True,
                    )
                )
            faces_of = self._buildings.get(element_id)
            if faces_of is None or not len(faces_of):
                return None
            faces = np.asarray(data["faces"])[faces_of]
            used, local = np.unique(faces, return_inverse=True)
            vertices = np.asarray(data["vertices"])[used]
        return triangle_mesh(vertices, local.reshape(-1, 3))
