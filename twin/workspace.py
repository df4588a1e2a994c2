"""Workspace layout (the contract every part of the platform reads) and its manifest,
`WS/twin.json`.

```
WS/twin.json              manifest: name, CRS, origin, bounds, counts per kind, build report
WS/tiles/tileset.json     root 3D Tiles 1.1 tileset (buildings, terrain below it)
WS/tiles.3tz              the same tiles as one 3D Tiles archive (`twin build --archive`); a
                          workspace may hold only this one
WS/catalog.sqlite         element catalog (twin.catalog), read-only once built
WS/live.sqlite            the hot window of observations, live entities, open and recent alerts
                          (created by the server)
WS/history/               older observations and closed alerts as GeoParquet, partitioned by
                          UTC hour (scenes.history)
WS/meshes/buildings.npz   building triangles in the local ENU frame, with face → element index
WS/meshes/terrain.npz     terrain triangles in the local ENU frame (when a DTM was given)
WS/rules.yaml             scenario rules copied from the source (when given)
```
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import WorkspaceError
from twin.geo import LocalFrame

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class WorkspacePaths:
    """Where each part of a workspace lives."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "twin.json"

    @property
    def tiles(self) -> Path:
        return self.root / "tiles"

    @property
    def tileset(self) -> Path:
        return self.tiles / "tileset.json"

    @property
    def tiles_archive(self) -> Path:
        return self.root / "tiles.3tz"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def live(self) -> Path:
        return self.root / "live.sqlite"

    @property
    def history(self) -> Path:
        return self.root / "history"

    @property
    def meshes(self) -> Path:
        return self.root / "meshes"

    @property
    def building_mesh(self) -> Path:
        return self.meshes / "buildings.npz"

    @property
    def terrain_mesh(self) -> Path:
        return self.meshes / "terrain.npz"

    @property
    def rules(self) -> Path:
        return self.root / "rules.yaml"

    @property
    def watchlists(self) -> Path:
        return self.root / "watchlists.sqlite"

    @property
    def secret(self) -> Path:
        """The site secret of keyed hashes, when not given in the settings."""
        return self.root / "secret.key"


@dataclass
class Manifest:
    """Contents of `WS/twin.json`. Origin: the ENU frame's origin (deg, deg, m ellipsoidal)."""

    name: str
    crs: str
    origin: dict[str, float]
    bounds: list[float]  # minlon, minlat, maxlon, maxlat (deg)
    counts: dict[str, int]
    report: dict[str, Any] = field(default_factory=dict)
    vertical_datum: str = ""
    built_at: str = ""
    version: int = MANIFEST_VERSION

    @property
    def frame(self) -> LocalFrame:
        return LocalFrame(self.origin["lon"], self.origin["lat"], self.origin["height"])

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise WorkspaceError(
                f"{path.parent} is not a workspace: no twin.json", hint="run 'twin build SRC -o WS'"
            ) from exc
        except json.JSONDecodeError as exc:
            raise WorkspaceError(f"{path}: not valid JSON ({exc})") from exc
        if data.get("version") != MANIFEST_VERSION:
            raise WorkspaceError(
                f"{path}: manifest version {data.get('version')} (expected {MANIFEST_VERSION})",
                hint="rebuild the workspace",
            )
        return cls(**data)


def open_workspace(root: Path) -> tuple[WorkspacePaths, Manifest]:
    """Check that `root` is a built workspace (catalog, and tiles as a folder with tileset.json
    or as a tiles.3tz archive) and read its manifest."""
    paths = WorkspacePaths(Path(root))
    manifest = Manifest.read(paths.manifest)
    if not paths.catalog.exists():
        raise WorkspaceError(f"workspace {root} is incomplete: {paths.catalog.name} missing")
    if not (paths.tileset.exists() or paths.tiles_archive.exists()):
        raise WorkspaceError(
            f"workspace {root} is incomplete: neither tiles/tileset.json nor tiles.3tz",
            hint="rebuild it with 'twin build SRC -o WS'",
        )
    return paths, manifest
