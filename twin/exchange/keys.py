"""Ed25519 signing keys for exchange bundles: ``DIR/twin.key`` (private, PKCS#8 PEM, mode
0600, stays on the exporting network) and ``DIR/twin.pub`` (public, SubjectPublicKeyInfo PEM,
given to the importing network as its trust anchor)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from twin.errors import InputError

PRIVATE_FILE = "twin.key"
PUBLIC_FILE = "twin.pub"


def fingerprint(key: Ed25519PublicKey) -> str:
    """16 hex digits of the SHA-256 of the raw public key: how reports name a key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keys(folder: Path) -> tuple[Path, Path]:
    """Write a new key pair into `folder` (created if missing); returns the private and public
    key paths. Refuses (`InputError`) to replace an existing key."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    for path in (private, public):
        if path.exists():
            raise InputError("a key is already there; not replaced", file=str(path))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The private key in `path`; refuses one that other users may read (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the key ({exc.strerror})", file=str(path)) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"private key is readable by others (mode {stat.S_IMODE(mode):o})", file=str(path),
            hint=f"chmod 600 {path}",
        )  # fmt: skip
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"not a PEM private key ({exc})", file=str(path)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("not an Ed25519 private key", file=str(path))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The public key in `path` (from `generate_keys`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the key ({exc.strerror})", file=str(path)) from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"not a PEM public key ({exc})", file=str(path)) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("not an Ed25519 public key", file=str(path))
    return key
