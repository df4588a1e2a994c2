"""Bytes of a workspace's 3D Tiles by path: from the ``WS/tiles/`` folder, else from the
``WS/tiles.3tz`` archive (a ZIP, read with `zipfile`)."""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from twin.errors import WorkspaceError
from twin.workspace import WorkspacePaths


class TileSource:
    """Reads files of the tileset of workspace `paths`; names are relative to the root
    ``tileset.json``, ``/``-separated."""

    def __init__(self, paths: WorkspacePaths) -> None:
        self._archive: zipfile.ZipFile | None = None
        self._folder = paths.tiles
        if not paths.tileset.is_file():
            if not paths.tiles_archive.is_file():
                raise WorkspaceError(
                    f"workspace {paths.root} has no tiles (neither tiles/tileset.json nor "
                    "tiles.3tz)",
                    hint="rebuild it with 'twin build SRC -o WS'",
                )
            self._archive = zipfile.ZipFile(paths.tiles_archive)

    def read(self, name: str) -> bytes:
        """The bytes of tileset file `name`; `WorkspaceError` when it is missing."""
        clean = str(PurePosixPath(name))
        try:
            if self._archive is not None:
                return self._archive.read(clean)
            return (self._folder / clean).read_bytes()
        except (OSError, KeyError) as exc:
            raise WorkspaceError(f"tile file {clean} is missing from the workspace") from exc

    def close(self) -> None:
        """Close the archive (a folder needs nothing)."""
        if self._archive is not None:
            self._archive.close()
