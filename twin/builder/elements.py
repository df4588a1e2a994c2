"""Catalog elements from layers: ids, names, representative points, attributes, kind-specific
fields (cameras, sensors, jurisdictions), and the jurisdiction/site each element falls in."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry

from twin.builder.ids import element_ids, source_id_text
from twin.builder.sources import LayerData
from twin.catalog import Element
from twin.errors import InputError

GroundFn = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]

CAMERA_KINDS = ("fixed", "ptz", "eagle-eye", "drone")
# Camera field → (lowest, highest, default); a None default means the value is required.
CAMERA_RANGES: dict[str, tuple[float, float, float | None]] = {
    "mount_height": (0.0, 10_000.0, None),
    "heading": (-360.0, 360.0, None),
    "pitch": (-90.0, 90.0, None),
    "roll": (-180.0, 180.0, 0.0),
    "hfov": (1.0, 179.0, None),
    "image_width": (1, 100_000, 1920),
    "image_height": (1, 100_000, 1080),
}


def representative_points(geometries: Sequence[BaseGeometry]) -> NDArray[np.float64]:
    """A point on or inside each geometry, (n, 2) lon/lat (deg)."""
    if not len(geometries):
        return np.zeros((0, 2))
    points = shapely.point_on_surface(np.asarray(geometries, dtype=object))
    return shapely.get_coordinates(points)[:, :2]


def layer_ids(layer: LayerData) -> tuple[list[str | None], list[str]]:
    """Source ids (text) and element ids of every feature of a layer, in file order."""
    source_ids = [source_id_text(v) for v in layer.values("id")]
    return source_ids, element_ids(layer.kind, source_ids, layer.frame.geometry.tolist())


def _name(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def layer_elements(layer: LayerData, ground: GroundFn) -> list[Element]:
    """Elements of a site, road, water, jurisdiction, camera or sensor layer (not buildings).

    ``base_height`` is the ground height (m) at the representative point; for cameras
    ``height`` is the mount height (m above ground). Camera fields are checked (`InputError`
    naming the row).
    """
    geometries = layer.frame.geometry.tolist()
    source_ids, ids = layer_ids(layer)
    names = [_name(v) for v in layer.values("name")]
    attributes = layer.attributes()
    points = representative_points(geometries)
    bases = ground(points[:, 0], points[:, 1]) if len(points) else np.zeros(0)
    extra = _KIND_FIELDS.get(layer.kind)
    elements = []
    for i, geometry in enumerate(geometries):
        attrs = attributes[i]
        height = 0.0
        unit = None
        if extra is not None:
            height, unit = extra(layer, i, geometry, attrs, ids[i])
        elements.append(
            Element(
                id=ids[i], kind=layer.kind, name=names[i], layer=layer.key,
                lon=float(points[i, 0]), lat=float(points[i, 1]), geometry=geometry,
                base_height=float(bases[i]), height=height, source_id=source_ids[i],
                attributes=attrs, unit=unit,
            )
        )  # fmt: skip
    return elements


def _row_error(
    layer: LayerData, row: int, message: str, field: str | None = None, hint: str = ""
) -> InputError:
    """An InputError naming the file, layer, field and 1-based row of a feature."""
    return InputError(
        message, file=str(layer.file), layer=layer.key, field=field, row=row + 1, hint=hint
    )


def _number(layer: LayerData, field: str, row: int, element_id: str) -> float:
    lo, hi, default = CAMERA_RANGES[field]
    raw = layer.values(field)[row]
    if raw is None:
        if default is None:
            raise _row_error(
                layer, row, f"camera {element_id} has no {field}", field,
                hint=f"add a '{field}' column or map it in twin.yaml",
            )  # fmt: skip
        return float(default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _row_error(
            layer, row, f"camera {element_id}: {field} '{raw}' is not a number", field
        ) from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise _row_error(
            layer, row, f"camera {element_id}: {field} {value:g} is outside {lo:g}..{hi:g}", field
        )
    return value


def _camera_fields(
    layer: LayerData, row: int, geometry: BaseGeometry, attrs: dict[str, Any], element_id: str
) -> tuple[float, str | None]:
    if isinstance(geometry, MultiPoint) and len(geometry.geoms) == 1:
        geometry = geometry.geoms[0]
    if not isinstance(geometry, Point):
        raise _row_error(layer, row, f"camera {element_id} is a {geometry.geom_type}, not a point")
    raw_kind = layer.values("kind")[row]
    kind = "fixed" if raw_kind is None else str(raw_kind).strip().lower()
    if kind not in CAMERA_KINDS:
        raise _row_error(
            layer, row,
            f"camera {element_id}: kind '{kind}' is not one of {', '.join(CAMERA_KINDS)}", "kind",
        )  # fmt: skip
    values = {f: _number(layer, f, row, element_id) for f in CAMERA_RANGES}
    for field in ("image_width", "image_height"):
        if not float(values[field]).is_integer():
            raise _row_error(
                layer, row, f"camera {element_id}: {field} {values[field]:g} is not whole pixels",
                field,
            )  # fmt: skip
    stream = layer.values("stream")[row]
    attrs.update(
        camera_kind=kind,
        heading=values["heading"] % 360.0,
        pitch=values["pitch"],
        roll=values["roll"],
        hfov=values["hfov"],
        image_width=int(values["image_width"]),
        image_height=int(values["image_height"]),
        stream=None if stream is None else str(stream),
    )
    return values["mount_height"], None


def _sensor_fields(
    layer: LayerData, row: int, geometry: BaseGeometry, attrs: dict[str, Any], element_id: str
) -> tuple[float, str | None]:
    kind = layer.values("kind")[row]
    if kind is not None:
        attrs["sensor_kind"] = str(kind)
    return 0.0, None


def _jurisdiction_fields(
    layer: LayerData, row: int, geometry: BaseGeometry, attrs: dict[str, Any], element_id: str
) -> tuple[float, str | None]:
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise _row_error(
            layer, row, f"jurisdiction {element_id} is a {geometry.geom_type}, not a polygon"
        )
    unit = layer.values("unit")[row]
    unit_text = None if unit is None else str(unit)
    if unit_text is not None:
        attrs["unit"] = unit_text
    return 0.0, unit_text


_KIND_FIELDS: dict[
    str, Callable[[LayerData, int, BaseGeometry, dict[str, Any], str], tuple[float, str | None]]
] = {"camera": _camera_fields, "sensor": _sensor_fields, "jurisdiction": _jurisdiction_fields}


def _smallest_containing(
    elements: Sequence[Element], areas: Sequence[BaseGeometry]
) -> list[int | None]:
    """For each element, the index of the smallest area polygon covering its representative
    point (None when none does)."""
    if not areas or not elements:
        return [None] * len(elements)
    tree = shapely.STRtree(list(areas))
    points = shapely.points([(e.lon, e.lat) for e in elements])
    hits = tree.query(points, predicate="covered_by")
    area = np.array([a.area for a in areas])
    best: list[int | None] = [None] * len(elements)
    for point_i, area_i in zip(hits[0].tolist(), hits[1].tolist(), strict=True):
        current = best[point_i]
        if current is None or area[area_i] < area[current]:
            best[point_i] = area_i
    return best


def assign_jurisdictions(elements: Sequence[Element], jurisdictions: Sequence[Element]) -> None:
    """Set ``jurisdiction_id`` and ``unit`` of every non-jurisdiction element from the smallest
    jurisdiction polygon containing its representative point."""
    targets = [e for e in elements if e.kind != "jurisdiction"]
    for element, index in zip(
        targets, _smallest_containing(targets, [j.geometry for j in jurisdictions]), strict=True
    ):
        if index is not None:
            element.jurisdiction_id = jurisdictions[index].id
            element.unit = jurisdictions[index].unit


def assign_sites(buildings: Sequence[Element], sites: Sequence[Element]) -> None:
    """Set ``site_id`` of buildings whose representative point lies in a site polygon (the
    smallest); point sites are left alone."""
    polygons = [s for s in sites if s.geometry.geom_type in ("Polygon", "MultiPolygon")]
    for building, index in zip(
        buildings, _smallest_containing(buildings, [s.geometry for s in polygons]), strict=True
    ):
        if index is not None:
            building.site_id = polygons[index].id
