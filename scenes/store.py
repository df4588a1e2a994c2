"""The live store: observations, live entities, alerts (with their evidence crops), the audit
log of watchlist hits and app settings, durable in SQLite (WAL).

Every write is committed with ``synchronous=FULL`` before the call returns, so what the server
has acknowledged survives a crash. Ingest writes (`LiveStore.save`) are group-committed: callers
that arrive while a commit is in flight share the next transaction, so concurrent requests share
one fsync. Reads use their own connection and never wait for a commit; WAL checkpoints run on a
background thread, off the commit path. Positions are lon/lat degrees; times are UTC, kept as ISO
text inside the JSON record and as epoch seconds for queries.

The public methods are the interface a PostgreSQL/PostGIS store would implement to replace it.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scenes.errors import AlertNotFound
from scenes.lifecycle import transition
from scenes.models import Alert, AlertStatus, Entity, Observation
from scenes.watchlist import Hit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    entity_id TEXT NOT NULL,
    lon REAL NOT NULL, lat REAL NOT NULL,
    time_s REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_time ON observations(time_s);
CREATE INDEX IF NOT EXISTS observations_lonlat ON observations(lon, lat);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    lon REAL NOT NULL, lat REAL NOT NULL,
    time_s REAL NOT NULL,
    received_s REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    unit TEXT,
    element_id TEXT,
    lon REAL NOT NULL, lat REAL NOT NULL,
    created_s REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created_s);
CREATE INDEX IF NOT EXISTS alerts_element ON alerts(element_id);
CREATE TABLE IF NOT EXISTS alert_crops (
    alert_id TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS app_settings (
    id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    parameters TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist_hits (
    rid INTEGER PRIMARY KEY, time_s REAL NOT NULL, list TEXT NOT NULL, hash TEXT NOT NULL,
    masked TEXT, observation_id TEXT NOT NULL, source TEXT NOT NULL,
    lon REAL NOT NULL, lat REAL NOT NULL, alert_id TEXT
);
CREATE INDEX IF NOT EXISTS watchlist_hits_time ON watchlist_hits(time_s);
"""
# Columns added after the first release: (table, column, declaration).
_ADDED_COLUMNS = (("alerts", "app", "TEXT"), ("alerts", "board", "TEXT"))
_HIT_FIELDS = ("time_s", "list", "hash", "masked", "observation_id", "source", "lon", "lat",
               "alert_id")  # fmt: skip
CHECKPOINT_S = 1.0  # how often the background thread copies the WAL into the database, s
log = logging.getLogger("twin.scenes")


@dataclass(frozen=True)
class BBox:
    """A lon/lat box in degrees."""

    minlon: float
    minlat: float
    maxlon: float
    maxlat: float


@dataclass(frozen=True)
class EntityRecord:
    """An entity as stored: the model and its JSON text (reused for the live feed)."""

    entity: Entity
    json: str


@dataclass
class _Write:
    """One `LiveStore.save` call's rows, waiting for the group commit that makes them durable."""

    observations: list[tuple[object, ...]]
    entities: list[tuple[object, ...]]
    alerts: list[tuple[object, ...]]
    crops: list[tuple[object, ...]]
    hits: list[tuple[object, ...]]
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to list; None means any."""

    status: AlertStatus | None = None
    unit: str | None = None
    rule: str | None = None
    since: datetime | None = None
    app: str | None = None
    board: str | None = None


class LiveStore:
    """Observations, entities and alerts in one SQLite file. Thread-safe: one connection (and
    lock) writes, one reads, and a background thread checkpoints. ``saves`` counts `save` calls
    and ``commits`` the transactions that stored them (fsyncs of the WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._connect()
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoints
        self._db.executescript(_SCHEMA)
        for table, column, declaration in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._read_lock = threading.Lock()
        self._reader = self._connect()
        self._queue_lock = threading.Lock()
        self._queued: list[_Write] = []
        self.saves = 0
        self.commits = 0
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="live-store-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join()
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    def _checkpoints(self) -> None:
        """Copy the WAL back into the database every CHECKPOINT_S seconds (PASSIVE: never
        blocks the writer), so no commit pays for it; on a connection of its own."""
        db = self._connect()
        try:
            while not self._closing.wait(CHECKPOINT_S):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. disk full: try again next time
                    log.warning("live store checkpoint failed: %s", exc)
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._locked_transaction() as db:
            yield db

    @contextmanager
    def _locked_transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction on the writing connection; the caller holds ``_lock``."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self.commits += 1

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    # -- writes --------------------------------------------------------------------------------

    def save(
        self,
        observations: Sequence[Observation],
        alerts: Sequence[Alert],
        *,
        received_s: float,
        crops: Mapping[str, bytes] | None = None,
        hits: Sequence[Hit] = (),
    ) -> list[EntityRecord]:
        """Store observations (with ids), their entities, new alerts, their evidence `crops`
        (alert id → JPEG bytes) and watchlist `hits` in one transaction, committed before
        returning (possibly together with other threads' saves: group commit).

        Returns the entities updated, one per observation in order. An observation whose id is
        already stored is kept as it was (an idempotent resend). Records are serialised before
        any lock is taken; each table gets one ``executemany`` per commit."""
        entities = [Entity.from_observation(obs) for obs in observations]
        records = [EntityRecord(ent, ent.model_dump_json()) for ent in entities]
        write = _Write([], [], [], [], [])
        for obs, rec in zip(observations, records, strict=True):
            t = obs.time.timestamp()
            write.observations.append(
                (obs.id, obs.entity_id, obs.lon, obs.lat, t, obs.model_dump_json())
            )
            ent = rec.entity
            write.entities.append((ent.id, ent.lon, ent.lat, t, received_s, rec.json))
        write.alerts = [
            (
                alert.id, alert.rule, alert.status.value, alert.unit, alert.element_id,
                alert.lon, alert.lat, alert.created_at.timestamp(), alert.model_dump_json(),
                alert.app, alert.board,
            )
            for alert in alerts
        ]  # fmt: skip
        write.crops = [(alert_id, "image/jpeg", data) for alert_id, data in (crops or {}).items()]
        write.hits = [tuple(getattr(hit, name) for name in _HIT_FIELDS) for hit in hits]
        self._group_commit(write)
        return records

    def _group_commit(self, write: _Write) -> None:
        """Queue `write`, then either find it committed by the thread ahead (which took every
        write queued meanwhile) or commit the queue itself."""
        with self._queue_lock:
            self._queued.append(write)
        with self._lock:
            if not write.done:
                with self._queue_lock:
                    group, self._queued = self._queued, []
                self._commit_group(group)
                self.saves += len(group)
        if write.error is not None:
            raise write.error

    def _commit_group(self, group: Sequence[_Write]) -> None:
        """Commit `group` in one transaction and mark each write done, with its error if it
        failed. A failed group is retried one write at a time, so one bad write fails only its
        own caller. The caller holds ``_lock``."""
        try:
            self._write_group(group)
        except sqlite3.Error as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                for each in group:
                    self._commit_group([each])
        except Exception as exc:
            for each in group:
                each.error = exc
        finally:
            for each in group:
                each.done = True

    def _write_group(self, group: Sequence[_Write]) -> None:
        """Insert the rows of `group` in one transaction; the caller holds ``_lock``."""

        def rows(table: str) -> list[tuple[object, ...]]:
            return list(itertools.chain.from_iterable(getattr(w, table) for w in group))

        with self._locked_transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO observations (id, entity_id, lon, lat, time_s, record)"
                " VALUES (?,?,?,?,?,?)",
                rows("observations"),
            )
            db.executemany(
                "INSERT INTO entities (id, lon, lat, time_s, received_s, record)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET lon=excluded.lon,"
                " lat=excluded.lat, time_s=excluded.time_s, received_s=excluded.received_s,"
                " record=excluded.record WHERE excluded.time_s >= entities.time_s",
                rows("entities"),
            )
            db.executemany(
                "INSERT INTO alerts (id, rule, status, unit, element_id, lon, lat, created_s,"
                " record, app, board) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows("alerts"),
            )
            db.executemany(
                "INSERT OR REPLACE INTO alert_crops (alert_id, media_type, data) VALUES (?,?,?)",
                rows("crops"),
            )
            db.executemany(
                f"INSERT INTO watchlist_hits ({', '.join(_HIT_FIELDS)})"
                f" VALUES ({','.join('?' * len(_HIT_FIELDS))})",
                rows("hits"),
            )

    def transition(self, alert_id: str, status: AlertStatus, *, by: str) -> Alert:
        """Move an alert to `status` (see scenes.lifecycle); raise AlertNotFound /
        AlertTransitionError. The change is committed before returning."""
        with self._transaction() as db:
            row = db.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise AlertNotFound(f"no alert '{alert_id}'")
            changed = transition(Alert.model_validate_json(row[0]), status, by=by)
            db.execute(
                "UPDATE alerts SET status = ?, record = ? WHERE id = ?",
                (changed.status.value, changed.model_dump_json(), alert_id),
            )
        return changed

    # -- reads ---------------------------------------------------------------------------------

    def get_alert(self, alert_id: str) -> Alert:
        rows = self._query("SELECT record FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            raise AlertNotFound(f"no alert '{alert_id}'")
        return Alert.model_validate_json(str(rows[0][0]))

    def alert_crop(self, alert_id: str) -> bytes | None:
        """The evidence crop (JPEG bytes) kept with alert `alert_id`, or None."""
        rows = self._query("SELECT data FROM alert_crops WHERE alert_id = ?", (alert_id,))
        data = rows[0][0] if rows else None
        return data if isinstance(data, bytes) else None

    def alerts(
        self, where: AlertFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[Alert], int]:
        """One page of alerts, newest first, and the total count that match."""
        where = where or AlertFilter()
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (
            ("status", where.status), ("unit", where.unit), ("rule", where.rule),
            ("app", where.app), ("board", where.board),
        ):  # fmt: skip
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value.value if isinstance(value, AlertStatus) else value)
        if where.since is not None:
            clauses.append("created_s >= ?")
            args.append(where.since.timestamp())
        clause = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        total = int(str(self._query(f"SELECT COUNT(*) FROM alerts{clause}", args)[0][0]))
        rows = self._query(
            f"SELECT record FROM alerts{clause} ORDER BY created_s DESC, id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [Alert.model_validate_json(str(r[0])) for r in rows], total

    def open_alerts(self) -> list[Alert]:
        """Alerts not yet closed (resolved or false alarm), newest first."""
        rows = self._query(
            "SELECT record FROM alerts WHERE status NOT IN (?, ?) ORDER BY created_s DESC",
            (AlertStatus.resolved.value, AlertStatus.false_alarm.value),
        )
        return [Alert.model_validate_json(str(r[0])) for r in rows]

    def alerts_since(self, since_s: float) -> list[Alert]:
        """Alerts created at or after epoch seconds `since_s` (to seed rule cooldowns)."""
        rows = self._query("SELECT record FROM alerts WHERE created_s >= ?", (since_s,))
        return [Alert.model_validate_json(str(r[0])) for r in rows]

    def alerts_in(
        self, box: BBox, *, element_id: str | None = None, limit: int = 20
    ) -> list[Alert]:
        """Alerts inside `box` or raised at `element_id`, newest first."""
        rows = self._query(
            "SELECT record FROM alerts WHERE (lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?)"
            " OR element_id = ? ORDER BY created_s DESC LIMIT ?",
            (box.minlon, box.maxlon, box.minlat, box.maxlat, element_id, limit),
        )
        return [Alert.model_validate_json(str(r[0])) for r in rows]

    def observations_in(self, box: BBox, *, limit: int = 20) -> list[Observation]:
        """Observations inside `box`, newest first."""
        rows = self._query(
            "SELECT record FROM observations WHERE lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?"
            " ORDER BY time_s DESC LIMIT ?",
            (box.minlon, box.maxlon, box.minlat, box.maxlat, limit),
        )
        return [Observation.model_validate_json(str(r[0])) for r in rows]

    def observations_by_id(self, ids: Sequence[str]) -> dict[str, Observation]:
        """The stored observations among `ids` (a few dozen at most), by id; unknown ids are
        left out."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT id, record FROM observations WHERE id IN ({marks})", ids)
        return {str(r[0]): Observation.model_validate_json(str(r[1])) for r in rows}

    def watchlist_hits(self, limit: int = 100) -> list[Hit]:
        """The audit log of watchlist hits, newest first."""
        rows = self._query(
            f"SELECT {', '.join(_HIT_FIELDS)} FROM watchlist_hits"
            " ORDER BY time_s DESC, rid DESC LIMIT ?",
            (limit,),
        )
        return [Hit.model_validate(dict(zip(_HIT_FIELDS, row, strict=True))) for row in rows]

    def app_settings(self) -> dict[str, tuple[bool, dict[str, Any]]]:
        """Saved app settings: app id → (enabled, parameter overrides)."""
        rows = self._query("SELECT id, enabled, parameters FROM app_settings")
        return {str(r[0]): (bool(r[1]), json.loads(str(r[2]))) for r in rows}

    def save_app_settings(self, app_id: str, enabled: bool, parameters: dict[str, Any]) -> None:
        """Keep an app's settings (committed before returning)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO app_settings (id, enabled, parameters) VALUES (?,?,?) ON CONFLICT(id)"
                " DO UPDATE SET enabled=excluded.enabled, parameters=excluded.parameters",
                (app_id, int(enabled), json.dumps(parameters)),
            )

    def count_observations(self) -> int:
        return int(str(self._query("SELECT COUNT(*) FROM observations")[0][0]))

    def entities(self, *, received_since_s: float, box: BBox | None = None) -> list[Entity]:
        """Entities last updated at or after epoch seconds `received_since_s` (in `box`)."""
        sql = "SELECT record FROM entities WHERE received_s >= ?"
        args: list[object] = [received_since_s]
        if box is not None:
            sql += " AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?"
            args += [box.minlon, box.maxlon, box.minlat, box.maxlat]
        rows = self._query(sql + " ORDER BY id", args)
        return [Entity.model_validate_json(str(r[0])) for r in rows]
