"""Tiles served straight out of a ``.3tz`` archive (3D Tiles archive format, a ZIP).

An entry is found through the archive's ``@3dtilesIndex1@`` index: 24-byte records (MD5 of the
entry's path, offset of its ZIP local file header as uint64 LE) sorted by the hash read as two
little-endian uint64, so a lookup is a binary search and one local-header read, however many
entries the archive holds. Entries may be stored or deflated, as the format allows; a deflated
entry is sent as it is, wrapped as gzip, to clients that accept gzip (no recompression).

Reads are positional (``os.pread``) on one descriptor, so request threads share it without
seeking. When the archive file is replaced (a rebuild), the next request opens the new one;
requests still holding the old one finish on it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from server.files import TileFile, gzip_copy, media_type, strong_etag
from tiles.archive import INDEX_NAME, RECORD

# ZIP local file header: signature, version, flags, method, time, date, crc-32, compressed
# size, uncompressed size, name length, extra field length (APPNOTE 4.3.7).
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIGNATURE = b"PK\x03\x04"
STORED, DEFLATED = 0, 8
ENCRYPTED, DATA_DESCRIPTOR = 0x1, 0x8
ZIP64_EXTRA = 0x0001
ZIP64_MARK = 0xFFFFFFFF
# gzip member header (RFC 1952): magic, deflate, no flags, no mtime, no extra flags, OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
INDEX_DTYPE = np.dtype([("low", "<u8"), ("high", "<u8"), ("offset", "<u8")])
assert INDEX_DTYPE.itemsize == RECORD.size


class ArchiveError(ValueError):
    """The archive, its index or one of its entries cannot be read."""


@dataclass(frozen=True)
class _Entry:
    """Where an entry's data lies (bytes from the start of the archive) and how it is packed."""

    data_offset: int
    method: int
    compressed: int
    size: int
    crc: int


class _Opened:
    """One version of the archive file: an open descriptor, its index and (inode, size,
    mtime) to notice a replacement."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("rb", buffering=0)  # closed when the last user lets go
        stat = os.fstat(self.file.fileno())
        self.signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self.path = path
        self.index = self._read_index()
        self._central: dict[str, zipfile.ZipInfo] | None = None

    def _read_index(self) -> np.ndarray:
        try:
            with zipfile.ZipFile(self.file) as archive:
                last = archive.infolist()[-1] if archive.infolist() else None
                if last is None or last.filename != INDEX_NAME:
                    raise ArchiveError(f"{self.path.name}: {INDEX_NAME} is not the last entry")
                data = archive.read(last)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ArchiveError(f"{self.path.name}: not a readable ZIP archive ({exc})") from exc
        if len(data) % RECORD.size:
            raise ArchiveError(f"{self.path.name}: index length {len(data)} is not 24·n bytes")
        index = np.frombuffer(data, INDEX_DTYPE)
        low, high = index["low"], index["high"]
        ascending = (low[1:] > low[:-1]) | ((low[1:] == low[:-1]) & (high[1:] >= high[:-1]))
        if not bool(np.all(ascending)):
            raise ArchiveError(f"{self.path.name}: index is not sorted by hash")
        return index

    def read(self, size: int, offset: int) -> bytes:
        data = os.pread(self.file.fileno(), size, offset)
        if len(data) != size:
            raise ArchiveError(f"{self.path.name}: truncated at byte {offset + len(data)}")
        return data

    def offset_of(self, name: str) -> int | None:
        """Local-header offset of entry `name`, from the index (None when absent)."""
        digest = hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest()
        low, high = struct.unpack("<QQ", digest)
        i = int(np.searchsorted(self.index["low"], np.uint64(low)))
        while i < len(self.index) and int(self.index["low"][i]) == low:
            if int(self.index["high"][i]) == high:
                return int(self.index["offset"][i])
            i += 1
        return None

    def entry(self, name: str) -> _Entry | None:
        """The entry `name`, checked against its local header (None when absent)."""
        offset = self.offset_of(name)
        if offset is None:
            return None
        fields = LOCAL_HEADER.unpack(self.read(LOCAL_HEADER.size, offset))
        signature, _, flags, method, _, _, crc, compressed, size, name_len, extra_len = fields
        if signature != LOCAL_SIGNATURE:
            raise ArchiveError(f"{name}: the index points at no local header (offset {offset})")
        tail = self.read(name_len + extra_len, offset + LOCAL_HEADER.size)
        if tail[:name_len].decode("utf-8", "replace") != name:
            return None  # an MD5 collision with another entry, or a stale index record
        if flags & ENCRYPTED or method not in (STORED, DEFLATED):
            raise ArchiveError(f"{name}: compression method {method} is not stored or deflated")
        if flags & DATA_DESCRIPTOR:  # sizes follow the data; the central directory has them
            crc, compressed, size = self._central_sizes(name)
        elif ZIP64_MARK in (compressed, size):
            size, compressed = _zip64_sizes(tail[name_len:], size, compressed, name)
        data_offset = offset + LOCAL_HEADER.size + name_len + extra_len
        return _Entry(data_offset, method, compressed, size, crc)

    def _central_sizes(self, name: str) -> tuple[int, int, int]:
        if self._central is None:
            with zipfile.ZipFile(self.path) as archive:
                self._central = {info.filename: info for info in archive.infolist()}
        info = self._central[name]
        return info.CRC, info.compress_size, info.file_size

    def data(self, entry: _Entry) -> bytes:
        """The entry's uncompressed bytes."""
        raw = self.read(entry.compressed, entry.data_offset)
        if entry.method == STORED:
            return raw
        try:
            data = zlib.decompress(raw, -zlib.MAX_WBITS, bufsize=max(entry.size, 1))
        except zlib.error as exc:
            raise ArchiveError(f"entry at byte {entry.data_offset}: bad deflate data") from exc
        if len(data) != entry.size or zlib.crc32(data) != entry.crc:
            raise ArchiveError(f"entry at byte {entry.data_offset}: size or CRC mismatch")
        return data

    def gzip_member(self, entry: _Entry) -> bytes:
        """A deflated entry as a gzip member: the same deflate stream, CRC-32 and size."""
        raw = self.read(entry.compressed, entry.data_offset)
        return GZIP_HEADER + raw + struct.pack("<II", entry.crc, entry.size & 0xFFFFFFFF)


def _zip64_sizes(extra: bytes, size: int, compressed: int, name: str) -> tuple[int, int]:
    """(uncompressed, compressed) sizes from the ZIP64 extra field of a local header."""
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        if kind == ZIP64_EXTRA:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            size = next(values) if size == ZIP64_MARK else size
            compressed = next(values) if compressed == ZIP64_MARK else compressed
            return size, compressed
        pos += 4 + length
    raise ArchiveError(f"{name}: ZIP64 sizes without a ZIP64 extra field")


class ArchiveTiles:
    """The tiles of one ``.3tz`` file (a `server.files.TileSource`). Thread-safe; tile
    descriptions (ETag, gzip body of stored JSON) cached per archive version."""

    def __init__(self, path: Path, cache_entries: int = 4096) -> None:
        self.path = Path(path).resolve()
        self._opened = _Opened(self.path)
        self._cache: OrderedDict[str, TileFile] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()

    def _current(self) -> _Opened:
        """The open archive, reopened when the file at `path` has been replaced."""
        opened = self._opened
        try:
            stat = os.stat(self.path)
        except OSError:
            return opened  # gone for a moment (a rebuild swapping folders): keep the old one
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == opened.signature:
            return opened
        with self._lock:
            if self._opened is opened:
                self._opened = _Opened(self.path)
                self._cache.clear()
            return self._opened

    def find(self, relative: PurePosixPath) -> TileFile | None:
        """The entry at `relative` (a path checked by `check_relative`), or None."""
        name = relative.as_posix()
        if name == INDEX_NAME:
            return None
        opened = self._current()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and self._opened is opened:
                self._cache.move_to_end(name)
                return cached
        entry = opened.entry(name)
        if entry is None:
            return None
        tile = _describe(opened, name, entry)
        with self._lock:
            if self._opened is opened:
                self._cache[name] = tile
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
        return tile


def _describe(opened: _Opened, name: str, entry: _Entry) -> TileFile:
    kind = media_type(name)
    data = opened.data(entry)
    if entry.method == DEFLATED:
        return TileFile(kind, strong_etag(data), entry.size, True, partial(_body, opened, entry))
    gzipped = gzip_copy(kind, data)
    return TileFile(kind, strong_etag(data), entry.size, gzipped is not None,
                    partial(_stored_body, opened, entry, gzipped))  # fmt: skip


def _body(opened: _Opened, entry: _Entry, want_gzip: bool) -> bytes:
    return opened.gzip_member(entry) if want_gzip else opened.data(entry)


def _stored_body(opened: _Opened, entry: _Entry, gzipped: bytes | None, want_gzip: bool) -> bytes:
    if want_gzip and gzipped is not None:
        return gzipped
    return opened.data(entry)
