"""What the app serves, opened once at start-up: workspace, catalog, live service, bus, tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scenes.engine import Engine
from scenes.live import LiveService
from scenes.rules import RuleSet, load_rules
from scenes.store import LiveStore
from server.auth import TokenTable
from server.bus import LocalBus
from server.files import TileFiles
from twin.catalog import Catalog
from twin.settings import TwinSettings
from twin.workspace import Manifest, WorkspacePaths, open_workspace

log = logging.getLogger("twin.server")


@dataclass
class TwinState:
    """Everything a request handler needs, shared by all requests."""

    settings: TwinSettings
    paths: WorkspacePaths
    manifest: Manifest
    catalog: Catalog
    live: LiveService
    bus: LocalBus
    tokens: TokenTable
    tiles: TileFiles

    @classmethod
    def open(cls, ws: Path, settings: TwinSettings) -> TwinState:
        """Open workspace `ws` (raise WorkspaceError when it is not one) and its rules."""
        paths, manifest = open_workspace(ws)
        catalog = Catalog(paths.catalog)
        rules_file = settings.rules or paths.rules
        rules = load_rules(rules_file) if settings.rules or rules_file.exists() else RuleSet()
        log.info("%d rule(s) from %s", len(rules.rules), rules_file)
        engine = Engine(rules, catalog)
        store = LiveStore(paths.live)
        return cls(
            settings=settings,
            paths=paths,
            manifest=manifest,
            catalog=catalog,
            live=LiveService(catalog, store, engine, ttl_s=settings.live_ttl_s),
            bus=LocalBus(),
            tokens=TokenTable(settings),
            tiles=TileFiles(paths.tiles),
        )

    def close(self) -> None:
        self.live.store.close()
