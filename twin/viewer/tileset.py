"""A workspace's tileset as a tree of `TileNode` s in the workspace's ENU frame (metres), one
tree per layer (buildings, terrain, each point cloud), for level-of-detail drawing.

The root tile's transform is the ENU → ECEF matrix (docs/architecture.md), so every tile below
it is in the ENU frame; transforms further down are applied. External tileset JSON content is
followed, and implicit tiling (QUADTREE / OCTREE) is expanded from its ``.subtree`` files: each
available tile takes its tight box and geometric error from the subtree's tile metadata when
present (TILE_BOUNDING_BOX / TILE_GEOMETRIC_ERROR), else the spec's subdivision of the root box
and half its parent's error. A layer is named by its content group (``groups[i].properties
.name``), else ``pointcloud`` for an external tileset under ``pointcloud/``.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tiles import read_subtree
from twin.viewer.tilesource import TileSource

F64 = NDArray[np.float64]
Refine = Literal["ADD", "REPLACE"]
UNIT_CORNERS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)


@dataclass
class TileNode:
    """One tile: oriented box (centre + three half axes, ENU m), geometric error (m), how its
    children refine it, its glb content (tileset-root path) and children."""

    box: F64
    error: float
    refine: Refine
    uri: str | None
    children: list[TileNode] = field(default_factory=list)
    index: int = field(default=-1, repr=False)
    """Position in its layer's `twin.viewer.lod.TileTree`."""
    corners: F64 = field(init=False, repr=False)
    centre: F64 = field(init=False, repr=False)
    radius: float = field(init=False)

    def __post_init__(self) -> None:
        axes = self.box[3:].reshape(3, 3)
        self.centre = self.box[:3]
        self.corners = self.centre + UNIT_CORNERS @ axes
        self.radius = float(np.sqrt((axes**2).sum()))

    def walk(self) -> list[TileNode]:
        """This tile and every tile below it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def _placed(box: F64, transform: F64) -> F64:
    """Box (12 numbers) moved by a 4×4 transform."""
    centre = transform[:3, :3] @ box[:3] + transform[:3, 3]
    axes = box[3:].reshape(3, 3) @ transform[:3, :3].T
    return np.concatenate([centre, axes.ravel()])


def _box(volume: dict[str, Any], transform: F64) -> F64:
    return _placed(np.asarray(volume["box"], float), transform)


def _matrix(tile: dict[str, Any]) -> F64:
    values = tile.get("transform")
    return np.eye(4) if values is None else np.asarray(values, float).reshape(4, 4).T


class _Reader:
    """Builds trees from tileset JSON documents read through `source`."""

    def __init__(self, source: TileSource) -> None:
        self.source = source
        self.layers: dict[str, list[TileNode]] = {}

    def document(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.source.read(name))
        return data

    def tile(
        self, tile: dict[str, Any], folder: str, transform: F64, refine: Refine
    ) -> TileNode | None:
        """The node of explicit tile `tile` (JSON under `folder`), or None when it holds only
        an external tileset (which then becomes a layer of its own)."""
        transform = transform @ _matrix(tile)
        refine = tile.get("refine", refine)
        uri = tile.get("content", {}).get("uri")
        if "implicitTiling" in tile:
            return _implicit(self.source, tile, folder, transform, refine)
        if uri is not None and uri.endswith(".json"):
            self.external(posixpath.join(folder, uri), transform, refine)
            return None
        node = TileNode(_box(tile["boundingVolume"], transform), float(tile["geometricError"]),
                        refine, posixpath.join(folder, uri) if uri else None)  # fmt: skip
        for child in tile.get("children", []):
            sub = self.tile(child, folder, transform, refine)
            if sub is not None:
                node.children.append(sub)
        return node

    def external(self, name: str, transform: F64, refine: Refine) -> None:
        doc = self.document(name)
        node = self.tile(doc["root"], posixpath.dirname(name), transform, refine)
        if node is not None:
            layer = "pointcloud" if name.startswith("pointcloud/") else posixpath.dirname(name)
            self.layers.setdefault(layer, []).append(node)


def read_tileset(source: TileSource) -> dict[str, list[TileNode]]:
    """The layers of the workspace tileset: layer name → root nodes, in the ENU frame."""
    reader = _Reader(source)
    doc = reader.document("tileset.json")
    groups = [g.get("properties", {}).get("name", f"group{i}")
              for i, g in enumerate(doc.get("groups", []))]  # fmt: skip
    root = doc["root"]
    refine: Refine = root.get("refine", "REPLACE")
    for child in root.get("children", []):
        node = reader.tile(child, "", np.eye(4), refine)
        if node is None:
            continue
        group = child.get("content", {}).get("group")
        layer = groups[group] if group is not None and group < len(groups) else "tiles"
        reader.layers.setdefault(layer, []).append(node)
    return reader.layers


# ----------------------------------------------------------------------------- implicit tiling
def _bit(document: dict[str, Any], binary: bytes, availability: dict[str, Any], i: int) -> bool:
    if "constant" in availability:
        return bool(availability["constant"])
    view = document["bufferViews"][availability["bitstream"]]
    return bool(binary[view.get("byteOffset", 0) + i // 8] >> (i % 8) & 1)


def _tile_rows(document: dict[str, Any], binary: bytes) -> tuple[F64, F64] | None:
    """Boxes (n, 12) and errors (n,) of the subtree's tile metadata, or None without it."""
    if "tileMetadata" not in document:
        return None
    table = document["propertyTables"][document["tileMetadata"]]
    semantics = {"bounding_box": 12, "geometric_error": 1}
    columns = []
    for name, width in semantics.items():
        if name not in table["properties"]:
            return None
        view = document["bufferViews"][table["properties"][name]["values"]]
        start = view.get("byteOffset", 0)
        raw = np.frombuffer(binary[start : start + view["byteLength"]], "<f8")
        columns.append(raw.reshape(table["count"], width))
    return columns[0], columns[1][:, 0]


def _demorton(m: int, dims: int) -> tuple[int, ...]:
    return tuple(sum(((m >> (dims * b + a)) & 1) << b for b in range(32)) for a in range(dims))


def _sub_box(root: F64, coord: tuple[int, ...]) -> F64:
    """The spec's box of implicit tile `coord` (level, x, y[, z]) inside root box `root`;
    y and z count along the box's second and third axes from their negative ends."""
    level, *index = coord
    axes = root[3:].reshape(3, 3).copy()
    centre = root[:3] - axes.sum(axis=0)
    n = 2**level
    for a, i in enumerate(index):
        centre = centre + axes[a] * (2 * i + 1) / n
        axes[a] = axes[a] / n
    for a in range(len(index), 3):
        centre = centre + axes[a]
    return np.concatenate([centre, axes.ravel()])


def _implicit(
    source: TileSource, tile: dict[str, Any], folder: str, transform: F64, refine: Refine
) -> TileNode:
    tiling = tile["implicitTiling"]
    dims = 3 if tiling["subdivisionScheme"] == "OCTREE" else 2
    branches, per = 2**dims, int(tiling["subtreeLevels"])
    levels = int(tiling["availableLevels"])
    root_box = _box(tile["boundingVolume"], transform)
    template = tile.get("content", {}).get("uri")
    nodes: dict[tuple[int, ...], TileNode] = {}

    def names(coord: tuple[int, ...]) -> dict[str, int]:
        return {"level": coord[0], **dict(zip("xyz", coord[1:], strict=False))}

    pending: list[tuple[int, ...]] = [(0,) * (dims + 1)]
    while pending:
        top = pending.pop()
        name = posixpath.join(folder, tiling["subtrees"]["uri"].format(**names(top)))
        document, binary = read_subtree(source.read(name))
        rows = _tile_rows(document, binary)
        row = 0
        for rel in range(min(per, levels - top[0])):
            for m in range(branches**rel):
                i = (branches**rel - 1) // (branches - 1) + m
                if not _bit(document, binary, document["tileAvailability"], i):
                    continue
                local = _demorton(m, dims)
                coord = (top[0] + rel, *((o << rel) + v for o, v in
                                         zip(top[1:], local, strict=True)))  # fmt: skip
                parent = nodes.get((coord[0] - 1, *(v // 2 for v in coord[1:])))
                if rows is not None:
                    box, error = _placed(rows[0][row], transform), float(rows[1][row])
                else:
                    box = _sub_box(root_box, coord)
                    error = float(tile["geometricError"]) / 2 ** coord[0]
                row += 1
                has_content = template is not None and _bit(
                    document, binary, document["contentAvailability"][0], i
                )
                uri = (
                    posixpath.join(folder, template.format(**names(coord))) if has_content else None
                )
                node = TileNode(box, error, refine, uri)
                nodes[coord] = node
                if parent is not None:
                    parent.children.append(node)
        for m in range(branches**per):
            if _bit(document, binary, document["childSubtreeAvailability"], m):
                local = _demorton(m, dims)
                pending.append((top[0] + per, *((o << per) + v for o, v in
                                                zip(top[1:], local, strict=True))))  # fmt: skip
    return nodes[(0,) * (dims + 1)]
