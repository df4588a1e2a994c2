"""One tileset layer (buildings, terrain, a point cloud) drawn with level of detail: the tiles
`twin.viewer.lod.TileTree.select_within` wants are loaded (a few per update, so a window stays
responsive), given an actor each, and shown; tiles no longer wanted are hidden, and the least
recently shown are dropped once the cache holds more than `CACHE_FACTOR` budgets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.viewer.content import TileContent, read_content
from twin.viewer.lod import Selection, TileTree, ViewState
from twin.viewer.tileset import TileNode
from twin.viewer.tilesource import TileSource

CACHE_FACTOR = 3
FIRST_GUESS = 20_000
"""Size (triangles or points) assumed for a tile not loaded yet, before any is loaded."""
# Builds the actor of a loaded tile (its content's mesh styled for the layer).
MakeActor = Callable[[TileContent], Any]


@dataclass
class LodOptions:
    """How finely a layer is drawn: most screen-space error (px) before refining, and most
    triangles or points drawn (at full detail; `TileLayer.update` may be asked for less)."""

    max_error_px: float
    budget: int


class TileLayer:
    """Tiles of `roots` (read through `source`) in `plotter`'s renderer."""

    def __init__(
        self,
        name: str,
        roots: Sequence[TileNode],
        source: TileSource,
        plotter: Any,
        make_actor: MakeActor,
        options: LodOptions,
    ) -> None:
        self.name = name
        self.tree = TileTree(roots)
        self.source = source
        self.plotter = plotter
        self.make_actor = make_actor
        self.options = options
        self.visible = True
        self.opacity = 1.0
        self.contents: dict[str, TileContent] = {}
        self.actors: dict[str, Any] = {}
        self.shown: list[str] = []
        self._last_shown: dict[str, int] = {}
        self._tick = 0
        self._error_px = 0.0

    def _size(self, node: TileNode) -> int | None:
        content = self.contents.get(node.uri or "")
        return None if content is None else content.size

    def _load(self, node: TileNode) -> None:
        uri = node.uri or ""
        content = read_content(self.source.read(uri))
        actor = self.make_actor(content)
        actor.SetVisibility(False)
        actor.GetProperty().SetOpacity(self.opacity)
        self.plotter.renderer.AddActor(actor)
        self.contents[uri], self.actors[uri] = content, actor

    def _select(self, view: ViewState, detail: float) -> Selection:
        sizes = [c.size for c in self.contents.values()]
        guess = float(np.mean(sizes)) if sizes else FIRST_GUESS
        chosen, self._error_px = self.tree.select_within(
            view, self.options.max_error_px, self._size, self.options.budget * detail, guess,
            self._error_px / 2,
        )  # fmt: skip
        return chosen

    def update(self, view: ViewState, max_loads: int | None = None, detail: float = 1.0) -> int:
        """Choose, load (at most `max_loads` tiles, all when None) and show the tiles for
        `view` within `detail` (0–1) times the layer's budget; returns how many wanted tiles
        are still not loaded."""
        if not self.visible:
            return 0
        wanted = self._select(view, detail)
        todo = wanted.load if max_loads is None else wanted.load[:max_loads]
        for node in todo:
            self._load(node)
        if todo:
            wanted = self._select(view, detail)
        self._tick += 1
        shown = {node.uri for node in wanted.show if node.uri}
        for uri, actor in self.actors.items():
            actor.SetVisibility(uri in shown)
        for uri in shown:
            self._last_shown[uri] = self._tick
        self.shown = sorted(shown)
        self._evict()
        return len(wanted.load)

    def _evict(self) -> None:
        cached = sum(c.size for c in self.contents.values())
        limit = CACHE_FACTOR * self.options.budget
        for uri in sorted(self.contents, key=lambda u: self._last_shown.get(u, 0)):
            if cached <= limit:
                return
            if uri in self.shown:
                continue
            cached -= self.contents.pop(uri).size
            self.plotter.renderer.RemoveActor(self.actors.pop(uri))
            self._last_shown.pop(uri, None)

    def set_visible(self, visible: bool) -> None:
        """Show or hide the whole layer (hidden layers load nothing)."""
        self.visible = visible
        shown = set(self.shown)
        for uri, actor in self.actors.items():
            actor.SetVisibility(visible and uri in shown)

    def set_opacity(self, opacity: float) -> None:
        """Opacity 0 (clear) to 1 (opaque) of every tile."""
        self.opacity = opacity
        for actor in self.actors.values():
            actor.GetProperty().SetOpacity(opacity)

    def restyle(self) -> None:
        """Rebuild every tile's actor (after a colour change)."""
        for uri, content in self.contents.items():
            old = self.actors[uri]
            actor = self.make_actor(content)
            actor.SetVisibility(old.GetVisibility())
            actor.GetProperty().SetOpacity(self.opacity)
            self.plotter.renderer.RemoveActor(old)
            self.plotter.renderer.AddActor(actor)
            self.actors[uri] = actor

    def content_of(self, actor: Any) -> TileContent | None:
        """The content an actor of this layer draws."""
        for uri, candidate in self.actors.items():
            if candidate is actor:
                return self.contents[uri]
        return None

    def drawn(self) -> int:
        """Triangles or points drawn now."""
        if not self.visible:
            return 0
        return sum(self.contents[uri].size for uri in self.shown)
