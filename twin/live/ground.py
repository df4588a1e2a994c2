"""Where a camera's pixel rays land, for the detection worker: the workspace's terrain and
building meshes (`twin.cameras.world.World`), passing through the building the camera is
mounted on (`CameraRig.host`), or flat ground at the camera's ground height when no workspace
is given. Results carry the element hit and a 1-σ uncertainty in metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from numpy.typing import ArrayLike

from twin.cameras.camera import Camera
from twin.cameras.rig import CameraRig
from twin.cameras.world import RayResult, World
from twin.catalog import Catalog
from twin.workspace import open_workspace


@dataclass(frozen=True)
class Ground:
    """The surfaces rays land on; `rig` (when known) names the buildings each camera is
    mounted on, whose walls its rays pass through."""

    world: World
    rig: CameraRig | None = None

    @classmethod
    def flat(cls) -> Ground:
        """Flat ground at each camera's ground height (no meshes)."""
        return cls(World(None))

    @classmethod
    def from_workspace(cls, ws: Path) -> Ground:
        """Terrain and building meshes and the catalog of workspace `ws` (raises
        `WorkspaceError` when it is not a workspace)."""
        paths, _ = open_workspace(Path(ws))
        rig = CameraRig(paths.root, Catalog(paths.catalog))
        return cls(rig.world, rig)

    def locate(self, camera: Camera, u: ArrayLike, v: ArrayLike) -> list[RayResult | None]:
        """Where the rays through pixels (u, v) of `camera`'s calibrated image land: lon, lat
        (deg), ellipsoidal height (m), element hit, range and uncertainty (m); None for rays
        that reach nothing within the camera's range."""
        host = self.rig.host(camera) if self.rig is not None else frozenset()
        return self.world.rays(camera, u, v, skip=host)
