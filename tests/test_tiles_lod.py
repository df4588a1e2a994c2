"""Levels of detail, implicit tiling, compression, metadata and the .3tz archive of the 3D Tiles
writer: every variant passes the tileset and subtree JSON schemas and the glTF-Validator, the
finest level holds every building once, errors shrink downwards, content stays under 1 MB, and
a tiny city's tileset.json matches its golden file (``UPDATE_GOLDEN=1`` rewrites it)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from synthetic_city import BOX_TRIANGLES, FRAME, grid_terrain, synthetic_city
from tiles_helpers import (
    PlacedTile,
    assert_json_close,
    decode_glb_features,
    glb_positions,
    validate_tileset_tree,
    walk_tiles,
)

from tiles import (
    BuildingsWriter,
    TerrainWriter,
    TilesetOptions,
    TilesetReport,
    write_tileset,
)
from tiles.archive import INDEX_NAME, read_index
from tiles.content import PreparedFeature
from tiles.errors import TilesError
from tiles.glb import read_glb
from tiles.implicit import read_subtree
from tiles.lod import coarse_feature, outlines
from tiles.model import FeatureMesh, PropertyValue, TilesetMetadata

GOLDEN = Path(__file__).resolve().parent / "golden" / "tiny"
META = TilesetMetadata(
    "Synthetic", "2025-01-31T12:00:00Z", "EPSG:4547", "buildings.geojson", "dtm.tif"
)
MAX_FEATURES = 40
VARIANTS = {
    "explicit-meshopt": TilesetOptions(
        "explicit", "meshopt", max_features=MAX_FEATURES, archive=True
    ),
    "implicit-none": TilesetOptions("implicit", "none", max_features=MAX_FEATURES),
    "implicit-meshopt": TilesetOptions(
        "implicit", "meshopt", max_features=MAX_FEATURES, archive=True
    ),
}


@pytest.fixture(scope="module")
def city() -> list[FeatureMesh]:
    return synthetic_city(900, seed=11)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def lod_written(
    request: pytest.FixtureRequest,
    city: list[FeatureMesh],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, TilesetReport]:
    out = tmp_path_factory.mktemp(request.param) / "tiles"
    report = write_tileset(
        out,
        FRAME.enu_to_ecef_matrix(),
        [BuildingsWriter(city), TerrainWriter(grid_terrain())],
        VARIANTS[request.param],
        META,
    )
    return out, report


def test_lod_tree_is_valid(lod_written: tuple[Path, TilesetReport]):
    out, report = lod_written
    assert validate_tileset_tree(out / "tileset.json") == []
    tiles = list(walk_tiles(out / "tileset.json"))
    assert report.tiles == len(tiles)
    assert report.bytes == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def test_finest_level_holds_every_building_once(
    city: list[FeatureMesh], lod_written: tuple[Path, TilesetReport]
):
    out, report = lod_written
    leaves: list[tuple[PlacedTile, list[str]]] = []
    coarse: list[tuple[PlacedTile, list[str]]] = []
    for placed in walk_tiles(out / "tileset.json"):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.startswith("buildings/"):
            continue
        ids = [r["element_id"] for r in decode_glb_features(out / uri)]
        is_leaf = placed.tile["geometricError"] == 0 and not placed.tile.get("children")
        (leaves if is_leaf else coarse).append((placed, ids))
    finest = sorted(i for _, ids in leaves for i in ids)
    assert finest == sorted(b.element_id for b in city)
    assert report.features == len(city)
    # Coarse tiles draw some buildings, by their own ids, with a positive error.
    all_ids = set(finest)
    assert coarse and all(set(ids) <= all_ids for _, ids in coarse)
    assert all(p.tile["geometricError"] > 0 for p, _ in coarse)
    assert all(len(ids) <= MAX_FEATURES for _, ids in leaves + coarse)


def test_errors_decrease_and_content_is_bounded(lod_written: tuple[Path, TilesetReport]):
    out, report = lod_written
    tiles = list(walk_tiles(out / "tileset.json"))
    for placed in tiles:
        assert placed.tile["geometricError"] <= placed.parent_error
    errors = sorted({p.tile["geometricError"] for p in tiles if "buildings" in str(p.tile)})
    assert len(errors) >= 3  # leaves (0) and at least two coarser levels
    glbs = list(out.rglob("*.glb"))
    assert max(p.stat().st_size for p in glbs) == report.largest_glb <= 1_000_000


def test_coarse_error_covers_the_dropped_buildings(
    city: list[FeatureMesh], lod_written: tuple[Path, TilesetReport]
):
    """A coarse tile's error is at least the size of every member it leaves out."""
    out, _ = lod_written
    sizes = {}
    for b in city:
        lo, hi = b.positions.min(axis=0), b.positions.max(axis=0)
        sizes[b.element_id] = max(np.hypot(*(hi - lo)[:2]), hi[2] - lo[2])
    for placed in walk_tiles(out / "tileset.json"):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.startswith("buildings/") or placed.tile["geometricError"] == 0:
            continue
        drawn = {r["element_id"] for r in decode_glb_features(out / uri)}
        box = np.asarray(placed.tile["boundingVolume"]["box"])
        reach = np.abs(box[3:].reshape(3, 3)).sum(axis=0)[:2]
        lo, hi = box[:2] - reach, box[:2] + reach
        inside = [
            b.element_id
            for b in city
            if (b.positions[:, :2] >= lo - 1e-6).all() and (b.positions[:, :2] <= hi + 1e-6).all()
        ]
        dropped = [sizes[i] for i in inside if i not in drawn]
        assert dropped and max(dropped) <= placed.tile["geometricError"] + 1e-6


def test_metadata_schema_and_groups(lod_written: tuple[Path, TilesetReport]):
    out, _ = lod_written
    doc = json.loads((out / "tileset.json").read_text())
    classes = doc["schema"]["classes"]
    assert doc["metadata"]["properties"]["source_crs"] == "EPSG:4547"
    assert doc["metadata"]["properties"]["build_time"] == META.build_time
    building = classes["building"]["properties"]
    assert building["element_id"]["type"] == "STRING" and "description" in building["height"]
    names = [g["properties"]["name"] for g in doc["groups"]]
    assert names == ["buildings", "terrain"]
    assert doc["groups"][0]["properties"]["feature_count"] == 900
    for placed in walk_tiles(out / "tileset.json"):
        content = placed.tile.get("content")
        if content and "group" in content:
            expected = "terrain" if content["uri"].startswith("terrain") else "buildings"
            assert names[content["group"]] == expected
    if "implicit" in str(out):
        semantics = {p["semantic"] for p in classes["tile"]["properties"].values()}
        assert semantics == {"TILE_BOUNDING_BOX", "TILE_GEOMETRIC_ERROR"}


def test_compressed_vertices_stay_within_the_quantisation_step(
    city: list[FeatureMesh], lod_written: tuple[Path, TilesetReport]
):
    out, _ = lod_written
    by_id = {b.element_id: b.positions for b in city}
    checked = 0
    for placed in walk_tiles(out / "tileset.json"):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.startswith("buildings/") or placed.tile["geometricError"] != 0:
            continue
        glb = read_glb(out / uri)
        meshopt = "EXT_meshopt_compression" in glb.document.get("extensionsRequired", [])
        assert meshopt == ("meshopt" in str(out))
        (points, primitive), *_ = glb_positions(glb)
        step = glb.document["nodes"][0].get("scale", [0.0])[0]
        fid = glb.accessor(primitive["attributes"]["_FEATURE_ID_0"]).astype(int)
        for index, row in enumerate(decode_glb_features(out / uri)[:5]):
            source = by_id[row["element_id"]]
            gap = np.linalg.norm(points[fid == index][:, None] - source[None], axis=2)
            assert gap.min(axis=1).max() <= step * 0.9 + 1e-3
            checked += 1
    assert checked


def test_subtrees_are_binary_and_use_constant_or_bitstream(lod_written: tuple[Path, TilesetReport]):
    out, _ = lod_written
    subtrees = sorted(out.glob("buildings/subtrees/*.subtree"))
    if "implicit" not in str(out):
        assert not subtrees
        return
    assert (out / "buildings/subtrees/0.0.0.subtree") in subtrees
    for path in subtrees:
        data = path.read_bytes()
        magic, version, json_len, bin_len = struct.unpack_from("<4sIQQ", data)
        assert (magic, version) == (b"subt", 1) and json_len % 8 == 0 and bin_len % 8 == 0
        assert len(data) == 24 + json_len + bin_len
        document, _ = read_subtree(data)
        for availability in [document["tileAvailability"], document["childSubtreeAvailability"]]:
            assert ("constant" in availability) != ("bitstream" in availability)


def test_archive_index_resolves_every_entry(lod_written: tuple[Path, TilesetReport]):
    out, report = lod_written
    if report.archive is None:
        assert not out.with_suffix(".3tz").exists()
        return
    assert report.archive == out.with_suffix(".3tz")
    index = read_index(report.archive)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    with zipfile.ZipFile(report.archive) as archive:
        infos = archive.infolist()
        assert infos[-1].filename == INDEX_NAME and infos[-1].compress_type == zipfile.ZIP_STORED
        assert sorted(i.filename for i in infos[:-1]) == files
        raw = report.archive.read_bytes()
        for info in infos[:-1]:
            offset = index[hashlib.md5(info.filename.encode()).digest()]
            assert offset == info.header_offset
            name_len = struct.unpack_from("<H", raw, offset + 26)[0]
            assert raw[offset : offset + 4] == b"PK\x03\x04"
            assert raw[offset + 30 : offset + 30 + name_len].decode() == info.filename
        assert archive.read("tileset.json") == (out / "tileset.json").read_bytes()
    assert len(index) == len(files)


def test_l_shaped_building_has_an_honest_coarse_error():
    # An L: a 20×20 m square without its 10×10 m north-east quarter, 12 m tall.
    ring = [(0, 0), (20, 0), (20, 10), (10, 10), (10, 20), (0, 20)]
    poly = shapely.Polygon(ring)
    tri = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 5]])
    roof = np.array([(x, y, 12.0) for x, y in ring])
    normals = np.tile([0.0, 0.0, 1.0], (6, 1))
    feature = PreparedFeature({"element_id": "building:l"}, roof, normals, tri)
    (outline,) = outlines([feature])
    hull = shapely.Polygon(outline.ring)
    assert hull.area == pytest.approx(poly.convex_hull.area)
    assert outline.error == pytest.approx(shapely.hausdorff_distance(hull, poly), rel=1e-6)
    assert outline.error == pytest.approx(np.sqrt(50), rel=1e-3)  # the cut corner's diagonal
    coarse = coarse_feature(feature, outline)
    walls = coarse.normals[:, 2] == 0
    centre = np.array([10.0, 10.0])
    assert ((coarse.positions[walls, :2] - centre) * coarse.normals[walls, :2]).sum(
        axis=1
    ).min() > 0


def test_bad_options_are_named():
    with pytest.raises(TilesError, match="tiling"):
        TilesetOptions(tiling="octree")  # type: ignore[arg-type]
    with pytest.raises(TilesError, match="compression"):
        TilesetOptions(compression="zstd")  # type: ignore[arg-type]
    with pytest.raises(TilesError, match="max_features"):
        TilesetOptions(max_features=0)


def tiny_city() -> list[FeatureMesh]:
    """Six boxes on a 3×2 grid with round numbers, for the golden files."""
    out = []
    for i in range(6):
        x, y, h = 40.0 * (i % 3), 40.0 * (i // 3), 10.0 + 5 * i
        corners = [(x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10)]
        positions = np.array([(*c, 0.0) for c in corners] + [(*c, h) for c in corners])
        props: dict[str, PropertyValue] = {
            "name": f"B{i}",
            "kind": "building",
            "height": h,
            "levels": i + 1,
        }
        out.append(FeatureMesh(f"building:{i}", props, positions, BOX_TRIANGLES))
    return out


@pytest.mark.parametrize("tiling", ["explicit", "implicit"])
def test_golden_tiny_tileset(tmp_path: Path, tiling: str):
    out = tmp_path / "tiles"
    options = TilesetOptions(tiling, "none", max_features=2)  # type: ignore[arg-type]
    write_tileset(out, np.eye(4), [BuildingsWriter(tiny_city())], options, META)
    assert validate_tileset_tree(out / "tileset.json") == []
    got = {"tileset.json": json.loads((out / "tileset.json").read_text())}
    for path in sorted(out.glob("buildings/subtrees/*.subtree")):
        document, binary = read_subtree(path.read_bytes())
        got[path.name] = {"json": document, "binary_sha1": hashlib.sha1(binary).hexdigest()}
    golden = GOLDEN / f"{tiling}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=1) + "\n")
    assert_json_close(got, json.loads(golden.read_text()))
