"""What the writer takes: one mesh per building (a feature) and an optional terrain mesh.

Every position is in metres in the tileset's local ENU frame (x east, y north, z up); the root
tile's ``transform`` places that frame on the globe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PropertyValue = str | float | int | bool | None


@dataclass
class FeatureMesh:
    """One building = one feature of a building tile.

    Parameters
    ----------
    element_id
        The element's stable id (``building:...``); written as the ``element_id`` property.
    properties
        Other per-feature properties (``name``, ``kind``, ``height`` in m, ``height_source``,
        ...); types are inferred across all features, ``None`` is written as "no data".
    positions
        (n, 3) vertex positions, ENU metres.
    triangles
        (m, 3) vertex indices, counter-clockwise seen from outside.
    """

    element_id: str
    properties: dict[str, PropertyValue]
    positions: NDArray[np.float64]
    triangles: NDArray[np.integer]


@dataclass
class TerrainMesh:
    """The ground surface: (n, 3) ENU metres and (m, 3) counter-clockwise (seen from above).

    Optionally textured: ``uvs`` (n, 2) texture coordinates per position (glTF convention:
    u to the right, v down from the image's top-left corner, 0..1) and ``texture``, the
    encoded image (PNG or JPEG bytes, ``texture_mime`` ``image/png`` or ``image/jpeg``).
    ``normals`` (n, 3) unit ENU vectors replace the smooth normals of the triangles (e.g. so
    skirts shade like the surface above them).
    """

    positions: NDArray[np.float64]
    triangles: NDArray[np.integer]
    uvs: NDArray[np.float64] | None = None
    texture: bytes | None = None
    texture_mime: str = "image/jpeg"
    normals: NDArray[np.float64] | None = None


@dataclass
class TilesetMetadata:
    """Tileset-level metadata, written as the tileset's ``schema``, ``metadata`` and ``groups``
    (3D Tiles 1.1 core metadata).

    Parameters
    ----------
    name
        Dataset name (the source's ``name``).
    build_time
        When the workspace was built, ISO 8601 UTC (``2025-01-31T12:00:00Z``).
    source_crs
        CRS of the source layers as pyproj writes it (``EPSG:4547``).
    building_layer
        Source layer the buildings came from (file or layer name).
    terrain_source
        Source of the terrain (DTM file name), when there is a terrain.
    """

    name: str
    build_time: str
    source_crs: str
    building_layer: str = "buildings"
    terrain_source: str | None = None
