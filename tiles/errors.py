"""The one root exception of the `tiles` package."""

from __future__ import annotations


class TilesError(Exception):
    """Root of every error raised by `tiles`; ``str(err)`` is one line."""
