"""The buildings layer (`BuildingsWriter`): building tiles split by a quadtree, optionally a
level-of-detail tree, optionally as implicit tiling.

Check and prepare meshes → plan the quadtree (and its LOD) → write one glb per tile with
content → write subtrees (implicit). Boxes and glbs are in the tileset's ENU frame (metres).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tiles.content import GlbContent, PreparedFeature, building_glb
from tiles.errors import MeshError
from tiles.hierarchy import LodTile, plain, plan
from tiles.implicit import SUBTREE_LEVELS, ImplicitTile, subtree_file, subtree_roots
from tiles.layer import LayerResult
from tiles.lod import Outline, coarse_features, full_bytes, outlines
from tiles.metadata import FeatureClass, infer_class
from tiles.model import FeatureMesh, TilesetMetadata
from tiles.options import TilesetOptions
from tiles.partition import quadtree
from tiles.prepare import prepare_features
from tiles.schema import buildings_group
from tiles.spec import BoundingVolume, Content, ImplicitTiling, Tile

BUILDINGS_DIR = "buildings"
IMPLICIT_CONTENT = f"{BUILDINGS_DIR}/{{level}}/{{x}}/{{y}}.glb"
IMPLICIT_SUBTREES = f"{BUILDINGS_DIR}/subtrees/{{level}}.{{x}}.{{y}}.subtree"
# Most bytes of uncompressed glb content a building tile is planned for (the estimate leaves
# room for the glb's JSON, so files stay under 1 MB).
MAX_CONTENT_BYTES = 900_000
# Bounding boxes grow by this much (metres) on every side, so float32 rounding stays inside.
BOX_PAD = 0.005


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
    options: TilesetOptions
    group: int | None
    progress: Callable[[int], None] | None
    written: _Written = field(default_factory=_Written)


@dataclass
class BuildingsWriter:
    """The buildings layer: one `FeatureMesh` per building (positions ENU metres; element ids
    unique); `progress` is called after each finest-level glb with the features written so
    far. With ``options.lod`` inner tiles draw simplified forms of their largest buildings."""

    buildings: Sequence[FeatureMesh]
    progress: Callable[[int], None] | None = None

    def group(self, metadata: TilesetMetadata) -> dict[str, Any] | None:
        """The buildings group with its feature count (none without buildings)."""
        return buildings_group(metadata, len(self.buildings)) if self.buildings else None

    def write(self, out_dir: Path, options: TilesetOptions, group: int | None) -> LayerResult:
        """Write ``out_dir/buildings/``; raises `MeshError` for a broken or repeated mesh."""
        features = _prepare(self.buildings)
        if not features:
            return LayerResult(None)
        cls = infer_class([f.row for f in features])
        lines = outlines(features) if options.lod else None
        job = _Job(out_dir, features, lines, cls, options, group, self.progress)
        tree = _plan(job)
        levels = max(len(t.node.address) for t in tree.walk()) + 1
        (out_dir / BUILDINGS_DIR).mkdir(exist_ok=True)
        top = _building_tiles(tree, job, levels)
        written = job.written
        return LayerResult(
            top,
            implicit_tiles=max(len(written.implicit) - 1, 0),
            glbs=written.glbs,
            bytes=written.bytes,
            largest_glb=written.largest,
            features=written.features,
            levels=levels,
            feature_class=cls,
        )


def _prepare(buildings: Sequence[FeatureMesh]) -> list[PreparedFeature]:
    seen: set[str] = set()
    for building in buildings:
        if building.element_id in seen:
            raise MeshError("element id appears twice", element_id=building.element_id)
        seen.add(building.element_id)
    return prepare_features(buildings)


def _plan(job: _Job) -> LodTile:
    """Quadtree of the features (≤ ``max_features`` and ≤ `MAX_CONTENT_BYTES` a leaf), then the
    LOD plan over it (or the plain one)."""
    weights = np.array([full_bytes(f) + 64 * len(f.row) for f in job.features], float)
    max_features = job.options.max_features
    tree = quadtree(
        np.array([f.centroid_xy for f in job.features]),
        max_features,
        weights=weights,
        max_weight=MAX_CONTENT_BYTES,
        chunk=not job.options.implicit,
    )
    if job.outlines is None:
        return plain(tree)
    return plan(tree, job.outlines, max_features, MAX_CONTENT_BYTES)


def tile_error(box: BoundingVolume) -> float:
    """Geometric error (metres) of a tile without content: its box's horizontal diagonal."""
    lo, hi = box.corners_min_max()
    return float(np.hypot(*(hi - lo)[:2]))


def _save(path: Path, content: GlbContent, written: _Written) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.data)
    written.bytes += len(content.data)
    written.glbs += 1
    written.largest = max(written.largest, len(content.data))


def _content_uri(job: _Job, lod_tile: LodTile) -> str:
    if job.options.implicit:
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
    content = building_glb(drawn, job.cls, job.options.compression)
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
    if not job.options.implicit:
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
        volumes.append(BoundingVolume.from_min_max(content.lo, content.hi, pad=BOX_PAD))
        ref = Content(uri, job.group)
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    error = tile_error(box) if np.isnan(lod_tile.error) else lod_tile.error
    if job.options.implicit:
        job.written.implicit[lod_tile.node.level_x_y()] = ImplicitTile(
            tuple(box.box), error, content=ref is not None
        )
    return Tile(box, error, content=ref, children=children)
