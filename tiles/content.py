"""glb content: building tiles (one primitive, `_FEATURE_ID_0` per vertex, EXT_mesh_features and
EXT_structural_metadata) and terrain tiles (one primitive, no features).

Uncompressed (``compression="none"``), vertex positions are stored in float32 relative to the
content's centre, in glTF's y-up frame; the node's translation (float64 in JSON) carries the
centre, so precision stays sub-millimetre. With ``compression="meshopt"`` attributes are
quantised (KHR_mesh_quantization: positions uint16 on a uniform grid of extent / 65535 metres
that the node's scale and translation undo, normals int8 normalised) and every vertex and index
view is EXT_meshopt_compression-encoded; property tables stay plain. With
``compression="draco"`` each primitive is one KHR_draco_mesh_compression stream (`DRACO_BITS`):
positions on a uniform grid of (largest side of the content's box) / (2^16 − 1) metres, so
within half that step of the source on each axis (a 500 m tile: 3.8 mm; the 3.2 km terrain of a
district: 2.4 cm), octahedral normals in 10 bits, texture coordinates in 12 bits (within 1/8190
of the image, a quarter pixel of a 2048 px texture), feature ids losslessly as uint16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles import mesh
from tiles.errors import MeshError
from tiles.glb import ARRAY_BUFFER, DRACO, ELEMENT_ARRAY_BUFFER, MESHOPT, GlbBuilder
from tiles.metadata import FeatureClass, encode_property_table
from tiles.model import PropertyValue, TerrainMesh
from tiles.options import Compression
from tiles.texture import add_texcoords, add_texture

QUANTIZATION = "KHR_mesh_quantization"
# Draco quantisation bits per glTF attribute (16-bit positions: the same grid as meshopt's).
DRACO_BITS = {"POSITION": 16, "NORMAL": 10, "TEXCOORD_0": 12}

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


def _plain_attributes(
    builder: GlbBuilder, local: NDArray[np.float64], normals: NDArray[np.float64]
) -> tuple[dict[str, int], dict[str, Any]]:
    """float32 POSITION/NORMAL; the node is a pure translation."""
    attributes = {
        "POSITION": builder.add_accessor(
            local.astype(np.float32), target=ARRAY_BUFFER, with_bounds=True
        ),
        "NORMAL": builder.add_accessor(normals.astype(np.float32), target=ARRAY_BUFFER),
    }
    return attributes, {}


def _quantized_attributes(
    builder: GlbBuilder, local: NDArray[np.float64], normals: NDArray[np.float64]
) -> tuple[dict[str, int], dict[str, Any]]:
    """uint16 POSITION (stride 8) and int8 normalised NORMAL (stride 4), meshopt-encoded; the
    returned node members (translation offset, uniform scale) turn the grid back into metres."""
    lo = local.min(axis=0)
    step = max(float((local.max(axis=0) - lo).max()) / 65535, 1e-9)
    grid = np.zeros((len(local), 4), np.uint16)
    grid[:, :3] = np.clip(np.rint((local - lo) / step), 0, 65535)
    packed_normals = np.zeros((len(normals), 4), np.int8)
    packed_normals[:, :3] = np.clip(np.rint(normals * 127), -127, 127)
    n = len(local)
    position_view = builder.add_meshopt_view(
        grid.view(np.uint8).reshape(n, 8), mode="ATTRIBUTES", target=ARRAY_BUFFER
    )
    normal_view = builder.add_meshopt_view(
        packed_normals.view(np.uint8).reshape(n, 4), mode="ATTRIBUTES", target=ARRAY_BUFFER
    )
    bounds = ([int(v) for v in grid[:, :3].min(axis=0)], [int(v) for v in grid[:, :3].max(axis=0)])
    attributes = {
        "POSITION": builder.add_view_accessor(
            position_view, np.dtype(np.uint16), n, "VEC3", bounds=bounds
        ),
        "NORMAL": builder.add_view_accessor(
            normal_view, np.dtype(np.int8), n, "VEC3", normalized=True
        ),
    }
    return attributes, {"offset": lo, "scale": [step] * 3}


def _feature_id_accessor(
    builder: GlbBuilder, feature_ids: NDArray[np.float32], packed: bool
) -> int:
    """float32 ``_FEATURE_ID_0`` accessor, meshopt-encoded when `packed`."""
    if not packed:
        return builder.add_accessor(feature_ids, target=ARRAY_BUFFER)
    view = builder.add_meshopt_view(
        feature_ids.astype(np.float32).view(np.uint8).reshape(-1, 4),
        mode="ATTRIBUTES",
        target=ARRAY_BUFFER,
    )
    return builder.add_view_accessor(view, np.dtype(np.float32), len(feature_ids), "SCALAR")


def _buffer_primitive(
    builder: GlbBuilder,
    local: NDArray[np.float64],
    normals: NDArray[np.float64],
    triangles: NDArray[np.int64],
    feature_ids: NDArray[np.float32] | None,
    uvs: NDArray[np.float64] | None,
    packed: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A primitive whose attributes and indices are buffer views (plain or meshopt, glTF
    y-up metres around the centre), and the node members that place a quantised grid."""
    attributes, grid = (_quantized_attributes if packed else _plain_attributes)(
        builder, local, normals
    )
    index_type = np.uint16 if len(local) < 0xFFFF else np.uint32
    indices = triangles.astype(index_type).ravel()
    if packed:
        view = builder.add_meshopt_view(indices, mode="TRIANGLES", target=ELEMENT_ARRAY_BUFFER)
        index_accessor = builder.add_view_accessor(view, indices.dtype, len(indices), "SCALAR")
    else:
        index_accessor = builder.add_accessor(indices, target=ELEMENT_ARRAY_BUFFER)
    if uvs is not None:
        attributes["TEXCOORD_0"] = add_texcoords(builder, uvs)
    if feature_ids is not None:
        attributes["_FEATURE_ID_0"] = _feature_id_accessor(builder, feature_ids, packed)
    return {"attributes": attributes, "indices": index_accessor}, grid


def _draco_primitive(
    builder: GlbBuilder,
    local: NDArray[np.float64],
    normals: NDArray[np.float64],
    triangles: NDArray[np.int64],
    feature_ids: NDArray[np.float32] | None,
    uvs: NDArray[np.float64] | None,
) -> dict[str, Any]:
    """A KHR_draco_mesh_compression primitive (`DRACO_BITS`; glTF y-up metres around the
    centre); feature ids are uint16 (float32 past 65536 features), both exact in Draco."""
    attributes: dict[str, NDArray[Any]] = {"POSITION": local, "NORMAL": normals}
    if uvs is not None:
        attributes["TEXCOORD_0"] = uvs
    if feature_ids is not None:
        wide = float(feature_ids.max(initial=0)) > np.iinfo(np.uint16).max
        attributes["_FEATURE_ID_0"] = feature_ids.astype(np.float32 if wide else np.uint16)
    return builder.add_draco_primitive(attributes, triangles, DRACO_BITS)


def _pack(
    positions: NDArray[np.float64],
    normals: NDArray[np.float64],
    triangles: NDArray[np.int64],
    material: dict[str, Any],
    compression: Compression,
    feature_ids: NDArray[np.float32] | None = None,
    metadata: tuple[FeatureClass, Sequence[dict[str, PropertyValue]]] | None = None,
    texture: tuple[NDArray[np.float64], bytes, str] | None = None,
) -> GlbContent:
    """One mesh, one primitive, one node whose translation is the centre (glTF y-up);
    `texture` (uvs (n, 2), image bytes, MIME type) makes the material draw that image."""
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    centre = mesh.enu_to_gltf((lo + hi) / 2)
    local = mesh.enu_to_gltf(positions - (lo + hi) / 2)
    gltf_normals = mesh.enu_to_gltf(normals)
    builder = GlbBuilder()
    uvs = None if texture is None else texture[0]
    node: dict[str, Any] = {"mesh": 0, "translation": [float(v) for v in centre]}
    if compression == "draco":
        primitive = _draco_primitive(builder, local, gltf_normals, triangles, feature_ids, uvs)
    else:
        primitive, grid = _buffer_primitive(
            builder, local, gltf_normals, triangles, feature_ids, uvs, compression == "meshopt"
        )
        if grid:
            node["translation"] = [float(v) for v in centre + grid["offset"]]
            node["scale"] = grid["scale"]
    primitive |= {"material": 0, "mode": 4}
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": GENERATOR},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [node],
        "materials": [material],
    }
    if texture is not None:
        _, image, mime = texture
        document["materials"] = [add_texture(builder, document, image, mime, material["name"])]
    used: list[str] = []
    if feature_ids is not None and metadata is not None:
        cls, rows = metadata
        primitive.setdefault("extensions", {})[MESH_FEATURES] = {
            "featureIds": [{"featureCount": len(rows), "attribute": 0, "propertyTable": 0}]
        }
        used += [MESH_FEATURES, STRUCTURAL_METADATA]
        document["extensions"] = {
            STRUCTURAL_METADATA: {
                "schema": cls.schema(),
                "propertyTables": [encode_property_table(builder, cls, rows)],
            }
        }
    required = {"none": [], "meshopt": [QUANTIZATION, MESHOPT], "draco": [DRACO]}[compression]
    if required:
        document["extensionsRequired"] = required
    if used + required:
        document["extensionsUsed"] = used + required
    document["meshes"] = [{"primitives": [primitive]}]
    # The extent as Cesium will place it: the node transform applied to the stored values.
    placed = _placed(builder, primitive["attributes"]["POSITION"], node)
    return GlbContent(builder.to_glb(document), placed.min(axis=0), placed.max(axis=0))


def _placed(builder: GlbBuilder, accessor: int, node: dict[str, Any]) -> NDArray[np.float64]:
    """Corners of the stored POSITION bounds placed by `node`, in ENU metres."""
    acc = builder.accessors[accessor]
    lo, hi = np.asarray(acc["min"], float), np.asarray(acc["max"], float)
    scale = np.asarray(node.get("scale", (1.0, 1.0, 1.0)))
    corners = np.array([lo, hi]) * scale + np.asarray(node["translation"])
    # float32 POSITION bounds are exact float32 values, so this is exactly what a client sees.
    return mesh.gltf_to_enu(corners)


def building_glb(
    features: Sequence[PreparedFeature], cls: FeatureClass, compression: Compression
) -> GlbContent:
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
        compression=compression,
    )


def terrain_glb(terrain: TerrainMesh, compression: Compression) -> GlbContent:
    """The terrain tile: the mesh's normals or else smooth ones, only the vertices the
    triangles use; textured when the mesh has ``uvs`` and a ``texture``."""
    positions, triangles = mesh.checked(terrain.positions, terrain.triangles, "terrain")
    used, compact = np.unique(triangles, return_inverse=True)
    positions, triangles = positions[used], compact.reshape(-1, 3)
    if terrain.normals is None:
        normals = mesh.smooth_normals(positions, triangles)
    else:
        given = np.asarray(terrain.normals, np.float64)
        if given.shape != terrain.positions.shape or not np.isfinite(given).all():
            raise MeshError(
                "terrain normals must be finite, one per position", element_id="terrain"
            )
        normals = given[used]
    texture = None
    if terrain.uvs is not None and terrain.texture is not None:
        if len(terrain.uvs) != len(terrain.positions):
            raise MeshError("terrain uvs and positions differ in length", element_id="terrain")
        texture = (np.asarray(terrain.uvs, np.float64)[used], terrain.texture, terrain.texture_mime)
    return _pack(
        positions, normals, triangles, _material("terrain", TERRAIN_COLOUR),
        compression=compression, texture=texture,
    )  # fmt: skip
