"""Opaque paging cursors: a position (microseconds since the epoch, UTC, and an id) in a
stable order, as URL-safe base64 text."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from scenes.errors import SceneError


class CursorError(SceneError):
    """A cursor that this server did not hand out."""


@dataclass(frozen=True, order=True)
class Cursor:
    """A position after (ascending order) or before (descending) which a page starts."""

    time_us: int
    id: str

    def encode(self) -> str:
        text = f"{self.time_us}:{self.id}".encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor `value` stands for; `CursorError` when it is not one."""
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            time_text, sep, ident = text.partition(":")
            if not sep or not ident or len(ident) > 64:
                raise ValueError(value)
            return cls(int(time_text), ident)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise CursorError("not a cursor of this server (pass 'next' as it came)") from None
