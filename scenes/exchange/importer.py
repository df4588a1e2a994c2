"""Import a signed bundle into a workspace, idempotently.

Nothing is touched until the whole bundle is verified (`twin.exchange.bundle.open_verified`:
signature, member list, every size and SHA-256) and every record of it parses as its type with
the count the manifest gives; a bundle of watchlist entries must also come from a site with
the same keyed-hash secret. Then, in chunks, what the workspace already holds (by id, in the
live store or the archive: `HistoryReader.known_ids`; watchlist entries by list and hash) is
left alone and the rest is stored: observations (older ones reach the archive through the
history mover), alerts with their evidence crops, watchlist entries. Imported observations
raise no alerts here (the exporting site's alerts travel as alerts), and an imported entity is
live only as recently as its observation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from scenes.exchange.records import (
    ALERTS,
    MEMBERS,
    OBSERVATIONS,
    WATCHLISTS,
    WatchlistRecord,
    crop_member,
)
from scenes.history.reader import HistoryReader
from scenes.identifiers import KeyedHasher, secret_fingerprint
from scenes.models import Alert, Observation
from scenes.rows import to_us
from scenes.store import LiveStore
from scenes.watchlist import Entry, WatchlistStore
from twin.exchange.bundle import Bundle, BundleError, open_verified
from twin.workspace import WorkspacePaths, open_workspace

CHUNK = 1000
M = TypeVar("M", bound=BaseModel)
TYPES: dict[str, type[BaseModel]] = {
    OBSERVATIONS: Observation, ALERTS: Alert, WATCHLISTS: WatchlistRecord,
}  # fmt: skip


@dataclass
class ImportReport:
    """Per kind, records stored and records the workspace held already; crops stored; the
    bundle's source, signer and range."""

    source: str
    signer: str
    since: str
    until: str
    added: dict[str, int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    crops: int = 0

    def summary(self) -> str:
        """One line: what was stored and what was there already."""
        kinds = [f"{self.added[k]} new / {self.known[k]} known {k}" for k in self.added]
        return (
            f"from '{self.source}' (key {self.signer}, {self.since} to {self.until}): "
            f"{', '.join(kinds) or 'nothing'}; {self.crops} crop(s)"
        )


def import_bundle(
    ws: Path, bundle_path: Path, *, trusted: Ed25519PublicKey, secret: bytes
) -> ImportReport:
    """Verify the bundle at `bundle_path` against the `trusted` key and import it into
    workspace `ws` (`secret`: its site secret). Raises `BundleError` (nothing stored) when
    anything about the bundle is wrong."""
    paths, _ = open_workspace(ws)
    with open_verified(bundle_path, trusted) as bundle:
        manifest = bundle.manifest
        if bundle.has(MEMBERS[WATCHLISTS]) and manifest.hash_key != secret_fingerprint(secret):
            raise BundleError(
                f"watchlist hashes were made with another site secret ({manifest.hash_key}, "
                f"here {secret_fingerprint(secret)})", file=str(bundle_path),
                hint="both sites need the same TWIN_WATCHLIST_SECRET",
            )  # fmt: skip
        for kind, model in TYPES.items():
            if bundle.has(MEMBERS[kind]):
                _check_records(bundle, kind, model)
        report = ImportReport(
            source=manifest.source, signer=manifest.signer,
            since=manifest.since.isoformat(), until=manifest.until.isoformat(),
        )  # fmt: skip
        _store(bundle, paths, secret, report)
    return report


def _check_records(bundle: Bundle, kind: str, model: type[BaseModel]) -> None:
    """Every record of `kind` parses as `model` and there are as many as the manifest says."""
    name = MEMBERS[kind]
    count = sum(1 for _ in _parsed(bundle, name, model))
    expected = bundle.manifest.counts()[name]
    if count != expected:
        raise BundleError(f"member {name}: {count} records, the manifest says {expected}")


def _parsed(bundle: Bundle, name: str, model: type[M]) -> Iterator[M]:
    for number, line in enumerate(bundle.records(name), start=1):
        try:
            record = model.model_validate_json(line)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise BundleError(f"member {name}, record {number}: {where}: {error['msg']}") from None
        if isinstance(record, Observation) and not record.id:
            raise BundleError(f"member {name}, record {number}: an observation without an id")
        yield record


def _store(bundle: Bundle, paths: WorkspacePaths, secret: bytes, report: ImportReport) -> None:
    store = LiveStore(paths.live)
    history = HistoryReader(store, paths.history)
    try:
        if bundle.has(MEMBERS[OBSERVATIONS]):
            _import_chunks(bundle, OBSERVATIONS, Observation, history, report,
                           lambda new: _save_observations(store, new))  # fmt: skip
        if bundle.has(MEMBERS[ALERTS]):
            _import_chunks(bundle, ALERTS, Alert, history, report,
                           lambda new: _save_alerts(store, bundle, new, report))  # fmt: skip
        if bundle.has(MEMBERS[WATCHLISTS]):
            _import_watchlists(bundle, paths, secret, report)
    finally:
        history.close()
        store.close()


def _import_chunks(
    bundle: Bundle,
    kind: str,
    model: type[Observation] | type[Alert],
    history: HistoryReader,
    report: ImportReport,
    save: Callable[[list], None],
) -> None:
    """Store the records of `kind` the workspace does not hold yet, `CHUNK` at a time."""
    added = known = 0
    records = _parsed(bundle, MEMBERS[kind], model)
    while chunk := list(islice(records, CHUNK)):
        times = [to_us(r.time if isinstance(r, Observation) else r.created_at) for r in chunk]
        held = history.known_ids(kind, [r.id or "" for r in chunk], min(times), max(times) + 1)
        new = [r for r in chunk if r.id not in held]
        if new:
            save(new)
        added, known = added + len(new), known + len(chunk) - len(new)
    report.added[kind], report.known[kind] = added, known


def _save_observations(store: LiveStore, observations: list[Observation]) -> None:
    """Store observations; their entities count as received when they were seen (never
    later than now), so old ones do not show as live."""
    newest = max(obs.time for obs in observations).timestamp()
    store.save(observations, [], received_s=min(time.time(), newest))


def _save_alerts(
    store: LiveStore, bundle: Bundle, alerts: list[Alert], report: ImportReport
) -> None:
    crops = {
        alert.id: bundle.read(crop_member(alert.id))
        for alert in alerts
        if bundle.has(crop_member(alert.id))
    }
    store.save([], alerts, received_s=time.time(), crops=crops)
    report.crops += len(crops)


def _import_watchlists(
    bundle: Bundle, paths: WorkspacePaths, secret: bytes, report: ImportReport
) -> None:
    records = list(_parsed(bundle, MEMBERS[WATCHLISTS], WatchlistRecord))
    lists = WatchlistStore(paths.watchlists, KeyedHasher(secret))
    try:
        added = 0
        for name in sorted({r.list for r in records}):
            entries = [Entry(**r.model_dump(exclude={"list"})) for r in records if r.list == name]
            added += lists.import_entries(name, entries)
    finally:
        lists.close()
    report.added[WATCHLISTS], report.known[WATCHLISTS] = added, len(records) - added
