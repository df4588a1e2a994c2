"""The one root exception of the `tiles` package and the subclasses callers catch."""

from __future__ import annotations


class TilesError(Exception):
    """Root of every error raised by `tiles`; ``str(err)`` is one line."""


class MeshError(TilesError):
    """A mesh handed to the writer cannot be written; names the feature at fault."""

    def __init__(self, message: str, *, element_id: str | None = None) -> None:
        self.element_id = element_id
        super().__init__(f"{element_id}: {message}" if element_id else message)


class GlbError(TilesError):
    """A glb file cannot be read back (bad header, chunk or JSON); names the file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
