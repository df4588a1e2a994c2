"""Point clouds in `twin build`: LAS/LAZ (real Autzen data) → 3D Tiles 1.1 point tiles under the
root tileset, explicit or as an implicit octree; every point kept once and inside its boxes
(and, implicit, inside its octant); CRS and feet handled; bad files fail in one line."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import laspy
import numpy as np
import pytest
from build_helpers import write_source
from pyproj import CRS, Transformer
from rich.console import Console
from shapely.geometry import box
from synthetic_cloud import synthetic_chunks, synthetic_cloud
from tiles_helpers import glb_positions, run_gltf_validator, validate_tileset_tree, walk_tiles

import tiles.pointcloud as tiles_pointcloud
import twin.builder.pointcloud as twin_pointcloud
from tiles import (
    PointChunk,
    PointCloud,
    PointCloudReport,
    TilesetOptions,
    Tiling,
    mesh,
    write_pointcloud,
    write_tileset,
)
from tiles.glb import read_glb
from tiles.implicit import read_subtree
from twin.builder.pipeline import build_workspace
from twin.errors import InputError
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

LIDAR = Path(__file__).resolve().parent / "data" / "lidar"
AUTZEN = LIDAR / "autzen_trim.laz"
SIMPLE = LIDAR / "simple.las"
SIMPLE_CRS = "EPSG:2992"  # NAD83 / Oregon GIC Lambert (ft): see tests/data/lidar/README.md
QUIET = Console(quiet=True)


def _source(folder: Path, clouds: list[Path], crs: str | None, build: dict | None = None) -> Path:
    """A source folder: one building near the clouds' centre and the clouds (and twin.yaml
    `build` options)."""
    folder.mkdir(parents=True, exist_ok=True)
    to_lonlat = Transformer.from_crs(SIMPLE_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(636600.0, 849200.0)
    frame = gpd.GeoDataFrame(
        {"id": ["b1"], "height": [12.0]},
        geometry=[box(lon, lat, lon + 0.0002, lat + 0.0002)],
        crs="EPSG:4326",
    )
    frame.to_file(folder / "buildings.geojson", driver="GeoJSON")
    names = []
    for cloud in clouds:
        (folder / cloud.name).write_bytes(cloud.read_bytes())
        names.append(cloud.name)
    config = {
        "name": "autzen",
        "layers": {"buildings": {"path": "buildings.geojson", "id": "id", "height": "height"}},
        "drone": {"pointcloud": names},
    }
    if crs:
        config["crs"] = crs
    if build:
        config["build"] = build
    return write_source(folder, config)


def _expected_enu(path: Path, crs: CRS, frame: LocalFrame) -> tuple[np.ndarray, laspy.LasData]:
    """Every point of a file in ENU metres, read whole (the build streams it): lon/lat from the
    projected CRS, heights from international feet to metres."""
    las = laspy.read(path)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(las.x, las.y)
    assert crs.axis_info[0].unit_name == "foot"
    return frame.to_enu(lon, lat, np.asarray(las.z) * 0.3048), las


def _same_points(got: np.ndarray, expected: np.ndarray, tol: float = 0.02) -> bool:
    """Equal counts and, on each axis, the sorted coordinates within `tol` metres (a point
    lost, moved or written twice changes them). The default allows builds' meshopt tiles:
    half a uint16 grid step of simple.las's 1.3 km single tile is 1.1 cm."""
    if got.shape != expected.shape:
        return False
    return bool(np.abs(np.sort(got, axis=0) - np.sort(expected, axis=0)).max() < tol)


def _cloud_points(tileset: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ENU positions, classification and intensity of every point of a point tileset, after
    checking each glb's points lie in its tile's box."""
    positions, classes, intensity = [], [], []
    for placed in walk_tiles(tileset):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.endswith(".glb"):
            continue
        glb = read_glb(placed.file.parent / uri)
        for points, primitive in glb_positions(glb):
            assert primitive["mode"] == 0
            attrs = primitive["attributes"]
            positions.append(points)
            classes.append(glb.accessor(attrs["_CLASSIFICATION"]))
            intensity.append(glb.accessor(attrs["_INTENSITY"]))
            assert glb.accessor(attrs["COLOR_0"]).dtype == np.uint8
    return np.concatenate(positions), np.concatenate(classes), np.concatenate(intensity)


@pytest.fixture(scope="module")
def autzen_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("autzen")
    src = _source(tmp / "src", [AUTZEN, SIMPLE], SIMPLE_CRS)
    ws = tmp / "ws"
    build_workspace(src, ws, console=QUIET)
    return ws


def test_point_tiles_are_valid_and_hang_under_the_root(autzen_ws: Path) -> None:
    tileset = WorkspacePaths(autzen_ws).tiles / "tileset.json"
    assert validate_tileset_tree(tileset) == []
    root = json.loads(tileset.read_text())["root"]
    uris = [c.get("content", {}).get("uri") for c in root["children"]]
    assert "pointcloud/0-autzen_trim/tileset.json" in uris
    assert "pointcloud/1-simple/tileset.json" in uris
    report = Manifest.read(WorkspacePaths(autzen_ws).manifest).report["pointcloud"]
    assert [r["points"] for r in report] == [110_000, 1065]
    assert report[0]["z_metres_per_unit"] == pytest.approx(0.3048)


def test_every_point_is_kept_once_where_it_belongs(autzen_ws: Path) -> None:
    manifest = Manifest.read(WorkspacePaths(autzen_ws).manifest)
    frame = LocalFrame(**manifest.origin)
    folder = WorkspacePaths(autzen_ws).tiles / "pointcloud"
    for name, path, crs in [
        ("0-autzen_trim", AUTZEN, laspy.read(AUTZEN).header.parse_crs()),
        ("1-simple", SIMPLE, CRS.from_user_input(SIMPLE_CRS)),
    ]:
        expected, las = _expected_enu(path, crs, frame)
        got, classes, intensity = _cloud_points(folder / name / "tileset.json")
        assert len(got) == len(expected) == las.header.point_count
        # The same points (to 2 cm: uint16 grid of meshopt tiles), none lost and none twice.
        assert _same_points(got, expected)
        assert np.bincount(classes).tolist() == np.bincount(las.classification).tolist()
        assert int(intensity.astype(np.int64).sum()) == int(np.sum(las.intensity, dtype=np.int64))
        # The reference to the cloud in the root tileset holds every point.
        root = json.loads((WorkspacePaths(autzen_ws).tiles / "tileset.json").read_text())["root"]
        (ref,) = [c for c in root["children"] if name in c.get("content", {}).get("uri", "")]
        lo, hi = np.array(ref["boundingVolume"]["box"][:3]), np.array(ref["boundingVolume"]["box"])
        half = np.abs(hi[3:].reshape(3, 3)).sum(axis=0)
        assert (np.abs(expected - lo) <= half + 1e-6).all()


def test_large_clouds_have_a_level_of_detail_tree(autzen_ws: Path) -> None:
    tileset = WorkspacePaths(autzen_ws).tiles / "pointcloud" / "0-autzen_trim" / "tileset.json"
    root = json.loads(tileset.read_text())["root"]
    assert root["refine"] == "ADD" and root["children"] and "content" in root
    assert root["geometricError"] > 0
    assert all(c["geometricError"] <= root["geometricError"] for c in root["children"])


@pytest.mark.slow
def test_parallel_pyramid_keeps_every_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two spawned workers over two ranges, 4 binning cells merged by the pyramid."""
    monkeypatch.setattr(twin_pointcloud, "PARALLEL_POINTS", 50_000)
    monkeypatch.setattr(tiles_pointcloud, "CELL_POINTS", 30_000)
    cloud = twin_pointcloud.open_cloud(AUTZEN, None)
    frame = LocalFrame(-123.0725, 44.0585, 120.0)
    writer = twin_pointcloud.cloud_writer(cloud, frame, "a", workers=2)
    result = writer.write(tmp_path, TilesetOptions(compression="none"), None)
    assert isinstance(result.report, PointCloudReport) and result.report.points == 110_000
    tileset = tmp_path / "pointcloud" / "a" / "tileset.json"
    root = json.loads(tileset.read_text())["root"]
    assert any(c["content"]["uri"].startswith("c") for c in _descendants(root) if "content" in c)
    assert root["content"]["uri"].startswith("p1_")
    got, _, _ = _cloud_points(tileset)
    expected, _ = _expected_enu(AUTZEN, laspy.read(AUTZEN).header.parse_crs(), frame)
    assert _same_points(got, expected)
    assert result.tile is not None and result.tile.bounding_volume.contains(expected)
    assert validate_tileset_tree(tileset) == []


def _descendants(tile: dict) -> list[dict]:
    out = []
    for child in tile.get("children", []):
        out += [child, *_descendants(child)]
    return out


def test_a_cloud_without_crs_needs_one_in_twin_yaml(tmp_path: Path) -> None:
    src = _source(tmp_path / "src", [SIMPLE], None)
    with pytest.raises(InputError) as err:
        build_workspace(src, tmp_path / "ws", console=QUIET)
    line = err.value.one_line()
    assert "\n" not in line and "simple.las" in line and "no CRS" in line
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_a_corrupt_cloud_fails_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / ("bad.las" if kind == "garbage" else "bad.laz")
    data = AUTZEN.read_bytes()
    bad.write_bytes(b"not a las file at all" * 20 if kind == "garbage" else data[: len(data) // 3])
    src = _source(tmp_path / "src", [bad], SIMPLE_CRS)
    with pytest.raises(InputError) as err:
        build_workspace(src, tmp_path / "ws", console=QUIET)
    line = err.value.one_line()
    assert "\n" not in line and bad.name in line and "point cloud" in line
    assert not (tmp_path / "ws").exists()


# --- implicit tiling: a regular octree with subtree files -------------------------------------


@pytest.fixture(scope="module")
def autzen_implicit_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("autzen-implicit")
    src = _source(tmp / "src", [AUTZEN, SIMPLE], SIMPLE_CRS, build={"tiling": "implicit"})
    ws = tmp / "ws"
    build_workspace(src, ws, console=QUIET)
    return ws


@pytest.mark.slow
def test_implicit_build_writes_valid_octrees_with_every_point_once(
    autzen_implicit_ws: Path,
) -> None:
    tiles = WorkspacePaths(autzen_implicit_ws).tiles
    assert validate_tileset_tree(tiles / "tileset.json") == []
    manifest = Manifest.read(WorkspacePaths(autzen_implicit_ws).manifest)
    frame = LocalFrame(**manifest.origin)
    report = manifest.report["pointcloud"]
    assert [r["points"] for r in report] == [110_000, 1065]
    for name, path, crs in [
        ("0-autzen_trim", AUTZEN, laspy.read(AUTZEN).header.parse_crs()),
        ("1-simple", SIMPLE, CRS.from_user_input(SIMPLE_CRS)),
    ]:
        tileset = tiles / "pointcloud" / name / "tileset.json"
        doc = json.loads(tileset.read_text())
        assert doc["root"]["implicitTiling"]["subdivisionScheme"] == "OCTREE"
        assert doc["root"]["content"]["uri"] == "{level}/{x}/{y}/{z}.glb"
        assert set(doc["schema"]["classes"]) == {"point", "tile"}
        expected, las = _expected_enu(path, crs, frame)
        got, classes, _ = _cloud_points(tileset)
        assert _same_points(got, expected)  # ADD refinement: no point written twice
        assert np.bincount(classes).tolist() == np.bincount(las.classification).tolist()
        assert _octant_problems(tileset) == []
    assert (tiles / "pointcloud" / "0-autzen_trim" / "subtrees" / "0.0.0.0.subtree").is_file()


@pytest.mark.parametrize("tiling", ["explicit", "implicit"])
def test_meshopt_point_tiles_are_valid_smaller_and_within_half_a_grid_step(
    tmp_path: Path, tiling: Tiling
) -> None:
    """The same cloud plain and with ``meshopt``: the same tileset, every glb valid, every
    point within half a uint16 grid step (tile extent / 131070 per axis) of the plain one
    (itself within float32 rounding, ~1e-5 m, of the source), identical attributes."""
    count = 120_000
    synthetic_cloud(tmp_path / "none", count, tiling=tiling, compression="none")
    synthetic_cloud(tmp_path / "meshopt", count, tiling=tiling, compression="meshopt")
    plain_tileset = json.loads((tmp_path / "none" / "tileset.json").read_text())
    packed_tileset = json.loads((tmp_path / "meshopt" / "tileset.json").read_text())
    assert packed_tileset == plain_tileset
    names = sorted(p.relative_to(tmp_path / "none") for p in (tmp_path / "none").rglob("*.glb"))
    packed_glbs = sorted((tmp_path / "meshopt").rglob("*.glb"))
    assert [p.relative_to(tmp_path / "meshopt") for p in packed_glbs] == names
    assert len(names) >= 3
    reports = run_gltf_validator(packed_glbs)
    assert [r["numErrors"] for r in reports] == [0] * len(names), reports
    worst, points = 0.0, 0
    for name in names:
        plain, packed = read_glb(tmp_path / "none" / name), read_glb(tmp_path / "meshopt" / name)
        assert set(packed.document["extensionsRequired"]) == {
            "KHR_mesh_quantization",
            "EXT_meshopt_compression",
        }
        ((expected, plain_primitive),) = glb_positions(plain)
        ((got, primitive),) = glb_positions(packed)
        position = packed.document["accessors"][primitive["attributes"]["POSITION"]]
        assert position["componentType"] == 5123  # UNSIGNED_SHORT
        views = packed.document["bufferViews"]
        assert all("EXT_meshopt_compression" in v["extensions"] for v in views)
        assert all(v["byteStride"] % 4 == 0 for v in views)
        # Half a grid step on each axis: the node scale (glTF y-up) turned to ENU axes.
        half_step = np.abs(mesh.gltf_to_enu(packed.document["nodes"][0]["scale"])) / 2
        error = np.abs(got - expected)
        assert (error <= half_step + 1e-4).all(), (name, error.max(axis=0), half_step)
        worst = max(worst, float(error.max()))
        points += len(got)
        for attribute in ("COLOR_0", "_CLASSIFICATION", "_INTENSITY"):
            want = plain.accessor(plain_primitive["attributes"][attribute])
            have = packed.accessor(primitive["attributes"][attribute])
            assert have.dtype == want.dtype and np.array_equal(have, want), (name, attribute)
    assert points == count
    # 200 m square tiles, 31 m tall: at most 200 m / 131070 ≈ 1.5 mm off on an axis.
    assert 0 < worst < 200 / 131070 + 1e-4
    plain_bytes = sum((tmp_path / "none" / n).stat().st_size for n in names)
    packed_bytes = sum(p.stat().st_size for p in packed_glbs)
    assert packed_bytes < 0.8 * plain_bytes, (packed_bytes, plain_bytes)


def _octant_problems(tileset: Path) -> list[str]:
    """Implicit tiles whose points leave the octant of their (level, x, y, z) in the root
    cube (the tileset root's volume), by more than float32 rounding."""
    box = np.array(json.loads(tileset.read_text())["root"]["boundingVolume"]["box"])
    half = np.abs(box[3:].reshape(3, 3)).sum(axis=0)
    lo, side = box[:3] - half, 2 * half[0]
    problems = []
    for placed in walk_tiles(tileset):
        level, *xyz = (int(v) for v in placed.pointer.split("/implicit/")[1].split("/"))
        if "content" not in placed.tile:
            continue
        size = side / 2**level
        corner = lo + np.array(xyz) * size
        for points, _ in glb_positions(read_glb(tileset.parent / placed.tile["content"]["uri"])):
            if ((points < corner - 1e-3) | (points > corner + size + 1e-3)).any():
                problems.append(f"{placed.pointer}: points outside its octant")
    return problems


@pytest.mark.slow
def test_a_deep_generated_octree_is_regular_and_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small leaves and binning cells: 64 columns (some holding two level-3 tiles stacked in
    z) merged by the pyramid, ≥ 4 levels, subtrees of 2 levels below the root subtree."""
    monkeypatch.setattr(tiles_pointcloud, "LEAF_POINTS", 2_000)
    monkeypatch.setattr(tiles_pointcloud, "SAMPLE_GRID", 16)
    monkeypatch.setattr(tiles_pointcloud, "CELL_POINTS", 5_000)
    monkeypatch.setattr(tiles_pointcloud, "SUBTREE_LEVELS", 2)
    tile, report = synthetic_cloud(tmp_path / "cloud", 120_000)
    tileset = tmp_path / "cloud" / "tileset.json"
    assert validate_tileset_tree(tileset) == []
    assert report.points == 120_000 and report.levels >= 4
    subtrees = sorted((tmp_path / "cloud" / "subtrees").iterdir())
    assert len(subtrees) > 1 and subtrees[0].name == "0.0.0.0.subtree"
    placed = list(walk_tiles(tileset))
    assert len(placed) == report.tiles == report.glbs
    coords = [tuple(int(v) for v in p.pointer.split("/")[-4:]) for p in placed]
    assert max(c[0] for c in coords) == report.levels - 1
    assert {c[3] for c in coords if c[0] == 3} == {0, 1}  # roofs reach the second octant up
    got, _, _ = _cloud_points(tileset)
    chunks = list(synthetic_chunks(120_000, 3, 200.0))
    assert _same_points(got, np.concatenate([c.positions for c in chunks]))
    assert _octant_problems(tileset) == []
    assert tile.bounding_volume.contains(got, tol=1e-4)
    # The root keeps a coarse subsample; errors halve with the octant size.
    errors = {int(p.pointer.split("/")[-4]): p.tile["geometricError"] for p in placed}
    assert errors[0] == pytest.approx(200.0 / 16) and errors[1] == pytest.approx(100.0 / 16)


def test_the_checker_sees_a_broken_subtree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong availableCount and a child box outside its parent are both reported."""
    monkeypatch.setattr(tiles_pointcloud, "LEAF_POINTS", 5_000)
    synthetic_cloud(tmp_path / "cloud", 30_000)
    path = tmp_path / "cloud" / "subtrees" / "0.0.0.0.subtree"
    document, binary = read_subtree(path.read_bytes())
    assert "bitstream" in document["tileAvailability"]
    data = bytearray(path.read_bytes())
    text = json.dumps(document["tileAvailability"], separators=(",", ":")).encode()
    count = document["tileAvailability"]["availableCount"]
    wrong = text.replace(f":{count}}}".encode(), f":{count + 1}}}".encode())
    start = data.index(text)
    data[start : start + len(text)] = wrong
    # Move the last tile's box (a level-1 or deeper tile) 1 km east.
    table = document["propertyTables"][0]
    view = document["bufferViews"][table["properties"]["bounding_box"]["values"]]
    offset = len(data) - len(binary) + view["byteOffset"] + view["byteLength"] - 96
    boxes = np.frombuffer(bytes(data[offset : offset + 96]), "<f8").copy()
    boxes[0] += 1000
    data[offset : offset + 96] = boxes.tobytes()
    path.write_bytes(bytes(data))
    problems = validate_tileset_tree(tmp_path / "cloud" / "tileset.json")
    assert any("availableCount" in p for p in problems), problems
    assert any("not inside its parent" in p for p in problems), problems


@pytest.mark.slow
def test_parallel_implicit_octree_keeps_every_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two spawned workers over two ranges; binning columns merged by octree parent."""
    monkeypatch.setattr(twin_pointcloud, "PARALLEL_POINTS", 50_000)
    monkeypatch.setattr(tiles_pointcloud, "CELL_POINTS", 20_000)
    cloud = twin_pointcloud.open_cloud(AUTZEN, None)
    frame = LocalFrame(-123.0725, 44.0585, 120.0)
    # A cloud-only root: CesiumJS reads subtree metadata with the root tileset's schema
    # (CesiumGS/cesium#11638), so the root defines the tile class although it has no other tree.
    writer = twin_pointcloud.cloud_writer(cloud, frame, "a", workers=2)
    options = TilesetOptions(tiling="implicit", compression="none")
    (result,) = write_tileset(tmp_path, frame.enu_to_ecef_matrix(), [writer], options).layers
    report, tile = result.report, result.tile
    assert isinstance(report, PointCloudReport) and report.points == 110_000 and report.levels >= 3
    tileset = tmp_path / "pointcloud" / "a" / "tileset.json"
    assert tile is not None and tile.content is not None
    assert tile.content.uri == "pointcloud/a/tileset.json"
    got, _, _ = _cloud_points(tileset)
    expected, _ = _expected_enu(AUTZEN, laspy.read(AUTZEN).header.parse_crs(), frame)
    assert _same_points(got, expected)
    assert _octant_problems(tileset) == []
    root = json.loads((tmp_path / "tileset.json").read_text())
    assert "tile" in root["schema"]["classes"]
    assert validate_tileset_tree(tmp_path / "tileset.json") == []
    assert validate_tileset_tree(tileset) == []


def _volume_chunks(count: int, side: float) -> Iterator[PointChunk]:
    """`count` points filling a `side` m cube (a canopy-like volumetric cloud), ENU metres."""
    rng = np.random.default_rng(7)
    yield PointChunk(
        rng.uniform(0, side, (count, 3)),
        rng.integers(0, 256, (count, 3), dtype=np.uint8),
        np.full(count, 5, np.uint8),
        rng.integers(0, 4000, count).astype(np.uint16),
    )


@pytest.mark.parametrize("tiling", ["explicit", "implicit"])
def test_volumetric_clouds_keep_every_tile_within_the_point_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiling: str
) -> None:
    """A cube full of points fills far more subsample voxels (16³) than a tile may hold: every
    glb stays within `LEAF_POINTS` points (24 bytes each), and no point is lost or doubled."""
    monkeypatch.setattr(tiles_pointcloud, "LEAF_POINTS", 1_000)
    monkeypatch.setattr(tiles_pointcloud, "SAMPLE_GRID", 16)
    side, count = 20.0, 30_000
    out = tmp_path / "cloud"
    bounds = ([0.0, 0.0, 0.0], [side, side, side])
    source = functools.partial(_volume_chunks, count, side)
    options = TilesetOptions(tiling=tiling, compression="none")  # type: ignore[arg-type]
    _, report = write_pointcloud(out, PointCloud([source], bounds, count), options)
    assert report.points == count
    sizes = [read_glb(p).document["accessors"][0]["count"] for p in out.rglob("*.glb")]
    assert max(sizes) == 1_000 and sum(sizes) == count
    assert max(p.stat().st_size for p in out.rglob("*.glb")) < 1_000 * 24 + 4_096
    got, _, _ = _cloud_points(out / "tileset.json")
    assert _same_points(got, next(_volume_chunks(count, side)).positions)


@pytest.mark.slow
def test_a_lidar_only_source_builds_around_the_cloud(tmp_path: Path) -> None:
    """No layer and no DTM, only a drone LiDAR file: the frame sits at the cloud's centre and
    lowest point, the tiles hold every point, heights in metres (the file's z is in feet)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / AUTZEN.name).write_bytes(AUTZEN.read_bytes())
    write_source(src, {"name": "lidar-only", "drone": {"pointcloud": [AUTZEN.name]}})
    ws = tmp_path / "ws"
    build_workspace(src, ws, console=QUIET)
    paths = WorkspacePaths(ws)
    assert validate_tileset_tree(paths.tileset) == []
    manifest = Manifest.read(paths.manifest)
    assert [r["points"] for r in manifest.report["pointcloud"]] == [110_000]
    las = laspy.read(AUTZEN)
    crs = las.header.parse_crs()  # horizontal feet; no vertical CRS: z taken in the same unit
    feet = crs.axis_info[0].unit_conversion_factor
    assert feet == pytest.approx(0.3048)
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x, y, z = (np.asarray(v, float) for v in (las.x, las.y, las.z))
    lon, lat = to_lonlat.transform((x.min() + x.max()) / 2, (y.min() + y.max()) / 2)
    origin = manifest.origin
    assert abs(origin["lon"] - lon) < 0.002 and abs(origin["lat"] - lat) < 0.002
    assert origin["height"] == pytest.approx(z.min() * feet, abs=0.01)
    frame = LocalFrame(**origin)
    got, _, _ = _cloud_points(paths.tiles / "pointcloud" / "0-autzen_trim" / "tileset.json")
    assert len(got) == 110_000
    assert got[:, 2].min() == pytest.approx(0.0, abs=0.05)  # the frame stands on the lowest point
    assert np.ptp(got[:, 2]) == pytest.approx(np.ptp(z) * feet, rel=1e-3)
    expected, _ = _expected_enu(AUTZEN, crs, frame)
    assert _same_points(got, expected)
