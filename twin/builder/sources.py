"""Read the vector layers of a source folder into lon/lat (EPSG:4326) GeoDataFrames.

Files may be GeoPackage, GeoJSON, Shapefile or zipped Shapefile, in any CRS pyproj knows. A file
without a CRS takes the layer's ``crs:`` or the top-level ``crs:`` from twin.yaml; with neither,
it is an error. Each of our fields is read from the column twin.yaml maps it to, else from a
column of the same name; every other column is kept as an attribute.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from twin.builder.gcj02 import gcj02_to_wgs84, is_gcj02
from twin.config import SOURCE_FILE, LayerConfig
from twin.errors import InputError

# twin.yaml layer key → element kind.
LAYER_KINDS = {
    "buildings": "building",
    "sites": "site",
    "roads": "road",
    "water": "water",
    "jurisdictions": "jurisdiction",
    "cameras": "camera",
    "sensors": "sensor",
}
WGS84_LONLAT = "EPSG:4326"


@dataclass
class LayerData:
    """One layer read and reprojected.

    ``frame`` is in EPSG:4326 (x = lon, y = lat, degrees) with 2D geometries, in file order;
    ``columns`` maps each of our fields to the column holding it (only fields that have one);
    ``attribute_columns`` are the remaining columns, kept as attributes; ``without_geometry``
    counts the features dropped for having no geometry.
    """

    key: str
    kind: str
    file: Path
    frame: gpd.GeoDataFrame
    columns: dict[str, str]
    attribute_columns: list[str]
    source_crs: str
    without_geometry: int = 0
    _values: dict[str, list[Any]] = dataclass_field(default_factory=dict, repr=False)

    def values(self, field: str) -> list[Any]:
        """The values of one of our fields, one per feature, missing ones as None (all None
        where the field has no column). Computed once per field."""
        if field not in self._values:
            column = self.columns.get(field)
            raw = self.frame[column].tolist() if column else [None] * len(self.frame)
            self._values[field] = [None if _is_missing(v) else v for v in raw]
        return self._values[field]

    def attributes(self) -> list[dict[str, Any]]:
        """Per-feature JSON-safe attributes from the unmapped columns (missing values dropped)."""
        if not self.attribute_columns:
            return [{} for _ in range(len(self.frame))]
        records = self.frame[self.attribute_columns].to_dict("records")
        return [json_safe_attributes(r) for r in records]


def parse_crs(text: str, *, file: str, layer: str | None, field: str) -> CRS:
    """A pyproj CRS from twin.yaml text (``EPSG:4549``, WKT, PROJ string); InputError if unknown.
    ``GCJ-02`` gives lon/lat (`read_layer` then removes the offset, see `twin.builder.gcj02`)."""
    if is_gcj02(text):
        return CRS.from_epsg(4326)
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise InputError(
            f"unknown CRS '{text}'",
            file=file,
            layer=layer,
            field=field,
            hint="use an EPSG code such as EPSG:4549, a WKT or a PROJ string",
        ) from exc


def read_layer(src: Path, key: str, config: LayerConfig, default_crs: str | None) -> LayerData:
    """Read layer `key` of twin.yaml from `src`, reproject it to lon/lat and resolve its columns.

    Raises `InputError` naming the file, layer and field for a missing or unreadable file, a
    file without features, a mapped column the file lacks, an unknown CRS, or a file with no
    CRS and none in twin.yaml.
    """
    path = src / config.path
    file = str(path)
    if not path.exists():
        raise InputError("file not found", file=file, layer=key, hint="check 'path' in twin.yaml")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(path, layer=config.layer)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        reason = " ".join(str(exc).replace(file, path.name).split()) or type(exc).__name__
        raise InputError(
            f"cannot read the file ({reason})",
            file=file,
            layer=key,
            hint="is it a valid GeoPackage, GeoJSON or Shapefile?",
        ) from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError("the file holds no geometry column", file=file, layer=key)
    if frame.empty:
        raise InputError(
            "the file holds no features", file=file, layer=key,
            hint="give a file with features, or remove the layer from twin.yaml",
        )  # fmt: skip
    source_crs = _source_crs(frame, config, default_crs, src=src, file=file, layer=key)
    gcj = is_gcj02(config.crs) or (frame.crs is None and not config.crs and is_gcj02(default_crs))
    frame = frame.set_crs(source_crs, allow_override=True)
    present = ~(frame.geometry.isna() | frame.geometry.is_empty)
    frame = frame[present]
    try:
        frame = frame.to_crs(WGS84_LONLAT)
    except Exception as exc:  # pyproj raises ProjError for impossible transformations
        raise InputError(
            f"cannot reproject from {source_crs.to_string()} to lon/lat ({exc})",
            file=file,
            layer=key,
            field="crs",
        ) from exc
    frame = frame.set_geometry(shapely.force_2d(frame.geometry.values)).reset_index(drop=True)
    if gcj:
        frame = frame.set_geometry(gcj02_to_wgs84(frame.geometry.values))
    columns, attribute_columns = _resolve_columns(frame, config, file=file, layer=key)
    return LayerData(
        key=key,
        kind=LAYER_KINDS[key],
        file=path,
        frame=frame,
        columns=columns,
        attribute_columns=attribute_columns,
        source_crs="GCJ-02" if gcj else source_crs.to_string(),
        without_geometry=int((~present).sum()),
    )


def _source_crs(
    frame: gpd.GeoDataFrame,
    config: LayerConfig,
    default_crs: str | None,
    *,
    src: Path,
    file: str,
    layer: str,
) -> CRS:
    # Parse both twin.yaml CRSs first, so an unknown one is reported even when unused.
    yaml_file = str(src / SOURCE_FILE)
    layer_crs = (
        parse_crs(config.crs, file=yaml_file, layer=layer, field="crs") if config.crs else None
    )
    top_crs = (
        parse_crs(default_crs, file=yaml_file, layer=None, field="crs") if default_crs else None
    )
    if frame.crs is not None:
        return CRS.from_user_input(frame.crs)
    if layer_crs is not None:
        return layer_crs
    if top_crs is not None:
        return top_crs
    raise InputError(
        "the file has no CRS",
        file=file,
        layer=layer,
        field="crs",
        hint="add 'crs: EPSG:...' to the layer or to the top of twin.yaml",
    )


def _resolve_columns(
    frame: gpd.GeoDataFrame, config: LayerConfig, *, file: str, layer: str
) -> tuple[dict[str, str], list[str]]:
    geometry_name = frame.geometry.name
    available = [c for c in frame.columns if c != geometry_name]
    columns: dict[str, str] = {}
    for field, column in config.column_map().items():
        if column is not None:
            if column not in available:
                raise InputError(
                    f"column '{column}' not found (columns: {', '.join(available) or 'none'})",
                    file=file,
                    layer=layer,
                    field=field,
                    hint="fix the column name mapped in twin.yaml",
                )
            columns[field] = column
        elif field in available:
            columns[field] = field
    used = set(columns.values())
    return columns, [c for c in available if c not in used]


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _json_value(value: Any) -> Any:
    """A JSON-safe version of one attribute value, or None to drop it."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is pd.NaT:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple | np.ndarray):
        items = [_json_value(v) for v in value]
        return [v for v in items if v is not None]
    if isinstance(value, dict):
        return json_safe_attributes(value)
    return str(value)


def json_safe_attributes(record: dict[Any, Any]) -> dict[str, Any]:
    """Keep the record's non-missing values, converted to JSON types (keys as text)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        clean = _json_value(value)
        if clean is not None:
            out[str(key)] = clean
    return out
