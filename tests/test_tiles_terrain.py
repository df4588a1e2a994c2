"""The terrain LOD tree (`tiles.terrain`): quadtree structure, errors halving per level down to
the finest max error, leaves within that error of the grid, skirts under the borders tiles
share (and nowhere else), bounded per-tile textures, valid 3D Tiles and glbs; the same tree as
implicit tiling; and the sample district's terrain built that way by `twin build`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic_terrain import CELL, COLS, FINEST, LEAF, ROWS, hills, texture, to_enu
from tiles_helpers import (
    glb_positions,
    implicit_tiles,
    run_gltf_validator,
    validate_tileset_tree,
    walk_tiles,
)

from tiles import TerrainWriter, TilesetOptions, write_tileset
from tiles.errors import TilesError
from tiles.glb import read_glb
from tiles.spec import BoundingVolume
from tiles.terrain import (
    MAX_TEXTURE_SIDE,
    TerrainGrid,
    levels_for,
    skirt_depth,
    window,
)
from tiles.texture import image_size
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

FRAME = LocalFrame(121.5, 31.23, 10.0)


@pytest.fixture(scope="module", params=["none", "meshopt"])
def terrain_tiles(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("terrain") / "tiles"
    grid = TerrainGrid(hills(), to_enu, texture, finest_error=FINEST, leaf_cells=LEAF)
    options = TilesetOptions(compression=request.param)
    write_tileset(out, FRAME.enu_to_ecef_matrix(), [TerrainWriter(grid)], options)
    return out / "tileset.json"


def _terrain_tiles(tileset: Path) -> list[Any]:
    return [p for p in walk_tiles(tileset) if p.pointer.startswith("/root/children/0")]


def _explicit_coords(tileset: Path) -> dict[tuple[int, int, int], Any]:
    """Explicit terrain tiles with content by (level, window column x, window row y)."""
    out = {}
    for placed in _terrain_tiles(tileset):
        level = placed.pointer.count("/children/") - 1
        uri = Path(placed.tile["content"]["uri"])
        x, y = (0, 0) if level == 0 else (int(v) for v in uri.with_suffix("").parts[-2:])
        out[(level, x, y)] = placed.tile
    return out


@dataclass
class _TileMesh:
    """A terrain glb decoded: positions (tileset ENU frame, m), surface and skirt triangles
    (vertical ones, no area seen from above) and the raw TEXCOORD_0 values."""

    positions: np.ndarray
    surface: np.ndarray
    skirts: np.ndarray
    uvs: np.ndarray
    normals: np.ndarray


def _tile_mesh(path: Path) -> _TileMesh:
    glb = read_glb(path)
    ((positions, primitive),) = list(glb_positions(glb))
    triangles = glb.accessor(primitive["indices"]).astype(np.int64).reshape(-1, 3)
    a, b, c = (positions[triangles[:, i], :2] for i in range(3))
    (ux, uy), (vx, vy) = (b - a).T, (c - a).T
    area = np.abs(ux * vy - uy * vx) / 2
    uvs = glb.accessor(primitive["attributes"]["TEXCOORD_0"])
    normals = glb.accessor(primitive["attributes"]["NORMAL"])
    return _TileMesh(positions, triangles[area > 1e-6], triangles[area <= 1e-6], uvs, normals)


def test_terrain_tree_is_valid_and_halves_its_error_per_level(terrain_tiles: Path) -> None:
    assert validate_tileset_tree(terrain_tiles) == []
    levels = levels_for((ROWS, COLS), LEAF)
    assert levels == 3  # 300 cells / 64 → 8 leaves a side
    tiles = _terrain_tiles(terrain_tiles)
    depth = {p.pointer: p.pointer.count("/children/") - 1 for p in tiles}
    assert max(depth.values()) == levels
    for placed in tiles:
        tile, level = placed.tile, depth[placed.pointer]
        assert tile["geometricError"] == pytest.approx(FINEST * 2 ** (levels - level))
        assert len(tile.get("children", [])) <= 4
        if tile.get("children"):
            assert tile["refine"] == "REPLACE"
            for child in tile["children"]:
                assert child["geometricError"] == pytest.approx(tile["geometricError"] / 2)
    leaves = [p for p in tiles if not p.tile.get("children")]
    assert len(leaves) == 4**levels  # the hole is inside one leaf, not a whole leaf
    assert all(p.tile["geometricError"] == FINEST for p in leaves)
    top = json.loads(terrain_tiles.read_text())["root"]["children"][0]
    assert top["content"]["uri"] == "terrain/terrain.glb"


def _tin_heights(xy: np.ndarray, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Height of the TIN (xy + z columns) at `points` (k, 2); NaN where no triangle holds it."""
    out = np.full(len(points), np.nan)
    for tri in triangles:
        a, b, c = xy[tri]
        lo, hi = np.minimum(np.minimum(a, b), c)[:2], np.maximum(np.maximum(a, b), c)[:2]
        near = np.flatnonzero(((points >= lo - 0.01) & (points <= hi + 0.01)).all(axis=1))
        if not len(near):
            continue
        v0, v1, v2 = b[:2] - a[:2], c[:2] - a[:2], points[near] - a[:2]
        den = v0[0] * v1[1] - v1[0] * v0[1]
        s = (v2[:, 0] * v1[1] - v1[0] * v2[:, 1]) / den
        t = (v0[0] * v2[:, 1] - v2[:, 0] * v0[1]) / den
        inside = (s >= -1e-4) & (t >= -1e-4) & (s + t <= 1 + 1e-4)  # quantised corners
        hit = near[inside]
        out[hit] = (1 - s[inside] - t[inside]) * a[2] + s[inside] * b[2] + t[inside] * c[2]
    return out


def test_every_leaf_is_within_the_finest_error_of_the_grid(terrain_tiles: Path) -> None:
    heights = hills()
    levels = levels_for((ROWS, COLS), LEAF)
    leaves = [p for p in _terrain_tiles(terrain_tiles) if not p.tile.get("children")]
    covered = 0
    for placed in leaves:
        x, y = (int(v) for v in Path(placed.tile["content"]["uri"]).with_suffix("").parts[-2:])
        r0, r1, c0, c1 = window((ROWS, COLS), levels, x, y)
        tile_mesh = _tile_mesh(terrain_tiles.parent / placed.tile["content"]["uri"])
        positions, triangles = tile_mesh.positions, tile_mesh.surface
        rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        rr, cc = rr.ravel(), cc.ravel()
        grid_z = heights[rr, cc]
        points = to_enu(cc.astype(float), rr.astype(float), grid_z)
        valid = np.isfinite(grid_z)
        # quantised positions (meshopt) may move the border by a fraction of a millimetre
        used = positions[np.unique(triangles), :2]
        inner = np.clip(points[valid, :2], used.min(0), used.max(0))
        tin_z = _tin_heights(positions, triangles, inner)
        found = np.isfinite(tin_z)
        # float32/uint16 storage adds at most a few millimetres
        assert np.abs(tin_z[found] - grid_z[valid][found]).max() <= FINEST + 0.01
        covered += int(found.sum())
        if not np.isnan(heights[r0 : r1 + 1, c0 : c1 + 1]).any():
            assert found.all()  # a leaf without no data covers its whole window
    assert covered >= np.isfinite(heights).sum()  # shared borders count twice


def _sides(level: int, x: int, y: int) -> list[tuple[int, float, int, bool]]:
    """Window (level, x, y)'s sides as (ENU axis, coordinate m, outward sign, shared with
    another window): west, east, south, north."""
    r0, r1, c0, c1 = window((ROWS, COLS), level, x, y)
    (west, south, _), (east, north, _) = to_enu(
        np.array([c0, c1], float), np.array([r1, r0], float), np.zeros(2)
    )
    return [(0, west, -1, c0 > 0), (0, east, 1, c1 < COLS - 1),
            (1, south, -1, r1 < ROWS - 1), (1, north, 1, r0 > 0)]  # fmt: skip


def test_skirts_hang_under_shared_borders_only(terrain_tiles: Path) -> None:
    levels = levels_for((ROWS, COLS), LEAF)
    tol = 0.02  # uint16 positions of the 1.5 km top tile: steps of 2.3 cm
    skirted = 0
    for (level, x, y), tile in _explicit_coords(terrain_tiles).items():
        error = FINEST * 2 ** (levels - level)
        mesh = _tile_mesh(terrain_tiles.parent / tile["content"]["uri"])
        pos = mesh.positions
        on_surface, in_skirts = np.unique(mesh.surface), np.unique(mesh.skirts)
        assert not np.intersect1d(on_surface, in_skirts).size  # strips have their own vertices
        # Every skirt vertex hangs under a surface vertex: at its height or a skirt depth below.
        under = {
            tuple(p): v for p, v in zip(np.round(pos[on_surface, :2], 4), on_surface, strict=True)
        }
        top = np.array([under[tuple(p)] for p in np.round(pos[in_skirts, :2], 4)], np.int64)
        drop = pos[top, 2] - pos[in_skirts, 2]
        bottom = drop > tol
        assert np.abs(drop[~bottom]).max(initial=0) <= tol
        assert (drop[bottom] >= error).all()
        assert drop[bottom] == pytest.approx(skirt_depth(error), abs=tol)
        assert (mesh.uvs[in_skirts] == mesh.uvs[top]).all()  # the edge's colour
        assert (mesh.normals[in_skirts] == mesh.normals[top]).all()  # and its shading
        # Skirts only on sides shared with a neighbour, facing away from the tile.
        sides = _sides(level, x, y)
        a, b, c = (pos[mesh.skirts[:, i]] for i in range(3))
        normals = np.cross(b - a, c - a)
        side_of = np.full(len(mesh.skirts), -1)
        for i, (axis, line, outward, shared) in enumerate(sides):
            on_line = (np.abs(pos[mesh.skirts][:, :, axis] - line) <= tol).all(axis=1)
            assert shared or not on_line.any(), f"skirt on the grid's edge of {level, x, y}"
            assert (normals[on_line, axis] * outward > 0).all()
            side_of[on_line] = i
        assert (side_of >= 0).all(), f"a skirt of {level, x, y} is off the window's border"
        # ... and under every border edge of the surface on those sides.
        edges = np.sort(mesh.surface[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        unique, counts = np.unique(edges, axis=0, return_counts=True)
        border = unique[counts == 1]
        needed = 0
        for axis, line, _, shared in sides:
            if shared:
                needed += int((np.abs(pos[border][:, :, axis] - line) <= tol).all(axis=1).sum())
        assert len(mesh.skirts) == 2 * needed
        skirted += needed > 0
        if level == 0:
            assert needed == 0  # the top tile has no neighbour
    assert skirted == 4 + 16 + 64  # every tile below the top shares a side


@pytest.fixture(scope="module")
def both_tilings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The terrain tree written explicitly and as implicit tiling (tileset.json of each)."""
    root = tmp_path_factory.mktemp("tilings")
    grid = TerrainGrid(hills(), to_enu, texture, finest_error=FINEST, leaf_cells=LEAF)
    for tiling in ("explicit", "implicit"):
        options = TilesetOptions(tiling, "none")
        write_tileset(root / tiling, FRAME.enu_to_ecef_matrix(), [TerrainWriter(grid)], options)
    return {tiling: root / tiling / "tileset.json" for tiling in ("explicit", "implicit")}


def test_implicit_terrain_is_the_explicit_tree_with_y_northwards(
    both_tilings: dict[str, Path],
) -> None:
    tileset = both_tilings["implicit"]
    assert validate_tileset_tree(tileset) == []
    doc = json.loads(tileset.read_text())
    assert "tile" in doc["schema"]["classes"]  # tight boxes and errors, with no buildings
    holder = doc["root"]["children"][0]
    levels = levels_for((ROWS, COLS), LEAF)
    assert holder["content"]["uri"] == "terrain/{level}/{x}/{y}.glb"
    assert holder["implicitTiling"] == {
        "subdivisionScheme": "QUADTREE",
        "subtreeLevels": 4,
        "availableLevels": levels + 1,
        "subtrees": {"uri": "terrain/subtrees/{level}.{x}.{y}.subtree"},
    }
    assert not (tileset.parent / "terrain" / "terrain.glb").exists()
    explicit = _explicit_coords(both_tilings["explicit"])
    found = dict(implicit_tiles(holder, tileset))
    assert set(found) == {(k, x, 2**k - 1 - y) for k, x, y in explicit}
    lo, hi = (v[:2] for v in BoundingVolume.from_dict(holder["boundingVolume"]).corners_min_max())
    for (level, x, y), tile in found.items():
        same = explicit[(level, x, 2**level - 1 - y)]
        assert tile["geometricError"] == same["geometricError"]
        assert tile["boundingVolume"]["box"] == pytest.approx(same["boundingVolume"]["box"])
        glb = (tileset.parent / tile["content"]["uri"]).read_bytes()
        assert glb == (both_tilings["explicit"].parent / same["content"]["uri"]).read_bytes()
        # The root box's quadrant (level, x, y) is the tile's window, to a cell.
        n = 2**level
        cell_lo = lo + (hi - lo) * np.array([x, y]) / n
        cell_hi = lo + (hi - lo) * np.array([x + 1, y + 1]) / n
        (_, west, _, _), (_, east, _, _), (_, south, _, _), (_, north, _, _) = _sides(
            level, x, n - 1 - y
        )
        assert np.abs(cell_lo - [west, south]).max() <= CELL
        assert np.abs(cell_hi - [east, north]).max() <= CELL


def test_implicit_terrain_needs_a_north_up_grid(tmp_path: Path) -> None:
    def rows_north(cols: np.ndarray, rows: np.ndarray, heights: np.ndarray) -> np.ndarray:
        return np.column_stack([cols * CELL, rows * CELL, heights])

    grid = TerrainGrid(hills()[:20, :20], rows_north)
    with pytest.raises(TilesError, match="north-up"):
        options = TilesetOptions("implicit", "none")
        write_tileset(tmp_path, FRAME.enu_to_ecef_matrix(), [TerrainWriter(grid)], options)


def test_terrain_textures_are_bounded_jpegs(terrain_tiles: Path) -> None:
    glbs = sorted((terrain_tiles.parent / "terrain").rglob("*.glb"))
    assert len(glbs) == 1 + 4 + 16 + 64
    sides = []
    for path in glbs:
        glb = read_glb(path)
        image = glb.document["images"][0]
        assert image["mimeType"] == "image/jpeg"
        sides.append(max(image_size(glb.view_bytes(image["bufferView"]), "image/jpeg")))
        assert path.stat().st_size <= 1_000_000
    assert max(sides) == MAX_TEXTURE_SIDE  # coarse tiles would want 4096 px
    assert min(sides) < MAX_TEXTURE_SIDE  # leaves (160 m) need only 512 px


def test_sample_terrain_is_a_textured_lod_tree(sample_ws: Path) -> None:
    paths = WorkspacePaths(sample_ws)
    tileset = json.loads(paths.tileset.read_text())
    (top,) = [c for c in tileset["root"]["children"] if "terrain" in json.dumps(c.get("content"))]
    assert top["refine"] == "REPLACE" and top["children"]
    assert top["geometricError"] > top["children"][0]["geometricError"] >= 0.5
    glbs = sorted((paths.tiles / "terrain").rglob("*.glb"))
    assert len(glbs) > 5
    reports = run_gltf_validator(glbs)
    assert all(r["numErrors"] == 0 for r in reports), [r for r in reports if r["numErrors"]]
    ortho = Manifest.read(paths.manifest).report["ortho"]
    assert ortho["textures"] == len(glbs) and ortho["max_texture_px"] <= MAX_TEXTURE_SIDE
    assert ortho["coverage"] > 0.9
