"""Binary glTF 2.0 (glb) packing and reading, by hand with `struct`: a builder that lays out
buffer views and accessors in one binary chunk, and a reader that gives them back as arrays.

Buffer views may be compressed with EXT_meshopt_compression (the `meshoptimizer` package):
the compressed bytes live in the BIN chunk (buffer 0) and the view itself points into a
fallback buffer (buffer 1, no data) of the decoded size, as the extension lays it out.

A whole primitive may instead be one KHR_draco_mesh_compression stream (the `DracoPy`
package): its accessors keep count, type, componentType and min/max but have no buffer view,
and the extension maps each glTF attribute to the Draco attribute's unique id; the reader
decodes them back (`Glb.accessor`)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import DracoPy
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
TYPE_OF_WIDTH = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}
MESHOPT = "EXT_meshopt_compression"
MeshoptMode = Literal["ATTRIBUTES", "TRIANGLES"]
DRACO = "KHR_draco_mesh_compression"
# glTF attributes that Draco codes as its own kinds: DracoPy.encode's argument for the values and
# for their quantisation bits, and the Draco GeometryAttribute type they decode as. Any other
# attribute (e.g. _FEATURE_ID_0) is a GENERIC one, named in Draco metadata and not quantised.
DRACO_ARGUMENTS = {
    "POSITION": ("points", "quantization_bits"),
    "NORMAL": ("normals", "normal_quantization_bits"),
    "TEXCOORD_0": ("tex_coord", "tex_coord_quantization_bits"),
}
DRACO_TYPES = {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 3}
# DracoPy's 0-10 scale; 7 (encoder speed 3) selects edgebreaker, as gltf-pipeline's default.
DRACO_LEVEL = 7


def _meshopt() -> Any:
    try:
        import meshoptimizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise GlbError("EXT_meshopt_compression needs the `meshoptimizer` package") from err
    return meshoptimizer


@dataclass
class GlbBuilder:
    """Collects binary data into one buffer; ``to_glb`` adds buffers/bufferViews/accessors to a
    glTF JSON document and packs the two GLB chunks."""

    _data: bytearray = field(default_factory=bytearray)
    buffer_views: list[dict[str, Any]] = field(default_factory=list)
    accessors: list[dict[str, Any]] = field(default_factory=list)
    _fallback_length: int = 0

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

    def add_meshopt_view(self, array: NDArray[Any], *, mode: MeshoptMode, target: int) -> int:
        """Compress `array` with meshoptimizer into a new EXT_meshopt_compression view.

        ``ATTRIBUTES``: `array` is (count, stride) bytes, stride a multiple of 4; ``TRIANGLES``:
        `array` is a flat uint16 or uint32 index array (length a multiple of 3)."""
        meshopt = _meshopt()
        if mode == "ATTRIBUTES":
            rows = np.ascontiguousarray(array, dtype=np.uint8)
            count, stride = rows.shape
            meshopt.encode_vertex_version(0)  # the version EXT_meshopt_compression defines
            encoded = meshopt.encode_vertex_buffer(rows, count, stride)
        else:
            count, stride = len(array), np.asarray(array).dtype.itemsize
            vertex_count = int(np.max(array)) + 1 if count else 0
            encoded = meshopt.encode_index_buffer(np.asarray(array, np.uint32), count, vertex_count)
        compressed = self.add_buffer_view(bytes(encoded))
        stored = self.buffer_views.pop(compressed)
        self._fallback_length += -self._fallback_length % ALIGNMENT
        view: dict[str, Any] = {
            "buffer": 1,
            "byteOffset": self._fallback_length,
            "byteLength": count * stride,
            "target": target,
            "extensions": {
                MESHOPT: {
                    "buffer": 0,
                    "byteOffset": stored["byteOffset"],
                    "byteLength": stored["byteLength"],
                    "byteStride": stride,
                    "count": count,
                    "mode": mode,
                }
            },
        }
        if mode == "ATTRIBUTES":
            view["byteStride"] = stride
        self._fallback_length += count * stride
        self.buffer_views.append(view)
        return len(self.buffer_views) - 1

    def add_view_accessor(
        self,
        view: int,
        dtype: np.dtype[Any],
        count: int,
        kind: str,
        *,
        normalized: bool = False,
        bounds: tuple[list[int], list[int]] | tuple[list[float], list[float]] | None = None,
    ) -> int:
        """An accessor on an existing buffer view (e.g. an interleaved or compressed one);
        `bounds` gives min/max (required for POSITION)."""
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": COMPONENT_OF_DTYPE[np.dtype(dtype).newbyteorder("<")],
            "count": count,
            "type": kind,
        }
        if normalized:
            accessor["normalized"] = True
        if bounds is not None:
            accessor["min"], accessor["max"] = bounds
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def add_draco_primitive(
        self,
        attributes: dict[str, NDArray[Any]],
        triangles: NDArray[np.integer[Any]],
        bits: dict[str, int],
    ) -> dict[str, Any]:
        """Encode one triangle primitive as a KHR_draco_mesh_compression stream in a new view;
        returns the glTF primitive's ``attributes``, ``indices`` and ``extensions`` members.

        `attributes` maps glTF names to (n,) or (n, k) arrays over the same n vertices:
        POSITION, NORMAL and TEXCOORD_0 (floats) are quantised with ``bits[name]`` bits (Draco
        positions: a uniform grid of (largest side of their box) / (2^bits − 1)); others are
        stored losslessly as given (uint8, uint16 or float32). Draco may reorder and merge
        vertices, so the stream is decoded once here: accessor counts and POSITION min/max are
        those of the decoded mesh, as a client sees it."""
        arguments: dict[str, Any] = {}
        generic: dict[str, NDArray[Any]] = {}
        for name, values in attributes.items():
            if name in DRACO_ARGUMENTS:
                values_argument, bits_argument = DRACO_ARGUMENTS[name]
                arguments[values_argument] = np.asarray(values, np.float64)
                arguments[bits_argument] = bits[name]
            else:
                generic[name] = np.asarray(values).reshape(len(values), -1)
        encoded = DracoPy.encode(
            faces=np.asarray(triangles, np.uint32),
            compression_level=DRACO_LEVEL,
            generic_attributes=generic or None,
            **arguments,
        )
        decoded = DracoPy.decode(encoded)
        unique_ids = _draco_unique_ids(decoded, list(attributes))
        view = self.add_buffer_view(bytes(encoded))
        accessors: dict[str, int] = {}
        for name, values in attributes.items():
            data = decoded.get_attribute_by_unique_id(unique_ids[name])["data"]
            dtype = np.dtype(np.float32) if name in DRACO_ARGUMENTS else np.asarray(values).dtype
            width = 1 if np.ndim(values) == 1 else np.shape(values)[1]
            bounds = None
            if name == "POSITION":
                bounds = (
                    [float(v) for v in data.min(axis=0)],
                    [float(v) for v in data.max(axis=0)],
                )
            accessors[name] = self._decoded_accessor(dtype, len(data), width, bounds)
        faces = np.asarray(decoded.faces)
        index_dtype = np.dtype(np.uint16 if len(decoded.points) < 0xFFFF else np.uint32)
        return {
            "attributes": accessors,
            "indices": self._decoded_accessor(index_dtype, faces.size, 1, None),
            "extensions": {DRACO: {"bufferView": view, "attributes": unique_ids}},
        }

    def _decoded_accessor(
        self,
        dtype: np.dtype[Any],
        count: int,
        width: int,
        bounds: tuple[list[float], list[float]] | None,
    ) -> int:
        """An accessor whose data a decoder supplies (no buffer view)."""
        accessor: dict[str, Any] = {
            "componentType": COMPONENT_OF_DTYPE[dtype.newbyteorder("<")],
            "count": count,
            "type": TYPE_OF_WIDTH[width],
        }
        if bounds is not None:
            accessor["min"], accessor["max"] = bounds
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    @property
    def uses_meshopt(self) -> bool:
        """Whether some view is EXT_meshopt_compression-compressed."""
        return self._fallback_length > 0

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
        kind = TYPE_OF_WIDTH[width]
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
            if self.uses_meshopt:
                doc["buffers"].append(
                    {
                        "byteLength": self._fallback_length,
                        "extensions": {MESHOPT: {"fallback": True}},
                    }
                )
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
    _draco_meshes: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)

    def view_bytes(self, index: int) -> bytes:
        """The bytes of buffer view `index` (decoded when EXT_meshopt_compression holds it)."""
        view = self.document["bufferViews"][index]
        packed = view.get("extensions", {}).get(MESHOPT)
        if packed is not None:
            return _decode_meshopt(packed, self.binary)
        start = view.get("byteOffset", 0)
        return self.binary[start : start + view["byteLength"]]

    def accessor(self, index: int) -> NDArray[Any]:
        """Accessor `index` as an (n,) or (n, k) array of its stored component type (strided
        and meshopt-compressed views are read, Draco primitives decoded; normalized values are
        not rescaled)."""
        acc = self.document["accessors"][index]
        dtype = COMPONENT_TYPES[acc["componentType"]]
        width = TYPE_SIZES[acc["type"]]
        if "bufferView" not in acc:
            values = self._draco_values(index).astype(dtype)
            return values if width == 1 else values.reshape(len(values), width)
        view = self.document["bufferViews"][acc["bufferView"]]
        stride = view.get("byteStride", dtype.itemsize * width)
        raw = self.view_bytes(acc["bufferView"])
        start = acc.get("byteOffset", 0)
        count = acc["count"]
        rows = (
            np.frombuffer(
                raw, np.uint8, count=(count - 1) * stride + dtype.itemsize * width, offset=start
            )
            if count
            else np.zeros(0, np.uint8)
        )
        picked = np.lib.stride_tricks.as_strided(
            rows, shape=(count, dtype.itemsize * width), strides=(stride, 1)
        )
        arr = np.ascontiguousarray(picked).view(dtype).reshape(count, width)
        return arr[:, 0] if width == 1 else arr

    def draco_mesh(self, primitive: dict[str, Any]) -> Any:
        """The `DracoPy.DracoMesh` a KHR_draco_mesh_compression primitive decodes to."""
        view = primitive["extensions"][DRACO]["bufferView"]
        if view not in self._draco_meshes:
            self._draco_meshes[view] = DracoPy.decode(self.view_bytes(view))
        return self._draco_meshes[view]

    def _draco_values(self, index: int) -> NDArray[Any]:
        """Accessor `index`'s values from the Draco primitive that holds it (flat indices, or
        (n, k) attribute values)."""
        for mesh in self.document.get("meshes", []):
            for primitive in mesh["primitives"]:
                draco = primitive.get("extensions", {}).get(DRACO)
                if draco is None:
                    continue
                if primitive.get("indices") == index:
                    return np.asarray(self.draco_mesh(primitive).faces).ravel()
                for name, accessor in primitive["attributes"].items():
                    if accessor == index and name in draco["attributes"]:
                        unique_id = draco["attributes"][name]
                        found = self.draco_mesh(primitive).get_attribute_by_unique_id(unique_id)
                        return np.asarray(found["data"])
        raise GlbError(f"accessor {index} has neither a buffer view nor a Draco primitive")


def _draco_unique_ids(decoded: Any, names: list[str]) -> dict[str, int]:
    """The unique id Draco gave each glTF attribute: by kind for POSITION/NORMAL/TEXCOORD_0,
    by metadata name for generic ones (DracoPy numbers them in its own order)."""
    name_of_kind = {kind: name for name, kind in DRACO_TYPES.items()}
    found = {
        name_of_kind.get(attribute["attribute_type"], attribute["name"]): attribute["unique_id"]
        for attribute in decoded.attributes
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise GlbError(f"Draco stream lacks attributes {missing}")
    return {name: int(found[name]) for name in names}


def _decode_meshopt(packed: dict[str, Any], binary: bytes) -> bytes:
    if packed.get("buffer", 0) != 0:
        raise GlbError("EXT_meshopt_compression data outside the BIN chunk is not read")
    start = packed.get("byteOffset", 0)
    data = binary[start : start + packed["byteLength"]]
    count, stride, mode = packed["count"], packed["byteStride"], packed["mode"]
    meshopt = _meshopt()
    # The binding's raw (dtype=) mode under-allocates; its float32 mode holds count × stride
    # bytes, and its index decoder writes `stride`-byte indices into a uint32 array.
    if mode == "ATTRIBUTES":
        return bytes(np.asarray(meshopt.decode_vertex_buffer(count, stride, data)).tobytes())
    if mode == "TRIANGLES":
        decoded = np.asarray(meshopt.decode_index_buffer(count, stride, data))
        return decoded.view(np.uint8)[: count * stride].tobytes()
    raise GlbError(f"EXT_meshopt_compression mode {mode} is not read")


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
