"""`LayerWriter`: the one interface of the buildings, terrain and point-cloud writers that
`tiles.writer.write_tileset` composes into a tileset, and `LayerResult`, what each hands back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tiles.metadata import FeatureClass
from tiles.model import TilesetMetadata
from tiles.options import TilesetOptions
from tiles.reports import PointCloudReport, TerrainReport
from tiles.spec import Tile


@dataclass
class LayerResult:
    """What a layer writer wrote.

    ``tile`` is the layer's top tile (boxes in the tileset's ENU frame, metres), hung under the
    root; None when the layer had nothing to write. ``implicit_tiles`` counts the tiles of
    implicit tilings below it (besides the tile holding each); ``glbs``, ``bytes`` and
    ``largest_glb`` the glb and subtree files the root tileset's tree refers to (an external
    tileset, a point cloud's, counts its own in ``report``); ``features`` the finest level's
    features, ``levels`` the deepest building level, ``feature_class`` the class of the glb
    property tables (buildings), ``report`` the layer's own report where it has one."""

    tile: Tile | None
    implicit_tiles: int = 0
    glbs: int = 0
    bytes: int = 0
    largest_glb: int = 0
    features: int = 0
    levels: int = 0
    feature_class: FeatureClass | None = None
    report: PointCloudReport | TerrainReport | None = None


class LayerWriter(Protocol):
    """Writes one layer's content under the tileset folder."""

    def group(self, metadata: TilesetMetadata) -> dict[str, Any] | None:
        """The layer's ``groups`` entry in the tileset metadata, or None for none."""
        ...

    def write(self, out_dir: Path, options: TilesetOptions, group: int | None) -> LayerResult:
        """Write the layer's content under `out_dir` (glb content tagged with metadata group
        `group` where it has one) and return what was written."""
        ...
