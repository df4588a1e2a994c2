"""Drone point clouds (LAS/LAZ) into 3D Tiles point-cloud tilesets, streamed in chunks.

A file's CRS comes from its header (WKT or GeoTIFF-key VLRs), else from twin.yaml's ``crs:``,
else it is an error. Horizontal coordinates are reprojected through lon/lat to the workspace's
ENU frame; heights are converted to metres from the CRS (the vertical axis of a compound CRS,
else the linear unit of a projected one: a US-feet State Plane cloud holds feet) and taken as
ellipsoidal (`twin.geo.VERTICAL_DATUM`). Points are read `CHUNK_POINTS` at a time, in
`workers` ranges read in parallel, so a file of any size streams in bounded memory.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import laspy
import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from tiles import (
    LayerResult,
    PointChunk,
    PointCloud,
    PointCloudReport,
    PointCloudWriter,
    TilesError,
    TilesetMetadata,
    TilesetOptions,
)
from twin.builder.rasters import vertical_metres
from twin.errors import InputError
from twin.geo import WGS84, LocalFrame

# Points read at a time by each reader.
CHUNK_POINTS = 500_000
# Points per reader range below which everything runs in this process.
PARALLEL_POINTS = 2_000_000
# Folder (under the tiles folder) holding one external tileset per cloud.
POINTCLOUD_DIR = "pointcloud"


@dataclass(frozen=True)
class CloudFile:
    """A LAS/LAZ file checked and ready to stream: its CRS, metres per height unit, whether
    its colours are 16-bit (else 8-bit values stored in 16-bit fields), its point count and
    header extent (CRS units)."""

    path: Path
    crs_wkt: str
    z_metres: float
    has_color: bool
    color_16bit: bool
    count: int
    mins: tuple[float, float, float]
    maxs: tuple[float, float, float]


def _fail(message: str, path: Path, hint: str = "") -> InputError:
    return InputError(message, file=str(path), layer="drone", field="pointcloud", hint=hint)


def _reason(exc: BaseException, path: Path) -> str:
    return " ".join(str(exc).replace(str(path), path.name).split()) or type(exc).__name__


def open_cloud(path: Path, default_crs: str | None) -> CloudFile:
    """Check a LAS/LAZ file (header, CRS, first points) without reading it whole.

    Raises `InputError` (one line) for a missing or unreadable file, a file with no CRS and
    no twin.yaml ``crs:``, or an unknown CRS.
    """
    if not path.is_file():
        raise _fail("file not found", path, "check 'drone.pointcloud' in twin.yaml")
    try:
        with laspy.open(path) as reader:
            header = reader.header
            try:
                crs = header.parse_crs()
            except Exception:  # laspy raises several types for unparsable CRS VLRs
                crs = None
            dims = set(header.point_format.dimension_names)
            has_color = {"red", "green", "blue"} <= dims
            first = reader.read_points(min(header.point_count, 100_000))
            color_16bit = has_color and any(
                len(first) and int(np.max(first[c])) > 255 for c in ("red", "green", "blue")
            )
            count = int(header.point_count)
            mins = tuple(float(v) for v in header.mins)
            maxs = tuple(float(v) for v in header.maxs)
    except InputError:
        raise
    except Exception as exc:  # laspy/lazrs raise many types for broken files
        raise _fail(f"cannot read the point cloud ({_reason(exc, path)})", path,
                    "is it a valid LAS/LAZ file?") from exc  # fmt: skip
    if crs is None:
        if not default_crs:
            hint = "add 'crs: EPSG:...' to twin.yaml or write the CRS into the file"
            raise _fail("the point cloud has no CRS", path, hint)
        try:
            crs = CRS.from_user_input(default_crs)
        except CRSError as exc:
            raise _fail(f"unknown CRS '{default_crs}'", path) from exc
    if count == 0:
        raise _fail("the point cloud holds no point", path)
    return CloudFile(path, crs.to_wkt(), vertical_metres(crs), has_color, bool(color_16bit),
                     count, mins, maxs)  # type: ignore[arg-type]  # fmt: skip


def _horizontal(crs: CRS) -> CRS:
    """The horizontal part of a compound CRS (the CRS itself otherwise)."""
    return crs.sub_crs_list[0] if crs.is_compound else crs


def cloud_footprint(cloud: CloudFile) -> tuple[float, float, float, float, float]:
    """West, south, east, north (degrees) of the cloud's header extent and its lowest height
    (metres, the file's vertical datum)."""
    to_lonlat = Transformer.from_crs(_horizontal(CRS.from_wkt(cloud.crs_wkt)), WGS84,
                                     always_xy=True)  # fmt: skip
    xs = [cloud.mins[0], cloud.maxs[0], cloud.mins[0], cloud.maxs[0]]
    ys = [cloud.mins[1], cloud.mins[1], cloud.maxs[1], cloud.maxs[1]]
    lon, lat = to_lonlat.transform(xs, ys)
    return min(lon), min(lat), max(lon), max(lat), cloud.mins[2] * cloud.z_metres


def _to_enu(cloud: CloudFile, frame: LocalFrame) -> Callable[[np.ndarray], np.ndarray]:
    """(n, 3) file coordinates → (n, 3) ENU metres."""
    to_lonlat = Transformer.from_crs(_horizontal(CRS.from_wkt(cloud.crs_wkt)), WGS84,
                                     always_xy=True)  # fmt: skip

    def convert(xyz: np.ndarray) -> np.ndarray:
        lon, lat = to_lonlat.transform(xyz[:, 0], xyz[:, 1])
        return frame.to_enu(lon, lat, xyz[:, 2] * cloud.z_metres)

    return convert


def read_chunks(
    cloud: CloudFile, frame: LocalFrame, start: int, stop: int, chunk: int = CHUNK_POINTS
) -> Iterator[PointChunk]:
    """Points `start`..`stop` of `cloud` as ENU chunks of at most `chunk` points; a read
    failure is an `InputError` naming the file."""
    convert = _to_enu(cloud, frame)
    try:
        with laspy.open(cloud.path) as reader:
            if start:
                reader.seek(start)
            left = stop - start
            while left > 0:
                points = reader.read_points(min(chunk, left))
                if not len(points):
                    raise _fail(f"the file ends after {stop - left} of {stop} points", cloud.path)
                left -= len(points)
                xyz = np.column_stack([points.x, points.y, points.z])
                if not np.isfinite(xyz).all():
                    raise _fail("the point cloud holds non-finite coordinates", cloud.path)
                colors = None
                if cloud.has_color:
                    rgb = np.column_stack([points.red, points.green, points.blue])
                    colors = (rgb >> 8 if cloud.color_16bit else np.minimum(rgb, 255)).astype(
                        np.uint8
                    )
                yield PointChunk(
                    convert(xyz),
                    colors,
                    np.asarray(points.classification, np.uint8),
                    np.asarray(points.intensity, np.uint16),
                )
    except InputError:
        raise
    except Exception as exc:  # laspy/lazrs raise many types for broken files
        raise _fail(f"cannot read the point cloud ({_reason(exc, cloud.path)})", cloud.path,
                    "is it a valid LAS/LAZ file?") from exc  # fmt: skip


def enu_bounds(cloud: CloudFile, frame: LocalFrame) -> tuple[np.ndarray, np.ndarray]:
    """ENU (min, max) corners (metres) of the header's extent, from a grid over its faces."""
    t = np.linspace(0.0, 1.0, 9)
    lo, hi = np.array(cloud.mins), np.array(cloud.maxs)
    gx, gy, gz = np.meshgrid(t, t, [0.0, 1.0])
    pts = lo + np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()]) * (hi - lo)
    enu = _to_enu(cloud, frame)(pts)
    if not np.isfinite(enu).all():
        raise _fail("the header extent cannot be placed in the survey frame", cloud.path,
                    "is the CRS right?")  # fmt: skip
    return enu.min(axis=0), enu.max(axis=0)


@dataclass
class CloudWriter:
    """The point-cloud layer of one file (a `PointCloudWriter`), whose tiling errors name the
    file (`InputError`)."""

    cloud: CloudFile
    tiles: PointCloudWriter

    def group(self, metadata: TilesetMetadata) -> dict[str, Any] | None:
        """No metadata group."""
        return None

    def write(self, out_dir: Path, options: TilesetOptions, group: int | None) -> LayerResult:
        """Tile the cloud into ``out_dir/pointcloud/{name}/``."""
        try:
            return self.tiles.write(out_dir, options, group)
        except TilesError as exc:
            raise _fail(str(exc), self.cloud.path) from exc


def cloud_writer(
    cloud: CloudFile,
    frame: LocalFrame,
    name: str,
    *,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> CloudWriter:
    """The layer writer of one cloud into ``pointcloud/{name}/`` under the tiles folder (its
    tile's URI relative to the tiles folder, box in the ENU frame), read in at most `workers`
    parallel ranges; `progress` gets the points binned so far."""
    lo, hi = enu_bounds(cloud, frame)
    ranges = max(1, min(workers, math.ceil(cloud.count / PARALLEL_POINTS)))
    edges = np.linspace(0, cloud.count, ranges + 1).astype(int)
    sources = [
        functools.partial(read_chunks, cloud, frame, int(a), int(b))
        for a, b in itertools.pairwise(edges)
    ]
    points = PointCloud(sources, (lo, hi), cloud.count, colors=cloud.has_color)
    folder = f"{POINTCLOUD_DIR}/{name}"
    return CloudWriter(cloud, PointCloudWriter(folder, points, ranges, progress))


def open_clouds(src: Path, paths: list[str], default_crs: str | None) -> list[CloudFile]:
    """Check every twin.yaml ``drone.pointcloud`` file (header, CRS) before any is tiled, so a
    bad one fails the build early."""
    return [open_cloud(src / p, default_crs) for p in paths]


def cloud_writers(
    clouds: list[CloudFile],
    frame: LocalFrame,
    progress: Callable[[int], None] | None = None,
) -> list[CloudWriter]:
    """One layer writer per cloud, each into ``pointcloud/{k}-{file stem}/`` under the tiles
    folder, with every core; `progress` gets the points binned so far over all clouds."""
    writers = []
    done = 0
    for k, cloud in enumerate(clouds):
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cloud.path.stem)

        def advance(n: int, base: int = done) -> None:
            if progress is not None:
                progress(base + n)

        name = f"{k}-{stem}"
        writers.append(cloud_writer(cloud, frame, name, workers=os.cpu_count() or 1,
                                    progress=advance))  # fmt: skip
        done += cloud.count
    return writers


def cloud_reports(clouds: list[CloudFile], results: list[LayerResult]) -> list[dict[str, object]]:
    """One report dict per cloud (the build manifest's ``pointcloud``) from its writer's
    result."""
    reports = []
    for cloud, result in zip(clouds, results, strict=True):
        report = result.report
        assert isinstance(report, PointCloudReport)
        crs = CRS.from_wkt(cloud.crs_wkt).name
        reports.append({"file": cloud.path.name, "crs": crs, "z_metres_per_unit": cloud.z_metres,
                        "points": report.points, "tiles": report.tiles, "levels": report.levels,
                        "bytes": report.bytes})  # fmt: skip
    return reports
