"""Synthetic drone products for a source folder that has survey layers but no drone data.

``python -m twin.builder.synthetic data/sample`` writes ``drone/dtm.tif``, ``drone/dsm.tif`` and
``drone/ortho.tif`` into the folder, made only from its own layers (buildings, roads, water) and
a formula; nothing is measured. They exist so that the sample district exercises the drone
part of the build (nDSM building heights, textured terrain) and are labelled synthetic.

* **DTM** — `ground_height`: a smooth surface, `BASE_M` plus a few metres of relief, in
  CGCS2000 / 3-degree Gauss-Krüger CM 120°E (EPSG:4549), `DTM_RES_M` cells, float32.
* **DSM** — the ground plus every building footprint at the height the build would give it
  (height, else levels × storey height, else the default), smaller footprints drawn over
  larger ones (OSM building parts over their outline), plus
  Gaussian noise (σ = `NOISE_M`); in UTM 51N (EPSG:32651), `DSM_RES_M` cells, int16
  decimetres with a GeoTIFF scale of 0.1 (readers that honour scale/offset get metres).
* **Orthophoto** — the layers painted top-down: ground (tan and green), water (blue), roads
  (grey, width by kind), roofs (one of a few roof colours per building); UTM 51N,
  `ORTHO_RES_M` pixels, RGB.

All three cover the layers' extent plus `MARGIN_M` and are DEFLATE-compressed. The output is
deterministic (fixed noise seed), so rerunning gives the same files.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from rasterio.features import rasterize
from rasterio.transform import from_origin

from twin.builder.buildings import building_height, footprint
from twin.builder.sources import LayerData, read_layer
from twin.config import SourceConfig, load_source_config
from twin.errors import InputError, TwinError
from twin.geo import WGS84, metres_per_degree

DTM_CRS, SURFACE_CRS = "EPSG:4549", "EPSG:32651"
DTM_RES_M, DSM_RES_M, ORTHO_RES_M = 10.0, 2.0, 2.0
MARGIN_M = 100.0
BASE_M = 4.0
NOISE_M = 0.15
SEED = 4
DTM_NODATA, DSM_NODATA = -9999.0, -32768
ROAD_WIDTH_M = {"highway": 14.0, "major_road": 10.0, "minor_road": 6.0, "path": 2.0}
GROUND_TAN, GROUND_GREEN = (196, 184, 150), (112, 146, 88)
WATER_RGB, ROAD_RGB = (52, 92, 130), (128, 128, 124)
ROOF_RGB = ((176, 170, 160), (150, 90, 70), (120, 124, 130), (205, 205, 198), (95, 110, 120))
OUTPUTS = ("dtm.tif", "dsm.tif", "ortho.tif")

F64 = NDArray[np.float64]


def ground_height(lon: F64, lat: F64, origin: tuple[float, float]) -> F64:
    """The synthetic ground (m): `BASE_M` plus ≈ ±3 m of smooth relief over a few km, at
    lon/lat (degrees); `origin` (lon, lat) is where the relief's phase starts."""
    mx, my = metres_per_degree(origin[1])
    x = (np.asarray(lon) - origin[0]) * mx
    y = (np.asarray(lat) - origin[1]) * my
    return (
        BASE_M
        + 1.5 * np.sin(2 * np.pi * x / 3200.0)
        + 1.0 * np.cos(2 * np.pi * y / 2300.0)
        + 0.5 * np.sin(2 * np.pi * (x + y) / 1100.0)
    )


@dataclass
class _Grid:
    """A north-up grid in `crs` (metres): its transform, shape, and cell-centre lon/lat."""

    crs: str
    transform: Any
    shape: tuple[int, int]
    lon: F64
    lat: F64


def _grid(crs: str, res: float, area: tuple[float, float, float, float]) -> _Grid:
    """A grid of `res` m cells in `crs` covering the lon/lat `area` plus `MARGIN_M`."""
    west, south, east, north = area
    to_crs = Transformer.from_crs(WGS84, CRS.from_user_input(crs), always_xy=True)
    xs, ys = to_crs.transform([west, east, west, east], [south, south, north, north])
    x0, y1 = min(xs) - MARGIN_M, max(ys) + MARGIN_M
    cols = int(np.ceil((max(xs) + MARGIN_M - x0) / res))
    rows = int(np.ceil((y1 - (min(ys) - MARGIN_M)) / res))
    transform = from_origin(x0, y1, res, res)
    cx = x0 + (np.arange(cols) + 0.5) * res
    cy = y1 - (np.arange(rows) + 0.5) * res
    gx, gy = np.meshgrid(cx, cy)
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(gx, gy)
    return _Grid(crs, transform, (rows, cols), np.asarray(lon), np.asarray(lat))


def _in_crs(geometries: list[Any], crs: str) -> list[Any]:
    to_crs = Transformer.from_crs(WGS84, CRS.from_user_input(crs), always_xy=True)

    def move(xy: F64) -> F64:
        x, y = to_crs.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return list(shapely.transform(np.asarray(geometries, dtype=object), move))


def _buildings(layer: LayerData, config: SourceConfig) -> tuple[list[Any], F64]:
    """Polygon footprints (lon/lat) and the height the build gives each, largest first: where
    footprints overlap (OSM building outlines and their parts) the smaller one is the
    surface."""
    heights, levels = layer.values("height"), layer.values("levels")
    shapes, values = [], []
    for row, geometry in enumerate(layer.frame.geometry.tolist()):
        polygon, _ = footprint(geometry)
        if polygon is not None:
            shapes.append(polygon)
            values.append(building_height(heights[row], levels[row], config.build).height)
    order = np.argsort(-shapely.area(np.asarray(shapes, dtype=object)), kind="stable")
    return [shapes[i] for i in order], np.asarray(values, float)[order]


def _write(path: Path, data: NDArray[Any], grid: _Grid, **profile: Any) -> None:
    bands = data[None] if data.ndim == 2 else data
    meta = {
        "driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0],
        "count": bands.shape[0], "dtype": bands.dtype.name, "crs": grid.crs,
        "transform": grid.transform, "compress": "deflate", "zlevel": 9,
        "tiled": True, "blockxsize": 256, "blockysize": 256, **profile,
    }  # fmt: skip
    scale = meta.pop("scale", None)
    with rasterio.open(path, "w", **meta) as out:
        out.write(bands)
        if scale is not None:
            out.scales = (scale,) * bands.shape[0]
        out.update_tags(SYNTHETIC="made by twin.builder.synthetic from the survey layers")


def _roof_colours(buildings: list[Any]) -> NDArray[np.uint8]:
    """A roof colour per building, picked by a hash of its footprint (stable across runs)."""
    palette = np.asarray(ROOF_RGB, np.uint8)
    picks = [hashlib.sha1(g.wkb).digest()[0] % len(palette) for g in buildings]
    return palette[np.asarray(picks, int)] if picks else np.zeros((0, 3), np.uint8)


def _ortho(
    grid: _Grid, layers: dict[str, LayerData], buildings: list[Any], origin: tuple[float, float]
) -> NDArray[np.uint8]:
    """The layers painted on the grid, (3, rows, cols) RGB."""
    mx, my = metres_per_degree(origin[1])
    x, y = (grid.lon - origin[0]) * mx, (grid.lat - origin[1]) * my
    green = (np.sin(x / 310.0) * np.cos(y / 270.0) > 0.55)[..., None]
    image = np.where(green, GROUND_GREEN, GROUND_TAN).astype(np.uint8)

    def paint(shapes: list[Any], colour: Any) -> None:
        if not shapes:
            return
        mask = rasterize(
            ((g, 1) for g in _in_crs(shapes, grid.crs)), out_shape=grid.shape,
            transform=grid.transform, dtype="uint8",
        )  # fmt: skip
        image[mask == 1] = colour

    if "water" in layers:
        water = layers["water"].frame.geometry.tolist()
        paint([g for g in water if g.geom_type in ("Polygon", "MultiPolygon")], WATER_RGB)
    if "roads" in layers:
        roads = layers["roads"].frame
        kinds = roads["kind"].tolist() if "kind" in roads else ["minor_road"] * len(roads)
        lines = _in_crs(roads.geometry.tolist(), grid.crs)
        for kind, width in sorted(ROAD_WIDTH_M.items(), key=lambda kv: kv[1]):
            chosen = [g for g, k in zip(lines, kinds, strict=True) if k == kind]
            if chosen:
                mask = rasterize(
                    ((g.buffer(width / 2), 1) for g in chosen), out_shape=grid.shape,
                    transform=grid.transform, dtype="uint8",
                )  # fmt: skip
                image[mask == 1] = ROAD_RGB
    if buildings:
        ids = rasterize(
            zip(_in_crs(buildings, grid.crs), range(1, len(buildings) + 1), strict=True),
            out_shape=grid.shape, transform=grid.transform, dtype="int32",
        )  # fmt: skip
        colours = np.vstack([np.zeros((1, 3), np.uint8), _roof_colours(buildings)])
        roofs = ids > 0
        image[roofs] = colours[ids[roofs]]
    return np.moveaxis(image, -1, 0).copy()


def generate(folder: Path) -> dict[str, Path]:
    """Write ``folder/drone/{dtm,dsm,ortho}.tif`` from the layers of ``folder/twin.yaml``.

    Returns the written paths by product. Raises `InputError` when the folder has no
    building layer (see the module docstring for what each product holds)."""
    config = load_source_config(folder)
    layers = {
        key: read_layer(folder, key, cfg, config.crs)
        for key, cfg in config.layers
        if key in ("buildings", "roads", "water") and cfg is not None
    }
    if "buildings" not in layers:
        raise InputError("the source has no buildings layer to make a DSM from", file=str(folder))
    bounds = np.array([lay.frame.total_bounds for lay in layers.values()])
    area = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    origin = (float(area[0]), float(area[1]))
    out = folder / "drone"
    out.mkdir(exist_ok=True)
    paths = {name.removesuffix(".tif"): out / name for name in OUTPUTS}

    dtm = _grid(DTM_CRS, DTM_RES_M, area)
    ground = ground_height(dtm.lon, dtm.lat, origin).astype(np.float32)
    _write(paths["dtm"], ground, dtm, nodata=DTM_NODATA, predictor=3)

    dsm = _grid(SURFACE_CRS, DSM_RES_M, area)
    buildings, heights = _buildings(layers["buildings"], config)
    raised = rasterize(
        zip(_in_crs(buildings, dsm.crs), heights.tolist(), strict=True),
        out_shape=dsm.shape, transform=dsm.transform, dtype="float32", fill=0.0,
    )  # fmt: skip
    noise = np.random.default_rng(SEED).normal(0.0, NOISE_M, dsm.shape)
    surface = ground_height(dsm.lon, dsm.lat, origin) + raised + noise
    decimetres = np.clip(np.rint(surface * 10), -32767, 32767).astype(np.int16)
    _write(paths["dsm"], decimetres, dsm, nodata=DSM_NODATA, scale=0.1, predictor=2)

    ortho = _grid(SURFACE_CRS, ORTHO_RES_M, area)
    _write(paths["ortho"], _ortho(ortho, layers, buildings, origin), ortho, photometric="RGB")
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.builder.synthetic SRC``: write SRC/drone/*.tif; print what was written."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m twin.builder.synthetic SRC  (a folder holding twin.yaml)")
        return 2
    try:
        paths = generate(Path(args[0]))
    except TwinError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    for path in paths.values():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, synthetic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
