"""`twin build SRC -o WS`: read a source folder, build the model and write a workspace.

Steps: read twin.yaml and every layer (reprojected to lon/lat) → read the DTM → choose the local
ENU frame → extrude buildings → catalog elements with jurisdictions and sites → terrain TIN →
3D Tiles → meshes → manifest. Everything is written into a temporary folder beside WS, which
replaces WS only when the build has succeeded, so a failed build leaves WS as it was.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tiles import (
    BuildingsWriter,
    FeatureMesh,
    LayerWriter,
    TerrainGrid,
    TerrainWriter,
    TilesetMetadata,
    TilesetOptions,
    precompress_json,
    write_tileset,
)
from twin.builder.buildings import (
    Refusal,
    building_height,
    extrude_many,
    footprint,
    footprint_samples,
)
from twin.builder.drone import drone_surface, survey_area
from twin.builder.elements import (
    assign_jurisdictions,
    assign_sites,
    layer_elements,
    layer_ids,
    representative_points,
)
from twin.builder.fixes import fix_count, summary_lines
from twin.builder.meshes import write_building_mesh, write_terrain_mesh
from twin.builder.ndsm import SurfaceHeights
from twin.builder.ortho import OrthoTexturer
from twin.builder.pointcloud import (
    CloudFile,
    cloud_footprint,
    cloud_reports,
    cloud_writers,
    open_clouds,
)
from twin.builder.sources import LayerData, parse_crs, read_layer
from twin.builder.terrain import (
    TIN_MAX_ERROR_M,
    Dtm,
    ground_heights,
    read_dtm,
    terrain_grid,
    terrain_tin,
)
from twin.catalog import CatalogWriter, Element
from twin.config import SOURCE_FILE, BuildingsLayer, BuildOptions, SourceConfig, load_source_config
from twin.errors import ConfigError, InputError, WorkspaceError
from twin.geo import VERTICAL_DATUM, LocalFrame
from twin.workspace import Manifest, WorkspacePaths

# The workspace's coordinates: lon/lat (deg) with WGS84 ellipsoidal heights (m).
WORKSPACE_CRS = "EPSG:4979"
BASE_HEIGHT_RULE = (
    "lowest DTM height over the footprint's exterior vertices and centroid (0 without a DTM)"
)
# Attribute columns (OSM style) joined into a building's `address` tile property, in order.
ADDRESS_COLUMNS = ("addr_street", "addr_housenumber")


@dataclass
class _Report:
    """What the build did, for `Manifest.report`."""

    timings_s: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    height_sources: dict[str, int] = field(default_factory=dict)
    refused: dict[str, dict[str, int]] = field(default_factory=dict)
    first_refused: tuple[int, Refusal] | None = None
    source_crs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings_s[step] = round(time.perf_counter() - start, 3)

    def skip(self, layer: str, reason: str, n: int = 1) -> None:
        if n:
            counts = self.skipped.setdefault(layer, {})
            counts[reason] = counts.get(reason, 0) + n

    def refuse(self, row: int, refusal: Refusal) -> None:
        """Count a building height or levels value refused as implausible (feature `row`)."""
        counts = self.refused.setdefault(refusal.field, {})
        counts[refusal.reason] = counts.get(refusal.reason, 0) + 1
        if self.first_refused is None:
            self.first_refused = (row, refusal)


@dataclass
class _Buildings:
    elements: list[Element]
    meshes: list[FeatureMesh]


def build_workspace(
    src: Path,
    ws: Path,
    *,
    console: Console,
    options: Mapping[str, Any] | None = None,
    built_at: datetime | None = None,
    strict: bool = False,
    check_rules: Callable[[Path, Path], None] | None = None,
) -> Manifest:
    """Build the workspace `ws` from the source folder `src` (holding twin.yaml), atomically.

    `options` override twin.yaml's ``build:`` keys (`twin.config.BuildOptions` fields, e.g.
    ``{"tiling": "implicit"}``); `built_at` (UTC, default now) is the build time written to
    twin.json and the tileset metadata, so a fixed one makes the build reproducible. With
    `strict`, any input the build had to fix (`twin.builder.fixes`) fails it. `check_rules`
    (rule file, built workspace) raises when the server could not run the rule file on the
    built catalog: the build then fails, so a servable workspace is never replaced by one
    that cannot be served. Raises `twin.errors.TwinError` subclasses (or
    `tiles.errors.TilesError`, or what `check_rules` raises) naming the file, layer and field
    at fault; `ws` is then left exactly as it was.
    """
    src, ws = Path(src), Path(ws).resolve()
    config = load_source_config(src)
    if options:
        config = _with_build_options(config, options)
    built_at = (built_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    if config.crs:
        parse_crs(config.crs, file=str(src / SOURCE_FILE), layer=None, field="crs")
    _check_target(ws)
    ws.parent.mkdir(parents=True, exist_ok=True)
    tmp = ws.parent / f".{ws.name}.build-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        manifest = _build(src, config, tmp, console, built_at, strict)
        if config.rules and check_rules is not None:
            check_rules(src / config.rules, tmp)
        _swap_in(tmp, ws)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _with_build_options(config: SourceConfig, options: Mapping[str, Any]) -> SourceConfig:
    """`config` with its ``build:`` keys overridden by `options` (validated like twin.yaml)."""
    try:
        build = BuildOptions.model_validate({**config.build.model_dump(), **options})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"build option '{key}': {first['msg']}", field=f"build.{key}") from exc
    return config.model_copy(update={"build": build})


def _check_target(ws: Path) -> None:
    """Refuse to replace anything but a workspace (or an empty folder)."""
    if not ws.exists():
        return
    if not ws.is_dir():
        raise WorkspaceError(f"{ws} exists and is not a folder", hint="choose another -o")
    if any(ws.iterdir()) and not WorkspacePaths(ws).manifest.is_file():
        raise WorkspaceError(
            f"{ws} is a non-empty folder without twin.json; refusing to replace it",
            hint="choose a new or empty folder for -o",
        )


def _swap_in(tmp: Path, ws: Path) -> None:
    """Move the finished build to `ws`, replacing an older workspace there. The old live store
    (observations and alerts, keyed by stable element ids) is copied over, not rebuilt."""
    if not ws.exists():
        tmp.rename(ws)
        return
    live = WorkspacePaths(ws).live
    for part in ws.glob(live.name + "*"):  # live.sqlite and its -wal/-shm companions
        shutil.copy2(part, tmp / part.name)
    old = ws.parent / f".{ws.name}.old-{uuid.uuid4().hex[:12]}"
    ws.rename(old)
    try:
        tmp.rename(ws)
    except BaseException:
        old.rename(ws)
        raise
    shutil.rmtree(old, ignore_errors=True)


class _RateColumn(ProgressColumn):
    """Items per second of a task (rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")


def _progress(console: Console) -> Progress:
    """Progress bars with counts and rates on a terminal; nothing at all otherwise (logs and
    pipes stay clean)."""
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _build(
    src: Path, config: SourceConfig, out: Path, console: Console, built_at: datetime, strict: bool
) -> Manifest:
    report = _Report()
    paths = WorkspacePaths(out)
    if config.rules:
        _copy_rules(src / config.rules, paths.rules)
    with _progress(console) as progress:
        with report.timed("read_layers"):
            layers = _read_layers(src, config, progress, report)
        area = survey_area(layers)
        dtm = None
        if config.drone.dtm:
            with report.timed("read_dtm"):
                dtm = read_dtm(src / config.drone.dtm, default_crs=config.crs, area=area)
        clouds = open_clouds(src, config.drone.pointcloud, config.crs)
        footprints = _footprints(layers.get("buildings"), report)
        surface = None
        if config.drone.dsm:
            with report.timed("ndsm"):
                surface = drone_surface(src, config, footprints.geometries, dtm, area)
        frame = _local_frame(footprints, layers, dtm, clouds)
        with report.timed("buildings"):
            buildings = _buildings(layers.get("buildings"), footprints, frame, dtm, config, report,
                                   progress, surface)  # fmt: skip
        with report.timed("catalog"):
            elements = _catalog(layers, buildings.elements, dtm, paths)
        _add_jurisdictions(buildings)
        terrain = None
        texturer: OrthoTexturer | None = None
        if dtm is not None:
            with report.timed("terrain"):
                positions, triangles = terrain_tin(dtm, frame, max_error=TIN_MAX_ERROR_M)
                if config.drone.ortho:
                    texturer = OrthoTexturer(src / config.drone.ortho, frame, config.crs)
                    coverage = texturer.prepare(positions).coverage
                terrain = terrain_grid(dtm, frame, texturer, max_error=TIN_MAX_ERROR_M)
                write_terrain_mesh(paths.terrain_mesh, positions, triangles)
            report.extra["terrain"] = {
                "vertices": len(positions), "triangles": len(triangles),
                "max_error_m": TIN_MAX_ERROR_M, "dtm_cells": list(dtm.heights.shape),
            }  # fmt: skip
        with report.timed("tiles"):
            tiles_report = write_tileset(
                paths.tiles, frame.enu_to_ecef_matrix(),
                _tile_layers(buildings.meshes, terrain, clouds, frame, progress),
                _tileset_options(config.build), _tiles_metadata(config, layers, built_at),
            )  # fmt: skip
            precompress_json(paths.tiles)  # tileset.json.gz etc. for nginx's gzip_static
        if clouds:
            results = tiles_report.layers[-len(clouds) :]
            report.extra["pointcloud"] = cloud_reports(clouds, results)
        if texturer is not None:
            report.extra["ortho"] = {**texturer.report(), "coverage": round(coverage, 4)}
        with report.timed("meshes"):
            write_building_mesh(paths.building_mesh, buildings.meshes)
    tiles_summary = tiles_report.summary()
    tiles_summary["options"] = config.build.model_dump(include={"lod", "tiling", "compression"})
    manifest = _manifest(config, frame, elements, layers, report, tiles_summary, built_at)
    if strict and fix_count(manifest.report):
        raise _strict_error(manifest.report, report, layers.get("buildings"))
    manifest.write(paths.manifest)
    return manifest


def _strict_error(
    summary: Mapping[str, Any], report: _Report, buildings: LayerData | None
) -> InputError:
    """The error of a `--strict` build whose inputs needed fixes: how many of each kind and,
    when a building height was refused, the first one (file, layer, field, row)."""
    message = (
        f"--strict: {fix_count(summary)} input fix(es) needed ({'; '.join(summary_lines(summary))})"
    )
    hint = "fix the inputs, or build without --strict"
    if report.first_refused is None or buildings is None:
        return InputError(message, hint=hint)
    row, refusal = report.first_refused
    return InputError(
        f"{refusal.field} {refusal.value!r} refused ({refusal.reason}); {message}",
        file=str(buildings.file), layer="buildings", field=refusal.field, row=row, hint=hint,
    )  # fmt: skip


def _read_layers(
    src: Path, config: SourceConfig, progress: Progress, report: _Report
) -> dict[str, LayerData]:
    wanted = [(key, cfg) for key, cfg in config.layers if cfg is not None]
    task = progress.add_task("reading layers", total=len(wanted))
    layers = {}
    for key, cfg in wanted:
        layer = read_layer(src, key, cfg, config.crs)
        layers[key] = layer
        report.source_crs[key] = layer.source_crs
        report.skip(key, "no geometry", layer.without_geometry)
        progress.advance(task)
    return layers


def _tile_layers(
    meshes: list[FeatureMesh],
    terrain: TerrainGrid | None,
    clouds: list[CloudFile],
    frame: LocalFrame,
    progress: Progress,
) -> list[LayerWriter]:
    """The tileset's layers: buildings, the terrain tree and every point cloud, each with its
    progress bar."""
    task = progress.add_task("writing tiles", total=len(meshes))
    layers: list[LayerWriter] = [
        BuildingsWriter(meshes, lambda n: progress.update(task, completed=n))
    ]
    if terrain is not None:
        layers.append(TerrainWriter(terrain))
    if clouds:
        cloud_task = progress.add_task("tiling point clouds", total=sum(c.count for c in clouds))
        layers += cloud_writers(clouds, frame, lambda n: progress.update(cloud_task, completed=n))
    return layers


def _tileset_options(build: BuildOptions) -> TilesetOptions:
    """The tiles writer's options chosen by twin.yaml's ``build:`` keys."""
    return TilesetOptions(tiling=build.tiling, compression=build.compression, lod=build.lod,
                          max_features=build.tile_max_features, archive=build.archive)  # fmt: skip


@dataclass
class _Footprints:
    rows: list[int]
    geometries: list[Any]


def _footprints(layer: LayerData | None, report: _Report) -> _Footprints:
    """Polygonal footprints of the building layer (non-polygons and broken ones skipped)."""
    result = _Footprints([], [])
    if layer is None:
        return result
    notes: Counter[str] = Counter()
    for row, geometry in enumerate(layer.frame.geometry.tolist()):
        polygon, note = footprint(geometry)
        if note is not None:
            notes[note] += 1
        if polygon is not None:
            result.rows.append(row)
            result.geometries.append(polygon)
    for note, n in sorted(notes.items()):
        if note == "repaired":
            report.extra.setdefault("repaired", {})["buildings"] = n
        else:
            report.skip("buildings", note, n)
    return result


def _local_frame(
    footprints: _Footprints, layers: dict[str, LayerData], dtm: Dtm | None, clouds: list[CloudFile]
) -> LocalFrame:
    """ENU frame at the centre of the buildings' bounds (else of every layer, else of the DTM,
    else of the point clouds), on the ground."""
    if footprints.geometries:
        bounds = np.array([g.bounds for g in footprints.geometries])
    else:
        bounds = np.array([lay.frame.total_bounds for lay in layers.values() if len(lay.frame)])
    if not len(bounds):
        if dtm is None and clouds:
            extents = np.array([cloud_footprint(cloud) for cloud in clouds])
            lon = (extents[:, 0].min() + extents[:, 2].max()) / 2
            lat = (extents[:, 1].min() + extents[:, 3].max()) / 2
            return LocalFrame(float(lon), float(lat), float(extents[:, 4].min()))
        if dtm is None:
            raise InputError(
                "nothing to build: no layer holds a feature and no DTM or point cloud is given",
                hint="add layers, drone.dtm or drone.pointcloud to twin.yaml",
            )
        rows, cols = dtm.heights.shape
        lon, lat = dtm.cell_lonlat(np.array([cols / 2]), np.array([rows / 2]))
        return LocalFrame(float(lon[0]), float(lat[0]), float(ground_heights(dtm, lon, lat)[0]))
    lon = (bounds[:, 0].min() + bounds[:, 2].max()) / 2
    lat = (bounds[:, 1].min() + bounds[:, 3].max()) / 2
    return LocalFrame(float(lon), float(lat), float(ground_heights(dtm, lon, lat)[0]))


def _base_heights(geometries: list[Any], dtm: Dtm | None, report: _Report) -> np.ndarray:
    """Ground height under each footprint: the lowest DTM sample (see `BASE_HEIGHT_RULE`)."""
    if dtm is None or not geometries:
        return np.zeros(len(geometries))
    points, starts = footprint_samples(geometries)
    heights = dtm.sample(points[:, 0], points[:, 1])
    base = np.fmin.reduceat(heights, starts)
    outside = int(np.isnan(base).sum())
    report.skip("buildings", "outside the DTM (base height 0, counted, not skipped)", outside)
    return np.nan_to_num(base, nan=0.0)


def _buildings(
    layer: LayerData | None,
    footprints: _Footprints,
    frame: LocalFrame,
    dtm: Dtm | None,
    config: SourceConfig,
    report: _Report,
    progress: Progress,
    surface: SurfaceHeights | None = None,
) -> _Buildings:
    result = _Buildings([], [])
    if layer is None:
        return result
    source_ids, ids = layer_ids(layer)
    names, heights, levels = layer.values("name"), layer.values("height"), layer.values("levels")
    attributes = layer.attributes()
    source_layer = _source_layer(config.layers.buildings)
    bases = _base_heights(footprints.geometries, dtm, report)
    points = representative_points(footprints.geometries)
    sources: Counter[str] = Counter()
    task = progress.add_task("extruding buildings", total=len(footprints.rows))
    chosen = []
    for k, row in enumerate(footprints.rows):
        h = building_height(heights[row], levels[row], config.build)
        for refusal in h.refused:
            report.refuse(row, refusal)
        chosen.append(h if surface is None else surface.choose(k, h, ids[row]))
    meshes = extrude_many(footprints.geometries, bases, [h.height for h in chosen], frame)
    progress.update(task, completed=len(footprints.rows))
    for k, (row, geometry) in enumerate(zip(footprints.rows, footprints.geometries, strict=True)):
        h, mesh = chosen[k], meshes[k]
        if mesh is None:
            report.skip("buildings", "fewer than 3 distinct corners")
            continue
        sources[h.source] += 1
        name = None if names[row] is None else str(names[row]).strip() or None
        attrs = {**attributes[row], "height_source": h.source}
        tile_props = {"name": name, "kind": "building", "height": h.height,
                      "height_source": h.source, "address": _address(attributes[row]),
                      "source_layer": source_layer, "source_id": source_ids[row]}  # fmt: skip
        if h.levels is not None:
            attrs["levels"] = tile_props["levels"] = h.levels
        result.elements.append(
            Element(
                id=ids[row], kind="building", name=name, layer=layer.key,
                lon=float(points[k, 0]), lat=float(points[k, 1]), geometry=geometry,
                base_height=float(bases[k]), height=h.height, source_id=source_ids[row],
                attributes=attrs,
            )
        )  # fmt: skip
        result.meshes.append(
            FeatureMesh(
                element_id=ids[row],
                properties=tile_props,
                positions=mesh[0],
                triangles=mesh[1],
            )
        )
    kinds = ("attribute", "levels", "default") + (("ndsm",) if surface is not None else ())
    report.height_sources = {s: sources.get(s, 0) for s in kinds}
    if surface is not None:
        report.extra["ndsm"] = surface.report()
    return result


def _address(attributes: Mapping[str, Any]) -> str | None:
    """The `ADDRESS_COLUMNS` values present, joined by spaces (street, then house number)."""
    parts = [str(attributes.get(column) or "").strip() for column in ADDRESS_COLUMNS]
    return " ".join(part for part in parts if part) or None


def _source_layer(layer: BuildingsLayer | None) -> str | None:
    """The source layer as twin.yaml names it: ``file`` or ``file:layer``."""
    if layer is None:
        return None
    return f"{layer.path}:{layer.layer}" if layer.layer else layer.path


def _add_jurisdictions(buildings: _Buildings) -> None:
    """Copy each building's unit and jurisdiction (set by the catalog step) into its tile
    properties, when it has them."""
    for element, mesh in zip(buildings.elements, buildings.meshes, strict=True):
        if element.unit is not None:
            mesh.properties["unit"] = element.unit
        if element.jurisdiction_id is not None:
            mesh.properties["jurisdiction"] = element.jurisdiction_id


def _tiles_metadata(
    config: SourceConfig, layers: dict[str, LayerData], built_at: datetime
) -> TilesetMetadata:
    """Tileset metadata: district name, build time, the source CRS (the building layer's, else
    every layer's), the building layer and the DTM."""
    buildings = layers.get("buildings")
    crs = [buildings.source_crs] if buildings else sorted({x.source_crs for x in layers.values()})
    return TilesetMetadata(
        name=config.name,
        build_time=built_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        source_crs=", ".join(crs) or WORKSPACE_CRS,
        building_layer=_source_layer(config.layers.buildings) or "buildings",
        terrain_source=config.drone.dtm,
    )


def _catalog(
    layers: dict[str, LayerData], buildings: list[Element], dtm: Dtm | None, paths: WorkspacePaths
) -> list[Element]:
    """Every element, with jurisdiction/unit and site assigned, written to the catalog."""

    def ground(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return ground_heights(dtm, lon, lat)

    by_kind = {
        key: layer_elements(layer, ground) for key, layer in layers.items() if key != "buildings"
    }
    elements = [*buildings, *(e for group in by_kind.values() for e in group)]
    assign_jurisdictions(elements, by_kind.get("jurisdictions", []))
    assign_sites(buildings, by_kind.get("sites", []))
    writer = CatalogWriter(paths.catalog)
    try:
        writer.add(elements)
    finally:
        writer.close()
    return elements


def _copy_rules(source: Path, target: Path) -> None:
    if not source.is_file():
        raise InputError("file not found", file=str(source), field="rules",
                         hint="check 'rules' in twin.yaml")  # fmt: skip
    shutil.copyfile(source, target)


def _manifest(
    config: SourceConfig,
    frame: LocalFrame,
    elements: list[Element],
    layers: dict[str, LayerData],
    report: _Report,
    tiles_report: dict[str, Any],
    built_at: datetime,
) -> Manifest:
    counts = dict.fromkeys((lay.kind for lay in layers.values()), 0)
    counts.update(Counter(e.kind for e in elements))
    if elements:
        b = np.array([e.geometry.bounds for e in elements])
        bounds = [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                  float(b[:, 3].max())]  # fmt: skip
    else:
        bounds = [frame.lon, frame.lat, frame.lon, frame.lat]
    return Manifest(
        name=config.name,
        crs=WORKSPACE_CRS,
        origin={"lon": frame.lon, "lat": frame.lat, "height": frame.height},
        bounds=bounds,
        counts=counts,
        report={
            "height_sources": report.height_sources,
            "heights_refused": report.refused,
            "skipped": report.skipped,
            "source_crs": report.source_crs,
            "base_height": BASE_HEIGHT_RULE,
            "tiles": tiles_report,
            "timings_s": report.timings_s,
            **report.extra,
        },
        vertical_datum=VERTICAL_DATUM,
        built_at=built_at.isoformat(timespec="seconds"),
    )
