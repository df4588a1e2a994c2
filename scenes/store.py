"""The live store: observations of the hot window, live entities, alerts (with their evidence
crops), the audit log of watchlist hits, app settings and the history archive's manifest,
durable in SQLite (WAL).

Every write is committed with ``synchronous=FULL`` before the call returns, so what the server
has acknowledged survives a crash. Ingest writes (`LiveStore.save`) are group-committed: callers
that arrive while a commit is in flight share the next transaction, so concurrent requests share
one fsync. Reads use their own connection and never wait for a commit. WAL checkpoints run on a
background thread, off the commit path; when the WAL passes `WAL_LIMIT_BYTES` (commits back to
back never leave a passive checkpoint a gap to finish in) the thread holds ingest for the few
milliseconds a restarting checkpoint of what is left takes, so the WAL stays bounded under any
load. The schema is versioned (`scenes.migrations`). Positions are lon/lat degrees; times are
UTC, kept as integer microseconds (observations) or epoch seconds (the rest) for queries.

Observations older than the hot window leave for the archive (`scenes.history`), which uses the
store's transactions, reader and `connect` for its own SQL.

The public methods are the interface a PostgreSQL/PostGIS store would implement to replace it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scenes.db import (
    DB_ERRORS,
    RETRYABLE,
    SQLITE,
    Connection,
    begin_read,
    begin_write,
    is_database_url,
)
from scenes.db import connect as connect_db
from scenes.errors import AlertNotFound
from scenes.incidents import seen_at
from scenes.lifecycle import transition
from scenes.migrations import migrate
from scenes.models import Alert, AlertStatus, Entity, Observation
from scenes.rows import OBSERVATION_COLUMNS, RECORD_COLUMNS, cells_in, observation_from
from scenes.rows import observation_row as _observation_row
from scenes.watchlist import Hit

_HIT_FIELDS = ("time_s", "list", "hash", "masked", "observation_id", "source", "lon", "lat",
               "alert_id")  # fmt: skip
_ALERT_COLUMNS = ("id", "rule", "status", "unit", "element_id", "lon", "lat", "created_s",
                  "record", "app", "board", "closed_s", "incident_key", "last_s")  # fmt: skip
CHECKPOINT_S = 0.25  # how often the background thread copies the WAL into the database, s
WAL_LIMIT_BYTES = 64 * 2**20  # past this the WAL is checkpointed to empty and restarted
BUSY_TIMEOUT_MS = 10_000  # another process holding the write lock (two servers, a migration)
MAX_CELLS = 256  # grid cells a box query probes one by one (see observations_in)
CHECKPOINT_WAIT_MS = 20  # longest a restarting checkpoint waits for readers (holding ingest)
SLOW_RESTART_MS = 50.0  # a restart that held ingest longer is logged
GROUP_ATTEMPTS = 3  # runs of a group commit that the database rolled back (deadlock)
log = logging.getLogger("twin.scenes")


def connect(target: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Connection:
    """A connection to the store at `target` (a SQLite file, or a PostgreSQL URL) in
    autocommit mode, usable from any thread (callers serialise its use)."""
    return connect_db(target, busy_timeout_ms=busy_timeout_ms)


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
    evaluated: list[tuple[object, ...]] = field(default_factory=list)
    joined: list[tuple[str, Callable[[Alert], Alert]]] = field(default_factory=list)
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


@dataclass
class CheckpointStats:
    """What the checkpoint thread did: passive passes, restarts (the WAL emptied and begun
    again from its start while ingest waited) and the longest such wait (ms), restarts put off
    because readers were in the way."""

    passive: int = 0
    restarts: int = 0
    longest_hold_ms: float = 0.0
    busy: int = 0


def _alert_row(alert: Alert) -> tuple[object, ...]:
    closed = alert.closed_at
    return (
        alert.id, alert.rule, alert.status.value, alert.unit, alert.element_id, alert.lon,
        alert.lat, alert.created_at.timestamp(), alert.model_dump_json(), alert.app,
        alert.board, closed.timestamp() if closed else None, alert.incident_key,
        seen_at(alert).timestamp(),
    )  # fmt: skip


class LiveStore:
    """Observations, entities and alerts in one SQLite file. Thread-safe: one connection (and
    lock) writes, one reads, and a background thread checkpoints. ``saves`` counts `save` calls
    and ``commits`` the transactions that stored them (fsyncs of the WAL)."""

    def __init__(
        self,
        target: Path | str,
        *,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        checkpoints: bool = True,
    ) -> None:
        """Open (create, migrate) the store at `target`: a SQLite file, or a PostgreSQL URL
        (``postgresql://...``). `checkpoints`: run the SQLite checkpoint thread (the one
        process that serves ingest does; a helper process such as the history mover does
        not)."""
        self.target: Path | str = target if is_database_url(target) else Path(target)
        self.wal_limit_bytes = wal_limit_bytes
        self._lock = threading.Lock()
        self._db = connect(self.target)
        self.dialect = self._db.dialect
        if self.dialect == SQLITE:
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoints
            self._db.execute(f"PRAGMA journal_size_limit={wal_limit_bytes}")
        migrate(self._db)
        self._read_lock = threading.Lock()
        self._reader = connect(self.target)
        self._queue_lock = threading.Lock()
        self._queued: list[_Write] = []
        self.saves = 0
        self.commits = 0
        self.checkpoints = CheckpointStats()
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="live-store-checkpoint", daemon=True
        )
        if checkpoints and self.dialect == SQLITE:
            self._checkpointer.start()

    @property
    def path(self) -> Path:
        """The SQLite file (`ValueError` on PostgreSQL)."""
        if not isinstance(self.target, Path):
            raise ValueError("a PostgreSQL store has no file")
        return self.target

    def connect(self) -> Connection:
        """A new connection of the caller's own (e.g. a long read off the shared reader)."""
        return connect(self.target)

    def close(self) -> None:
        self._closing.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    def wal_bytes(self) -> int:
        """The size of the SQLite write-ahead log file now (0 when there is none, and on
        PostgreSQL, whose WAL its server manages)."""
        if self.dialect != SQLITE:
            return 0
        try:
            return os.path.getsize(f"{self.path}-wal")
        except FileNotFoundError:
            return 0

    def _checkpoints(self) -> None:
        """Copy the WAL back into the database every CHECKPOINT_S seconds (PASSIVE: never
        blocks the writer), so no commit pays for it; when the WAL is past its limit anyway,
        empty and restart it while ingest waits (after the passive pass there is little left
        to copy). On a connection of its own."""
        db = connect(self.path, busy_timeout_ms=CHECKPOINT_WAIT_MS)
        try:
            while not self._closing.wait(CHECKPOINT_S):
                try:
                    self._passive(db)
                    if self.wal_bytes() > self.wal_limit_bytes:
                        for _ in range(3):  # catch up first: the restart copies the rest
                            if self._passive(db):
                                break
                        self._restart(db)
                except DB_ERRORS as exc:  # e.g. disk full: try again next time
                    log.warning("live store checkpoint failed: %s", exc)
        finally:
            db.close()

    def _passive(self, db: Connection) -> bool:
        """One passive checkpoint; True when it copied every frame of the WAL."""
        _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints.passive += 1
        return bool(frames == copied)

    def _restart(self, db: Connection) -> None:
        """Empty the WAL and let the next commit write it from its start (``journal_size_limit``
        trims the file); RESTART rather than TRUNCATE: cutting a 64 MiB file held ingest
        60-110 ms, measured, with nothing left to copy."""
        size = self.wal_bytes()
        with self._lock:
            start = time.perf_counter()
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            held_ms = (time.perf_counter() - start) * 1000.0
        log.log(
            logging.INFO if held_ms > SLOW_RESTART_MS else logging.DEBUG,
            "live store WAL of %.1f MiB restarted (%d of %d frames left to copy): ingest waited"
            " %.1f ms%s", size / 2**20, frames - copied, frames, held_ms,
            " (readers in the way: tried again later)" if busy else "",
        )  # fmt: skip
        stats = self.checkpoints
        stats.longest_hold_ms = max(stats.longest_hold_ms, held_ms)
        if busy:
            stats.busy += 1
        else:
            stats.restarts += 1

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction on the writing connection, between group commits: keep it to
        a few milliseconds (ingest waits for it)."""
        with self._lock, self._locked_transaction() as db:
            yield db

    @contextmanager
    def _locked_transaction(self) -> Iterator[Connection]:
        """One transaction on the writing connection; the caller holds ``_lock``."""
        begin_write(self._db)
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self.commits += 1

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """The shared reader inside one read transaction: every query sees the same state."""
        with self._read_lock:
            begin_read(self._reader)
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

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
        evaluated: tuple[str, Sequence[Alert]] | None = None,
        joined: Sequence[tuple[str, Callable[[Alert], Alert]]] = (),
    ) -> list[EntityRecord]:
        """Store observations (with ids), their entities, new alerts, their evidence `crops`
        (alert id → JPEG bytes) and watchlist `hits` in one transaction, committed before
        returning (possibly together with other threads' saves: group commit). Each
        ``(alert id, bump)`` of `joined` replaces that stored incident by ``bump(incident)`` as
        it is in that transaction (a repeat folded in, see `find_incident`), so a repeat counts
        exactly when its observations are stored.

        Returns the entities updated, one per observation in order. An observation whose id is
        already stored is kept as it was (an idempotent resend). Records are serialised before
        any lock is taken; each table gets one ``executemany`` per commit."""
        entities = [Entity.from_observation(obs) for obs in observations]
        records = [EntityRecord(ent, ent.model_dump_json()) for ent in entities]
        write = _Write([], [], [], [], [])
        for obs, rec in zip(observations, records, strict=True):
            write.observations.append(_observation_row(obs))
            ent = rec.entity
            write.entities.append(
                (ent.id, ent.lon, ent.lat, obs.time.timestamp(), received_s, rec.json)
            )
        write.alerts = [_alert_row(alert) for alert in alerts]
        created = {alert.id: alert.created_at.timestamp() for alert in alerts}
        write.crops = [
            (alert_id, "image/jpeg", data, created.get(alert_id, received_s))
            for alert_id, data in (crops or {}).items()
        ]
        write.hits = [tuple(getattr(hit, name) for name in _HIT_FIELDS) for hit in hits]
        if evaluated is not None:
            key, raised = evaluated
            text = "[" + ",".join(a.model_dump_json() for a in raised) + "]"
            write.evaluated = [(key, text, received_s)]
        write.joined = list(joined)
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
        own caller; one rolled back for a deadlock or a serialisation failure is run again first.
        The caller holds ``_lock``."""
        try:
            for attempt in range(GROUP_ATTEMPTS):
                try:
                    self._write_group(group)
                    break
                except RETRYABLE:
                    if attempt == GROUP_ATTEMPTS - 1:
                        raise
                    log.warning("live store: commit rolled back by the database, run again")
        except DB_ERRORS as exc:
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

        # Upserts in key order: two processes writing the same entities (PostgreSQL) take
        # their row locks in one order and never deadlock; a stable sort keeps each entity's
        # updates in the order they came.
        entities = sorted(rows("entities"), key=lambda row: str(row[0]))

        obs_marks = ",".join("?" * len(OBSERVATION_COLUMNS))
        alert_marks = ",".join("?" * len(_ALERT_COLUMNS))
        with self._locked_transaction() as db:
            db.executemany(
                f"INSERT INTO observations ({', '.join(OBSERVATION_COLUMNS)})"
                f" VALUES ({obs_marks}) ON CONFLICT DO NOTHING",
                rows("observations"),
            )
            db.executemany(
                "INSERT INTO entities (id, lon, lat, time_s, received_s, record)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET lon=excluded.lon,"
                " lat=excluded.lat, time_s=excluded.time_s, received_s=excluded.received_s,"
                " record=excluded.record WHERE excluded.time_s >= entities.time_s",
                entities,
            )
            db.executemany(
                f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({alert_marks})",
                rows("alerts"),
            )
            db.executemany(
                "INSERT INTO alert_crops (alert_id, media_type, data, created_s) VALUES (?,?,?,?)"
                " ON CONFLICT (alert_id) DO UPDATE SET media_type = excluded.media_type,"
                " data = excluded.data, created_s = excluded.created_s",
                rows("crops"),
            )
            db.executemany(
                f"INSERT INTO watchlist_hits ({', '.join(_HIT_FIELDS)})"
                f" VALUES ({','.join('?' * len(_HIT_FIELDS))})",
                rows("hits"),
            )
            db.executemany(
                "INSERT INTO rules_done (key, alerts, at_s) VALUES (?,?,?)", rows("evaluated")
            )
            for alert_id, bump in itertools.chain.from_iterable(w.joined for w in group):
                row = db.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is not None:  # gone only if retention removed it meanwhile
                    bumped = bump(Alert.model_validate_json(row[0]))
                    db.execute(
                        "UPDATE alerts SET record = ?, last_s = ? WHERE id = ?",
                        (bumped.model_dump_json(), seen_at(bumped).timestamp(), alert_id),
                    )

    def transition(self, alert_id: str, status: AlertStatus, *, by: str) -> Alert:
        """Move an alert to `status` (see scenes.lifecycle); raise AlertNotFound /
        AlertTransitionError. The change is committed before returning."""
        with self.transaction() as db:
            row = db.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise AlertNotFound(f"no alert '{alert_id}'")
            changed = transition(Alert.model_validate_json(row[0]), status, by=by)
            closed = changed.closed_at
            db.execute(
                "UPDATE alerts SET status = ?, record = ?, closed_s = ? WHERE id = ?",
                (
                    changed.status.value, changed.model_dump_json(),
                    closed.timestamp() if closed else None, alert_id,
                ),
            )  # fmt: skip
        return changed

    def find_incident(self, rule: str, key: str, *, seen_since: datetime) -> Alert | None:
        """The newest open alert of `rule` with incident key `key` last seen at or after
        `seen_since` (the incident a repeat joins, through `save`'s ``joined``), else None."""
        rows = self._query(
            "SELECT record FROM alerts WHERE rule = ? AND incident_key = ? AND last_s >= ?"
            " AND closed_s IS NULL ORDER BY last_s DESC LIMIT 1",
            (rule, key, seen_since.timestamp()),
        )
        return Alert.model_validate_json(str(rows[0][0])) if rows else None

    # -- reads ---------------------------------------------------------------------------------

    def evaluated(self, key: str) -> list[Alert] | None:
        """The alerts a batch of the rules stream raised when `key` was evaluated already,
        else None (see `scenes.live.LiveService.evaluate`)."""
        rows = self._query("SELECT alerts FROM rules_done WHERE key = ?", (key,))
        if not rows:
            return None
        return [Alert.model_validate(a) for a in json.loads(str(rows[0][0]))]

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
        """Observations inside `box`, newest first: the newest `limit` of each grid cell
        meeting the box (an index range each), merged; a box of more than `MAX_CELLS` cells
        walks the time index from the newest instead."""
        cells = cells_in(box.minlon, box.minlat, box.maxlon, box.maxlat)
        if len(cells) > MAX_CELLS:
            rows = self._query(
                f"SELECT {', '.join(RECORD_COLUMNS)} FROM observations WHERE lon BETWEEN ? AND ?"
                " AND lat BETWEEN ? AND ? ORDER BY sec DESC LIMIT ?",
                (box.minlon, box.maxlon, box.minlat, box.maxlat, limit),
            )
            return sorted(map(observation_from, rows), key=lambda o: o.time, reverse=True)
        sql = (
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM observations WHERE cell = ?"
            " AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ? ORDER BY sec DESC, time_us DESC"
            " LIMIT ?"
        )
        found: list[tuple[object, ...]] = []
        with self.snapshot() as db:
            for cell in cells:
                args = (cell, box.minlon, box.maxlon, box.minlat, box.maxlat, limit)
                found.extend(db.execute(sql, args).fetchall())
        found.sort(key=lambda row: int(str(row[RECORD_COLUMNS.index("time_us")])), reverse=True)
        return [observation_from(row) for row in found[:limit]]

    def observations_by_id(self, ids: Sequence[str]) -> dict[str, Observation]:
        """The stored observations among `ids` (a few dozen at most), by id; unknown ids are
        left out."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM observations WHERE id IN ({marks})", ids
        )
        return {str(r[0]): observation_from(r) for r in rows}

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
        with self.transaction() as db:
            db.execute(
                "INSERT INTO app_settings (id, enabled, parameters) VALUES (?,?,?) ON CONFLICT(id)"
                " DO UPDATE SET enabled=excluded.enabled, parameters=excluded.parameters",
                (app_id, int(enabled), json.dumps(parameters)),
            )

    def count_observations(self) -> int:
        return int(str(self._query("SELECT COUNT(*) FROM observations")[0][0]))

    def entity_records(self, *, received_since_s: float, limit: int) -> list[str]:
        """The JSON records of at most `limit` entities updated at or after epoch seconds
        `received_since_s`, the most recently updated first (a bounded live snapshot)."""
        rows = self._query(
            "SELECT record FROM entities WHERE received_s >= ? ORDER BY received_s DESC LIMIT ?",
            (received_since_s, limit),
        )
        return [str(r[0]) for r in rows]

    def entities(self, *, received_since_s: float, box: BBox | None = None) -> list[Entity]:
        """Entities last updated at or after epoch seconds `received_since_s` (in `box`)."""
        sql = "SELECT record FROM entities WHERE received_s >= ?"
        args: list[object] = [received_since_s]
        if box is not None:
            sql += " AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?"
            args += [box.minlon, box.maxlon, box.minlat, box.maxlat]
        rows = self._query(sql + " ORDER BY id", args)
        return [Entity.model_validate_json(str(r[0])) for r in rows]
