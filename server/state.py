"""What the app serves, opened once at start-up: workspace, catalog, live service, bus, tokens,
camera rig, frame store, evidence crops and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scenes.apps import shipped_apps
from scenes.engine import Engine
from scenes.history import HistoryPolicy, HistoryReader
from scenes.history.process import MoverProcess
from scenes.identifiers import KeyedHasher, site_secret
from scenes.live import LiveService, TimeBounds
from scenes.rulefile import load_rules
from scenes.rules import RuleSet
from scenes.store import LiveStore
from scenes.watchlist import WatchlistStore
from server.archive import ArchiveError, ArchiveTiles
from server.auth import TokenTable
from server.bus import LocalBus
from server.crops import FrameCrops
from server.feeds import FeedTracker
from server.files import TileFiles, TileSource
from server.frames import MIB, FrameStore
from server.metrics import Metrics
from server.redisbus import RedisBus
from server.rules import SharedRules
from server.settings import TwinSettings
from server.webhooks import WebhookDispatcher, open_dispatcher
from twin.cameras.rig import CameraRig
from twin.catalog import Catalog
from twin.catalog_pg import PgCatalog, load_catalog
from twin.errors import WorkspaceError
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
    bus: LocalBus | RedisBus
    tokens: TokenTable
    tiles: TileSource
    history: HistoryReader
    mover: MoverProcess
    feeds: FeedTracker
    cameras: CameraRig
    """The workspace's cameras and live drones (meshes load on the first ray)."""
    frames: FrameStore
    """Recent frames pushed by cameras and drones."""
    crops: FrameCrops
    """Evidence crops for alerts, from `frames`."""
    metrics: Metrics
    """The server's counters (the app registers its scrape-time collector)."""
    webhooks: WebhookDispatcher | None = None
    rules: SharedRules | None = None

    @classmethod
    def open(cls, ws: Path, settings: TwinSettings) -> TwinState:
        """Open workspace `ws` (raise WorkspaceError when it is not one) and its rules."""
        paths, manifest = open_workspace(ws)
        database = settings.database_url
        catalog = _catalog(paths, database)
        rules_file = settings.rules or paths.rules
        rules = load_rules(rules_file) if settings.rules or rules_file.exists() else RuleSet()
        log.info("%d rule(s) from %s", len(rules.rules), rules_file)
        hasher = KeyedHasher(site_secret(settings.watchlist_secret, paths.secret))
        watchlists = WatchlistStore(database or paths.watchlists, hasher)
        engine = Engine(rules, catalog, watchlists=watchlists)
        store = LiveStore(database or paths.live)
        history = HistoryReader(store, paths.history)
        bounds = TimeBounds(settings.max_observation_age_s, settings.max_clock_skew_s)
        live = LiveService(catalog, store, engine, ttl_s=settings.live_ttl_s,
                           apps=shipped_apps(), hasher=hasher, watchlists=watchlists,
                           history=history, time_bounds=bounds)  # fmt: skip
        mover = MoverProcess(paths.root, history_policy(settings), database or paths.live)
        bus: LocalBus | RedisBus = LocalBus()
        if settings.bus_url:
            bus = RedisBus(settings.bus_url, replay=settings.bus_replay)
        cameras = CameraRig(
            paths.root, catalog, drone_ttl_s=settings.drone_ttl_s, max_drones=settings.max_drones
        )  # reads WS/cameras.json: fails here
        frames = FrameStore(
            int(settings.frame_history_mib * MIB),
            int(settings.frame_newest_mib * MIB),
            settings.frame_ttl_s,
        )
        metrics = Metrics()
        live.on_save = metrics.commit.observe
        state = cls(
            settings=settings,
            paths=paths,
            manifest=manifest,
            catalog=catalog,
            live=live,
            bus=bus,
            tokens=TokenTable(settings),
            tiles=_tile_source(paths),
            history=history,
            mover=mover,
            feeds=FeedTracker(live.sources, settings.feed_stale_s),
            cameras=cameras,
            frames=frames,
            crops=FrameCrops(frames, catalog),
            metrics=metrics,
            webhooks=open_dispatcher(settings, paths.root),
        )
        if settings.bus_url:
            state.rules = SharedRules(settings.bus_url, live, bus, state.crops)
        return state

    async def start(self) -> None:
        """Start what runs beside the requests: the history mover, the bus, the rules."""
        self.mover.start()
        if isinstance(self.bus, RedisBus):
            await self.bus.start()
        if self.rules is not None:
            self.rules.start()

    async def stop(self) -> None:
        if self.rules is not None:
            await self.rules.stop()
        if isinstance(self.bus, RedisBus):
            await self.bus.stop()

    def close(self) -> None:
        self.mover.stop()
        self.history.close()
        store = self.live.store
        log.info("live store: %d ingest write(s) in %d commit(s)", store.saves, store.commits)
        ckpt, moved = store.checkpoints, self.mover.status
        log.info(
            "live store WAL: %d passive checkpoint(s), %d restart(s) (longest ingest wait"
            " %.1f ms, %d put off by readers); history: %d observation(s) and %d alert(s)"
            " archived, %d merge(s), longest delete %.1f ms",
            ckpt.passive, ckpt.restarts, ckpt.longest_hold_ms, ckpt.busy,
            moved.observations_moved, moved.alerts_moved, moved.compactions,
            moved.longest_delete_ms,
        )  # fmt: skip
        store.close()
        if self.live.watchlists is not None:
            self.live.watchlists.close()


def history_policy(settings: TwinSettings) -> HistoryPolicy:
    """The history settings (minutes, days, GB) as the mover's policy (seconds, bytes)."""
    day = 86_400.0
    budget = settings.disk_budget_gb
    return HistoryPolicy(
        hot_s=settings.hot_minutes * 60.0,
        entity_ttl_s=settings.entity_ttl_s,
        retention_s=settings.retention_days * day,
        alert_retention_s=settings.alert_retention_days * day,
        disk_budget_bytes=None if budget is None else int(budget * 1e9),
        interval_s=settings.history_interval_s,
    )


def _catalog(paths: WorkspacePaths, database: str | None) -> Catalog:
    """The workspace's catalog: its SQLite file, or that file loaded into PostgreSQL once."""
    if database is None:
        return Catalog(paths.catalog)
    load_catalog(paths.catalog, database)
    return PgCatalog(database, paths.catalog)


def _tile_source(paths: WorkspacePaths) -> TileSource:
    """The tiles folder when it holds tileset.json, else the tiles.3tz archive."""
    if paths.tileset.is_file() or not paths.tiles_archive.is_file():
        return TileFiles(paths.tiles)
    try:
        return ArchiveTiles(paths.tiles_archive)
    except (ArchiveError, OSError) as exc:
        raise WorkspaceError(f"cannot serve {paths.tiles_archive}: {exc}") from exc
