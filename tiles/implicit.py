"""Implicit tiling (3D Tiles 1.1 core, QUADTREE): availability bitstreams and binary
``.subtree`` files.

A subtree file is a 24-byte header (magic ``subt``, version 1, JSON length, binary length;
little-endian uint32, uint32, uint64, uint64), the subtree JSON padded with spaces to 8 bytes,
then the binary chunk padded to 8 bytes. Availability bits are little-endian within each byte,
level after level, each level in Morton order (x in the even bits). Each available tile also
gets a row in a property table of the tileset's ``tile`` class: its tight bounding box and its
geometric error, through the TILE_BOUNDING_BOX and TILE_GEOMETRIC_ERROR semantics, so implicit
tiles keep the tight volumes and derived errors of the explicit tree.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.errors import TilesError
from tiles.schema import TILE_CLASS

SUBTREE_MAGIC = b"subt"
SUBTREE_VERSION = 1
ALIGN = 8
Coord = tuple[int, int, int]  # level, x, y


@dataclass(frozen=True)
class ImplicitTile:
    """What a subtree records of an available tile: its box (12 numbers, metres) and
    geometric error (metres); `content` whether it has content."""

    box: tuple[float, ...]
    error: float
    content: bool = True


def morton(x: int, y: int) -> int:
    """Quadtree Morton index: bits of x at even, bits of y at odd positions."""
    out = 0
    for bit in range(max(x.bit_length(), y.bit_length())):
        out |= ((x >> bit) & 1) << (2 * bit) | ((y >> bit) & 1) << (2 * bit + 1)
    return out


def subtree_roots(tiles: Mapping[Coord, ImplicitTile], subtree_levels: int) -> list[Coord]:
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


def subtree_file(tiles: Mapping[Coord, ImplicitTile], root: Coord, subtree_levels: int) -> bytes:
    """The binary ``.subtree`` of the subtree rooted at `root`."""
    level0, x0, y0 = root
    inside: list[tuple[int, Coord]] = []
    children: list[int] = []
    for coord in tiles:
        level, x, y = coord
        rel = level - level0
        if rel < 0 or rel > subtree_levels or (x >> rel, y >> rel) != (x0, y0):
            continue
        local = morton(x - (x0 << rel), y - (y0 << rel))
        if rel == subtree_levels:
            children.append(local)
        else:
            inside.append(((4**rel - 1) // 3 + local, coord))
    if not inside:
        raise TilesError(f"subtree root {root} is not an available tile")
    inside.sort()
    length = (4**subtree_levels - 1) // 3
    binary = _Binary(bytearray(), [])
    tile_bits = _availability(binary, [i for i, _ in inside], length)
    content_bits = _availability(binary, [i for i, c in inside if tiles[c].content], length)
    boxes: NDArray[np.float64] = np.array([tiles[c].box for _, c in inside], "<f8")
    errors: NDArray[np.float64] = np.array([tiles[c].error for _, c in inside], "<f8")
    child_bits = _availability(binary, sorted(children), 4**subtree_levels)
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
