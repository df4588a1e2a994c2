"""Safe, cache-friendly access to the files under ``WS/tiles``: path checks that never escape
the folder, content types for 3D Tiles, strong ETags and gzip bodies for JSON (both cached).

`TileFile` and `TileSource` are shared with `server.archive`, which serves the same tiles out
of a ``.3tz`` archive."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Protocol

CONTENT_TYPES = {
    ".json": "application/json",
    ".gltf": "model/gltf+json",
    ".glb": "model/gltf-binary",
    ".subtree": "application/octet-stream",
    ".pnts": "application/octet-stream",
    ".b3dm": "application/octet-stream",
    ".i3dm": "application/octet-stream",
    ".cmpt": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ktx2": "image/ktx2",
}
BINARY_TYPES = frozenset(t for t in CONTENT_TYPES.values() if not t.endswith("json"))
COMPRESSIBLE = frozenset({"application/json", "model/gltf+json"})
GZIP_MIN_BYTES = 256
GZIP_MAX_BYTES = 16 * 1024 * 1024
_FORBIDDEN_ENCODED = ("%2f", "%5c", "%00")


class BadTilePath(ValueError):
    """The requested path is malformed or tries to leave the tiles folder."""


@dataclass(frozen=True)
class TileFile:
    """A servable tile: its type, strong ETag (of its uncompressed bytes), size in bytes,
    whether a gzip-encoded body exists, and `body(gzipped)` giving that body or the plain one
    (bytes, or the path of a file on disk)."""

    media_type: str
    etag: str
    size: int
    gzip: bool
    body: Callable[[bool], bytes | Path] = field(repr=False, compare=False)

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


class TileSource(Protocol):
    """Where tiles come from: a folder (`TileFiles`) or an archive (`server.archive`)."""

    def find(self, relative: PurePosixPath) -> TileFile | None:
        """The tile at `relative` (already checked by `check_relative`), or None."""
        ...


def media_type(name: str) -> str:
    """Content type of a tile file from its suffix."""
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


def strong_etag(data: bytes) -> str:
    """A strong ETag of a tile's (uncompressed) bytes."""
    return f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'


def gzip_copy(kind: str, data: bytes) -> bytes | None:
    """A gzip body for JSON between `GZIP_MIN_BYTES` and `GZIP_MAX_BYTES`, else None."""
    if kind in COMPRESSIBLE and GZIP_MIN_BYTES <= len(data) <= GZIP_MAX_BYTES:
        return gzip.compress(data, compresslevel=6, mtime=0)
    return None


def check_relative(path: str, raw_path: bytes = b"") -> PurePosixPath:
    """The request path as a safe relative path; raise `BadTilePath` for absolute paths, ``..``
    or ``.`` segments, backslashes, NUL bytes and percent-encoded separators."""
    raw = raw_path.decode("latin-1").lower()
    if any(code in raw for code in _FORBIDDEN_ENCODED):
        raise BadTilePath("encoded separator in path")
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise BadTilePath("not a relative path")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadTilePath("empty, '.' or '..' segment")
    return PurePosixPath(path)


class TileFiles:
    """Files under one root folder. Thread-safe; metadata cached by (path, size, mtime)."""

    def __init__(self, root: Path, cache_entries: int = 4096) -> None:
        self.root = Path(root).resolve()
        self._cache: OrderedDict[tuple[str, int, int], TileFile] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()

    def find(self, relative: PurePosixPath) -> TileFile | None:
        """The file at `relative` if it is a regular file inside the root (after resolving
        symlinks), else None."""
        try:
            target = (self.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        stat = target.stat()
        key = (str(target), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        entry = self._describe(target, stat.st_size)
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return entry

    @staticmethod
    def _describe(target: Path, size: int) -> TileFile:
        kind = media_type(target.name)
        digest = hashlib.blake2b(digest_size=16)
        with target.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        gzipped = None
        if kind in COMPRESSIBLE and GZIP_MIN_BYTES <= size <= GZIP_MAX_BYTES:
            gzipped = gzip_copy(kind, target.read_bytes())
        etag = f'"{digest.hexdigest()}"'
        return TileFile(kind, etag, size, gzipped is not None, partial(_body, target, gzipped))


def _body(path: Path, gzipped: bytes | None, want_gzip: bool) -> bytes | Path:
    return gzipped if want_gzip and gzipped is not None else path
