"""3D Tiles archive (``.3tz``): a ZIP of a tileset folder whose last entry,
``@3dtilesIndex1@``, is an index for direct lookup without the central directory.

The index holds one 24-byte record per file: the MD5 of the file's path inside the archive
(relative, ``/``-separated, no leading slash) and the offset of its ZIP local file header as a
little-endian uint64, sorted by the hash read as two little-endian uint64 (low half first).
The index itself is stored uncompressed; other entries are deflated.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path

from tiles.errors import TilesError
from tiles.precompress import SUFFIX

INDEX_NAME = "@3dtilesIndex1@"
RECORD = struct.Struct("<16sQ")


def _hash_key(digest: bytes) -> tuple[int, int]:
    low, high = struct.unpack("<QQ", digest)
    return low, high


def index_bytes(offsets: dict[str, int]) -> bytes:
    """The ``@3dtilesIndex1@`` content for entry paths and their local-header offsets."""
    records = [
        (hashlib.md5(path.encode(), usedforsecurity=False).digest(), offset)
        for path, offset in offsets.items()
    ]
    records.sort(key=lambda r: _hash_key(r[0]))
    return b"".join(RECORD.pack(digest, offset) for digest, offset in records)


def write_3tz(folder: Path, target: Path) -> int:
    """Pack every file under `folder` into the archive `target` (written atomically), but the
    pre-compressed twins of JSON files (the archive deflates its own entries); returns its size
    in bytes."""
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".json" + SUFFIX)
    )
    if not any(p.name == "tileset.json" and p.parent == folder for p in files):
        raise TilesError(f"{folder}: no tileset.json to archive")
    partial = target.with_name(target.name + ".partial")
    offsets: dict[str, int] = {}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.relative_to(folder).as_posix()
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
            offsets[name] = archive.getinfo(name).header_offset
        index = zipfile.ZipInfo(INDEX_NAME, date_time=(1980, 1, 1, 0, 0, 0))
        index.compress_type = zipfile.ZIP_STORED
        archive.writestr(index, index_bytes(offsets))
    partial.replace(target)
    return target.stat().st_size


def read_index(archive_path: Path) -> dict[bytes, int]:
    """The index of a ``.3tz``: MD5 digest of each path → local-header offset. Raises
    `TilesError` when the index is missing, not last, or not sorted."""
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        if not names or names[-1] != INDEX_NAME:
            raise TilesError(f"{archive_path}: {INDEX_NAME} is not the last entry")
        data = archive.read(INDEX_NAME)
    if len(data) % RECORD.size:
        raise TilesError(f"{archive_path}: index length {len(data)} is not a multiple of 24")
    records = [RECORD.unpack_from(data, i) for i in range(0, len(data), RECORD.size)]
    keys = [_hash_key(digest) for digest, _ in records]
    if keys != sorted(keys):
        raise TilesError(f"{archive_path}: index is not sorted by hash")
    return dict(records)
