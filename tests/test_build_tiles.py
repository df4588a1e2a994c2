"""`twin build` tile options (twin.yaml ``build:`` and the CLI flags that override it), the
tileset metadata and extra building properties it passes, and reproducible output."""

from __future__ import annotations

import gzip
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import yaml
from build_helpers import sample_buildings, small_source, tree_hashes, twin_build
from paths import SAMPLE_SRC, TWIN
from tiles_helpers import (
    decode_glb_features,
    run_gltf_validator,
    validate_tileset_tree,
    walk_tiles,
)

from tiles.archive import INDEX_NAME, read_index
from tiles.glb import read_glb
from twin.workspace import Manifest, WorkspacePaths

EPOCH = 1_000_000_000  # 2001-09-09T01:46:40Z


def _set_build(src: Path, build: dict[str, Any]) -> None:
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["build"] = build
    (src / "twin.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")


def _content_tiles(tileset: Path) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(tile, feature rows) of every building content tile."""
    out = []
    for placed in walk_tiles(tileset):
        uri = placed.tile.get("content", {}).get("uri", "")
        if uri.startswith("buildings/"):
            out.append((placed.tile, decode_glb_features(tileset.parent / uri)))
    return out


def _uses_meshopt(glb: Path) -> bool:
    return "EXT_meshopt_compression" in read_glb(glb).document.get("extensionsUsed", [])


def test_defaults_are_explicit_lod_meshopt_without_archive(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src", limit=40)
    _set_build(src, {"tile_max_features": 8})
    ws = tmp_path / "ws"
    twin_build(src, ws)
    paths = WorkspacePaths(ws)
    tileset = json.loads(paths.tileset.read_text())
    assert "implicitTiling" not in json.dumps(tileset)
    assert not paths.tiles_archive.exists()
    tiles = _content_tiles(paths.tileset)
    assert any(tile["geometricError"] > 0 for tile, _ in tiles)  # coarse levels exist
    assert all(_uses_meshopt(p) for p in paths.tiles.rglob("*.glb"))
    report = Manifest.read(paths.manifest).report["tiles"]
    assert report["options"] == {"lod": True, "tiling": "explicit", "compression": "meshopt"}
    assert report["archive"] is None


def test_cli_flags_override_twin_yaml(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src", limit=40)
    yaml_build = {"tile_max_features": 8, "tiling": "implicit", "archive": True, "lod": False,
                  "compression": "none"}  # fmt: skip
    _set_build(src, yaml_build)
    ws = tmp_path / "ws"
    twin_build(src, ws, "--lod", "--compression", "meshopt")
    paths = WorkspacePaths(ws)
    assert validate_tileset_tree(paths.tileset) == []
    tileset = json.loads(paths.tileset.read_text())
    buildings = tileset["root"]["children"][0]
    assert buildings["implicitTiling"]["subdivisionScheme"] == "QUADTREE"  # twin.yaml
    tiles = _content_tiles(paths.tileset)
    assert any(tile["geometricError"] > 0 for tile, _ in tiles)  # --lod
    assert all(_uses_meshopt(p) for p in paths.tiles.rglob("*.glb"))  # --compression
    index = read_index(paths.tiles_archive)  # twin.yaml archive: true
    files = [p for p in paths.tiles.rglob("*") if p.is_file()]
    twins = [p for p in files if p.name.endswith(".json.gz")]  # for nginx's gzip_static
    assert len(index) == len(files) - len(twins)
    assert sorted(p.name for p in twins) == sorted(p.name + ".gz" for p in files
                                                     if p.suffix == ".json")  # fmt: skip
    for twin in twins:
        plain = twin.with_name(twin.name.removesuffix(".gz"))
        assert gzip.decompress(twin.read_bytes()) == plain.read_bytes()
    report = Manifest.read(paths.manifest).report["tiles"]
    assert report["archive"] == "tiles.3tz" and report["archive_bytes"] > 0
    assert report["options"] == {"lod": True, "tiling": "implicit", "compression": "meshopt"}

    twin_build(src, ws, "--tiling", "explicit", "--no-lod", "--no-archive")
    assert validate_tileset_tree(paths.tileset) == []
    assert "implicitTiling" not in paths.tileset.read_text()
    tiles = _content_tiles(paths.tileset)
    assert tiles and all(tile["geometricError"] == 0 for tile, _ in tiles)  # no coarse levels
    ids = [row["element_id"] for _, rows in tiles for row in rows]
    assert len(ids) == len(set(ids)) == Manifest.read(paths.manifest).counts["building"]
    assert not any(_uses_meshopt(p) for p in paths.tiles.rglob("*.glb"))  # twin.yaml: none
    assert not paths.tiles_archive.exists()  # a rebuild replaces the whole workspace


def test_bad_build_option_in_twin_yaml_is_named(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src")
    _set_build(src, {"tiling": "octree"})
    result = subprocess.run(
        [TWIN, "build", str(src), "-o", str(tmp_path / "ws")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "build.tiling" in result.stderr and "Traceback" not in result.stderr


def test_metadata_properties_and_reproducible_output(tmp_path: Path) -> None:
    src = tmp_path / "src"
    small_source(src, limit=12)
    frame = sample_buildings(12)
    frame["floors"] = [4] + [None] * 11  # levels known for the first building only
    frame["addr_street"] = ["Century Avenue"] + [None] * 11
    frame["addr_housenumber"] = ["100"] + [None] * 11
    frame.to_file(src / "buildings.geojson", driver="GeoJSON")
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["layers"]["buildings"]["levels"] = "floors"
    (src / "twin.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")

    first, second = tmp_path / "ws1", tmp_path / "ws2"
    twin_build(src, first, "--archive", epoch=EPOCH)
    twin_build(src, second, "--archive", epoch=EPOCH)
    paths = WorkspacePaths(first)
    assert tree_hashes(paths.tiles) == tree_hashes(WorkspacePaths(second).tiles)
    assert paths.tiles_archive.read_bytes() == WorkspacePaths(second).tiles_archive.read_bytes()
    assert Manifest.read(paths.manifest).built_at == "2001-09-09T01:46:40+00:00"

    tileset = json.loads(paths.tileset.read_text())
    assert tileset["metadata"]["properties"] == {
        "name": "small",
        "build_time": "2001-09-09T01:46:40Z",
        "source_crs": "EPSG:4326",
        "vertical_datum": "WGS84 ellipsoidal height, metres",
    }
    layer = tileset["groups"][0]["properties"]
    assert layer == {"name": "buildings", "source": "buildings.geojson", "feature_count": 12}
    building_class = tileset["schema"]["classes"]["building"]["properties"]
    assert building_class["levels"]["noData"] == -(2**31)  # known for one building only
    rows = {
        row["element_id"]: row
        for tile, tile_rows in _content_tiles(paths.tileset)
        if tile["geometricError"] == 0
        for row in tile_rows
    }
    first_id = f"building:{frame['id'][0]}"
    assert rows[first_id]["levels"] == 4
    assert rows[first_id]["address"] == "Century Avenue 100"
    assert rows[first_id]["source_id"] == str(frame["id"][0])
    assert rows[first_id]["source_layer"] == "buildings.geojson"
    others = [row for key, row in rows.items() if key != first_id]
    assert all(row["levels"] is None and row["address"] == "" for row in others)
    assert len(rows) == 12


def test_archive_lists_every_file_and_the_index_last(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src")
    ws = tmp_path / "ws"
    twin_build(src, ws, "--archive")
    paths = WorkspacePaths(ws)
    with zipfile.ZipFile(paths.tiles_archive) as archive:
        names = archive.namelist()
        assert names[-1] == INDEX_NAME
        for name in names[:-1]:
            assert archive.read(name) == (paths.tiles / name).read_bytes()
    expected = sorted(
        p.relative_to(paths.tiles).as_posix()
        for p in paths.tiles.rglob("*.*")
        if not p.name.endswith(".json.gz")  # the archive deflates its own entries
    )
    assert sorted(names[:-1]) == expected


def test_the_sample_district_builds_as_implicit_draco_trees(tmp_path: Path) -> None:
    """The whole sample (buildings, DTM terrain textured with the orthophoto) with
    ``--tiling implicit --compression draco``: buildings and terrain are implicit quadtrees,
    every tileset and subtree validates, every glb passes the glTF validator."""
    ws = tmp_path / "ws"
    twin_build(SAMPLE_SRC, ws, "--tiling", "implicit", "--compression", "draco")
    paths = WorkspacePaths(ws)
    assert validate_tileset_tree(paths.tileset) == []
    children = json.loads(paths.tileset.read_text())["root"]["children"]
    schemes = {c["content"]["uri"].split("/")[0]: c["implicitTiling"] for c in children}
    assert set(schemes) == {"buildings", "terrain"}
    assert all(s["subdivisionScheme"] == "QUADTREE" for s in schemes.values())
    assert schemes["terrain"]["availableLevels"] >= 2
    assert (paths.tiles / "terrain" / "subtrees" / "0.0.0.subtree").is_file()
    glbs = sorted(paths.tiles.rglob("*.glb"))
    assert all(
        "KHR_draco_mesh_compression" in read_glb(p).document["extensionsRequired"] for p in glbs
    )
    reports = run_gltf_validator(glbs)
    assert [r["file"] for r in reports if r["numErrors"]] == []
    ids = {row["element_id"] for _, rows in _content_tiles(paths.tileset) for row in rows}
    assert len(ids) == Manifest.read(paths.manifest).counts["building"]
