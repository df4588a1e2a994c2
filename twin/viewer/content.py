"""Tile content (glb) as pyvista data in the workspace's ENU frame (metres).

Each primitive's positions are placed by its node (translation, rotation, scale or matrix, so
quantised KHR_mesh_quantization grids come back in metres) and turned from glTF's y-up frame to
ENU. Triangle tiles keep, per cell, the feature index of their first vertex (``feature``) and,
from the EXT_structural_metadata property table, each feature's row (``element_id``, ``height``,
``jurisdiction`` ...). Textured tiles (terrain) carry texture coordinates and their image. Point
tiles carry ``rgb`` (uint8) and ``classification`` per point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import pyvista as pv
from numpy.typing import ArrayLike, NDArray

from tiles import Glb, decode_property_table, gltf_to_enu, read_glb

FEATURE = "feature"
RGB = "rgb"
CLASSIFICATION = "classification"
POINTS_MODE = 0
TRIANGLES_MODE = 4
NORMALIZED_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0,
                    np.dtype(np.int8): 127.0, np.dtype(np.int16): 32767.0}  # fmt: skip


@dataclass
class TileContent:
    """One tile's drawable data: a mesh or a point set (ENU m), its texture image (RGB, rows
    from the top) if any, and the property rows of its features."""

    mesh: pv.PolyData
    points: bool = False
    image: NDArray[np.uint8] | None = None
    features: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Triangles or points: what drawing it costs."""
        return int(self.mesh.n_cells)

    @property
    def element_ids(self) -> list[str]:
        return [str(row.get("element_id", "")) for row in self.features]


def triangle_mesh(vertices: ArrayLike, faces: ArrayLike) -> pv.PolyData:
    """A triangle mesh of (n, 3) vertices (ENU m) and (m, 3) vertex indices."""
    triangles: Any = np.asarray(faces, np.int64).reshape(-1, 3)
    return pv.PolyData.from_regular_faces(np.asarray(vertices, float).reshape(-1, 3), triangles)


def _node_matrix(node: dict[str, Any]) -> NDArray[np.float64]:
    if "matrix" in node:
        return np.asarray(node["matrix"], float).reshape(4, 4).T
    t = np.eye(4)
    t[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    x, y, z, w = node.get("rotation", (0.0, 0.0, 0.0, 1.0))
    r = np.eye(4)
    r[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    s = np.diag([*node.get("scale", (1.0, 1.0, 1.0)), 1.0])
    return t @ r @ s


def _values(glb: Glb, index: int) -> NDArray[np.float64]:
    """Accessor values as floats, normalised integers rescaled to [0, 1] (or [-1, 1])."""
    accessor = glb.document["accessors"][index]
    raw = glb.accessor(index)
    values = raw.astype(np.float64)
    if accessor.get("normalized"):
        values /= NORMALIZED_SCALE[raw.dtype]
    return values


def _primitives(glb: Glb) -> list[tuple[NDArray[np.float64], dict[str, Any]]]:
    """(ENU positions, primitive) of every primitive in the default scene."""
    doc = glb.document
    found: list[tuple[NDArray[np.float64], dict[str, Any]]] = []

    def visit(index: int, parent: NDArray[np.float64]) -> None:
        node = doc["nodes"][index]
        matrix = parent @ _node_matrix(node)
        if "mesh" in node:
            for primitive in doc["meshes"][node["mesh"]]["primitives"]:
                local = glb.accessor(primitive["attributes"]["POSITION"]).astype(np.float64)
                placed = local @ matrix[:3, :3].T + matrix[:3, 3]
                found.append((gltf_to_enu(placed), primitive))
        for child in node.get("children", []):
            visit(child, matrix)

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        visit(root, np.eye(4))
    return found


def _image(glb: Glb, primitive: dict[str, Any]) -> NDArray[np.uint8] | None:
    doc = glb.document
    material = doc.get("materials", [{}])[primitive.get("material", 0)]
    texture = material.get("pbrMetallicRoughness", {}).get("baseColorTexture")
    if texture is None:
        return None
    image = doc["images"][doc["textures"][texture["index"]]["source"]]
    data = np.frombuffer(glb.view_bytes(image["bufferView"]), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[:, :, ::-1])


def _triangles(glb: Glb, positions: NDArray[np.float64], primitive: dict[str, Any]) -> TileContent:
    faces = np.asarray(glb.accessor(primitive["indices"]), np.int64).reshape(-1, 3)
    mesh = triangle_mesh(positions, faces)
    attributes = primitive["attributes"]
    image = None
    if "TEXCOORD_0" in attributes:
        uv = _values(glb, attributes["TEXCOORD_0"])
        mesh.active_texture_coordinates = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]])
        image = _image(glb, primitive)
    features: list[dict[str, Any]] = []
    if "_FEATURE_ID_0" in attributes:
        ids = np.rint(_values(glb, attributes["_FEATURE_ID_0"])).astype(np.int32)
        mesh.cell_data[FEATURE] = ids[faces[:, 0]]
        ext = primitive.get("extensions", {}).get("EXT_mesh_features", {})
        table = (ext.get("featureIds") or [{}])[0].get("propertyTable")
        if table is not None:
            features = list(decode_property_table(glb, table))
    return TileContent(mesh, False, image, features)


def _points(glb: Glb, positions: NDArray[np.float64], primitive: dict[str, Any]) -> TileContent:
    cloud = pv.PolyData(positions)
    attributes = primitive["attributes"]
    if "COLOR_0" in attributes:
        colours = _values(glb, attributes["COLOR_0"])[:, :3]
        cloud.point_data[RGB] = np.clip(np.rint(colours * 255), 0, 255).astype(np.uint8)
    if "_CLASSIFICATION" in attributes:
        cloud.point_data[CLASSIFICATION] = glb.accessor(attributes["_CLASSIFICATION"]).astype(
            np.uint8
        )
    return TileContent(cloud, points=True)


def read_content(data: bytes) -> TileContent:
    """The first primitive of glb `data` (our tiles hold one) as a `TileContent`."""
    glb = read_glb(data)
    positions, primitive = _primitives(glb)[0]
    if primitive.get("mode", TRIANGLES_MODE) == POINTS_MODE:
        return _points(glb, positions, primitive)
    return _triangles(glb, positions, primitive)
