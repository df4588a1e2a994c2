"""Drone products in `twin build`: rasters in any CRS and unit, nDSM building heights, the
orthophoto-textured terrain (real Bangkok data), the sample's synthetic products, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from build_helpers import run_build, small_source, tree_hashes, write_source
from paths import SAMPLE_SRC
from pyproj import CRS, Transformer
from rasterio import Affine
from rasterio.features import rasterize
from rich.console import Console
from shapely.geometry import box
from tiles_helpers import glb_positions, run_gltf_validator, validate_tileset_tree

from tiles.content import terrain_glb
from tiles.glb import read_glb
from tiles.model import TerrainMesh
from tiles.texture import image_size
from twin.builder import synthetic
from twin.builder.ndsm import surface_heights
from twin.builder.ortho import encode_image
from twin.builder.pipeline import build_workspace
from twin.builder.rasters import Grid, read_height_grid, vertical_metres
from twin.builder.terrain import Dtm
from twin.catalog import Catalog
from twin.errors import InputError
from twin.workspace import Manifest, WorkspacePaths

DATA = Path(__file__).resolve().parent / "data"
BANGKOK = DATA / "bangkok"
QUIET = Console(quiet=True)
UTM51 = "EPSG:32651"


def _write_tif(
    path: Path, data: np.ndarray, crs: str | None, transform: Affine, **extra: object
) -> None:
    bands = data[None] if data.ndim == 2 else data
    profile = {"driver": "GTiff", "width": bands.shape[2], "height": bands.shape[1],
               "count": bands.shape[0], "dtype": bands.dtype.name, "crs": crs,
               "transform": transform, **extra}  # fmt: skip
    with rasterio.open(path, "w", **profile) as out:
        out.write(bands)


# --- rasters: CRS, units, bad files ------------------------------------------------------


def test_vertical_units_come_from_the_band_or_the_crs() -> None:
    assert vertical_metres(CRS.from_epsg(32651)) == 1.0
    assert vertical_metres(CRS.from_epsg(4326)) == 1.0
    assert vertical_metres(CRS.from_epsg(2227)) == pytest.approx(1200 / 3937)  # US survey feet
    assert vertical_metres(CRS.from_epsg(2992)) == pytest.approx(0.3048)  # international feet
    compound = CRS.from_user_input("EPSG:32651+5703")  # UTM + NAVD88 height (m)
    assert vertical_metres(compound) == 1.0
    assert vertical_metres(CRS.from_epsg(32651), "ft") == pytest.approx(0.3048)


def test_feet_rasters_are_read_in_metres(tmp_path: Path) -> None:
    feet = tmp_path / "feet.tif"
    _write_tif(feet, np.full((4, 4), 100.0, np.float32), "EPSG:2227",
               Affine(10, 0, 6_000_000, 0, -10, 2_000_000))  # fmt: skip
    assert np.allclose(read_height_grid(feet, "dtm").values, 100 * 1200 / 3937, atol=1e-4)
    band_unit = tmp_path / "unit.tif"
    _write_tif(band_unit, np.full((4, 4), 10.0, np.float32), UTM51,
               Affine(1, 0, 400_000, 0, -1, 3_400_000))  # fmt: skip
    with rasterio.open(band_unit, "r+") as ds:
        ds.units = ("ft",)
    assert np.allclose(read_height_grid(band_unit, "dsm").values, 3.048, atol=1e-4)


def test_rasters_without_crs_take_the_yaml_crs_or_fail(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.tif"
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    values[0, 0] = -1
    _write_tif(path, values, None, Affine(1, 0, 400_000, 0, -1, 3_400_000), nodata=-1)
    with pytest.raises(InputError, match=r"nocrs.tif.*field dsm: the raster has no CRS"):
        read_height_grid(path, "dsm")
    grid = read_height_grid(path, "dsm", default_crs=UTM51)
    assert grid.crs.to_epsg() == 32651
    assert np.isnan(grid.values[0, 0]) and grid.values[3, 3] == 15  # no data honoured


def test_bad_rasters_fail_in_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + b"\x07" * 200)
    with pytest.raises(InputError) as err:
        read_height_grid(corrupt, "dsm")
    assert "corrupt.tif" in err.value.one_line() and "\n" not in err.value.one_line()
    empty = tmp_path / "empty.tif"
    _write_tif(empty, np.full((8, 8), -9999, np.float32), UTM51,
               Affine(1, 0, 400_000, 0, -1, 3_400_000), nodata=-9999)  # fmt: skip
    with pytest.raises(InputError, match="no valid cell"):
        read_height_grid(empty, "dsm")
    far = (10.0, 10.0, 10.01, 10.01)  # lon/lat nowhere near UTM 51N's 400 km easting
    with pytest.raises(InputError, match="does not overlap the survey layers"):
        read_height_grid(BANGKOK / "dem.tif", "dtm", area=far)


def test_build_with_a_dsm_off_the_survey_area_fails_and_keeps_the_workspace(
    tmp_path: Path,
) -> None:
    src = small_source(tmp_path / "src")
    ws = tmp_path / "ws"
    assert run_build(src, ws).returncode == 0
    before = tree_hashes(ws)
    shutil.copy(BANGKOK / "dem.tif", src / "dem.tif")  # Bangkok, not Shanghai
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["drone"] = {"dtm": "dem.tif", "dsm": "dem.tif"}
    write_source(src, config)
    result = run_build(src, ws)
    assert result.returncode != 0
    message = result.stderr.strip()
    assert "dem.tif" in message and "field dtm" in message and "does not overlap" in message
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert tree_hashes(ws) == before


# --- nDSM building heights ----------------------------------------------------------------


def test_surface_heights_are_robust_per_footprint() -> None:
    """Boxes on a 1 m UTM DSM over a tilted 4326 DTM: p90 of the interior nDSM recovers each
    box's height; nested boxes keep their own; no data is ignored; sub-pixel ones get NaN."""
    x0, y1, size = 390_000.0, 3_460_000.0, 400
    transform = Affine(1, 0, x0, 0, -1, y1)
    rng = np.random.default_rng(3)
    to_lonlat = Transformer.from_crs(UTM51, "EPSG:4326", always_xy=True)
    boxes, heights = [], []
    for i in range(8):
        for j in range(8):
            bx, by = x0 + 20 + 45 * i, y1 - 20 - 45 * j
            boxes.append(box(bx, by - 30, bx + 30, by))
            heights.append(float(rng.uniform(3, 120)))
    boxes.append(box(x0 + 25, y1 - 45, x0 + 35, y1 - 25))  # nested in box 0
    heights.append(200.0)
    boxes.append(box(x0 + 390.6, y1 - 390.4, x0 + 390.9, y1 - 390.1))  # no pixel centre inside
    heights.append(50.0)
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    lon, lat = to_lonlat.transform(x0 + cols, y1 - rows)

    def ground(lon_: np.ndarray, lat_: np.ndarray) -> np.ndarray:
        return 10.0 + (np.asarray(lon_) - 121.0) * 2000 + (np.asarray(lat_) - 31.0) * 1000

    order = np.argsort([-b.area for b in boxes])
    raised = rasterize([(boxes[k], heights[k]) for k in order], out_shape=(size, size),
                       transform=transform, dtype="float32")  # fmt: skip
    dsm_values = (ground(lon, lat) + raised + rng.normal(0, 0.1, raised.shape)).astype(np.float32)
    dsm_values[40:44, 40:44] = np.nan  # a no-data hole in box 0
    dsm = Grid(Path("dsm.tif"), dsm_values, transform, CRS.from_user_input(UTM51))
    west, north = to_lonlat.transform(x0 - 50, y1 + 50)
    east, south = to_lonlat.transform(x0 + size + 50, y1 - size - 50)
    dtm_t = Affine((east - west) / 100, 0, west, 0, -(north - south) / 100, north)
    gc, gr = np.meshgrid(np.arange(100) + 0.5, np.arange(100) + 0.5)
    dtm = Dtm(Path("dtm.tif"), ground(*(dtm_t @ (gc, gr))), dtm_t, CRS.from_epsg(4326))
    footprints = [shapely.transform(b, lambda xy: np.column_stack(to_lonlat.transform(*xy.T)))
                  for b in boxes]  # fmt: skip
    result = surface_heights(footprints, dsm, dtm)
    assert np.abs(result.heights[:-1] - np.asarray(heights[:-1])).max() < 0.4
    assert np.isnan(result.heights[-1]) and result.none == 1
    assert result.interior == len(boxes) - 1


@pytest.mark.slow
def test_build_takes_heights_from_the_drone_surface_and_reports_disagreements(
    tmp_path: Path,
) -> None:
    src = small_source(tmp_path / "src")
    synthetic.generate(src)  # the generator works on any source with buildings
    buildings = gpd.read_file(src / "buildings.geojson")
    changed = str(buildings.loc[0, "id"])
    original_heights = buildings["height"].astype(float).fillna(9.0)  # 9 m: the default height
    buildings.loc[0, "height"] = 2 * original_heights[0] + 10.0  # far off the surface
    buildings.to_file(src / "buildings.geojson", driver="GeoJSON")
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["drone"] = {"dtm": "drone/dtm.tif", "dsm": "drone/dsm.tif"}
    write_source(src, config)
    manifest = build_workspace(src, tmp_path / "ws", console=QUIET)
    report = manifest.report
    assert report["height_sources"]["ndsm"] == 12
    disagreements = report["ndsm"]["attribute_disagreements"]
    assert disagreements["ids"] == [f"building:{changed}"] and disagreements["count"] == 1
    elements = {e.id: e for e in Catalog(WorkspacePaths(tmp_path / "ws").catalog).all("building")}
    for building_id, original in zip(buildings["id"], original_heights, strict=True):
        element = elements[f"building:{building_id}"]
        assert element.attributes["height_source"] == "ndsm"
        assert element.height == pytest.approx(original, abs=1.0)


# --- textured terrain: Bangkok (DEM in EPSG:4326, orthophoto in UTM 47N) --------------------


def _barycentric_uv(
    xy: np.ndarray, tri: np.ndarray, uv: np.ndarray, p: np.ndarray
) -> tuple[float, float]:
    """Texture coordinates at ENU point `p` (x, y), interpolated in the triangle holding it."""
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    s = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    t = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    inside = (s >= 0) & (t >= 0) & (s + t <= 1)
    k = int(np.flatnonzero(inside)[0])
    u, v = (1 - s[k] - t[k]) * uv[tri[k, 0]] + s[k] * uv[tri[k, 1]] + t[k] * uv[tri[k, 2]]
    return float(u), float(v)


@pytest.mark.slow
def test_bangkok_terrain_is_textured_with_the_orthophoto_where_it_says(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(BANGKOK / "dem.tif", src / "dem.tif")
    with rasterio.open(BANGKOK / "ortho.tif") as ortho:
        rgb, profile = ortho.read(), ortho.profile
        marker_col, marker_row = 250, 300  # a 5 x 5 magenta block centred on this pixel
        assert (rgb[:, marker_row, marker_col] > 0).all()  # inside the imaged area
        rgb[:, marker_row - 2 : marker_row + 3, marker_col - 2 : marker_col + 3] = [
            [[255]], [[0]], [[255]]
        ]  # fmt: skip
        centre = ortho.transform * (marker_col + 0.5, marker_row + 0.5)
    with rasterio.open(src / "ortho.tif", "w", **profile) as out:
        out.write(rgb)
    write_source(src, {"name": "bangkok", "drone": {"dtm": "dem.tif", "ortho": "ortho.tif"}})
    manifest = build_workspace(src, tmp_path / "ws", console=QUIET)
    paths = WorkspacePaths(tmp_path / "ws")
    assert validate_tileset_tree(paths.tileset) == []
    report = manifest.report["ortho"]
    assert report["format"] == "image/jpeg" and max(report["texture_px"]) <= 2048
    glb = read_glb(paths.tiles / "terrain" / "terrain.glb")
    ((positions, primitive),) = list(glb_positions(glb))
    uv = glb.accessor(primitive["attributes"]["TEXCOORD_0"]).astype(float)
    tri = glb.accessor(primitive["indices"]).astype(np.int64).reshape(-1, 3)
    image_index = glb.document["textures"][0]["source"]
    data = glb.view_bytes(glb.document["images"][image_index]["bufferView"])
    image = cv2.imdecode(np.frombuffer(data, np.uint8), 1)
    assert image is not None
    texture = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    height, width = texture.shape[:2]
    assert [width, height] == report["texture_px"]
    lon, lat = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True).transform(*centre)
    enu = manifest.frame.to_enu(lon, lat, 0.0)
    u, v = _barycentric_uv(positions[:, :2], tri, uv, np.asarray(enu)[:2])
    r, g, b = (texture[..., i].astype(int) for i in range(3))
    magenta = (r > 170) & (g < 110) & (b > 170)
    assert magenta.sum() >= 4
    rows, cols = np.nonzero(magenta)
    assert abs(u * width - (cols.mean() + 0.5)) <= 1.0
    assert abs(v * height - (rows.mean() + 0.5)) <= 1.0


def test_png_textured_terrain_glb_is_valid(tmp_path: Path) -> None:
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, :64] = (200, 30, 30)
    data, mime = encode_image(image, "png")
    assert image_size(data, mime) == (128, 64)
    positions = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 1], [0, 10, 0]], float)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], float)
    content = terrain_glb(TerrainMesh(positions, triangles, uvs, data, mime), "none")
    path = tmp_path / "t.glb"
    path.write_bytes(content.data)
    (result,) = run_gltf_validator([path])
    assert result["numErrors"] == 0, result["messages"]
    document = read_glb(path).document
    assert document["images"][0]["mimeType"] == "image/png"
    assert document["samplers"][0]["minFilter"] == 9987  # power-of-two sides: mipmaps


# --- the sample district's synthetic products ---------------------------------------------


def test_sample_heights_from_the_synthetic_dsm_match_osm(sample_ws: Path) -> None:
    source = gpd.read_file(SAMPLE_SRC / "buildings.geojson")
    attribute = {f"building:{int(i)}": float(h)
                 for i, h in zip(source["id"], source["height"], strict=True) if h > 0}  # fmt: skip
    elements = {e.id: e for e in Catalog(WorkspacePaths(sample_ws).catalog).all("building")}
    pairs = [(elements[i], h) for i, h in attribute.items() if i in elements]
    assert len(pairs) > 600
    good = [e.attributes["height_source"] == "ndsm" and abs(e.height - h) <= 1.0 for e, h in pairs]
    assert np.mean(good) >= 0.9
    manifest = Manifest.read(WorkspacePaths(sample_ws).manifest)
    assert manifest.report["ortho"]["coverage"] > 0.9
    tileset = json.loads(WorkspacePaths(sample_ws).tileset.read_text())
    assert "terrain" in json.dumps(tileset["root"]["children"])


@pytest.mark.slow
def test_sample_drone_files_are_small_and_regenerate_identically(tmp_path: Path) -> None:
    drone = SAMPLE_SRC / "drone"
    assert sum(p.stat().st_size for p in drone.glob("*.tif")) < 3_000_000
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE_SRC, copy, ignore=shutil.ignore_patterns("drone"))
    paths = synthetic.generate(copy)
    for name, path in paths.items():
        with rasterio.open(path) as new, rasterio.open(drone / path.name) as old:
            assert new.crs == old.crs and new.transform == old.transform, name
            assert np.array_equal(new.read(), old.read()), name
            assert new.tags()["SYNTHETIC"]
