"""Write a 3D Tiles 1.1 tileset: building tiles split by a quadtree, an optional terrain tile.

Life cycle: check and prepare meshes → plan the quadtree → write one glb per leaf → write
``tileset.json``. The root tile's ``transform`` is the ENU→ECEF matrix, so every bounding volume
and every glb is in the local ENU frame (metres); glb content is y-up as glTF requires.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from tiles import mesh
from tiles.content import GlbContent, PreparedFeature, building_glb, terrain_glb
from tiles.errors import MeshError, TilesError
from tiles.metadata import FeatureClass, infer_class
from tiles.model import FeatureMesh, TerrainMesh
from tiles.partition import QuadNode, quadtree
from tiles.spec import Asset, BoundingVolume, Content, Tile, Tileset

TILESET_JSON = "tileset.json"
BUILDINGS_DIR = "buildings"
TERRAIN_URI = "terrain/terrain.glb"
# Bounding boxes grow by this much (metres) on every side, so float32 rounding stays inside.
BOX_PAD = 0.005


@dataclass
class TilesetReport:
    """What `write_tileset` wrote: tiles in tileset.json, glb files, bytes on disk, features."""

    tiles: int
    glbs: int
    bytes: int
    features: int


@dataclass
class _Written:
    bytes: int = 0
    glbs: int = 0
    features: int = 0


def write_tileset(
    out_dir: Path,
    enu_to_ecef: ArrayLike,
    buildings: Sequence[FeatureMesh],
    terrain: TerrainMesh | None = None,
    *,
    max_features: int = 400,
    progress: Callable[[int], None] | None = None,
) -> TilesetReport:
    """Write ``out_dir/tileset.json`` and its glb content.

    Parameters
    ----------
    out_dir
        Folder to write into (created if missing).
    enu_to_ecef
        4×4 matrix taking the local ENU frame (metres) to ECEF (metres); the root transform.
    buildings
        One `FeatureMesh` per building (positions ENU metres); element ids must be unique.
    terrain
        Optional ground mesh (ENU metres), written as its own tile.
    max_features
        Most features in one glb.
    progress
        Called after each building glb with the number of features written so far.
    """
    matrix = np.asarray(enu_to_ecef, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise TilesError(f"enu_to_ecef must be a finite 4x4 matrix, got shape {matrix.shape}")
    if max_features < 1:
        raise TilesError(f"max_features must be at least 1, got {max_features}")
    features = _prepare(buildings)
    cls = infer_class([f.row for f in features])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _Written()
    children: list[Tile] = []
    if features:
        tree = quadtree(np.array([f.centroid_xy for f in features]), max_features)
        (out_dir / BUILDINGS_DIR).mkdir(exist_ok=True)
        children.append(_building_tile(tree, features, cls, out_dir, written, progress))
    if terrain is not None:
        content = terrain_glb(terrain)
        _save(out_dir / TERRAIN_URI, content, written)
        children.append(_leaf(content, TERRAIN_URI))
    if not children:
        raise TilesError("nothing to write: no buildings and no terrain")
    box = BoundingVolume.union([c.bounding_volume for c in children])
    root = Tile(box, _error(box), refine="ADD", transform=matrix, children=children)
    tileset = Tileset(Asset("1.1", "district-twin tiles"), root.geometric_error, root)
    text = json.dumps(tileset.to_dict(), indent=1).encode()
    (out_dir / TILESET_JSON).write_bytes(text)
    return TilesetReport(
        tiles=len(root.walk()),
        glbs=written.glbs,
        bytes=written.bytes + len(text),
        features=written.features,
    )


def _prepare(buildings: Sequence[FeatureMesh]) -> list[PreparedFeature]:
    seen: set[str] = set()
    out = []
    for building in buildings:
        if building.element_id in seen:
            raise MeshError("element id appears twice", element_id=building.element_id)
        seen.add(building.element_id)
        pos, tri = mesh.checked(building.positions, building.triangles, building.element_id)
        positions, normals, triangles = mesh.flat_shaded(pos, tri)
        props = {
            k: v.item() if isinstance(v, np.generic) else v
            for k, v in building.properties.items()
            if k != "element_id"
        }
        row = {"element_id": building.element_id, **props}
        out.append(PreparedFeature(row, positions, normals, triangles))
    return out


def _error(box: BoundingVolume) -> float:
    """Geometric error (metres) of a tile without content: its box's horizontal diagonal."""
    lo, hi = box.corners_min_max()
    return float(np.hypot(*(hi - lo)[:2]))


def _leaf(content: GlbContent, uri: str) -> Tile:
    box = BoundingVolume.from_min_max(content.lo, content.hi, pad=BOX_PAD)
    return Tile(box, 0.0, content=Content(uri))


def _save(path: Path, content: GlbContent, written: _Written) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.data)
    written.bytes += len(content.data)
    written.glbs += 1


def _building_tile(
    node: QuadNode,
    features: list[PreparedFeature],
    cls: FeatureClass,
    out_dir: Path,
    written: _Written,
    progress: Callable[[int], None] | None,
) -> Tile:
    if not node.children:
        uri = f"{BUILDINGS_DIR}/b{node.address}.glb"
        members = [features[i] for i in node.members]
        content = building_glb(members, cls)
        _save(out_dir / uri, content, written)
        written.features += len(members)
        if progress is not None:
            progress(written.features)
        return _leaf(content, uri)
    children = [
        _building_tile(child, features, cls, out_dir, written, progress) for child in node.children
    ]
    box = BoundingVolume.union([c.bounding_volume for c in children])
    return Tile(box, _error(box), children=children)
