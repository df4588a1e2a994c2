"""Tileset-level metadata (3D Tiles 1.1 ``schema``, ``metadata`` and ``groups``): a ``tileset``
class for the dataset, a ``layer`` class whose instances group the building and terrain
content, the building feature class (the one the glb property tables use, for reference), and
for implicit tiling a ``tile`` class carrying each tile's tight box and geometric error through
the TILE_BOUNDING_BOX and TILE_GEOMETRIC_ERROR semantics."""

from __future__ import annotations

from typing import Any

from tiles.metadata import SCHEMA_ID, FeatureClass
from tiles.model import TilesetMetadata

TILESET_CLASS = "tileset"
LAYER_CLASS = "layer"
TILE_CLASS = "tile"
BUILDINGS_GROUP = "buildings"
TERRAIN_GROUP = "terrain"


def _string(description: str) -> dict[str, Any]:
    return {"type": "STRING", "description": description}


TILESET_PROPERTIES: dict[str, Any] = {
    "name": _string("Dataset name."),
    "build_time": _string("When the tileset was built, ISO 8601 UTC."),
    "source_crs": _string("CRS of the source layers."),
    "vertical_datum": _string("Meaning of heights: WGS84 ellipsoidal metres."),
}
LAYER_PROPERTIES: dict[str, Any] = {
    "name": _string("Layer name: buildings or terrain."),
    "source": _string("Source layer or file the content was built from."),
    "feature_count": {
        "type": "SCALAR",
        "componentType": "UINT32",
        "description": "Features (buildings) in the finest level of the layer.",
    },
}
TILE_PROPERTIES: dict[str, Any] = {
    "bounding_box": {
        "type": "SCALAR",
        "componentType": "FLOAT64",
        "array": True,
        "count": 12,
        "semantic": "TILE_BOUNDING_BOX",
        "description": "Tight box of the tile (centre, three half axes; ENU metres).",
    },
    "geometric_error": {
        "type": "SCALAR",
        "componentType": "FLOAT64",
        "semantic": "TILE_GEOMETRIC_ERROR",
        "description": "Metres of error when the tile is drawn instead of its descendants.",
    },
}


def tileset_schema(building: FeatureClass | None, *, tiles: bool) -> dict[str, Any]:
    """The tileset ``schema``: tileset and layer classes, the building class when there are
    buildings, and the implicit ``tile`` class when `tiles`."""
    classes: dict[str, Any] = {
        TILESET_CLASS: {"name": "Tileset", "properties": TILESET_PROPERTIES},
        LAYER_CLASS: {"name": "Layer", "properties": LAYER_PROPERTIES},
    }
    if building is not None:
        classes[building.class_id] = building.class_dict()
    if tiles:
        classes[TILE_CLASS] = {"name": "Implicit tile", "properties": TILE_PROPERTIES}
    return {"id": SCHEMA_ID, "classes": classes}


def tileset_entity(meta: TilesetMetadata) -> dict[str, Any]:
    """The tileset ``metadata`` entity."""
    return {
        "class": TILESET_CLASS,
        "properties": {
            "name": meta.name,
            "build_time": meta.build_time,
            "source_crs": meta.source_crs,
            "vertical_datum": "WGS84 ellipsoidal height, metres",
        },
    }


def layer_group(properties: dict[str, Any]) -> dict[str, Any]:
    """A ``groups`` entry: a ``layer`` entity with `properties`."""
    return {"class": LAYER_CLASS, "properties": properties}


def buildings_group(meta: TilesetMetadata, features: int) -> dict[str, Any]:
    """The buildings ``layer`` group of `features` buildings."""
    return layer_group(
        {"name": BUILDINGS_GROUP, "source": meta.building_layer, "feature_count": features}
    )


def terrain_group(meta: TilesetMetadata) -> dict[str, Any]:
    """The terrain ``layer`` group (with its source when the metadata names one)."""
    props: dict[str, Any] = {"name": TERRAIN_GROUP}
    if meta.terrain_source is not None:
        props["source"] = meta.terrain_source
    return layer_group(props)
