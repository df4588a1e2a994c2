"""Watchlists (suspended licences by plate, wanted persons by identity token) in SQLite, and the
hits an ingested batch makes on them. Entries and hits hold only keyed hashes and masked forms —
never a clear identifier. Membership is kept in memory, so an update takes effect on the next
observation, without a restart. Thread-safe.

The audit log of hits is written by the live store (`scenes.store.LiveStore.save`), in the
same transaction as the observations and alerts they belong to: one fsync per ingest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from scenes.db import DB_ERRORS, begin_write, connect, create_schema
from scenes.errors import WatchlistNotFound, WatchlistValueError
from scenes.identifiers import WATCHLISTS, KeyedHasher, mask, normalise
from scenes.models import Alert, Observation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watchlist_entries (
    list TEXT NOT NULL, hash TEXT NOT NULL, masked TEXT NOT NULL, reason TEXT NOT NULL,
    added_s DOUBLE PRECISION NOT NULL, added_by TEXT NOT NULL, PRIMARY KEY (list, hash)
);
CREATE TABLE IF NOT EXISTS watchlist_state (
    one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL
);
INSERT INTO watchlist_state (one, version) VALUES (1, 0) ON CONFLICT (one) DO NOTHING
"""
REFRESH_S = 1.0
SCHEMA_LOCK = 8_151_053  # PostgreSQL advisory lock key of this schema


class Entry(BaseModel):
    """A watchlist entry as it is stored: keyed hash, masked form, reason, who added it."""

    hash: str
    masked: str
    reason: str
    added_s: float
    added_by: str


class Hit(BaseModel):
    """One audit-log row: an observation whose identifier is on a list (and its alert)."""

    time_s: float
    list: str
    hash: str
    masked: str | None
    observation_id: str
    source: str
    lon: float
    lat: float
    alert_id: str | None


def _check_list(name: str) -> str:
    if name not in WATCHLISTS:
        known = ", ".join(WATCHLISTS)
        raise WatchlistNotFound(f"no watchlist '{name}' (known: {known})")
    return WATCHLISTS[name]


class WatchlistStore:
    """The lists in one database (a SQLite file, or PostgreSQL at a URL), committed per call;
    every change bumps a version that other processes look at to reload."""

    def __init__(self, target: Path | str, hasher: KeyedHasher) -> None:
        self.hasher = hasher
        self._lock = threading.Lock()
        self._db = connect(target)
        create_schema(self._db, _SCHEMA, lock_key=SCHEMA_LOCK)
        self._version = self._read_version()
        self._checked = time.monotonic()
        self._members = self._load()

    def _read_version(self) -> int:
        return int(self._db.execute("SELECT version FROM watchlist_state").fetchone()[0])

    def _load(self) -> dict[str, dict[str, str]]:
        """Every list's members: keyed hash → reason."""
        members: dict[str, dict[str, str]] = {name: {} for name in WATCHLISTS}
        for name, digest, reason in self._db.execute(
            "SELECT list, hash, reason FROM watchlist_entries"
        ):
            members.setdefault(name, {})[digest] = reason
        return members

    def _refresh(self) -> None:
        """Reload the members when another process changed them (another server, `twin
        import`), looking at most once every `REFRESH_S` seconds."""
        now = time.monotonic()
        if now < self._checked + REFRESH_S:
            return
        with self._lock:
            self._checked = now
            version = self._read_version()
            if version != self._version:
                self._version, self._members = version, self._load()

    def _change(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        """Run `sql` for each of `rows` and bump the version, in one transaction; how many rows
        changed. The caller holds ``_lock``."""
        begin_write(self._db)
        try:
            changed = sum(self._db.execute(sql, row).rowcount for row in rows)
            self._db.execute("UPDATE watchlist_state SET version = version + 1")
            self._version += 1  # our own change: no reload needed
        except DB_ERRORS:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return changed

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _digest(self, name: str, value: str) -> tuple[str, str]:
        attribute = _check_list(name)
        clear = normalise(attribute, value)
        if not clear:
            raise WatchlistValueError(f"watchlist '{name}': empty value")
        return self.hasher.digest(attribute, clear), mask(attribute, clear)

    def add(self, name: str, value: str, *, reason: str, by: str) -> Entry:
        """Put `value` (clear, normalised here) on list `name`; re-adding updates the reason."""
        digest, masked = self._digest(name, value)
        entry = Entry(hash=digest, masked=masked, reason=reason, added_s=time.time(), added_by=by)
        with self._lock:
            self._change(
                "INSERT INTO watchlist_entries VALUES (?,?,?,?,?,?) ON CONFLICT(list, hash)"
                " DO UPDATE SET reason=excluded.reason, added_s=excluded.added_s,"
                " added_by=excluded.added_by",
                [(name, digest, masked, reason, entry.added_s, by)],
            )
            self._members[name][digest] = reason
        return entry

    def remove(self, name: str, value: str) -> bool:
        """Take `value` off list `name`; False when it was not on it."""
        digest, _ = self._digest(name, value)
        with self._lock:
            removed = self._change(
                "DELETE FROM watchlist_entries WHERE list = ? AND hash = ?", [(name, digest)]
            )
            self._members[name].pop(digest, None)
        return removed > 0

    def entries(self, name: str) -> list[Entry]:
        """The entries of list `name`, newest first."""
        _check_list(name)
        with self._lock:
            rows = self._db.execute(
                "SELECT hash, masked, reason, added_s, added_by FROM watchlist_entries"
                " WHERE list = ? ORDER BY added_s DESC",
                (name,),
            ).fetchall()
        return [Entry(hash=h, masked=m, reason=r, added_s=s, added_by=b) for h, m, r, s, b in rows]

    def import_entries(self, name: str, entries: Sequence[Entry]) -> int:
        """Put entries made elsewhere (keyed hashes with the same site secret) on list `name`;
        an entry already there keeps its own reason. Returns how many were new."""
        _check_list(name)
        rows = [(name, e.hash, e.masked, e.reason, e.added_s, e.added_by) for e in entries]
        with self._lock:
            added = self._change(
                "INSERT INTO watchlist_entries VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows
            )
            for entry in entries:
                self._members[name].setdefault(entry.hash, entry.reason)
        return added

    def reason(self, list_name: str, digest: str) -> str | None:
        """The entry's reason when `digest` is on `list_name`, else None (`Membership`);
        entries another process added are seen within `REFRESH_S` seconds."""
        self._refresh()
        return self._members.get(list_name, {}).get(digest)

    def hits_of(self, observations: Sequence[Observation], alerts: Sequence[Alert]) -> list[Hit]:
        """An audit row for every observation whose identifier hash is on a list, with the
        alert it raised (if any), for the live store to keep."""
        raised: dict[tuple[str | None, str | None], str] = {}
        for alert in alerts:
            listed = alert.evidence.details.get("watchlist") if alert.evidence else None
            for obs_id in alert.observation_ids:
                raised[(obs_id, listed)] = alert.id
        hits = []
        for obs in observations:
            for name, attribute in WATCHLISTS.items():
                digest = obs.attributes.get(f"{attribute}_hash")
                if isinstance(digest, str) and self.reason(name, digest) is not None:
                    masked = obs.attributes.get(f"{attribute}_masked")
                    hits.append(Hit(
                        time_s=obs.time.timestamp(), list=name, hash=digest,
                        masked=masked if isinstance(masked, str) else None,
                        observation_id=obs.id or "", source=obs.source, lon=obs.lon, lat=obs.lat,
                        alert_id=raised.get((obs.id, name)),
                    ))  # fmt: skip
        return hits
