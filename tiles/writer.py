"""Write a 3D Tiles 1.1 tileset: the root ``tileset.json`` over the layers (`LayerWriter` s:
buildings, terrain, point clouds) with optional metadata and a ``.3tz`` archive.

Life cycle: check → each layer writes its content and hands back its top tile → write
``tileset.json`` → archive. The root tile's ``transform`` is the ENU→ECEF matrix, so every
bounding volume and every glb is in the local ENU frame (metres); glb content is y-up as glTF
requires. docs/tiles.md has the layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tiles.archive import write_3tz
from tiles.buildings import tile_error
from tiles.errors import TilesError
from tiles.layer import LayerResult, LayerWriter
from tiles.model import TilesetMetadata
from tiles.options import TilesetOptions
from tiles.schema import tileset_entity, tileset_schema
from tiles.spec import Asset, BoundingVolume, Tile, Tileset

TILESET_JSON = "tileset.json"


@dataclass
class TilesetReport:
    """What `write_tileset` wrote: tiles (explicit tiles plus available implicit tiles), glb
    files, bytes on disk under the folder, features (finest level), the deepest level, the
    largest glb (bytes) and the archive's path and size when one was written; ``layers`` holds
    each layer's `LayerResult`, in the order given (left out of `summary`)."""

    tiles: int
    glbs: int
    bytes: int
    features: int
    levels: int = 0
    largest_glb: int = 0
    archive: Path | None = None
    archive_bytes: int = 0
    layers: list[LayerResult] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """The counts as JSON values (the archive by file name)."""
        return {
            "tiles": self.tiles,
            "glbs": self.glbs,
            "bytes": self.bytes,
            "features": self.features,
            "levels": self.levels,
            "largest_glb": self.largest_glb,
            "archive": self.archive and self.archive.name,
            "archive_bytes": self.archive_bytes,
        }


def write_tileset(
    out_dir: Path,
    enu_to_ecef: ArrayLike,
    layers: Sequence[LayerWriter],
    options: TilesetOptions,
    metadata: TilesetMetadata | None = None,
) -> TilesetReport:
    """Write every layer under `out_dir` (created if missing) and ``out_dir/tileset.json``.

    `enu_to_ecef` is the 4×4 matrix taking the local ENU frame (metres) to ECEF (metres), the
    root's transform. The layers' top tiles hang under the root (refine ADD) in the order
    given. `metadata` is written as the tileset ``schema``, ``metadata`` and layer ``groups``.
    With ``options.archive`` the folder is also written as ``out_dir.with_suffix(".3tz")``.
    Raises `TilesError` for a bad matrix or when no layer wrote anything."""
    matrix = np.asarray(enu_to_ecef, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise TilesError(f"enu_to_ecef must be a finite 4x4 matrix, got shape {matrix.shape}")
    groups, indices = _groups(layers, metadata)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [
        layer.write(out_dir, options, index) for layer, index in zip(layers, indices, strict=True)
    ]
    children = [r.tile for r in results if r.tile is not None]
    if not children:
        raise TilesError("nothing to write: no buildings, terrain or point cloud")
    box = BoundingVolume.union([c.bounding_volume for c in children])
    root = Tile(box, tile_error(box), refine="ADD", transform=matrix, children=children)
    tileset = _tileset(root, results, options, metadata, groups)
    text = json.dumps(tileset.to_dict(), indent=1).encode()
    (out_dir / TILESET_JSON).write_bytes(text)
    report = TilesetReport(
        tiles=len(root.walk()) + sum(r.implicit_tiles for r in results),
        glbs=sum(r.glbs for r in results),
        bytes=sum(r.bytes for r in results) + len(text),
        features=sum(r.features for r in results),
        levels=max(r.levels for r in results),
        largest_glb=max(r.largest_glb for r in results),
        layers=results,
    )
    if options.archive:
        report.archive = out_dir.with_suffix(".3tz")
        report.archive_bytes = write_3tz(out_dir, report.archive)
    return report


def _groups(
    layers: Sequence[LayerWriter], metadata: TilesetMetadata | None
) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The metadata ``groups`` and each layer's index among them (None: no group)."""
    groups: list[dict[str, Any]] = []
    indices: list[int | None] = []
    for layer in layers:
        group = None if metadata is None else layer.group(metadata)
        indices.append(None if group is None else len(groups))
        if group is not None:
            groups.append(group)
    return groups, indices


def _tileset(
    root: Tile,
    results: Sequence[LayerResult],
    options: TilesetOptions,
    metadata: TilesetMetadata | None,
    groups: list[dict[str, Any]],
) -> Tileset:
    """The root tileset: the schema (with the building class, and the implicit ``tile``
    class under implicit tiling), metadata and groups."""
    tileset = Tileset(Asset("1.1", "district-twin tiles"), root.geometric_error, root)
    # External tilesets (point clouds) may hold implicit tiling too: CesiumJS reads subtree
    # metadata with the root tileset's schema, so it carries the tile class then as well.
    if metadata is not None or options.implicit:
        classes = [r.feature_class for r in results if r.feature_class is not None]
        tileset.schema = tileset_schema(classes[0] if classes else None, tiles=options.implicit)
    if metadata is not None:
        tileset.metadata = tileset_entity(metadata)
        tileset.groups = groups
    return tileset
