"""Write a 3D Tiles 1.1 tileset: building tiles split by a quadtree (optionally a level-of-detail
tree, optionally as implicit tiling), an optional terrain tile, optional metadata, compression
and a ``.3tz`` archive.

Life cycle: check and prepare meshes → plan the quadtree (and its LOD) → write one glb per
tile with content → write subtrees (implicit) → write ``tileset.json`` → archive. The root
tile's ``transform`` is the ENU→ECEF matrix, so every bounding volume and every glb is in the
local ENU frame (metres); glb content is y-up as glTF requires. docs/tiles.md has the layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from tiles.archive import write_3tz
from tiles.content import (
    COMPRESSIONS,
    Compression,
    GlbContent,
    PreparedFeature,
    building_glb,
    terrain_glb,
)
from tiles.errors import MeshError, TilesError
from tiles.hierarchy import LodTile, plain, plan
from tiles.implicit import ImplicitTile, subtree_file, subtree_roots
from tiles.lod import Outline, coarse_features, full_bytes, outlines
from tiles.metadata import FeatureClass, infer_class
from tiles.model import FeatureMesh, TerrainMesh, TilesetMetadata
from tiles.partition import quadtree
from tiles.prepare import prepare_features
from tiles.schema import (
    BUILDINGS_GROUP,
    TERRAIN_GROUP,
    layer_groups,
    tileset_entity,
    tileset_schema,
)
from tiles.spec import Asset, BoundingVolume, Content, ImplicitTiling, Tile, Tileset
from tiles.terrain import TerrainGrid, write_terrain_tree

Tiling = Literal["explicit", "implicit"]
TILESET_JSON = "tileset.json"
BUILDINGS_DIR = "buildings"
TERRAIN_URI = "terrain/terrain.glb"
IMPLICIT_CONTENT = f"{BUILDINGS_DIR}/{{level}}/{{x}}/{{y}}.glb"
IMPLICIT_SUBTREES = f"{BUILDINGS_DIR}/subtrees/{{level}}.{{x}}.{{y}}.subtree"
# Levels per subtree file under implicit tiling.
SUBTREE_LEVELS = 4
# Most bytes of uncompressed glb content a building tile is planned for (the estimate leaves
# room for the glb's JSON, so files stay under 1 MB).
MAX_CONTENT_BYTES = 900_000
# Bounding boxes grow by this much (metres) on every side, so float32 rounding stays inside.
BOX_PAD = 0.005


@dataclass
class TilesetReport:
    """What `write_tileset` wrote: tiles (explicit tiles plus available implicit tiles), glb
    files, bytes on disk under the folder, features (finest level), the deepest level, the
    largest glb (bytes) and the archive's path and size when one was written."""

    tiles: int
    glbs: int
    bytes: int
    features: int
    levels: int = 0
    largest_glb: int = 0
    archive: Path | None = None
    archive_bytes: int = 0


@dataclass
class _Written:
    bytes: int = 0
    glbs: int = 0
    features: int = 0
    largest: int = 0
    implicit: dict[tuple[int, int, int], ImplicitTile] = field(default_factory=dict)


@dataclass
class _Job:
    """What writing building content needs, shared by every tile."""

    out_dir: Path
    features: list[PreparedFeature]
    outlines: list[Outline] | None
    cls: FeatureClass
    compression: Compression
    tiling: Tiling
    group: int | None
    written: _Written
    progress: Callable[[int], None] | None


def write_tileset(
    out_dir: Path,
    enu_to_ecef: ArrayLike,
    buildings: Sequence[FeatureMesh],
    terrain: TerrainMesh | TerrainGrid | None = None,
    *,
    max_features: int = 400,
    progress: Callable[[int], None] | None = None,
    lod: bool = False,
    tiling: Tiling = "explicit",
    compression: Compression = "none",
    archive: bool = False,
    metadata: TilesetMetadata | None = None,
    extra_children: Sequence[Tile] = (),
) -> TilesetReport:
    """Write ``out_dir/tileset.json`` and its content.

    Parameters
    ----------
    out_dir
        Folder to write into (created if missing).
    enu_to_ecef
        4×4 matrix taking the local ENU frame (metres) to ECEF (metres); the root transform.
    buildings
        One `FeatureMesh` per building (positions ENU metres); element ids must be unique.
    terrain
        Optional ground: one mesh (ENU metres) written as one tile, or a height grid written
        as a terrain LOD quadtree (`tiles.terrain`).
    max_features
        Most features in one glb (leaves; and the most coarse buildings an inner LOD tile
        draws).
    progress
        Called after each finest-level building glb with the features written so far.
    lod
        Inner quadtree tiles draw simplified forms of their largest buildings (refine
        REPLACE); leaves keep every building at full detail.
    tiling
        ``explicit``: every tile in tileset.json; ``implicit``: the building quadtree and
        the terrain tree (a `TerrainGrid`) each as 3D Tiles 1.1 implicit tiling (template
        URIs, ``.subtree`` files), and the schema's tile class for those and for implicit
        `extra_children`.
    compression
        ``none`` (float32 attributes), ``meshopt`` (KHR_mesh_quantization +
        EXT_meshopt_compression; the `meshoptimizer` package) or ``draco``
        (KHR_draco_mesh_compression; the `DracoPy` package).
    archive
        Also write the folder as a single ``.3tz`` archive at ``out_dir.with_suffix(".3tz")``.
    metadata
        Dataset metadata written as the tileset ``schema``, ``metadata`` and layer ``groups``.
    extra_children
        Tiles already written under `out_dir` (e.g. point-cloud external tilesets, boxes in
        the ENU frame) hung under the root beside buildings and terrain.
    """
    matrix = np.asarray(enu_to_ecef, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise TilesError(f"enu_to_ecef must be a finite 4x4 matrix, got shape {matrix.shape}")
    if max_features < 1:
        raise TilesError(f"max_features must be at least 1, got {max_features}")
    if tiling not in ("explicit", "implicit"):
        raise TilesError(f"tiling must be explicit or implicit, got {tiling!r}")
    if compression not in COMPRESSIONS:
        raise TilesError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    features = _prepare(buildings)
    cls = infer_class([f.row for f in features])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _Written()
    groups, group_index = (
        layer_groups(metadata, buildings=len(features) if features else None, terrain=bool(terrain))
        if metadata is not None
        else ([], {})
    )
    children: list[Tile] = []
    levels = 0
    if features:
        job = _Job(
            out_dir,
            features,
            outlines(features) if lod else None,
            cls,
            compression,
            tiling,
            group_index.get(BUILDINGS_GROUP),
            written,
            progress,
        )
        tree = _plan(job, max_features)
        levels = max(len(t.node.address) for t in tree.walk()) + 1
        (out_dir / BUILDINGS_DIR).mkdir(exist_ok=True)
        children.append(_building_tiles(tree, job, levels))
    # Tiles inside implicit tilings besides the tile that holds each.
    implicit_tiles = max(len(written.implicit) - 1, 0)
    if isinstance(terrain, TerrainGrid):
        top, terrain_report = write_terrain_tree(
            out_dir,
            terrain,
            compression=compression,
            group=group_index.get(TERRAIN_GROUP),
            subtree_levels=SUBTREE_LEVELS if tiling == "implicit" else None,
        )
        written.bytes += terrain_report.bytes
        written.glbs += terrain_report.glbs
        written.largest = max(written.largest, terrain_report.largest_glb)
        if top.implicit_tiling is not None:
            implicit_tiles += terrain_report.tiles - 1
        children.append(top)
    elif terrain is not None:
        content = terrain_glb(terrain, compression)
        _save(out_dir / TERRAIN_URI, content, written)
        children.append(_leaf(content, Content(TERRAIN_URI, group_index.get(TERRAIN_GROUP))))
    children.extend(extra_children)
    if not children:
        raise TilesError("nothing to write: no buildings, terrain or point cloud")
    box = BoundingVolume.union([c.bounding_volume for c in children])
    root = Tile(box, _error(box), refine="ADD", transform=matrix, children=children)
    # External tilesets (point clouds) may hold implicit tiling too: CesiumJS reads subtree
    # metadata with the root tileset's schema, so it carries the tile class then as well.
    implicit = tiling == "implicit"
    tileset = Tileset(Asset("1.1", "district-twin tiles"), root.geometric_error, root)
    if metadata is not None or implicit:
        tileset.schema = tileset_schema(cls if features else None, tiles=implicit)
    if metadata is not None:
        tileset.metadata = tileset_entity(metadata)
        tileset.groups = groups
    text = json.dumps(tileset.to_dict(), indent=1).encode()
    (out_dir / TILESET_JSON).write_bytes(text)
    report = TilesetReport(
        tiles=len(root.walk()) + implicit_tiles,
        glbs=written.glbs,
        bytes=written.bytes + len(text),
        features=written.features,
        levels=levels,
        largest_glb=written.largest,
    )
    if archive:
        report.archive = out_dir.with_suffix(".3tz")
        report.archive_bytes = write_3tz(out_dir, report.archive)
    return report


def _prepare(buildings: Sequence[FeatureMesh]) -> list[PreparedFeature]:
    seen: set[str] = set()
    for building in buildings:
        if building.element_id in seen:
            raise MeshError("element id appears twice", element_id=building.element_id)
        seen.add(building.element_id)
    return prepare_features(buildings)


def _plan(job: _Job, max_features: int) -> LodTile:
    """Quadtree of the features (≤ `max_features` and ≤ `MAX_CONTENT_BYTES` a leaf), then the
    LOD plan over it (or the plain one)."""
    weights = np.array([full_bytes(f) + 64 * len(f.row) for f in job.features], float)
    tree = quadtree(
        np.array([f.centroid_xy for f in job.features]),
        max_features,
        weights=weights,
        max_weight=MAX_CONTENT_BYTES,
        chunk=job.tiling == "explicit",
    )
    if job.outlines is None:
        return plain(tree)
    return plan(tree, job.outlines, max_features, MAX_CONTENT_BYTES)


def _error(box: BoundingVolume) -> float:
    """Geometric error (metres) of a tile without content: its box's horizontal diagonal."""
    lo, hi = box.corners_min_max()
    return float(np.hypot(*(hi - lo)[:2]))


def _content_box(content: GlbContent) -> BoundingVolume:
    return BoundingVolume.from_min_max(content.lo, content.hi, pad=BOX_PAD)


def _leaf(content: GlbContent, ref: Content) -> Tile:
    return Tile(_content_box(content), 0.0, content=ref)


def _save(path: Path, content: GlbContent, written: _Written) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.data)
    written.bytes += len(content.data)
    written.glbs += 1
    written.largest = max(written.largest, len(content.data))


def _content_uri(job: _Job, lod_tile: LodTile) -> str:
    if job.tiling == "implicit":
        level, x, y = lod_tile.node.level_x_y()
        return IMPLICIT_CONTENT.format(level=level, x=x, y=y)
    return f"{BUILDINGS_DIR}/b{lod_tile.node.address}.glb"


def _write_content(job: _Job, lod_tile: LodTile) -> tuple[str, GlbContent] | None:
    if not len(lod_tile.content):
        return None
    if lod_tile.coarse and job.outlines is not None:
        indices = lod_tile.content.tolist()
        drawn = coarse_features(
            [job.features[i] for i in indices], [job.outlines[i] for i in indices]
        )
    else:
        drawn = [job.features[i] for i in lod_tile.content]
    content = building_glb(drawn, job.cls, job.compression)
    uri = _content_uri(job, lod_tile)
    _save(job.out_dir / uri, content, job.written)
    if not lod_tile.children:
        job.written.features += len(drawn)
        if job.progress is not None:
            job.progress(job.written.features)
    return uri, content


def _building_tiles(tree: LodTile, job: _Job, levels: int) -> Tile:
    """The building part of the tree: explicit tiles, or one tile holding implicit tiling."""
    top = _building_tile(tree, job)
    if job.tiling == "explicit":
        if job.outlines is not None:
            top.refine = "REPLACE"
        return top
    for coord in subtree_roots(job.written.implicit, SUBTREE_LEVELS):
        level, x, y = coord
        uri = IMPLICIT_SUBTREES.format(level=level, x=x, y=y)
        path = job.out_dir / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        data = subtree_file(job.written.implicit, coord, SUBTREE_LEVELS)
        path.write_bytes(data)
        job.written.bytes += len(data)
    tiling = ImplicitTiling(SUBTREE_LEVELS, available_levels=levels, subtrees_uri=IMPLICIT_SUBTREES)
    return Tile(
        top.bounding_volume,
        top.geometric_error,
        refine="REPLACE",
        content=Content(IMPLICIT_CONTENT, job.group),
        implicit_tiling=tiling,
    )


def _building_tile(lod_tile: LodTile, job: _Job) -> Tile:
    """Write the content of `lod_tile` and below; the explicit tile (for implicit tiling also
    recorded in `job.written.implicit`)."""
    children = [_building_tile(child, job) for child in lod_tile.children]
    written = _write_content(job, lod_tile)
    volumes = [c.bounding_volume for c in children]
    ref = None
    if written is not None:
        uri, content = written
        volumes.append(_content_box(content))
        ref = Content(uri, job.group)
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    error = _error(box) if np.isnan(lod_tile.error) else lod_tile.error
    if job.tiling == "implicit":
        job.written.implicit[lod_tile.node.level_x_y()] = ImplicitTile(
            tuple(box.box), error, content=ref is not None
        )
    return Tile(box, error, content=ref, children=children)
