"""Personal identifiers (licence plates, identity tokens): normalisation, masking and keyed
hashing. A clear identifier never leaves this module's callers: observations keep only
``{attr}_hash`` (HMAC-SHA256 with the site secret, hex) and ``{attr}_masked`` (e.g. 沪A·***45).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from scenes.errors import SceneError
from twin.plates import normalise_plate

PLATE = "plate"
IDENTITY = "identity_token"
IDENTIFIER_ATTRIBUTES = (PLATE, IDENTITY)
# watchlist name → the observation attribute it is matched on
WATCHLISTS: dict[str, str] = {"suspended-licences": PLATE, "wanted-persons": IDENTITY}

_TOKEN_JUNK = re.compile(r"\s+")
SECRET_BYTES = 32


def normalise_token(text: str) -> str:
    """Identity tokens: full-width folded, whitespace removed, upper case."""
    return _TOKEN_JUNK.sub("", unicodedata.normalize("NFKC", text)).upper()


def normalise(attribute: str, text: str) -> str:
    """Normalise a value of identifier `attribute` (plate or identity_token)."""
    return normalise_plate(text) if attribute == PLATE else normalise_token(text)


def mask(attribute: str, value: str) -> str:
    """A display form that does not reveal the identifier: plates keep the province and letter
    and the last two characters (沪A·***45); tokens keep their last two (***45)."""
    if attribute == PLATE and len(value) > 4:
        return f"{value[:2]}·***{value[-2:]}"
    return f"***{value[-2:]}" if len(value) > 4 else "***"


@dataclass(frozen=True)
class KeyedHasher:
    """HMAC-SHA256 of normalised identifiers with the site secret."""

    secret: bytes

    def digest(self, attribute: str, value: str) -> str:
        """Hex digest of the normalised `value` of identifier `attribute`."""
        message = f"{attribute}\x00{normalise(attribute, value)}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def protect(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """`attributes` with each clear identifier replaced by its hash and masked form."""
        if not any(attr in attributes for attr in IDENTIFIER_ATTRIBUTES):
            return attributes
        safe = dict(attributes)
        for attr in IDENTIFIER_ATTRIBUTES:
            value = safe.pop(attr, None)
            if value is None or str(value).strip() == "":
                continue
            clear = normalise(attr, str(value))
            safe[f"{attr}_hash"] = self.digest(attr, clear)
            safe[f"{attr}_masked"] = mask(attr, clear)
        return safe


def load_or_create_secret(path: Path) -> bytes:
    """The site secret kept in `path` (created once with 32 random bytes, mode 0600). Written
    whole to a temporary file, then linked into place: a process starting at the same moment
    finds either no file or the whole secret, never a part of it."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(SECRET_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < 16:
        raise SceneError(f"{path}: watchlist secret is shorter than 16 bytes")
    return secret


def site_secret(configured: SecretStr | None, path: Path) -> bytes:
    """The site secret: `configured` (the ``TWIN_WATCHLIST_SECRET`` setting) when given, else
    the one kept in `path` (created once, see `load_or_create_secret`)."""
    if configured is not None:
        return configured.get_secret_value().encode()
    return load_or_create_secret(path)


def secret_fingerprint(secret: bytes) -> str:
    """16 hex digits that name the site secret without revealing it: two sites whose keyed
    hashes match have the same fingerprint."""
    return hmac.new(secret, b"twin site secret fingerprint", hashlib.sha256).hexdigest()[:16]
