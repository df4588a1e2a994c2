"""Export a workspace's records of a time range to a signed bundle.

Observations (by their time) and alerts (by their creation) in [since, until) are read through
`scenes.history.HistoryReader`, so the archive counts as much as the live store; each alert's
evidence crop goes with it. Watchlist entries go whole (they are the lists now, not a history),
as keyed hashes and masked forms: the importing site must share the site secret
(``TWIN_WATCHLIST_SECRET``) for them to match, which the manifest's ``hash_key`` lets it check.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scenes.exchange.records import (
    ALERTS,
    MEMBERS,
    OBSERVATIONS,
    WATCHLISTS,
    WatchlistRecord,
    crop_member,
)
from scenes.history.cursor import Cursor
from scenes.history.reader import AlertQuery, HistoryReader, ObservationQuery, Page
from scenes.identifiers import WATCHLISTS as LISTS
from scenes.identifiers import KeyedHasher, secret_fingerprint
from scenes.rows import to_us
from scenes.store import LiveStore
from scenes.watchlist import WatchlistStore
from twin.exchange.bundle import Manifest, Member, NdjsonWriter, member_of, write_bundle
from twin.exchange.keys import fingerprint
from twin.workspace import WorkspacePaths, open_workspace

PAGE = 10_000


@dataclass(frozen=True)
class ExportRequest:
    """What to export: records in [since, until) (UTC) of the kinds in `what`."""

    since: datetime
    until: datetime
    what: Collection[str]


def export_bundle(
    ws: Path, out: Path, request: ExportRequest, *, key: Ed25519PrivateKey, secret: bytes
) -> Manifest:
    """Write the bundle of `request` from workspace `ws` to `out`, signed with `key`; `secret`
    is the site secret of the workspace's keyed hashes. Returns the manifest written."""
    paths, ws_manifest = open_workspace(ws)
    store = LiveStore(paths.live, checkpoints=False)
    history = HistoryReader(store, paths.history)
    try:
        with tempfile.TemporaryDirectory(prefix=".twinb-", dir=out.parent) as tmp:
            folder = Path(tmp)
            files: dict[str, Path] = {}
            members: list[Member] = []

            def add(name: str, path: Path, records: int) -> None:
                files[name] = path
                members.append(member_of(name, path, records))

            span = (to_us(request.since), to_us(request.until))
            if OBSERVATIONS in request.what:
                add(MEMBERS[OBSERVATIONS], *_observations(history, span, folder))
            if ALERTS in request.what:
                path, count, crops = _alerts(history, store, span, folder)
                add(MEMBERS[ALERTS], path, count)
                for name, crop in crops:
                    add(name, crop, 1)
            if WATCHLISTS in request.what:
                add(MEMBERS[WATCHLISTS], *_watchlists(paths, secret, folder))
            manifest = Manifest(
                created_at=datetime.now(UTC), source=ws_manifest.name, since=request.since,
                until=request.until, what=sorted(request.what),
                signer=fingerprint(key.public_key()), hash_key=secret_fingerprint(secret),
                members=members,
            )  # fmt: skip
            write_bundle(out, manifest, files, key)
    finally:
        history.close()
        store.close()
    return manifest


def _paged(ask: Callable[[Cursor | None], Page]) -> Iterator[Any]:
    """Every item of a paged history answer: `ask(cursor)` gives the page after `cursor`."""
    cursor = None
    while True:
        page = ask(cursor)
        yield from page.items
        if page.next is None:
            return
        cursor = page.next


def _observations(history: HistoryReader, span: tuple[int, int], folder: Path) -> tuple[Path, int]:
    path = folder / MEMBERS[OBSERVATIONS]
    writer = NdjsonWriter(path)
    query = ObservationQuery(*span)
    try:
        for obs in _paged(lambda after: history.observations(query, limit=PAGE, after=after)):
            writer.write(obs.model_dump_json())
    finally:
        writer.close()
    return path, writer.records


def _alerts(
    history: HistoryReader, store: LiveStore, span: tuple[int, int], folder: Path
) -> tuple[Path, int, list[tuple[str, Path]]]:
    """The alerts member, its count, and each evidence crop as (member name, file)."""
    path = folder / MEMBERS[ALERTS]
    writer = NdjsonWriter(path)
    crops: list[tuple[str, Path]] = []
    (folder / "crops").mkdir()
    query = AlertQuery(*span)
    try:
        for alert in _paged(lambda before: history.alerts(query, limit=PAGE, before=before)):
            writer.write(alert.model_dump_json())
            image = store.alert_crop(alert.id) if alert.evidence else None
            if image is not None:
                name = crop_member(alert.id)
                (folder / name).write_bytes(image)
                crops.append((name, folder / name))
    finally:
        writer.close()
    return path, writer.records, crops


def _watchlists(paths: WorkspacePaths, secret: bytes, folder: Path) -> tuple[Path, int]:
    path = folder / MEMBERS[WATCHLISTS]
    writer = NdjsonWriter(path)
    lists = WatchlistStore(paths.watchlists, KeyedHasher(secret))
    try:
        for name in LISTS:
            for entry in lists.entries(name):
                writer.write(WatchlistRecord(list=name, **entry.model_dump()).model_dump_json())
    finally:
        lists.close()
        writer.close()
    return path, writer.records
