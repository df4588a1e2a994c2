"""Implicit tiling (3D Tiles 1.1 core, QUADTREE and OCTREE): availability bitstreams and binary
``.subtree`` files.

A subtree file is a 24-byte header (magic ``subt``, version 1, JSON length, binary length;
little-endian uint32, uint32, uint64, uint64), the subtree JSON padded with spaces to 8 bytes,
then the binary chunk padded to 8 bytes. Availability bits are little-endian within each byte,
level after level, each level in Morton order (quadtree: x in the even bits, y in the odd;
octree: x in bits 3k, y in 3k + 1, z in 3k + 2). Tile coordinates are ``(level, x, y)`` for a
quadtree and ``(level, x, y, z)`` for an octree; the scheme follows from their length. Each
available tile also
gets a row in a property table of the tileset's ``tile`` class: its tight bounding box and its
geometric error, through the TILE_BOUNDING_BOX and TILE_GEOMETRIC_ERROR semantics, so implicit
tiles keep the tight volumes and derived errors of the explicit tree.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from tiles.errors import TilesError
from tiles.schema import TILE_CLASS

SUBTREE_MAGIC = b"subt"
SUBTREE_VERSION = 1
ALIGN = 8
# Most levels per subtree file the writers use (fewer when a tree is shallower).
SUBTREE_LEVELS = 4
Coord = tuple[int, int, int]  # level, x, y (quadtree)
OctreeCoord = tuple[int, int, int, int]  # level, x, y, z (octree)
TileCoord = TypeVar("TileCoord", Coord, OctreeCoord)


@dataclass(frozen=True)
class ImplicitTile:
    """What a subtree records of an available tile: its box (12 numbers, metres) and
    geometric error (metres); `content` whether it has content."""

    box: tuple[float, ...]
    error: float
    content: bool = True


def morton(x: int, y: int, z: int | None = None) -> int:
    """Morton index: quadtree (no `z`) bits of x at even, bits of y at odd positions; octree
    bits of x at 3k, of y at 3k + 1, of z at 3k + 2."""
    return _interleave((x, y) if z is None else (x, y, z))


def _interleave(axes: tuple[int, ...]) -> int:
    """Bit k of axis a goes to bit ``len(axes) * k + a``."""
    out = 0
    for bit in range(max(a.bit_length() for a in axes)):
        for a, value in enumerate(axes):
            out |= ((value >> bit) & 1) << (len(axes) * bit + a)
    return out


def subtree_roots(tiles: Mapping[TileCoord, ImplicitTile], subtree_levels: int) -> list[TileCoord]:
    """Coordinates of every subtree's root: available tiles on levels 0, S, 2S, ..."""
    return sorted(c for c in tiles if c[0] % subtree_levels == 0)


def _bits(indices: list[int], length: int) -> tuple[bytes, int]:
    bits = np.zeros(length, bool)
    bits[indices] = True
    return np.packbits(bits, bitorder="little").tobytes(), len(indices)


@dataclass
class _Binary:
    data: bytearray
    views: list[dict[str, Any]]

    def add(self, payload: bytes) -> int:
        self.data.extend(b"\0" * (-len(self.data) % ALIGN))
        self.views.append({"buffer": 0, "byteOffset": len(self.data), "byteLength": len(payload)})
        self.data.extend(payload)
        return len(self.views) - 1


def _availability(binary: _Binary, indices: list[int], length: int) -> dict[str, Any]:
    if not indices:
        return {"constant": 0}
    if len(indices) == length:
        return {"constant": 1}
    bits, count = _bits(indices, length)
    return {"bitstream": binary.add(bits), "availableCount": count}


def subtree_file(
    tiles: Mapping[TileCoord, ImplicitTile], root: TileCoord, subtree_levels: int
) -> bytes:
    """The binary ``.subtree`` of the subtree rooted at `root` (a quadtree or octree
    coordinate; every coordinate in `tiles` has the same length)."""
    level0, *origin = root
    branches = 2 ** len(origin)  # 4 (quadtree) or 8 (octree)
    inside: list[tuple[int, TileCoord]] = []
    children: list[int] = []
    for coord in tiles:
        level, *xyz = coord
        rel = level - level0
        if rel < 0 or rel > subtree_levels or [a >> rel for a in xyz] != origin:
            continue
        local = _interleave(tuple(a - (o << rel) for a, o in zip(xyz, origin, strict=True)))
        if rel == subtree_levels:
            children.append(local)
        else:
            inside.append(((branches**rel - 1) // (branches - 1) + local, coord))
    if not inside:
        raise TilesError(f"subtree root {root} is not an available tile")
    inside.sort()
    length = (branches**subtree_levels - 1) // (branches - 1)
    binary = _Binary(bytearray(), [])
    tile_bits = _availability(binary, [i for i, _ in inside], length)
    content_bits = _availability(binary, [i for i, c in inside if tiles[c].content], length)
    boxes: NDArray[np.float64] = np.array([tiles[c].box for _, c in inside], "<f8")
    errors: NDArray[np.float64] = np.array([tiles[c].error for _, c in inside], "<f8")
    child_bits = _availability(binary, sorted(children), branches**subtree_levels)
    table = {
        "class": TILE_CLASS,
        "count": len(inside),
        "properties": {
            "bounding_box": {"values": binary.add(boxes.tobytes())},
            "geometric_error": {"values": binary.add(errors.tobytes())},
        },
    }
    document: dict[str, Any] = {
        "buffers": [{"byteLength": len(binary.data)}],
        "bufferViews": binary.views,
        "propertyTables": [table],
        "tileAvailability": tile_bits,
        "contentAvailability": [content_bits],
        "childSubtreeAvailability": child_bits,
        "tileMetadata": 0,
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % ALIGN)
    body = bytes(binary.data) + b"\0" * (-len(binary.data) % ALIGN)
    header = struct.pack("<4sIQQ", SUBTREE_MAGIC, SUBTREE_VERSION, len(text), len(body))
    return header + text + body


def read_subtree(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a ``.subtree`` file into its JSON document and binary chunk."""
    magic, version, json_len, bin_len = struct.unpack_from("<4sIQQ", data)
    if magic != SUBTREE_MAGIC or version != SUBTREE_VERSION:
        raise TilesError(f"not a subtree file (magic {magic!r}, version {version})")
    document = json.loads(data[24 : 24 + json_len])
    return document, data[24 + json_len : 24 + json_len + bin_len]
