"""Checks of written 3D Tiles that every test can use: JSON-schema validation of tileset JSON,
the Khronos glTF-Validator on every glb, bounding volumes that hold their content, geometric
errors that never grow downwards, and decoding of per-feature metadata.

`validate_tileset_tree(path)` returns a list of problems (empty = good), each naming the file
and the place in it; `decode_glb_features(path)` returns the property-table rows of a glb.
Implicit tiling (QUADTREE and OCTREE) is expanded from its ``.subtree`` files (each validated
against the Subtree schema, its availability counts and table rows checked), so every check
also covers implicit tiles; implicit tiles must also have an available parent whose box holds
theirs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from numpy.typing import NDArray
from paths import REPO
from referencing import Registry, Resource

from tiles.glb import Glb, read_glb
from tiles.implicit import read_subtree
from tiles.metadata import decode_property_table
from tiles.spec import BoundingVolume

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "3d-tiles"
VALIDATE_GLB = REPO / "web" / "tools" / "validate-glb.mjs"
SCHEMA_BASE = "https://3d-tiles.schema/"
# glTF content is y-up; 3D Tiles rotates it to z-up (glTF x, y, z → x, -z, y).
Y_UP_TO_Z_UP = np.array(
    [[1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]], dtype=float
)


@lru_cache(maxsize=2)
def tileset_validator(schema: str = "tileset.schema.json") -> Draft202012Validator:
    """A validator for tileset JSON (or, given ``Subtree/subtree.schema.json``, subtree JSON);
    every schema file is registered under a URI that mirrors its folder, so the relative
    ``$ref``s between folders resolve as the spec intends."""
    resources = []
    for path in SCHEMAS.rglob("*.schema.json"):
        contents = json.loads(path.read_text())
        uri = SCHEMA_BASE + path.relative_to(SCHEMAS).as_posix()
        contents["$id"] = uri
        resources.append((uri, Resource.from_contents(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = registry.contents(SCHEMA_BASE + schema)
    return Draft202012Validator(root, registry=registry)


def schema_problems(
    document: dict[str, Any], name: str, schema: str = "tileset.schema.json"
) -> list[str]:
    """Every JSON-schema violation of a tileset (or subtree) JSON document, as
    ``name /path: message``."""
    errors = sorted(tileset_validator(schema).iter_errors(document), key=lambda e: list(e.path))
    return [f"{name} /{'/'.join(str(p) for p in e.path)}: {e.message}" for e in errors]


SUBTREE_SCHEMA = "Subtree/subtree.schema.json"


def _bit(document: dict[str, Any], binary: bytes, availability: dict[str, Any], i: int) -> bool:
    if "constant" in availability:
        return bool(availability["constant"])
    view = document["bufferViews"][availability["bitstream"]]
    byte = binary[view.get("byteOffset", 0) + i // 8]
    return bool(byte >> (i % 8) & 1)


def _subtree_rows(document: dict[str, Any], binary: bytes) -> list[dict[str, Any]]:
    """Rows of the subtree's tile property table (bounding_box, geometric_error)."""
    table = document["propertyTables"][document["tileMetadata"]]

    def column(name: str, width: int) -> NDArray[np.float64]:
        view = document["bufferViews"][table["properties"][name]["values"]]
        start = view.get("byteOffset", 0)
        raw = np.frombuffer(binary[start : start + view["byteLength"]], "<f8")
        return raw.reshape(table["count"], width)

    boxes, errors = column("bounding_box", 12), column("geometric_error", 1)
    return [{"box": b.tolist(), "error": float(e[0])} for b, e in zip(boxes, errors, strict=True)]


def _demorton(m: int, dims: int) -> tuple[int, ...]:
    """The `dims` axis indices of Morton index `m` (axis a in bits ``dims * k + a``)."""
    return tuple(
        sum(((m >> (dims * b + a)) & 1) << b for b in range(64 // dims)) for a in range(dims)
    )


def _availability_problems(
    document: dict[str, Any], binary: bytes, uri: str, per: int, branches: int
) -> list[str]:
    """Bitstreams as long as their bits, ``availableCount`` equal to the bits set, content
    only on available tiles, one tile-table row per available tile."""
    tiles_length = (branches**per - 1) // (branches - 1)
    streams = [
        ("tileAvailability", document["tileAvailability"], tiles_length),
        ("childSubtreeAvailability", document["childSubtreeAvailability"], branches**per),
    ]
    streams += [(f"contentAvailability/{k}", a, tiles_length)
                for k, a in enumerate(document.get("contentAvailability", []))]  # fmt: skip
    problems, counts = [], {}
    for name, availability, length in streams:
        if "bitstream" in availability:
            view = document["bufferViews"][availability["bitstream"]]
            if view["byteLength"] < (length + 7) // 8:
                problems.append(f"{uri} {name}: {view['byteLength']} bytes for {length} bits")
                continue
        counts[name] = sum(_bit(document, binary, availability, i) for i in range(length))
        declared = availability.get("availableCount", counts[name])
        if declared != counts[name]:
            problems.append(f"{uri} {name}: availableCount {declared} != {counts[name]} bits")
    if "tileAvailability" not in counts:
        return problems
    for k, _ in enumerate(document.get("contentAvailability", [])):
        orphans = [i for i in range(tiles_length)
                   if _bit(document, binary, document["contentAvailability"][k], i)
                   and not _bit(document, binary, document["tileAvailability"], i)]  # fmt: skip
        if orphans:
            problems.append(f"{uri}: content without an available tile at bits {orphans[:5]}")
    if "tileMetadata" in document:
        rows = document["propertyTables"][document["tileMetadata"]]["count"]
        if rows != counts["tileAvailability"]:
            problems.append(f"{uri}: {rows} tile rows for {counts['tileAvailability']} tiles")
    return problems


def implicit_tiles(
    tile: dict[str, Any], file: Path, problems: list[str] | None = None
) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
    """Every available tile of an implicit quadtree or octree as (level, x, y) or
    (level, x, y, z) and a tile dict (boundingVolume and geometricError from the
    TILE_BOUNDING_BOX / TILE_GEOMETRIC_ERROR metadata, content URI from the template); subtree
    schema and availability problems go to `problems`."""
    tiling = tile["implicitTiling"]
    levels, per = tiling["availableLevels"], tiling["subtreeLevels"]
    dims = 3 if tiling["subdivisionScheme"] == "OCTREE" else 2
    branches = 2**dims
    template = tile["content"]["uri"]

    def place(origin: tuple[int, ...], rel: int, m: int) -> tuple[int, ...]:
        local = _demorton(m, dims)
        return (origin[0] + rel, *((o << rel) + v for o, v in zip(origin[1:], local, strict=True)))

    def names(coord: tuple[int, ...]) -> dict[str, int]:
        return {"level": coord[0], **dict(zip("xyz", coord[1:], strict=False))}

    pending = [(0,) * (dims + 1)]
    while pending:
        root = pending.pop()
        uri = tiling["subtrees"]["uri"].format(**names(root))
        document, binary = read_subtree((file.parent / uri).read_bytes())
        if problems is not None:
            problems += schema_problems(document, uri, SUBTREE_SCHEMA)
            problems += _availability_problems(document, binary, uri, per, branches)
        rows = iter(_subtree_rows(document, binary))
        for rel in range(min(per, levels - root[0])):
            # Rows follow the bit index: level by level, each level in Morton order.
            for m in range(branches**rel):
                i = (branches**rel - 1) // (branches - 1) + m
                if not _bit(document, binary, document["tileAvailability"], i):
                    continue
                coord = place(root, rel, m)
                row = next(rows)
                out: dict[str, Any] = {
                    "boundingVolume": {"box": row["box"]},
                    "geometricError": row["error"],
                }
                if _bit(document, binary, document["contentAvailability"][0], i):
                    out["content"] = {"uri": template.format(**names(coord))}
                yield coord, out
        for m in range(branches**per):
            if _bit(document, binary, document["childSubtreeAvailability"], m):
                pending.append(place(root, per, m))


def _box_corners(volume: dict[str, Any]) -> NDArray[np.float64]:
    """(8, 3) corners of a ``box`` bounding volume (metres)."""
    box = BoundingVolume.from_dict(volume)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    return box.centre + signs @ box.half_axes


def run_gltf_validator(glbs: list[Path]) -> list[dict[str, Any]]:
    """Run the Khronos glTF-Validator (web/tools/validate-glb.mjs) on glb files, in batches;
    one report dict per file (file, numErrors, numWarnings, messages)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; the glTF validator needs it")
    reports: list[dict[str, Any]] = []
    for start in range(0, len(glbs), 200):
        batch = [str(p) for p in glbs[start : start + 200]]
        result = subprocess.run(
            [node, str(VALIDATE_GLB), *batch], capture_output=True, text=True, timeout=600
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if len(lines) != len(batch):
            raise RuntimeError(f"validate-glb.mjs failed: {result.stderr.strip()[:500]}")
        reports.extend(json.loads(line) for line in lines)
    return reports


SCALAR_BYTES = {"INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "INT32": 4, "UINT32": 4,
                "INT64": 8, "UINT64": 8, "FLOAT32": 4, "FLOAT64": 8}  # fmt: skip


def property_table_problems(glb_path: Path) -> list[str]:
    """The property-table length errors the CesiumGS 3d-tiles-validator reports as
    METADATA_INVALID_LENGTH (its npm package cannot be installed here, so its rule is
    written out): each property's ``values`` buffer view holds exactly its values (a STRING
    property's last string offset, ceil(count / 8) bytes of BOOLEAN bits, count × size
    scalars) and ``stringOffsets`` holds count + 1 offsets."""
    glb = read_glb(glb_path)
    ext = glb.document.get("extensions", {}).get("EXT_structural_metadata")
    if ext is None:
        return []
    views, problems = glb.document["bufferViews"], []
    for t, table in enumerate(ext.get("propertyTables", [])):
        count, defs = table["count"], ext["schema"]["classes"][table["class"]]["properties"]
        for pid, stored in table["properties"].items():
            kind = defs[pid]["type"]
            if kind == "STRING":
                offsets = np.frombuffer(glb.view_bytes(stored["stringOffsets"]), "<u4")
                got = views[stored["stringOffsets"]]["byteLength"]
                if got != 4 * (count + 1):
                    problems.append(f"{glb_path.name} table {t} {pid}: {got} offset bytes")
                expected = int(offsets[-1])
            elif kind == "BOOLEAN":
                expected = -(-count // 8)
            else:
                expected = count * SCALAR_BYTES[defs[pid]["componentType"]]
            got = views[stored["values"]]["byteLength"]
            if got != expected:
                problems.append(f"{glb_path.name} table {t} {pid}: values buffer view has "
                                f"byteLength {got}, expected {expected}")  # fmt: skip
    return problems


def node_matrix(node: dict[str, Any]) -> NDArray[np.float64]:
    """The 4×4 local matrix of a glTF node (matrix, or translation × rotation × scale)."""
    if "matrix" in node:
        return np.asarray(node["matrix"], float).reshape(4, 4).T
    t = np.eye(4)
    t[:3, 3] = node.get("translation", (0, 0, 0))
    x, y, z, w = node.get("rotation", (0, 0, 0, 1))
    r = np.eye(4)
    r[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    s = np.diag([*node.get("scale", (1, 1, 1)), 1.0])
    return t @ r @ s


def glb_positions(glb: Glb) -> Iterator[tuple[NDArray[np.float64], dict[str, Any]]]:
    """(n, 3) positions of every primitive, placed by the node hierarchy and turned z-up: the
    frame of the tile that holds the content (metres). Also yields the primitive."""
    doc = glb.document

    def visit(index: int, parent: NDArray[np.float64]) -> Iterator[tuple[Any, Any]]:
        node = doc["nodes"][index]
        matrix = parent @ node_matrix(node)
        if "mesh" in node:
            for primitive in doc["meshes"][node["mesh"]]["primitives"]:
                local = glb.accessor(primitive["attributes"]["POSITION"]).astype(float)
                homo = np.column_stack([local, np.ones(len(local))])
                yield (homo @ matrix.T)[:, :3], primitive
        for child in node.get("children", []):
            yield from visit(child, matrix)

    for root in doc["scenes"][doc.get("scene", 0)]["nodes"]:
        yield from visit(root, Y_UP_TO_Z_UP)


def decode_glb_features(glb_path: Path) -> list[dict[str, Any]]:
    """Property-table rows of a building glb (element_id, name, kind, height, ...), one per
    feature id, after checking that EXT_mesh_features points at that table."""
    glb = read_glb(Path(glb_path))
    for _, primitive in glb_positions(glb):
        ids = primitive["extensions"]["EXT_mesh_features"]["featureIds"][0]
        table = ids["propertyTable"]
        rows = decode_property_table(glb, table)
        if ids["featureCount"] != len(rows):
            raise ValueError(f"{glb_path}: featureCount {ids['featureCount']} != {len(rows)} rows")
        return rows
    raise ValueError(f"{glb_path}: no mesh primitive")


@dataclass
class PlacedTile:
    """A tile met while walking a tileset tree: its JSON, the product of transforms down to it
    (tile frame → ECEF or the root's frame), its file and its address in the file."""

    tile: dict[str, Any]
    to_world: NDArray[np.float64]
    file: Path
    pointer: str
    parent_error: float = np.inf
    # Implicit tiles have no "children" in JSON: whether some child tile is available.
    has_children: bool | None = None

    @property
    def is_leaf(self) -> bool:
        """No child tile (explicit children, or available implicit children)."""
        if self.has_children is not None:
            return not self.has_children
        return not self.tile.get("children")


def walk_tiles(tileset_path: Path, problems: list[str] | None = None) -> Iterator[PlacedTile]:
    """Every tile of a tileset, following external tileset JSON content and expanding
    implicit tiling (the tile holding `implicitTiling` is replaced by its available tiles,
    pointers ``.../implicit/{level}/{x}/{y}[/{z}]``); implicit tiles without an available
    parent, or with a box their parent's does not hold, go to `problems`."""

    def visit(
        tile: dict[str, Any], parent: NDArray[np.float64], file: Path, pointer: str, error: float
    ) -> Iterator[PlacedTile]:
        local = np.asarray(tile.get("transform", np.eye(4).T.ravel()), float).reshape(4, 4).T
        placed = PlacedTile(tile, parent @ local, file, pointer, error)
        if "implicitTiling" in tile:
            available = dict(implicit_tiles(tile, file, problems))
            parents = {_implicit_parent(coord) for coord in available}
            for coord, sub in sorted(available.items()):
                where = f"{pointer}/implicit/" + "/".join(map(str, coord))
                up_tile = available.get(_implicit_parent(coord), tile)
                if problems is not None and coord[0] > 0:
                    problems.extend(_nesting_problems(file, where, sub, available, coord))
                has_children = coord in parents
                yield PlacedTile(sub, placed.to_world, file, where, up_tile["geometricError"],
                                 has_children)  # fmt: skip
            return
        yield placed
        uri = tile.get("content", {}).get("uri", "")
        if uri.endswith(".json"):
            sub = file.parent / uri
            doc = json.loads(sub.read_text())
            yield from visit(doc["root"], placed.to_world, sub, "/root", doc["geometricError"])
        for i, child in enumerate(tile.get("children", [])):
            where = f"{pointer}/children/{i}"
            yield from visit(child, placed.to_world, file, where, tile["geometricError"])

    doc = json.loads(tileset_path.read_text())
    yield from visit(doc["root"], np.eye(4), tileset_path, "/root", doc["geometricError"])


def _implicit_parent(coord: tuple[int, ...]) -> tuple[int, ...]:
    return (coord[0] - 1, *(v // 2 for v in coord[1:]))


def _nesting_problems(
    file: Path,
    where: str,
    tile: dict[str, Any],
    available: dict[tuple[int, ...], dict[str, Any]],
    coord: tuple[int, ...],
) -> list[str]:
    """An implicit tile's parent must be available and its box must hold the tile's."""
    up = available.get(_implicit_parent(coord))
    if up is None:
        return [f"{file.name} {where}: available without an available parent"]
    corners = _box_corners(tile["boundingVolume"])
    if not BoundingVolume.from_dict(up["boundingVolume"]).contains(corners, tol=1e-6):
        return [f"{file.name} {where}: box not inside its parent's"]
    return []


def _tile_problems(placed: PlacedTile, parent_error: float) -> list[str]:
    where = f"{placed.file.name} {placed.pointer}"
    tile, problems = placed.tile, []
    if tile["geometricError"] > parent_error:
        problems.append(f"{where}: geometricError {tile['geometricError']} > parent's")
    content = tile.get("content")
    if content is None:
        if placed.is_leaf:
            problems.append(f"{where}: a leaf without content")
        return problems
    path = placed.file.parent / content["uri"]
    if not path.is_file():
        return [*problems, f"{where}: content {content['uri']} is missing"]
    if path.suffix == ".glb" and "box" in tile["boundingVolume"]:
        box = BoundingVolume.from_dict(tile["boundingVolume"])
        for points, _ in glb_positions(read_glb(path)):
            if not box.contains(points, tol=1e-6):
                problems.append(f"{where}: content {content['uri']} leaves the bounding box")
    return problems


def validate_tileset_tree(tileset_path: Path) -> list[str]:
    """Every problem found in a tileset tree: a root tileset that is not 3D Tiles 1.1,
    JSON-schema errors of each tileset JSON (external ones included) and subtree JSON, missing
    content, bounding boxes that do not hold their glb vertices, geometric errors that grow
    downwards, leaves without content, and glTF-Validator errors of every glb."""
    tileset_path = Path(tileset_path)
    problems: list[str] = []
    seen_files: set[Path] = set()
    glbs: list[Path] = []
    for placed in walk_tiles(tileset_path, problems):
        if placed.file not in seen_files:
            seen_files.add(placed.file)
            doc = json.loads(placed.file.read_text())
            problems += schema_problems(doc, placed.file.name)
            if placed.file == tileset_path and doc.get("asset", {}).get("version") != "1.1":
                problems.append(f"{placed.file.name}: asset.version is not 1.1")
        problems += _tile_problems(placed, placed.parent_error)
        uri = placed.tile.get("content", {}).get("uri", "")
        if uri.endswith(".glb"):
            glbs.append(placed.file.parent / uri)
    for report in run_gltf_validator([p for p in glbs if p.is_file()]):
        if report["numErrors"]:
            codes = sorted({m["code"] for m in report["messages"] if m.get("severity") == 0})
            problems.append(f"{report['file']}: glTF-Validator errors {codes}")
    return problems


def assert_json_close(got: object, expected: object) -> None:
    """Equal JSON trees, numbers to 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), (got, expected)
        for key, value in expected.items():
            assert_json_close(got[key], value)
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), (got, expected)
        for g, e in zip(got, expected, strict=True):
            assert_json_close(g, e)
    elif isinstance(expected, float | int) and not isinstance(expected, bool):
        assert got == pytest.approx(expected, abs=1e-9)
    else:
        assert got == expected
