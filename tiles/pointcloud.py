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
from tiles.errors import TilesError
from tiles.glb import ARRAY_BUFFER, GlbBuilder
from tiles.spec import Asset, BoundingVolume, Content, Tile, Tileset

GENERATOR = "district-twin tiles"
STRUCTURAL_METADATA = "EXT_structural_metadata"
POINTS_MODE = 0
# Most points in a leaf tile; a tile with more keeps a subsample and gets children.
LEAF_POINTS = 60_000
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
class PointCloudReport:
    """What `write_pointcloud` wrote: points, tiles, glb files, bytes, deepest level."""

    points: int = 0
    tiles: int = 0
    glbs: int = 0
    bytes: int = 0
    levels: int = 0


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


@dataclass
class _Node:
    """A tile being planned: nominal box, points it draws, children, geometric error."""

    address: str
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    points: Points
    error: float = 0.0
    children: list[Tile] = field(default_factory=list)


@dataclass
class _Out:
    folder: Path
    glbs: int = 0
    bytes: int = 0
    levels: int = 0


def write_pointcloud(
    out_dir: Path,
    sources: Sequence[ChunkSource],
    bounds: tuple[ArrayLike, ArrayLike],
    count: int,
    *,
    colors: bool = True,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[Tile, PointCloudReport]:
    """Write ``out_dir/tileset.json`` and its glb tiles from streamed point chunks.

    Parameters
    ----------
    out_dir
        Folder to write into (created; it should be empty).
    sources
        Reader ranges, each streaming `PointChunk` s (ENU metres); run in parallel when
        `workers` > 1 (in spawned processes, so they must be picklable).
    bounds
        Estimated (min, max) corners of the cloud, ENU metres; used only to lay out the
        binning grid (points outside go to the edge cells), boxes come from the points.
    count
        Expected number of points (from the file headers), to size the grid.
    colors
        Whether to write COLOR_0.
    workers
        Processes for binning and tiling (1: everything in this process).
    progress
        Called with the number of points binned so far.

    Returns the tile that refers to the new tileset (external tileset content, in the parent's
    frame) and a report.
    """
    lo, hi = (np.asarray(b, float) for b in bounds)
    if (
        lo.shape != (3,)
        or hi.shape != (3,)
        or not (np.isfinite(lo).all() and np.isfinite(hi).all())
    ):
        raise TilesError("point cloud bounds must be two finite 3-vectors")
    side = 2 ** max(0, math.ceil(math.log(max(count, 1) / CELL_POINTS, 4)))
    grid = _Grid(lo, np.maximum(hi, lo + 1e-6), side)
    out_dir.mkdir(parents=True, exist_ok=True)
    spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=out_dir))
    try:
        with _executor(workers) as pool:
            counts = _bin(pool, sources, grid, spill, progress)
            total = int(counts.sum())
            if total == 0:
                raise TilesError("the point cloud holds no point")
            out = _Out(out_dir)
            cells = [int(c) for c in np.flatnonzero(counts)]
            jobs = [(spill, grid, c, out_dir, colors) for c in cells]
            tops = dict(zip(cells, pool.map(_tile_cell, *zip(*jobs, strict=True)), strict=True))
        for top in tops.values():
            out.glbs += top.glbs
            out.bytes += top.bytes
            out.levels = max(out.levels, top.levels)
        root = _pyramid(grid, tops, out, colors)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    tileset = Tileset(Asset("1.1", GENERATOR), root.geometric_error, root)
    tileset.schema = POINT_SCHEMA
    text = json.dumps(tileset.to_dict(), indent=1).encode()
    (out_dir / "tileset.json").write_bytes(text)
    report = PointCloudReport(
        points=total,
        tiles=len(root.walk()),
        glbs=out.glbs,
        bytes=out.bytes + len(text),
        levels=out.levels + 1 + int(math.log2(side)),
    )
    ref = Tile(root.bounding_volume, root.geometric_error, content=Content("tileset.json"))
    return ref, report


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
    """What a cell worker hands back: its top tile's points (not written yet), its children,
    its geometric error and what it wrote."""

    node: _Node
    glbs: int
    bytes: int
    levels: int


def _tile_cell(spill: Path, grid: _Grid, cell: int, out_dir: Path, colors: bool) -> _CellTop:
    """Worker: load one cell, shuffle it (so first-per-voxel is a random pick) and write its
    tree below the top tile."""
    parts = sorted(spill.glob(f"cell-{cell}.*.bin"))
    points = np.concatenate([np.fromfile(p, POINT_DTYPE) for p in parts])
    for p in parts:
        p.unlink()
    points = points[np.random.default_rng(cell).permutation(len(points))]
    lo, hi = grid.cell_box(cell)
    out = _Out(out_dir)
    top = _split(_Node(f"c{cell}", lo, hi, points), out, colors, depth=0)
    return _CellTop(top, out.glbs, out.bytes, out.levels)


def _split(node: _Node, out: _Out, colors: bool, depth: int) -> _Node:
    """Plan and write the subtree below `node`; `node.points` is left holding what it draws."""
    out.levels = max(out.levels, depth)
    if len(node.points) <= LEAF_POINTS:
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
        child = _split(_Node(f"{node.address}{code}", lo, hi, part), out, colors, depth + 1)
        node.children.append(_finish(child, out, colors))
    return node


def _subsample(
    xyz: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], float]:
    """The first point of each voxel (extent / `SAMPLE_GRID`, cubic) and the voxel size (m)."""
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
    keep = np.zeros(len(xyz), bool)
    keep[first] = True
    return keep, size


def _finish(node: _Node, out: _Out, colors: bool) -> Tile:
    """Write `node`'s content (if any) and make its tile (tight box over content and children);
    error never below the children's."""
    volumes = [c.bounding_volume for c in node.children]
    content = None
    if len(node.points):
        uri = f"{node.address}.glb"
        data, lo, hi = point_glb(node.points, colors)
        (out.folder / uri).write_bytes(data)
        out.glbs += 1
        out.bytes += len(data)
        volumes.append(BoundingVolume.from_min_max(lo, hi, pad=BOX_PAD))
        content = Content(uri)
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    error = max([node.error, *(c.geometric_error for c in node.children)])
    return Tile(box, error, refine="ADD" if node.children else None, content=content,
                children=node.children)  # fmt: skip


def _pyramid(grid: _Grid, tops: dict[int, _CellTop], out: _Out, colors: bool) -> Tile:
    """Merge the cells' top tiles upwards level by level; the root tile (refine ADD)."""
    level = {divmod(cell, grid.side): top.node for cell, top in tops.items()}
    side = grid.side
    while side > 1:
        side //= 2
        parents: dict[tuple[int, int], list[_Node]] = {}
        for (i, j), node in level.items():
            parents.setdefault((i // 2, j // 2), []).append(node)
        size = (grid.hi[:2] - grid.lo[:2]) / side
        upper: dict[tuple[int, int], _Node] = {}
        for (i, j), kids in parents.items():
            lo = np.array([grid.lo[0] + i * size[0], grid.lo[1] + j * size[1], grid.lo[2]])
            hi = np.array([lo[0] + size[0], lo[1] + size[1], grid.hi[2]])
            pool = np.concatenate([k.points for k in kids])
            owner = np.repeat(np.arange(len(kids)), [len(k.points) for k in kids])
            keep, spacing = _subsample(pool["xyz"], lo, hi)
            for n, kid in enumerate(kids):
                kid.points = pool[(owner == n) & ~keep]
            children = [_finish(k, out, colors) for k in kids if len(k.points) or k.children]
            upper[(i, j)] = _Node(f"p{side}_{i}_{j}", lo, hi, pool[keep], spacing, children)
        level = upper
    (root,) = level.values()
    tile = _finish(root, out, colors)
    tile.refine = "ADD"
    return tile


def point_glb(
    points: Points, colors: bool = True
) -> tuple[bytes, NDArray[np.float64], NDArray[np.float64]]:
    """A POINTS glb of `POINT_DTYPE` records and the (min, max) corners of its points (ENU m).

    Vertex attributes sit in their own views, each element 4-byte aligned as glTF asks:
    POSITION float32 VEC3, COLOR_0 uint8 VEC3 normalised (stride 4), ``_CLASSIFICATION``
    uint8 (stride 4), ``_INTENSITY`` uint16 (stride 4)."""
    xyz = points["xyz"]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    centre = (lo + hi) / 2
    n = len(points)
    builder = GlbBuilder()
    local = mesh.enu_to_gltf(xyz - centre).astype(np.float32)
    attributes = {"POSITION": builder.add_accessor(local, target=ARRAY_BUFFER, with_bounds=True)}

    def strided(values: NDArray[Any], kind: str, normalized: bool = False) -> int:
        padded = np.zeros((n, 4 // values.dtype.itemsize), values.dtype)
        width = 1 if values.ndim == 1 else values.shape[1]
        padded[:, :width] = values.reshape(n, width)
        view = builder.add_buffer_view(padded.tobytes(), ARRAY_BUFFER)
        builder.buffer_views[view]["byteStride"] = 4
        return builder.add_view_accessor(view, values.dtype, n, kind, normalized=normalized)

    if colors:
        attributes["COLOR_0"] = strided(points["rgb"], "VEC3", normalized=True)
    attributes["_CLASSIFICATION"] = strided(points["cls"], "SCALAR")
    attributes["_INTENSITY"] = strided(points["intensity"].astype("<u2"), "SCALAR")
    base = [1.0, 1.0, 1.0, 1.0] if colors else [0.8, 0.8, 0.8, 1.0]
    primitive = {
        "attributes": attributes,
        "mode": POINTS_MODE,
        "material": 0,
        "extensions": {STRUCTURAL_METADATA: {"propertyAttributes": [0]}},
    }
    document = {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "extensionsUsed": [STRUCTURAL_METADATA],
        "extensions": {
            STRUCTURAL_METADATA: {
                "schema": POINT_SCHEMA,
                "propertyAttributes": [
                    {
                        "class": POINT_CLASS,
                        "properties": {
                            "classification": {"attribute": "_CLASSIFICATION"},
                            "intensity": {"attribute": "_INTENSITY"},
                        },
                    }
                ],
            }
        },
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [float(v) for v in mesh.enu_to_gltf(centre)]}],
        "meshes": [{"primitives": [primitive]}],
        "materials": [
            {
                "name": "points",
                "pbrMetallicRoughness": {"baseColorFactor": base, "metallicFactor": 0},
            }
        ],
    }
    return builder.to_glb(document), lo, hi


def default_workers() -> int:
    """Worker processes for a large cloud: every core."""
    return max(1, os.cpu_count() or 1)
