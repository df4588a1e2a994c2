"""The exchange bundle file (``.twinb``): an uncompressed POSIX tar whose first member is
``manifest.json``, second ``manifest.sig`` (the 64-byte Ed25519 signature of the manifest's
exact bytes), then the data members the manifest lists — gzip'd newline-delimited JSON
(``*.ndjson.gz``, one record a line) and raw files (alert crops) — each with its size, record
count and SHA-256.

`open_verified` checks everything before a caller reads a record: the tar is whole, the
signature verifies with the trusted public key, the members are exactly those listed, and every
member has its listed size and hash. Any failure is one `BundleError` line; nothing is read
from an unverified bundle.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin.errors import InputError
from twin.exchange.keys import fingerprint

FORMAT: Literal["twin-bundle"] = "twin-bundle"
VERSION: Literal[1] = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MEMBER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._:-]*)?")
MAX_LINE_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
CHUNK = 1 << 20


class BundleError(InputError):
    """A bundle that cannot be trusted or read; the message says why, in one line."""


class Member(BaseModel):
    """One data member: its name in the tar, size (bytes), records (lines of NDJSON, 1 for a
    file) and SHA-256 (hex) of its bytes as stored."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MEMBER_NAME.pattern, max_length=200)
    bytes: int = Field(ge=0)
    records: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """What a bundle holds and where from: the exporting workspace's name, the time range
    (UTC, ``until`` exclusive), what was asked for, the signing key's fingerprint, the
    fingerprint of the site secret its keyed hashes were made with, and the members."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["twin-bundle"] = FORMAT
    version: Literal[1] = VERSION
    created_at: datetime
    source: str
    since: datetime
    until: datetime
    what: list[str]
    signer: str
    hash_key: str | None = Field(default=None, title="Fingerprint of the keyed-hash secret")
    members: list[Member]

    def counts(self) -> dict[str, int]:
        """Records per member."""
        return {m.name: m.records for m in self.members}


def _sha256(fh: IO[bytes], size: int | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and length of what `fh` holds (at most `size` bytes)."""
    digest, total = hashlib.sha256(), 0
    while size is None or total < size:
        chunk = fh.read(CHUNK if size is None else min(CHUNK, size - total))
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


class NdjsonWriter:
    """Writes one gzip'd NDJSON member to a file (reproducible: no name or time in the gzip
    header), counting its records."""

    def __init__(self, path: Path) -> None:
        self.path, self.records = path, 0
        self._raw = path.open("wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)

    def write(self, record_json: str) -> None:
        """Append one record (JSON text without newlines)."""
        self._gz.write(record_json.encode() + b"\n")
        self.records += 1

    def close(self) -> None:
        self._gz.close()
        self._raw.close()


def member_of(name: str, path: Path, records: int) -> Member:
    """The manifest entry of the file at `path`, stored as member `name`."""
    with path.open("rb") as fh:
        digest, size = _sha256(fh)
    return Member(name=name, bytes=size, records=records, sha256=digest)


def write_bundle(
    out: Path, manifest: Manifest, files: dict[str, Path], key: Ed25519PrivateKey
) -> None:
    """Write the bundle of `manifest` (members' data from `files`, by member name) to `out`,
    signed with `key`: written beside it, then renamed into place."""
    text = manifest.model_dump_json().encode()
    stamp = int(manifest.created_at.timestamp())
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(text), len(text), stamp)
            signature = key.sign(text)
            _add(tar, SIGNATURE, io.BytesIO(signature), len(signature), stamp)
            for member in manifest.members:
                with files[member.name].open("rb") as fh:
                    _add(tar, member.name, fh, member.bytes, stamp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    tar.addfile(info, data)


class Bundle:
    """A verified bundle, open for reading its members (`records`, `read`)."""

    def __init__(self, tar: tarfile.TarFile, manifest: Manifest) -> None:
        self._tar, self.manifest = tar, manifest
        self._names = {m.name for m in manifest.members}

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._tar.close()

    def has(self, name: str) -> bool:
        return name in self._names

    def read(self, name: str) -> bytes:
        """The bytes of a raw member."""
        fh = self._tar.extractfile(name)
        if fh is None:
            raise BundleError(f"member {name} is not a file")
        return fh.read()

    def records(self, name: str) -> Iterator[bytes]:
        """The records (JSON lines, without the newline) of an NDJSON member."""
        fh = self._tar.extractfile(name)
        if fh is None:
            raise BundleError(f"member {name} is not a file")
        try:
            with gzip.GzipFile(fileobj=fh) as lines:
                while line := lines.readline(MAX_LINE_BYTES + 1):
                    if len(line) > MAX_LINE_BYTES:
                        raise BundleError(f"member {name}: a line over {MAX_LINE_BYTES} bytes")
                    yield line.rstrip(b"\n")
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(f"member {name}: not gzip'd NDJSON ({exc})") from exc


def open_verified(path: Path, trusted: Ed25519PublicKey) -> Bundle:
    """Open the bundle at `path` and verify it whole against the `trusted` key (see the module
    docstring); raises `BundleError` naming the first thing wrong."""
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 - the Bundle closes it
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"not a bundle, or truncated ({exc})", file=str(path)) from exc
    try:
        manifest = _verify(tar, trusted)
    except BundleError as exc:
        tar.close()
        raise BundleError(str(exc), file=str(path)) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        tar.close()
        raise BundleError(f"not a bundle, or truncated ({exc})", file=str(path)) from exc
    return Bundle(tar, manifest)


def _verify(tar: tarfile.TarFile, trusted: Ed25519PublicKey) -> Manifest:
    infos = tar.getmembers()
    names = [info.name for info in infos]
    if len(set(names)) != len(names) or not all(info.isfile() for info in infos):
        raise BundleError("members repeat or are not plain files")
    if not names or names[0] != MANIFEST or SIGNATURE not in names:
        raise BundleError(f"unsigned: no {MANIFEST} followed by {SIGNATURE}")
    text, signature = _whole(tar, infos[0]), _whole(tar, tar.getmember(SIGNATURE))
    try:
        trusted.verify(signature, text)
    except InvalidSignature:
        raise BundleError(
            f"the signature does not verify with the trusted key {fingerprint(trusted)}: "
            "the manifest changed after signing, or another key signed it"
        ) from None
    try:
        manifest = Manifest.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise BundleError(f"{MANIFEST} is not a version {VERSION} manifest ({exc})") from exc
    listed = {m.name: m for m in manifest.members}
    present = set(names) - {MANIFEST, SIGNATURE}
    if present != set(listed) or len(listed) != len(manifest.members):
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise BundleError(f"members differ from the manifest (extra {extra}, missing {missing})")
    for info in infos[1:]:
        member = listed.get(info.name)
        if member is None:
            continue
        fh = tar.extractfile(info)
        digest, size = _sha256(fh) if fh is not None else ("", -1)
        if size != member.bytes or info.size != member.bytes:
            raise BundleError(f"member {info.name}: {size} bytes, the manifest says {member.bytes}")
        if digest != member.sha256:
            raise BundleError(f"member {info.name}: SHA-256 differs from the manifest's")
    return manifest


def _whole(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """The bytes of a small member (manifest, signature), whole."""
    fh = tar.extractfile(info)
    data = fh.read(limit + 1) if fh is not None else b""
    if len(data) != info.size or len(data) > limit:
        raise BundleError(f"{info.name}: truncated or too large")
    return data
