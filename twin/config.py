"""`twin.yaml`: the strict description of a source folder (see README.md, "Source folder").

Every key other than ``path`` and ``crs`` in a layer maps one of our fields to a column of the
file; an unmapped field falls back to a column of the same name when the file has one. Unknown
keys anywhere are errors that name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tiles import Compression, TilesetOptions, Tiling
from twin.errors import ConfigError

SOURCE_FILE = "twin.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerConfig(_Strict):
    """A vector layer: a file, an optional CRS (for files without one), field → column maps."""

    fields: ClassVar[tuple[str, ...]] = ("id", "name")

    path: str = Field(title="File, relative to the source folder (GPKG, GeoJSON, Shapefile, zip)")
    crs: str | None = Field(default=None, title="CRS of the file when it carries none")
    layer: str | None = Field(default=None, title="Layer inside a multi-layer file (GeoPackage)")
    id: str | None = Field(default=None, title="Column holding a stable source id")
    name: str | None = Field(default=None, title="Column holding the display name")

    def column_map(self) -> dict[str, str | None]:
        """Our field → the column named for it in twin.yaml (None where not mapped)."""
        return {f: getattr(self, f) for f in self.fields}


class BuildingsLayer(LayerConfig):
    fields: ClassVar[tuple[str, ...]] = ("id", "name", "height", "levels")

    height: str | None = Field(default=None, title="Column with the building height in metres")
    levels: str | None = Field(default=None, title="Column with the number of storeys")


class JurisdictionsLayer(LayerConfig):
    fields: ClassVar[tuple[str, ...]] = ("id", "name", "unit")

    unit: str | None = Field(default=None, title="Column naming the responsible unit")


class CamerasLayer(LayerConfig):
    fields: ClassVar[tuple[str, ...]] = (
        "id", "name", "kind", "mount_height", "heading", "pitch", "roll", "hfov",
        "image_width", "image_height", "stream",
    )  # fmt: skip

    kind: str | None = Field(default=None, title="fixed | ptz | eagle-eye | drone")
    mount_height: str | None = Field(default=None, title="Metres above ground")
    heading: str | None = Field(default=None, title="Degrees clockwise from north")
    pitch: str | None = Field(default=None, title="Degrees, negative looks down")
    roll: str | None = Field(default=None, title="Degrees")
    hfov: str | None = Field(default=None, title="Horizontal field of view, degrees")
    image_width: str | None = Field(default=None, title="Pixels")
    image_height: str | None = Field(default=None, title="Pixels")
    stream: str | None = Field(default=None, title="URL or file of the video stream")


class SensorsLayer(LayerConfig):
    fields: ClassVar[tuple[str, ...]] = ("id", "name", "kind")

    kind: str | None = Field(default=None, title="Column with the sensor kind (pm25, noise, ...)")


class Layers(_Strict):
    buildings: BuildingsLayer | None = None
    sites: LayerConfig | None = None
    roads: LayerConfig | None = None
    water: LayerConfig | None = None
    jurisdictions: JurisdictionsLayer | None = None
    cameras: CamerasLayer | None = None
    sensors: SensorsLayer | None = None


class DroneConfig(_Strict):
    dsm: str | None = Field(default=None, title="Digital surface model GeoTIFF")
    dtm: str | None = Field(default=None, title="Digital terrain model GeoTIFF (ground heights)")
    ortho: str | None = Field(default=None, title="Orthophoto GeoTIFF (RGB/RGBA)")
    pointcloud: list[str] = Field(default_factory=list, title="LAS/LAZ files")


class BuildOptions(_Strict):
    storey_height_m: float = Field(default=3.0, gt=0, le=20, title="Metres per storey (levels)")
    default_height_m: float = Field(
        default=9.0, gt=0, le=1000, title="Height of a building with neither height nor levels"
    )
    min_height_m: float = Field(
        default=1.0, gt=0, le=100, title="Lowest plausible building height; lower ones are refused"
    )
    max_height_m: float = Field(
        default=1000.0,
        gt=0,
        le=10_000,
        title="Highest plausible building height; higher ones (a height of 1e6) are refused",
    )
    tile_max_features: int = Field(
        default=TilesetOptions.max_features,
        ge=1,
        title="Most buildings in one glb before the tile is split",
    )
    lod: bool = Field(
        default=TilesetOptions.lod,
        title="Coarser quadtree levels draw simplified buildings (3D Tiles LOD)",
    )
    tiling: Tiling = Field(
        default=TilesetOptions.tiling,
        title="Tile trees in tileset.json, or implicit (quadtree/octree subtrees)",
    )
    compression: Compression = Field(
        default=TilesetOptions.compression,
        title="Mesh compression of glb content: none, meshopt (EXT_meshopt_compression) "
        "or draco (KHR_draco_mesh_compression)",
    )
    archive: bool = Field(
        default=TilesetOptions.archive, title="Also write the tiles as one WS/tiles.3tz archive"
    )


class SourceConfig(_Strict):
    """The whole `twin.yaml`."""

    name: str = Field(title="District name")
    crs: str | None = Field(default=None, title="CRS for files that carry none")
    layers: Layers = Field(default_factory=Layers)
    drone: DroneConfig = Field(default_factory=DroneConfig)
    rules: str | None = Field(default=None, title="Scenario rule file (YAML), relative to SRC")
    build: BuildOptions = Field(default_factory=BuildOptions)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_source_config(src: Path) -> SourceConfig:
    """Read and validate ``SRC/twin.yaml``; raise `ConfigError` naming the key at fault."""
    path = Path(src) / SOURCE_FILE
    if not path.is_file():
        raise ConfigError(
            "no twin.yaml in the source folder", file=str(path), hint="see README, 'Source folder'"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            file=str(path), hint="save twin.yaml as UTF-8 (e.g. iconv -f GBK -t UTF-8)",
        ) from None  # fmt: skip
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping with at least 'name'", file=str(path))
    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"unknown key '{key}'", file=str(path), field=key, hint="check the spelling"
            ) from exc
        raise ConfigError(f"key '{key}': {first['msg']}", file=str(path), field=key) from exc
