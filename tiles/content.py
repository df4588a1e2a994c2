"""glb content: building tiles (one primitive, `_FEATURE_ID_0` per vertex, EXT_mesh_features and
EXT_structural_metadata) and the terrain tile (one primitive, no features).

Vertex positions are stored in float32 relative to the content's centre, in glTF's y-up frame;
the node's translation (float64 in JSON) carries the centre, so precision stays sub-millimetre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles import mesh
from tiles.glb import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, GlbBuilder
from tiles.metadata import FeatureClass, encode_property_table
from tiles.model import PropertyValue, TerrainMesh

GENERATOR = "district-twin tiles"
MESH_FEATURES = "EXT_mesh_features"
STRUCTURAL_METADATA = "EXT_structural_metadata"
BUILDING_COLOUR = (0.82, 0.82, 0.80, 1.0)
TERRAIN_COLOUR = (0.55, 0.60, 0.50, 1.0)


@dataclass
class PreparedFeature:
    """A feature's flat-shaded geometry (ENU metres) and its property row."""

    row: dict[str, PropertyValue]
    positions: NDArray[np.float64]
    normals: NDArray[np.float64]
    triangles: NDArray[np.int64]

    @property
    def centroid_xy(self) -> NDArray[np.float64]:
        """Centre of the footprint's bounding rectangle (ENU x, y metres)."""
        xy = self.positions[:, :2]
        return np.asarray((xy.min(axis=0) + xy.max(axis=0)) / 2)


@dataclass
class GlbContent:
    """A packed glb and the axis-aligned extent (ENU metres) of its vertices as placed."""

    data: bytes
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]


def _material(name: str, colour: tuple[float, ...]) -> dict[str, Any]:
    return {
        "name": name,
        "pbrMetallicRoughness": {
            "baseColorFactor": list(colour),
            "metallicFactor": 0.0,
            "roughnessFactor": 0.9,
        },
        "doubleSided": False,
    }


def _pack(
    positions: NDArray[np.float64],
    normals: NDArray[np.float64],
    triangles: NDArray[np.int64],
    material: dict[str, Any],
    feature_ids: NDArray[np.float32] | None = None,
    metadata: tuple[FeatureClass, Sequence[dict[str, PropertyValue]]] | None = None,
) -> GlbContent:
    """One mesh, one primitive, one node whose translation is the centre (glTF y-up)."""
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    centre = (lo + hi) / 2
    local = mesh.enu_to_gltf(positions - centre).astype(np.float32)
    builder = GlbBuilder()
    attributes = {
        "POSITION": builder.add_accessor(local, target=ARRAY_BUFFER, with_bounds=True),
        "NORMAL": builder.add_accessor(
            mesh.enu_to_gltf(normals).astype(np.float32), target=ARRAY_BUFFER
        ),
    }
    index_type = np.uint16 if len(positions) < 0xFFFF else np.uint32
    primitive: dict[str, Any] = {
        "attributes": attributes,
        "indices": builder.add_accessor(
            triangles.astype(index_type).ravel(), target=ELEMENT_ARRAY_BUFFER
        ),
        "material": 0,
        "mode": 4,
    }
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [float(v) for v in mesh.enu_to_gltf(centre)]}],
        "materials": [material],
    }
    if feature_ids is not None and metadata is not None:
        cls, rows = metadata
        attributes["_FEATURE_ID_0"] = builder.add_accessor(feature_ids, target=ARRAY_BUFFER)
        primitive["extensions"] = {
            MESH_FEATURES: {
                "featureIds": [{"featureCount": len(rows), "attribute": 0, "propertyTable": 0}]
            }
        }
        document["extensionsUsed"] = [MESH_FEATURES, STRUCTURAL_METADATA]
        document["extensions"] = {
            STRUCTURAL_METADATA: {
                "schema": cls.schema(),
                "propertyTables": [encode_property_table(builder, cls, rows)],
            }
        }
    document["meshes"] = [{"primitives": [primitive]}]
    # The extent as Cesium will place it: centre (float64) + float32 offsets.
    placed = centre + mesh.gltf_to_enu(local.astype(np.float64))
    return GlbContent(builder.to_glb(document), placed.min(axis=0), placed.max(axis=0))


def building_glb(features: Sequence[PreparedFeature], cls: FeatureClass) -> GlbContent:
    """A building tile: feature i of the property table is `features[i]`."""
    offsets = np.cumsum([0] + [len(f.positions) for f in features])
    triangles = np.concatenate([f.triangles + offsets[i] for i, f in enumerate(features)])
    ids = np.repeat(np.arange(len(features), dtype=np.float32), np.diff(offsets))
    return _pack(
        np.concatenate([f.positions for f in features]),
        np.concatenate([f.normals for f in features]),
        triangles,
        _material("building", BUILDING_COLOUR),
        feature_ids=ids,
        metadata=(cls, [f.row for f in features]),
    )


def terrain_glb(terrain: TerrainMesh) -> GlbContent:
    """The terrain tile: smooth normals, only the vertices the triangles use."""
    positions, triangles = mesh.checked(terrain.positions, terrain.triangles, "terrain")
    used, compact = np.unique(triangles, return_inverse=True)
    positions, triangles = positions[used], compact.reshape(-1, 3)
    normals = mesh.smooth_normals(positions, triangles)
    return _pack(positions, normals, triangles, _material("terrain", TERRAIN_COLOUR))
