"""Binary glTF 2.0 (glb) packing and reading, by hand with `struct`: a builder that lays out
buffer views and accessors in one binary chunk, and a reader that gives them back as arrays."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.errors import GlbError

GLB_MAGIC = b"glTF"
JSON_CHUNK = 0x4E4F534A
BIN_CHUNK = 0x004E4942
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
# Buffer views start on 8-byte boundaries: EXT_structural_metadata asks it of property tables,
# and it satisfies every glTF accessor alignment rule.
ALIGNMENT = 8

COMPONENT_TYPES: dict[int, np.dtype[Any]] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
COMPONENT_OF_DTYPE = {dtype: code for code, dtype in COMPONENT_TYPES.items()}
TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass
class GlbBuilder:
    """Collects binary data into one buffer; ``to_glb`` adds buffers/bufferViews/accessors to a
    glTF JSON document and packs the two GLB chunks."""

    _data: bytearray = field(default_factory=bytearray)
    buffer_views: list[dict[str, Any]] = field(default_factory=list)
    accessors: list[dict[str, Any]] = field(default_factory=list)

    def add_buffer_view(self, data: bytes, target: int | None = None) -> int:
        """Append raw bytes as a new buffer view (8-byte aligned); returns its index. Empty data
        is stored as one zero byte, since glTF forbids empty buffer views."""
        data = data or b"\0"
        self._data.extend(b"\0" * (-len(self._data) % ALIGNMENT))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self._data), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self._data.extend(data)
        self.buffer_views.append(view)
        return len(self.buffer_views) - 1

    def add_accessor(
        self, array: NDArray[Any], *, target: int | None = None, with_bounds: bool = False
    ) -> int:
        """Store `array` ((n,) → SCALAR, (n, k) → VECk) in its own buffer view; returns the
        accessor index. `with_bounds` writes min/max (required for POSITION)."""
        array = np.ascontiguousarray(array)
        dtype = array.dtype.newbyteorder("<")
        if dtype not in COMPONENT_OF_DTYPE:
            raise GlbError(f"no glTF component type for {array.dtype}")
        width = 1 if array.ndim == 1 else array.shape[1]
        kind = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}[width]
        view = self.add_buffer_view(array.astype(dtype).tobytes(), target)
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": COMPONENT_OF_DTYPE[dtype],
            "count": int(array.shape[0]),
            "type": kind,
        }
        if with_bounds:
            flat = array.reshape(len(array), width)
            cast = float if dtype.kind == "f" else int
            accessor["min"] = [cast(v) for v in flat.min(axis=0)]
            accessor["max"] = [cast(v) for v in flat.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def to_glb(self, document: dict[str, Any]) -> bytes:
        """Pack `document` (glTF JSON without buffers/views/accessors) and the data as a glb."""
        doc = dict(document)
        if self.buffer_views:
            doc["buffers"] = [{"byteLength": len(self._data) + (-len(self._data) % 4)}]
            doc["bufferViews"] = self.buffer_views
        if self.accessors:
            doc["accessors"] = self.accessors
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (-len(text) % 4)
        chunks = struct.pack("<II", len(text), JSON_CHUNK) + text
        if self.buffer_views:
            body = bytes(self._data) + b"\0" * (-len(self._data) % 4)
            chunks += struct.pack("<II", len(body), BIN_CHUNK) + body
        return struct.pack("<4sII", GLB_MAGIC, 2, 12 + len(chunks)) + chunks


@dataclass
class Glb:
    """A glb read back: its JSON document and binary chunk."""

    document: dict[str, Any]
    binary: bytes

    def view_bytes(self, index: int) -> bytes:
        """The bytes of buffer view `index`."""
        view = self.document["bufferViews"][index]
        start = view.get("byteOffset", 0)
        return self.binary[start : start + view["byteLength"]]

    def accessor(self, index: int) -> NDArray[Any]:
        """Accessor `index` as an (n,) or (n, k) array (tightly packed views only)."""
        acc = self.document["accessors"][index]
        dtype = COMPONENT_TYPES[acc["componentType"]]
        width = TYPE_SIZES[acc["type"]]
        view = self.document["bufferViews"][acc["bufferView"]]
        if view.get("byteStride", dtype.itemsize * width) != dtype.itemsize * width:
            raise GlbError(f"accessor {index}: interleaved buffer views are not supported")
        raw = self.view_bytes(acc["bufferView"])
        arr = np.frombuffer(
            raw, dtype=dtype, count=acc["count"] * width, offset=acc.get("byteOffset", 0)
        )
        return arr if width == 1 else arr.reshape(acc["count"], width)


def read_glb(source: Path | bytes) -> Glb:
    """Parse a glb file (or its bytes): header, JSON chunk and optional BIN chunk."""
    name = str(source) if isinstance(source, Path) else None
    data = source.read_bytes() if isinstance(source, Path) else source
    if len(data) < 20:
        raise GlbError("too short for a glb", path=name)
    magic, version, length = struct.unpack_from("<4sII", data)
    if magic != GLB_MAGIC or version != 2 or length != len(data):
        raise GlbError(f"bad glb header (magic {magic!r}, version {version})", path=name)
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != JSON_CHUNK:
        raise GlbError("first chunk is not JSON", path=name)
    document = json.loads(data[20 : 20 + json_len])
    binary = b""
    offset = 20 + json_len
    if offset + 8 <= len(data):
        bin_len, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type != BIN_CHUNK:
            raise GlbError("second chunk is not BIN", path=name)
        binary = data[offset + 8 : offset + 8 + bin_len]
    return Glb(document, binary)
