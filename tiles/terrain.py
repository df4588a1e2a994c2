"""Terrain as its own level-of-detail tree: a quadtree of TIN tiles over a height grid.

Level ``k`` of ``L`` splits the grid into ``2^k × 2^k`` cell windows; each window is
triangulated (pydelatin) from the full-resolution grid at a max error of
``finest_error × 2^(L − k)`` metres, and that error is the tile's ``geometricError``
(children refine ``REPLACE``). ``L`` is the least depth at which a leaf window is at most
``leaf_cells`` cells a side, so leaves hold the grid within ``finest_error``. Windows share
their border row/column, so neighbouring tiles meet on the same grid lines (their border
vertices may differ by up to the sum of both tiles' errors, vertically). Skirts hide that
crack: every border edge a tile shares with a neighbour (a TIN edge on the window's side, used
by one triangle; not on the grid's outer edge) gets a vertical strip hanging
``SKIRT_ERRORS × error + SKIRT_MARGIN_M`` metres below it, facing outwards, so a neighbour up
to one level coarser (or any finer one) meets a wall instead of a gap.

Each tile may be textured with its own image (the source's ``texture`` callable, at most
``MAX_TEXTURE_SIDE`` pixels a side), so texture size per glb is bounded whatever the area;
skirt vertices take their top vertex's texture coordinates. Explicit content URIs: the top
tile ``terrain/terrain.glb``, others ``terrain/{level}/{x}/{y}.glb`` (x columns east, y rows
south from the grid's top-left corner). As implicit tiling (QUADTREE) every tile, the top one
included, is ``terrain/{level}/{x}/{y}.glb`` with the spec's y, which grows northwards
(``y = 2^level − 1 − row window``), under a root box that spans the grid's cell centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydelatin import Delatin

from tiles.content import GlbContent, terrain_glb
from tiles.errors import TilesError
from tiles.implicit import SUBTREE_LEVELS, ImplicitTile, subtree_file, subtree_roots
from tiles.layer import LayerResult
from tiles.mesh import smooth_normals
from tiles.model import TerrainMesh, TilesetMetadata
from tiles.options import Compression, TilesetOptions
from tiles.reports import TerrainReport
from tiles.schema import terrain_group
from tiles.spec import BoundingVolume, Content, ImplicitTiling, Tile
from tiles.texture import image_size

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TERRAIN_DIR = "terrain"
TOP_URI = f"{TERRAIN_DIR}/terrain.glb"
TILE_URI = f"{TERRAIN_DIR}/{{level}}/{{x}}/{{y}}.glb"
SUBTREES_URI = f"{TERRAIN_DIR}/subtrees/{{level}}.{{x}}.{{y}}.subtree"
MAX_TEXTURE_SIDE = 1024
LEAF_CELLS = 128
FINEST_ERROR_M = 0.5
BOX_PAD = 0.005
# Skirt depth in level errors: two tiles' TINs differ on their shared border by at most the sum
# of their errors, so 3 errors cover a neighbour one level coarser (error 2e) or any finer one.
SKIRT_ERRORS = 3.0
# Added to the skirt depth (m) for float32 / uint16 rounding of the positions.
SKIRT_MARGIN_M = 0.1

# (cols, rows, heights) → (n, 3) ENU metres; cols/rows index cell centres (may be arrays).
ToEnu = Callable[[F64, F64, F64], F64]
# (n, 3) ENU positions, max texture side (px) → (uvs (n, 2), image bytes, MIME type) or None.
Texturer = Callable[[F64, int], "tuple[F64, bytes, str] | None"]


@dataclass
class TerrainGrid:
    """A height grid the tiler turns into a terrain LOD tree.

    Parameters
    ----------
    heights
        (rows, cols) ground heights, metres; NaN for no data.
    to_enu
        Places cell centres: (cols, rows, heights m) → (n, 3) ENU metres of the tileset frame.
    texture
        Optional: for a tile's ENU vertices and a largest side (px), its texture coordinates
        (glTF convention), encoded image and MIME type; None leaves the tile untextured.
    finest_error
        Max vertical error (m) of the leaves' TINs against the grid.
    leaf_cells
        Largest leaf window side, in cells.
    """

    heights: F64
    to_enu: ToEnu
    texture: Texturer | None = None
    finest_error: float = FINEST_ERROR_M
    leaf_cells: int = LEAF_CELLS


@dataclass
class TerrainWriter:
    """The terrain layer: one mesh (ENU metres) written as one tile, or a height grid written
    as the terrain LOD quadtree (implicit tiling under ``options.tiling`` ``implicit``)."""

    terrain: TerrainMesh | TerrainGrid

    def group(self, metadata: TilesetMetadata) -> dict[str, Any] | None:
        """The terrain group."""
        return terrain_group(metadata)

    def write(self, out_dir: Path, options: TilesetOptions, group: int | None) -> LayerResult:
        """Write ``out_dir/terrain/``; raises `TilesError` for an unusable grid."""
        if isinstance(self.terrain, TerrainGrid):
            levels = SUBTREE_LEVELS if options.implicit else None
            top, report = write_terrain_tree(out_dir, self.terrain, compression=options.compression,
                                             group=group, subtree_levels=levels)  # fmt: skip
            implicit = report.tiles - 1 if top.implicit_tiling is not None else 0
            return LayerResult(top, implicit_tiles=implicit, glbs=report.glbs, bytes=report.bytes,
                               largest_glb=report.largest_glb, report=report)  # fmt: skip
        glb = terrain_glb(self.terrain, options.compression)
        path = out_dir / TOP_URI
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(glb.data)
        box = BoundingVolume.from_min_max(glb.lo, glb.hi, pad=BOX_PAD)
        tile = Tile(box, 0.0, content=Content(TOP_URI, group))
        return LayerResult(tile, glbs=1, bytes=len(glb.data), largest_glb=len(glb.data))


def levels_for(shape: tuple[int, int], leaf_cells: int) -> int:
    """Depth ``L`` of the tree: the least with leaf windows of at most `leaf_cells` a side."""
    side = max(shape)
    return max(0, math.ceil(math.log2(max(side - 1, 1) / leaf_cells)))


def window(shape: tuple[int, int], level: int, x: int, y: int) -> tuple[int, int, int, int]:
    """Cell window (row0, row1, col0, col1), both ends inclusive, of tile (level, x, y)."""
    rows, cols = shape
    n = 2**level
    c0, c1 = (x * (cols - 1)) // n, ((x + 1) * (cols - 1)) // n
    r0, r1 = (y * (rows - 1)) // n, ((y + 1) * (rows - 1)) // n
    return r0, r1, c0, c1


def window_tin(
    heights: F64, win: tuple[int, int, int, int], max_error: float, fill: float
) -> tuple[I64, I64, I64]:
    """TIN of a window of the grid within `max_error` metres: (rows, cols) grid indices of its
    vertices and triangles (k, 3); triangles touching no data are left out. `fill` replaces no
    data before triangulating (far below the ground, so vertices follow its edge)."""
    r0, r1, c0, c1 = win
    part = heights[r0 : r1 + 1, c0 : c1 + 1]
    if part.shape[0] < 2 or part.shape[1] < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    tin = Delatin(np.nan_to_num(part, nan=fill).astype(np.float32), max_error=max_error)
    cols = np.rint(tin.vertices[:, 0]).astype(np.int64)
    rows = (part.shape[0] - 1) - np.rint(tin.vertices[:, 1]).astype(np.int64)  # y is up
    triangles = np.asarray(tin.triangles, np.int64).reshape(-1, 3)
    valid = ~np.isnan(part[rows, cols])
    triangles = triangles[valid[triangles].all(axis=1)]
    used, compact = np.unique(triangles, return_inverse=True)
    return rows[used] + r0, cols[used] + c0, compact.reshape(-1, 3).astype(np.int64)


def _ccw(positions: F64, triangles: I64) -> I64:
    a, b, c = (positions[triangles[:, i], :2] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    out = triangles.copy()
    out[cross < 0] = out[cross < 0][:, ::-1]
    return out


def border_edges(rows: I64, cols: I64, triangles: I64, win: tuple[int, int, int, int],
                 shape: tuple[int, int]) -> I64:  # fmt: skip
    """Edges (k, 2) of a window's TIN that need a skirt: used by one triangle and lying on a
    side of the window that another window shares (not on the grid's outer edge). `rows`,
    `cols` are the vertices' grid indices; edges keep their triangle's direction, so with
    counter-clockwise triangles the surface lies to the left of each."""
    edges = triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    _, inverse, counts = np.unique(
        np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    once = edges[counts[inverse.ravel()] == 1]
    r0, r1, c0, c1 = win
    sides = ((rows, r0, r0 > 0), (rows, r1, r1 < shape[0] - 1),
             (cols, c0, c0 > 0), (cols, c1, c1 < shape[1] - 1))  # fmt: skip
    on_side = np.zeros(len(once), bool)
    for index, line, shared in sides:
        if shared:
            on_side |= (index[once] == line).all(axis=1)
    return once[on_side]


def with_skirts(positions: F64, triangles: I64, edges: I64, depth: float) -> tuple[F64, I64, I64]:
    """Add a vertical strip `depth` metres deep under each edge (k, 2) whose surface lies to
    its left (seen from above), facing away from the surface. The strip has its own vertices
    (a copy of each edge end and one `depth` below it), so the surface's normals are kept.

    Returns positions (ENU metres), triangles, and for every vertex the index of the surface
    vertex it hangs from (itself for surface vertices), e.g. to copy texture coordinates."""
    ends = np.unique(edges)
    n, m = len(positions), len(ends)
    slot = np.zeros(n, np.int64)
    slot[ends] = np.arange(m)
    top_a, top_b = n + slot[edges[:, 0]], n + slot[edges[:, 1]]
    low_a, low_b = top_a + m, top_b + m
    strips = np.concatenate(
        [np.column_stack([top_a, low_a, top_b]), np.column_stack([top_b, low_a, low_b])]
    )
    lowered = positions[ends] - np.array([0.0, 0.0, depth])
    source = np.concatenate([np.arange(n), ends, ends])
    return (
        np.concatenate([positions, positions[ends], lowered]),
        np.concatenate([triangles, strips]),
        source,
    )


def skirt_depth(error: float) -> float:
    """Depth (m) of the skirts of a tile with geometric error `error` (m)."""
    return SKIRT_ERRORS * error + SKIRT_MARGIN_M


@dataclass
class _Implicit:
    """The tree as implicit tiling: levels per subtree file, the grid's footprint (min, max
    ENU x, y metres) and every available tile by implicit (level, x, y)."""

    subtree_levels: int
    footprint: tuple[F64, F64]
    tiles: dict[tuple[int, int, int], ImplicitTile]


@dataclass
class _Job:
    out_dir: Path
    grid: TerrainGrid
    levels: int
    fill: float
    compression: Compression
    group: int | None
    report: TerrainReport
    implicit: _Implicit | None


def write_terrain_tree(
    out_dir: Path,
    grid: TerrainGrid,
    *,
    compression: Compression,
    group: int | None = None,
    subtree_levels: int | None = None,
) -> tuple[Tile, TerrainReport]:
    """Write the terrain quadtree's glbs under ``out_dir/terrain`` and return its top tile
    (boxes in the tileset's ENU frame, metres; refine REPLACE) and a report.

    With `subtree_levels` the tree is written as implicit tiling (QUADTREE, that many levels
    per ``.subtree`` file) and the returned tile holds it; the grid must then be north-up
    (rows southwards, columns eastwards in ENU).

    Raises `TilesError` for a grid that is not 2-D, has fewer than 2 × 2 cells or no valid
    height, or leaves nothing to triangulate."""
    heights = np.asarray(grid.heights, np.float64)
    if heights.ndim != 2 or min(heights.shape) < 2:
        raise TilesError(f"terrain grid must be at least 2 x 2 cells, got {heights.shape}")
    if not np.isfinite(heights).any():
        raise TilesError("terrain grid has no valid height")
    if grid.finest_error <= 0 or grid.leaf_cells < 2:
        raise TilesError("terrain finest_error must be > 0 and leaf_cells at least 2")
    shape = (int(heights.shape[0]), int(heights.shape[1]))
    levels = levels_for(shape, grid.leaf_cells)
    fill = float(np.nanmin(heights)) - 100.0
    report = TerrainReport(levels=levels + 1)
    grid = replace(grid, heights=heights)
    implicit = None
    if subtree_levels is not None:
        implicit = _Implicit(subtree_levels, _footprint(grid), {})
    job = _Job(out_dir, grid, levels, fill, compression, group, report, implicit)
    top = _tile(job, 0, 0, 0)
    if top is None:
        raise TilesError("the terrain grid has no area of valid cells to triangulate")
    top.refine = "REPLACE"
    if implicit is None:
        return top, report
    return _implicit_top(job, implicit, top), report


def _footprint(grid: TerrainGrid) -> tuple[F64, F64]:
    """(min, max) ENU x, y (m) of the grid's corner cell centres; raises `TilesError` unless
    rows run southwards and columns eastwards (implicit y must grow northwards)."""
    rows, cols = grid.heights.shape
    corner_cols = np.array([0.0, cols - 1, 0.0, cols - 1])
    corner_rows = np.array([0.0, 0.0, rows - 1, rows - 1])
    corners = np.asarray(grid.to_enu(corner_cols, corner_rows, np.zeros(4)), float)[:, :2]
    nw, ne, sw, _ = corners
    if not (ne[0] > nw[0] and sw[1] < nw[1]):
        raise TilesError("implicit terrain needs a north-up grid (rows south, columns east)")
    return corners.min(axis=0), corners.max(axis=0)


def _implicit_top(job: _Job, implicit: _Implicit, top: Tile) -> Tile:
    """Write the subtrees of `implicit` and return the tile holding the implicit tree: its
    box spans the grid's footprint (so its quadrants are the windows) and every tile."""
    for coord in subtree_roots(implicit.tiles, implicit.subtree_levels):
        level, x, y = coord
        path = job.out_dir / SUBTREES_URI.format(level=level, x=x, y=y)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = subtree_file(implicit.tiles, coord, implicit.subtree_levels)
        path.write_bytes(data)
        job.report.bytes += len(data)
    lo, hi = top.bounding_volume.corners_min_max()
    foot_lo, foot_hi = implicit.footprint
    lo[:2], hi[:2] = np.minimum(lo[:2], foot_lo), np.maximum(hi[:2], foot_hi)
    tiling = ImplicitTiling(implicit.subtree_levels, available_levels=job.levels + 1,
                            subtrees_uri=SUBTREES_URI)  # fmt: skip
    return Tile(BoundingVolume.from_min_max(lo, hi, min_half=0), top.geometric_error,
                refine="REPLACE", content=Content(TILE_URI, job.group),
                implicit_tiling=tiling)  # fmt: skip


def level_error(grid: TerrainGrid, levels: int, level: int) -> float:
    """Max error (m) of level `level`'s TINs in a tree of depth `levels`."""
    return grid.finest_error * 2.0 ** (levels - level)


def _tile(job: _Job, level: int, x: int, y: int) -> Tile | None:
    """Tile (level, x, y) with x the window column, y the window row (southwards)."""
    children = []
    if level < job.levels:
        for cy in (2 * y, 2 * y + 1):
            for cx in (2 * x, 2 * x + 1):
                child = _tile(job, level + 1, cx, cy)
                if child is not None:
                    children.append(child)
    error = level_error(job.grid, job.levels, level)
    shape = (int(job.grid.heights.shape[0]), int(job.grid.heights.shape[1]))
    win = window(shape, level, x, y)
    rows, cols, triangles = window_tin(job.grid.heights, win, error, job.fill)
    volumes = [c.bounding_volume for c in children]
    content = None
    y_north = 2**level - 1 - y
    if len(triangles):
        if job.implicit is not None:
            uri = TILE_URI.format(level=level, x=x, y=y_north)
        else:
            uri = TOP_URI if level == 0 else TILE_URI.format(level=level, x=x, y=y)
        glb = _content(job, rows, cols, triangles, win, error)
        _save(job, job.out_dir / uri, glb)
        if level == job.levels:
            job.report.leaf_vertices += len(rows)
        volumes.append(BoundingVolume.from_min_max(glb.lo, glb.hi, pad=BOX_PAD))
        content = Content(uri, job.group)
    if not volumes:
        return None
    job.report.tiles += 1
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    if job.implicit is not None:
        record = ImplicitTile(tuple(box.box), error, content is not None)
        job.implicit.tiles[(level, x, y_north)] = record
    return Tile(box, error, refine="REPLACE" if children else None, content=content,
                children=children)  # fmt: skip


def _content(
    job: _Job, rows: I64, cols: I64, triangles: I64, win: tuple[int, int, int, int], error: float
) -> GlbContent:
    """The glb of window `win`'s TIN (vertices at grid `rows`, `cols`; `triangles`) with
    skirts for a tile of geometric error `error` (m)."""
    z = job.grid.heights[rows, cols]
    surface = np.asarray(job.grid.to_enu(cols.astype(float), rows.astype(float), z), float)
    triangles = _ccw(surface, triangles)
    shape = (int(job.grid.heights.shape[0]), int(job.grid.heights.shape[1]))
    skirts = border_edges(rows, cols, triangles, win, shape)
    normals = smooth_normals(surface, triangles)  # skirts shade like the edge above them
    positions, triangles, source = with_skirts(surface, triangles, skirts, skirt_depth(error))
    mesh = TerrainMesh(positions, triangles, normals=normals[source])
    if job.grid.texture is not None:
        textured = job.grid.texture(surface, MAX_TEXTURE_SIDE)
        if textured is not None:
            uvs, mesh.texture, mesh.texture_mime = textured
            mesh.uvs = np.asarray(uvs, float)[source]
            side = max(image_size(mesh.texture, mesh.texture_mime))
            job.report.largest_texture_px = max(job.report.largest_texture_px, side)
    return terrain_glb(mesh, job.compression)


def _save(job: _Job, path: Path, glb: GlbContent) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb.data)
    job.report.glbs += 1
    job.report.bytes += len(glb.data)
    job.report.largest_glb = max(job.report.largest_glb, len(glb.data))
