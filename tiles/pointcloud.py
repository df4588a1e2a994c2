"""Write a point cloud as a 3D Tiles 1.1 external tileset of glTF ``POINTS`` glb tiles.

Life cycle (streamed, bounded memory):

1. **Bin**: every reader range (a callable giving `PointChunk` s, run in a worker process when
   there are several) is streamed chunk by chunk; each point goes to a cell of a fixed 2D grid
   (2^k × 2^k over the cloud's estimated ENU extent, k chosen so a cell holds about
   `CELL_POINTS`) and is appended to that cell's spill file on disk.
2. **Cells**: each cell (again in a worker) is loaded alone and split into a tree: a tile with
   more than `LEAF_POINTS` points keeps a spatially uniform subsample (one random point per
   voxel of its extent / `SAMPLE_GRID`) and hands the rest to 2, 4 or 8 children (axes at
   least half as long as the longest are halved); refinement is ADD, so no point is written
   twice. A tile's geometric error is its voxel size (the spacing of its subsample), 0 at leaves.
3. **Pyramid**: the cells' top tiles are merged upwards (quadtree levels k-1 … 0), each parent
   taking a uniform subsample of its children's top content.
4. **Finish**: ``tileset.json`` with tight bounding boxes (padded by `BOX_PAD`).

With ``tiling="implicit"`` the tree is a regular octree written as 3D Tiles 1.1 implicit tiling:
the root is a cube (side = the largest extent of the estimated bounds, anchored at their min
corner, ENU), tile (level, x, y, z) covers its octant, the binning grid is the octree's columns
at level k (a cell yields every level-k tile stacked in its column), a tile splits into its
eight octants, and the pyramid merges level-k tiles upwards by octree parent. Content goes to
``{level}/{x}/{y}/{z}.glb``, availability and each tile's tight box and error to
``subtrees/{level}.{x}.{y}.{z}.subtree`` (`tiles.implicit`). Points outside the estimated
bounds belong to the edge octants (their tiles' tight boxes still hold them).

glb content: one node whose translation is the tile centre (glTF y-up), one primitive of mode
POINTS with float32 POSITION relative to it, COLOR_0 (unsigned byte, normalised) when the cloud
has colours, and ``_CLASSIFICATION`` (UINT8) and ``_INTENSITY`` (UINT16) vertex attributes
exposed as EXT_structural_metadata property attributes of class ``point``. Positions are in
the caller's local ENU frame (metres); the parent tileset's transform places it on the globe.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tiles import mesh
from tiles.content import QUANTIZATION
from tiles.errors import TilesError
from tiles.glb import ARRAY_BUFFER, MESHOPT, GlbBuilder
from tiles.implicit import (
    SUBTREE_LEVELS,
    ImplicitTile,
    OctreeCoord,
    subtree_file,
    subtree_roots,
)
from tiles.layer import LayerResult
from tiles.model import TilesetMetadata
from tiles.options import Compression, TilesetOptions
from tiles.reports import PointCloudReport
from tiles.schema import TILE_CLASS, TILE_PROPERTIES
from tiles.spec import Asset, BoundingVolume, Content, ImplicitTiling, Tile, Tileset

GENERATOR = "district-twin tiles"
STRUCTURAL_METADATA = "EXT_structural_metadata"
POINTS_MODE = 0
# Most points in a tile (24 bytes a point in the glb: under 1 MB of content); a tile with more
# keeps a subsample of at most as many and hands the rest to its children.
LEAF_POINTS = 40_000
# Voxels per side of a tile's extent for its uniform subsample (~SAMPLE_GRID² on flat ground).
SAMPLE_GRID = 128
# Points a binning cell is planned for (cells are loaded one at a time).
CELL_POINTS = 1_000_000
# Bounding boxes grow by this much (metres) on every side, so float32 rounding stays inside.
BOX_PAD = 0.005
POINT_CLASS = "point"
POINT_SCHEMA: dict[str, Any] = {
    "id": "pointcloud",
    "classes": {
        POINT_CLASS: {
            "name": "Point",
            "properties": {
                "classification": {
                    "type": "SCALAR",
                    "componentType": "UINT8",
                    "description": "ASPRS LAS classification code.",
                },
                "intensity": {
                    "type": "SCALAR",
                    "componentType": "UINT16",
                    "description": "Return intensity as stored in the LAS file.",
                },
            },
        }
    },
}
# Implicit tiling: content and subtree template URIs (relative to the cloud's tileset.json),
# and the deepest octree level (a tile there is a leaf, whatever it holds: guards against piles
# of identical points).
IMPLICIT_CONTENT = "{level}/{x}/{y}/{z}.glb"
IMPLICIT_SUBTREES = "subtrees/{level}.{x}.{y}.{z}.subtree"
MAX_LEVEL = 24
# One point as spilled to disk and held in memory: ENU metres, colour, class, intensity.
POINT_DTYPE = np.dtype(
    [("xyz", "<f8", (3,)), ("rgb", "u1", (3,)), ("cls", "u1"), ("intensity", "<u2")]
)

Points = NDArray[np.void]


@dataclass
class PointChunk:
    """A slab of points: ``positions`` (n, 3) ENU metres; ``colors`` (n, 3) uint8 or None;
    ``classification`` (n,) uint8; ``intensity`` (n,) uint16."""

    positions: NDArray[np.float64]
    colors: NDArray[np.uint8] | None
    classification: NDArray[np.uint8]
    intensity: NDArray[np.uint16]

    def records(self) -> Points:
        """The chunk as `POINT_DTYPE` records."""
        out = np.empty(len(self.positions), POINT_DTYPE)
        out["xyz"] = self.positions
        out["rgb"] = 0 if self.colors is None else self.colors
        out["cls"] = self.classification
        out["intensity"] = self.intensity
        return out


# A reader range: called with no arguments in a worker process, it streams its points. It must
# be picklable (a `functools.partial` of a module-level function).
ChunkSource = Callable[[], Iterable[PointChunk]]


@dataclass
class _Grid:
    """The binning grid: `side` cells per axis over the xy extent ``lo``..``hi`` (metres)."""

    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    side: int

    def cell_size(self) -> NDArray[np.float64]:
        return np.maximum((self.hi[:2] - self.lo[:2]) / self.side, 1e-9)

    def cell_of(self, xyz: NDArray[np.float64]) -> NDArray[np.integer[Any]]:
        ij = np.floor((xyz[:, :2] - self.lo[:2]) / self.cell_size()).astype(np.int64)
        np.clip(ij, 0, self.side - 1, out=ij)
        cells = ij[:, 0] * self.side + ij[:, 1]
        # 16-bit cell numbers sort by radix (fast) where the grid allows.
        return cells.astype(np.uint16) if self.side <= 256 else cells

    def cell_box(self, cell: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        i, j = divmod(cell, self.side)
        size = self.cell_size()
        lo = np.array([self.lo[0] + i * size[0], self.lo[1] + j * size[1], self.lo[2]])
        hi = np.array([lo[0] + size[0], lo[1] + size[1], self.hi[2]])
        return lo, hi

    def depth(self) -> int:
        """Quadtree levels above the cells (log2 of `side`)."""
        return self.side.bit_length() - 1


@dataclass
class _Cube:
    """The implicit octree's root: a cube of `side` metres with min corner ``lo`` (ENU)."""

    lo: NDArray[np.float64]
    side: float

    def octant(self, coord: tuple[int, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(min, max) corners (ENU metres) of tile (level, x, y, z)."""
        level, *xyz = coord
        size = self.side / 2**level
        lo = self.lo + np.array(xyz, float) * size
        return lo, lo + size

    def z_index(self, z: NDArray[np.float64], level: int) -> NDArray[np.int64]:
        """Octree z index at `level` of heights `z` (metres; outside the cube: clamped)."""
        index = np.floor((z - self.lo[2]) / (self.side / 2**level)).astype(np.int64)
        return np.clip(index, 0, 2**level - 1)


def _empty() -> Points:
    return np.empty(0, POINT_DTYPE)


@dataclass
class _Node:
    """A tile being planned: content file stem, nominal box, points it draws, children,
    geometric error, and its coordinate: (level, i, j) of a binning-grid pyramid tile, or the
    octree's (level, x, y, z) under implicit tiling (none for explicit tiles below a cell)."""

    address: str
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    points: Points
    error: float = 0.0
    children: list[Tile] = field(default_factory=list)
    coord: tuple[int, ...] = ()


def _stem(coord: tuple[int, ...]) -> str:
    """Content file stem of octree tile (level, x, y, z): ``level/x/y/z``."""
    return "/".join(map(str, coord))


def _octree_node(cube: _Cube, coord: tuple[int, ...], points: Points) -> _Node:
    """Tile (level, x, y, z) of the implicit octree over its octant."""
    lo, hi = cube.octant(coord)
    return _Node(_stem(coord), lo, hi, points, coord=coord)


@dataclass
class _Out:
    """What a writer wrote; with `octree` every tile is also recorded in `implicit`."""

    folder: Path
    octree: bool
    compression: Compression
    glbs: int = 0
    bytes: int = 0
    levels: int = 0
    implicit: dict[OctreeCoord, ImplicitTile] = field(default_factory=dict)


@dataclass(frozen=True)
class PointCloud:
    """A point cloud to tile.

    Parameters
    ----------
    sources
        Reader ranges, each streaming `PointChunk` s (ENU metres); run in parallel when there
        are several workers (in spawned processes, so they must be picklable).
    bounds
        Estimated (min, max) corners of the cloud, ENU metres; used only to lay out the
        binning grid (points outside go to the edge cells) and, under implicit tiling, the
        octree's root cube; boxes come from the points.
    count
        Expected number of points (from the file headers), to size the grid.
    colors
        Whether to write COLOR_0.
    """

    sources: Sequence[ChunkSource]
    bounds: tuple[ArrayLike, ArrayLike]
    count: int
    colors: bool = True


@dataclass
class PointCloudWriter:
    """The point-cloud layer: `cloud` as an external tileset in ``{folder}/`` under the
    tileset folder, binned and tiled by `workers` processes; `progress` is called with the
    points binned so far. Its result counts no glb of the root tileset: the external tileset's
    counts are in its `PointCloudReport`."""

    folder: str
    cloud: PointCloud
    workers: int = 1
    progress: Callable[[int], None] | None = None

    def group(self, metadata: TilesetMetadata) -> dict[str, Any] | None:
        """No metadata group."""
        return None

    def write(self, out_dir: Path, options: TilesetOptions, group: int | None) -> LayerResult:
        """Write ``out_dir/{folder}/tileset.json`` and its tiles; the tile refers to it."""
        tile, report = write_pointcloud(out_dir / self.folder, self.cloud, options,
                                        workers=self.workers, progress=self.progress)  # fmt: skip
        tile.content = Content(f"{self.folder}/tileset.json")
        return LayerResult(tile, report=report)


def write_pointcloud(
    out_dir: Path,
    cloud: PointCloud,
    options: TilesetOptions,
    *,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[Tile, PointCloudReport]:
    """Write ``out_dir/tileset.json`` (created; it should be empty) and its glb tiles from
    streamed point chunks, with `workers` processes (1: everything in this process);
    `progress` is called with the number of points binned so far.

    ``options.tiling`` ``implicit`` writes a regular octree as 3D Tiles 1.1 implicit tiling;
    ``options.compression`` ``meshopt`` writes glbs with uint16 positions
    (KHR_mesh_quantization) and EXT_meshopt_compression views (`point_glb`), ``none`` and
    ``draco`` plain glbs.

    Returns the tile that refers to the new tileset (external tileset content, in the parent's
    frame) and a report."""
    grid, cube = _layout(cloud, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = _Out(out_dir, octree=cube is not None, compression=options.compression)
    spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=out_dir))
    try:
        with _executor(workers) as pool:
            counts = _bin(pool, cloud.sources, grid, spill, progress)
            if not counts.sum():
                raise TilesError("the point cloud holds no point")
            cells = [int(c) for c in np.flatnonzero(counts)]
            jobs = [(spill, grid, c, out, cloud.colors, cube) for c in cells]
            tops = list(pool.map(_tile_cell, *zip(*jobs, strict=True)))
        root = _merge_cells(tops, grid, cube, out, cloud.colors)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    report = _write_cloud_tileset(root, grid, cube, out)
    report.points = int(counts.sum())
    ref = Tile(root.bounding_volume, root.geometric_error, content=Content("tileset.json"))
    return ref, report


def _layout(cloud: PointCloud, options: TilesetOptions) -> tuple[_Grid, _Cube | None]:
    """The binning grid and, under implicit tiling, the octree's root cube."""
    lo, hi = (np.asarray(b, float) for b in cloud.bounds)
    if (
        lo.shape != (3,)
        or hi.shape != (3,)
        or not (np.isfinite(lo).all() and np.isfinite(hi).all())
    ):
        raise TilesError("point cloud bounds must be two finite 3-vectors")
    hi = np.maximum(hi, lo + 1e-6)
    if not options.implicit:
        return _Grid(lo, hi, _grid_side(cloud.count)), None
    cube = _Cube(lo, float((hi - lo).max()))
    # The grid spans the cube's square: size it for the part of it the cloud fills.
    filled = max(float((hi - lo)[:2].prod()) / cube.side**2, 1 / 16)
    return _Grid(lo, lo + cube.side, _grid_side(round(cloud.count / filled))), cube


def _merge_cells(
    tops: list[_CellTop], grid: _Grid, cube: _Cube | None, out: _Out, colors: bool
) -> Tile:
    """Add up what the cell workers wrote and merge their top tiles into the root tile."""
    for top in tops:
        out.glbs += top.glbs
        out.bytes += top.bytes
        out.levels = max(out.levels, top.levels)
        out.implicit.update(top.implicit)
    nodes = [node for top in tops for node in top.nodes]
    parent = _grid_parent(grid) if cube is None else _octree_parent(cube)
    return _pyramid(nodes, grid.depth(), parent, out, colors)


def _write_cloud_tileset(
    root: Tile, grid: _Grid, cube: _Cube | None, out: _Out
) -> PointCloudReport:
    """Write the cloud's ``tileset.json`` (and subtrees under implicit tiling); the report
    without its point count."""
    if cube is None:
        tileset = Tileset(Asset("1.1", GENERATOR), root.geometric_error, root)
        tileset.schema = POINT_SCHEMA
        tiles, levels = len(root.walk()), out.levels + 1 + grid.depth()
    else:
        tileset = _implicit_tileset(root, cube, out)
        tiles, levels = len(out.implicit), max(c[0] for c in out.implicit) + 1
    text = json.dumps(tileset.to_dict(), indent=1).encode()
    (out.folder / "tileset.json").write_bytes(text)
    return PointCloudReport(tiles=tiles, glbs=out.glbs, bytes=out.bytes + len(text), levels=levels)


def _grid_side(count: int) -> int:
    """Binning-grid cells per axis (a power of 2) so a cell holds about `CELL_POINTS`."""
    return 2 ** max(0, math.ceil(math.log(max(count, 1) / CELL_POINTS, 4)))


def _implicit_tileset(root: Tile, cube: _Cube, out: _Out) -> Tileset:
    """Write every subtree file; the tileset whose root tile holds the implicit octree (its
    volume the root cube, which implicit tiling subdivides; tiles get their tight boxes and
    errors from the subtrees' ``tile`` property tables)."""
    levels = max(c[0] for c in out.implicit) + 1
    per = min(SUBTREE_LEVELS, levels)
    for coord in subtree_roots(out.implicit, per):
        level, x, y, z = coord
        path = out.folder / IMPLICIT_SUBTREES.format(level=level, x=x, y=y, z=z)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = subtree_file(out.implicit, coord, per)
        path.write_bytes(data)
        out.bytes += len(data)
    tiling = ImplicitTiling(per, levels, IMPLICIT_SUBTREES, "OCTREE")
    volume = BoundingVolume.from_min_max(cube.lo, cube.lo + cube.side)
    top = Tile(volume, root.geometric_error, refine="ADD", content=Content(IMPLICIT_CONTENT),
               implicit_tiling=tiling)  # fmt: skip
    tileset = Tileset(Asset("1.1", GENERATOR), root.geometric_error, top)
    classes = {**POINT_SCHEMA["classes"],
               TILE_CLASS: {"name": "Implicit tile", "properties": TILE_PROPERTIES}}  # fmt: skip
    tileset.schema = {**POINT_SCHEMA, "classes": classes}
    return tileset


class _Inline(Executor):
    """An executor that runs everything in this process, in order."""

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], **_: Any) -> Any:
        return [fn(*args) for args in zip(*iterables, strict=True)]


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _Inline()
    # spawn: readers (lazrs) start threads, and forking after that can hang the children.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _bin(
    pool: Executor,
    sources: Sequence[ChunkSource],
    grid: _Grid,
    spill: Path,
    progress: Callable[[int], None] | None,
) -> NDArray[np.int64]:
    """Stream every source into per-cell spill files; points per cell."""
    counts = np.zeros(grid.side**2, np.int64)
    jobs = [(source, grid, spill, k) for k, source in enumerate(sources)]
    for part in pool.map(_bin_source, *zip(*jobs, strict=True)):
        counts += part
        if progress is not None:
            progress(int(counts.sum()))
    return counts


def _bin_source(source: ChunkSource, grid: _Grid, spill: Path, k: int) -> NDArray[np.int64]:
    """Worker: append the points of one source to ``cell-{cell}.{k}.bin`` files."""
    counts = np.zeros(grid.side**2, np.int64)
    for chunk in source():
        records = chunk.records()
        if not len(records):
            continue
        cells = grid.cell_of(records["xyz"])
        order = np.argsort(cells, kind="stable")
        cells, records = cells[order], records[order]
        edges = np.flatnonzero(np.diff(cells)) + 1
        for start, stop in zip(np.r_[0, edges], np.r_[edges, len(cells)], strict=True):
            cell = int(cells[start])
            with open(spill / f"cell-{cell}.{k}.bin", "ab") as fh:
                records[start:stop].tofile(fh)
            counts[cell] += stop - start
    return counts


@dataclass
class _CellTop:
    """What a cell worker hands back: its top tiles' points (not written yet) and children
    (one top, or under implicit tiling every level-k octree tile of the column), what it
    wrote, and the implicit tiles it wrote."""

    nodes: list[_Node]
    glbs: int
    bytes: int
    levels: int
    implicit: dict[OctreeCoord, ImplicitTile]


def _tile_cell(
    spill: Path, grid: _Grid, cell: int, planned: _Out, colors: bool, cube: _Cube | None
) -> _CellTop:
    """Worker: load one cell, shuffle it (so first-per-voxel is a random pick) and write its
    tree below the top tile(s)."""
    parts = sorted(spill.glob(f"cell-{cell}.*.bin"))
    points = np.concatenate([np.fromfile(p, POINT_DTYPE) for p in parts])
    for p in parts:
        p.unlink()
    points = points[np.random.default_rng(cell).permutation(len(points))]
    out = _Out(planned.folder, octree=planned.octree, compression=planned.compression)
    i, j = divmod(cell, grid.side)
    if cube is None:
        lo, hi = grid.cell_box(cell)
        column = [_Node(f"c{cell}", lo, hi, points, coord=(grid.depth(), i, j))]
    else:
        column = _column(cube, grid.depth(), i, j, points)
    tops = [_split(node, out, colors, depth=0) for node in column]
    return _CellTop(tops, out.glbs, out.bytes, out.levels, out.implicit)


def _column(cube: _Cube, level: int, x: int, y: int, points: Points) -> list[_Node]:
    """The level-`level` octree tiles of column (`x`, `y`) that hold some of `points`."""
    z = cube.z_index(points["xyz"][:, 2], level)
    order = np.argsort(z, kind="stable")
    z, points = z[order], points[order]
    edges = np.flatnonzero(np.diff(z)) + 1
    return [
        _octree_node(cube, (level, x, y, int(z[start])), points[start:stop])
        for start, stop in zip(np.r_[0, edges], np.r_[edges, len(z)], strict=True)
    ]


def _split(node: _Node, out: _Out, colors: bool, depth: int) -> _Node:
    """Plan and write the subtree below `node`; `node.points` is left holding what it draws."""
    out.levels = max(out.levels, depth)
    if len(node.points) <= LEAF_POINTS or (out.octree and node.coord[0] >= MAX_LEVEL):
        return node
    keep, spacing = _subsample(node.points["xyz"], node.lo, node.hi)
    rest = node.points[~keep]
    node.points, node.error = node.points[keep], spacing
    extent = node.hi - node.lo
    halve = extent >= 0.5 * extent.max()
    mid = (node.lo + node.hi) / 2
    upper = (rest["xyz"] >= mid) & halve
    octant = (upper @ np.array([1, 2, 4])).astype(np.uint8)
    order = np.argsort(octant, kind="stable")  # radix sort of 8 values
    octant, rest = octant[order], rest[order]
    edges = np.searchsorted(octant, np.arange(9))
    for code in range(8):
        if edges[code] == edges[code + 1]:
            continue
        bits = np.array([(code >> a) & 1 for a in range(3)], bool)
        lo = np.where(bits, mid, node.lo)
        hi = np.where(halve & ~bits, mid, node.hi)
        part = rest[edges[code] : edges[code + 1]]
        if out.octree:  # a cube: every axis halved, the child is octant `code`
            level, *xyz = node.coord
            coord = (level + 1, *(2 * v + int(b) for v, b in zip(xyz, bits, strict=True)))
            child = _Node(_stem(coord), lo, hi, part, coord=coord)
        else:
            child = _Node(f"{node.address}{code}", lo, hi, part)
        child = _split(child, out, colors, depth + 1)
        node.children.append(_finish(child, out, colors))
    return node


def _subsample(
    xyz: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], float]:
    """The first point of each voxel (extent / `SAMPLE_GRID`, cubic), at most `LEAF_POINTS` of
    them (an even random pick, seeded, when there are more), and the voxel size (m)."""
    size = max(float((hi - lo).max()) / SAMPLE_GRID, 1e-6)
    ijk = np.floor((xyz - lo) / size).astype(np.int64)
    ijk -= ijk.min(axis=0)
    span = ijk.max(axis=0) + 1
    keys = (ijk[:, 0] * span[1] + ijk[:, 1]) * span[2] + ijk[:, 2]
    if span.prod() > 8 * len(xyz):  # sparse voxels: sort
        _, first = np.unique(keys, return_index=True)
    else:  # dense voxel table; writing in reverse leaves each voxel's first point
        table = np.full(int(span.prod()), -1, np.int64)
        table[keys[::-1]] = np.arange(len(xyz) - 1, -1, -1)
        first = table[table >= 0]
    if len(first) > LEAF_POINTS:  # a volumetric cloud (canopy, facades) fills many voxels
        first = np.random.default_rng(len(first)).choice(first, LEAF_POINTS, replace=False)
    keep = np.zeros(len(xyz), bool)
    keep[first] = True
    return keep, size


def _finish(node: _Node, out: _Out, colors: bool) -> Tile:
    """Write `node`'s content (if any) and make its tile (tight box over content and children);
    error never below the children's. Under implicit tiling the tile is also recorded."""
    volumes = [c.bounding_volume for c in node.children]
    content = None
    if len(node.points):
        uri = f"{node.address}.glb"
        data, lo, hi = point_glb(node.points, colors, out.compression)
        if out.octree:
            (out.folder / uri).parent.mkdir(parents=True, exist_ok=True)
        (out.folder / uri).write_bytes(data)
        out.glbs += 1
        out.bytes += len(data)
        volumes.append(BoundingVolume.from_min_max(lo, hi, pad=BOX_PAD))
        content = Content(uri)
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    error = max([node.error, *(c.geometric_error for c in node.children)])
    if out.octree:
        level, x, y, z = node.coord
        out.implicit[level, x, y, z] = ImplicitTile(tuple(box.box), error, content is not None)
    return Tile(box, error, refine="ADD" if node.children else None, content=content,
                children=node.children)  # fmt: skip


ParentOf = Callable[[_Node], _Node]


def _grid_parent(grid: _Grid) -> ParentOf:
    """The explicit pyramid's parent of a binning-grid tile (level, i, j): the quadtree cell
    one level up, over the grid's whole height."""

    def parent(node: _Node) -> _Node:
        level, i, j = node.coord
        side, i, j = 2 ** (level - 1), i // 2, j // 2
        size = (grid.hi[:2] - grid.lo[:2]) / side
        lo = np.array([grid.lo[0] + i * size[0], grid.lo[1] + j * size[1], grid.lo[2]])
        hi = np.array([lo[0] + size[0], lo[1] + size[1], grid.hi[2]])
        return _Node(f"p{side}_{i}_{j}", lo, hi, _empty(), coord=(level - 1, i, j))

    return parent


def _octree_parent(cube: _Cube) -> ParentOf:
    """The octree parent of tile (level, x, y, z)."""

    def parent(node: _Node) -> _Node:
        level, *xyz = node.coord
        return _octree_node(cube, (level - 1, *(v // 2 for v in xyz)), _empty())

    return parent


def _pyramid(tops: list[_Node], depth: int, parent_of: ParentOf, out: _Out, colors: bool) -> Tile:
    """Merge the cells' top tiles upwards `depth` levels, each parent (from `parent_of`)
    taking a uniform subsample of its children's top content; the root tile (refine ADD)."""
    level = tops
    for _ in range(depth):
        groups: dict[str, tuple[_Node, list[_Node]]] = {}
        for node in level:
            up = parent_of(node)
            groups.setdefault(up.address, (up, []))[1].append(node)
        level = [_merge(up, kids, out, colors) for up, kids in groups.values()]
    (root,) = level
    tile = _finish(root, out, colors)
    tile.refine = "ADD"
    return tile


def _merge(up: _Node, kids: list[_Node], out: _Out, colors: bool) -> _Node:
    """`up` draws a uniform subsample of its children's content; the children keep the rest
    and are written."""
    pool = np.concatenate([k.points for k in kids])
    owner = np.repeat(np.arange(len(kids)), [len(k.points) for k in kids])
    keep, up.error = _subsample(pool["xyz"], up.lo, up.hi)
    for n, kid in enumerate(kids):
        kid.points = pool[(owner == n) & ~keep]
    up.children = [_finish(k, out, colors) for k in kids if len(k.points) or k.children]
    up.points = pool[keep]
    return up


def point_glb(
    points: Points, colors: bool, compression: Compression
) -> tuple[bytes, NDArray[np.float64], NDArray[np.float64]]:
    """A POINTS glb of `POINT_DTYPE` records and the (min, max) corners (ENU m) of its points,
    as stored and as placed (with ``meshopt``, each axis may round up to half a grid step).

    Vertex attributes sit in their own views, each element 4-byte aligned as glTF asks:
    POSITION float32 VEC3, COLOR_0 uint8 VEC3 normalised (stride 4), ``_CLASSIFICATION``
    uint8 (stride 4), ``_INTENSITY`` uint16 (stride 4). With ``meshopt`` (`_quantized`)
    POSITION is uint16 (stride 8) and every view is EXT_meshopt_compression-encoded;
    ``none`` and ``draco`` write plain views."""
    xyz = points["xyz"]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    packed = compression == "meshopt"
    builder = GlbBuilder()
    node: dict[str, Any] = {"mesh": 0}
    if packed:
        position, node["translation"], node["scale"] = _quantized(builder, xyz, lo, hi)
        placed = mesh.gltf_to_enu(
            np.asarray(node["translation"]) + np.array([[0, 0, 0], [65535] * 3]) * node["scale"]
        )
        lo, hi = np.minimum(lo, placed.min(axis=0)), np.maximum(hi, placed.max(axis=0))
    else:
        centre = (lo + hi) / 2
        local = mesh.enu_to_gltf(xyz - centre).astype(np.float32)
        position = builder.add_accessor(local, target=ARRAY_BUFFER, with_bounds=True)
        node["translation"] = [float(v) for v in mesh.enu_to_gltf(centre)]
    attributes = {"POSITION": position}
    if colors:
        attributes["COLOR_0"] = _strided(builder, points["rgb"], "VEC3", packed, normalized=True)
    attributes["_CLASSIFICATION"] = _strided(builder, points["cls"], "SCALAR", packed)
    attributes["_INTENSITY"] = _strided(
        builder, points["intensity"].astype("<u2"), "SCALAR", packed
    )
    return builder.to_glb(_point_document(node, attributes, colors, packed)), lo, hi


def _strided(
    builder: GlbBuilder, values: NDArray[Any], kind: str, packed: bool, normalized: bool = False
) -> int:
    """An accessor of `values` in its own view, each element padded to 4 bytes (stride 4),
    meshopt-encoded when `packed`."""
    n = len(values)
    padded = np.zeros((n, 4 // values.dtype.itemsize), values.dtype)
    width = 1 if values.ndim == 1 else values.shape[1]
    padded[:, :width] = values.reshape(n, width)
    if packed:
        rows = padded.view(np.uint8).reshape(n, 4)
        view = builder.add_meshopt_view(rows, mode="ATTRIBUTES", target=ARRAY_BUFFER)
    else:
        view = builder.add_buffer_view(padded.tobytes(), ARRAY_BUFFER)
        builder.buffer_views[view]["byteStride"] = 4
    return builder.add_view_accessor(view, values.dtype, n, kind, normalized=normalized)


def _point_document(
    node: dict[str, Any], attributes: dict[str, int], colors: bool, packed: bool
) -> dict[str, Any]:
    """The glTF JSON of a POINTS glb: one node, one primitive of `attributes`, the ``point``
    property attributes, a plain material (white over colours, grey without)."""
    base = [1.0, 1.0, 1.0, 1.0] if colors else [0.8, 0.8, 0.8, 1.0]
    primitive = {
        "attributes": attributes,
        "mode": POINTS_MODE,
        "material": 0,
        "extensions": {STRUCTURAL_METADATA: {"propertyAttributes": [0]}},
    }
    required = [QUANTIZATION, MESHOPT] if packed else []
    properties = {
        "classification": {"attribute": "_CLASSIFICATION"},
        "intensity": {"attribute": "_INTENSITY"},
    }
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "extensionsUsed": [STRUCTURAL_METADATA, *required],
        "extensions": {
            STRUCTURAL_METADATA: {
                "schema": POINT_SCHEMA,
                "propertyAttributes": [{"class": POINT_CLASS, "properties": properties}],
            }
        },
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [node],
        "meshes": [{"primitives": [primitive]}],
        "materials": [
            {
                "name": "points",
                "pbrMetallicRoughness": {"baseColorFactor": base, "metallicFactor": 0},
            }
        ],
    }
    if required:
        document["extensionsRequired"] = required
    return document


def _quantized(
    builder: GlbBuilder, xyz: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> tuple[int, list[float], list[float]]:
    """A uint16 VEC3 POSITION accessor (stride 8, meshopt-encoded) of ENU points `xyz` within
    (`lo`, `hi`), and the node translation and per-axis scale (glTF y-up metres) that place it:
    each axis's grid spans that axis of the box in 65535 steps, so a placed point is within
    half a step (extent / 131070) of the source on each axis and inside the box."""
    corner = np.minimum(mesh.enu_to_gltf(lo), mesh.enu_to_gltf(hi))
    step = np.maximum(np.abs(mesh.enu_to_gltf(hi - lo)) / 65535, 1e-9)
    grid = np.zeros((len(xyz), 4), np.uint16)
    grid[:, :3] = np.clip(np.rint((mesh.enu_to_gltf(xyz) - corner) / step), 0, 65535)
    view = builder.add_meshopt_view(
        grid.view(np.uint8).reshape(len(xyz), 8), mode="ATTRIBUTES", target=ARRAY_BUFFER
    )
    bounds = ([int(v) for v in grid[:, :3].min(axis=0)], [int(v) for v in grid[:, :3].max(axis=0)])
    accessor = builder.add_view_accessor(view, np.dtype(np.uint16), len(xyz), "VEC3", bounds=bounds)
    return accessor, [float(v) for v in corner], [float(v) for v in step]


def default_workers() -> int:
    """Worker processes for a large cloud: every core."""
    return max(1, os.cpu_count() or 1)
