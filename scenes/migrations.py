"""Versioned schema of the live store (SQLite): each step runs once, in order, inside one
``BEGIN IMMEDIATE`` transaction that also bumps ``PRAGMA user_version``. A second process
opening the same file at the same time waits for the writer lock and then finds the schema
current, so migrating is idempotent and serialised.

Version 1 is the first release's schema (its later ``app``/``board`` columns included).
Version 2 keeps observations as typed columns (exact microsecond times, a one-second bucket
and a ~100 m grid cell for the indexes: both grow at their ends, so ingest and the history
mover touch few pages), alerts their closing time, crops their creation time, and adds the
history archive's manifest (see `scenes.history`).
Version 3 gives alerts their incident key and the time they were last seen, so a rule's repeat
finds the open incident it joins (`scenes.incidents`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from scenes import pgschema
from scenes.db import POSTGRES, Connection

log = logging.getLogger("twin.scenes")

_V1 = """
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

_V2 = """
DROP INDEX IF EXISTS observations_time;
DROP INDEX IF EXISTS observations_lonlat;
ALTER TABLE observations RENAME TO observations_v1;
CREATE TABLE observations (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    cls TEXT NOT NULL,
    confidence REAL NOT NULL,
    source TEXT NOT NULL,
    track_id TEXT,
    lon REAL NOT NULL, lat REAL NOT NULL, height REAL NOT NULL,
    time_us INTEGER NOT NULL,
    sec INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    attributes TEXT NOT NULL
);
INSERT INTO observations (id, entity_id, kind, cls, confidence, source, track_id, lon, lat,
                          height, time_us, sec, cell, attributes)
SELECT id, entity_id, record ->> '$.kind', coalesce(record ->> '$.cls', ''),
       coalesce(record ->> '$.confidence', 1.0), record ->> '$.source', record ->> '$.track_id',
       lon, lat, coalesce(record ->> '$.height', 0.0), CAST(round(time_s * 1e6) AS INTEGER),
       CAST(time_s AS INTEGER),
       (CAST((lon + 180.0) * 1000.0 AS INTEGER) << 20) | CAST((lat + 90.0) * 1000.0 AS INTEGER),
       coalesce(record -> '$.attributes', '{}')
FROM observations_v1 ORDER BY rid;
DROP TABLE observations_v1;
CREATE INDEX observations_sec ON observations(sec, entity_id);
CREATE INDEX observations_cell ON observations(cell, sec);
ALTER TABLE alerts ADD COLUMN closed_s REAL;
CREATE INDEX alerts_closed ON alerts(closed_s);
ALTER TABLE alert_crops ADD COLUMN created_s REAL NOT NULL DEFAULT 0;
UPDATE alert_crops SET created_s = coalesce(
    (SELECT created_s FROM alerts WHERE alerts.id = alert_crops.alert_id), 0);
CREATE INDEX alert_crops_created ON alert_crops(created_s);
CREATE INDEX entities_received ON entities(received_s);
CREATE TABLE archive_files (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    hour_s INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    min_us INTEGER NOT NULL, max_us INTEGER NOT NULL,
    minlon REAL NOT NULL, minlat REAL NOT NULL, maxlon REAL NOT NULL, maxlat REAL NOT NULL,
    compacted INTEGER NOT NULL DEFAULT 0,
    created_s REAL NOT NULL,
    move_id TEXT
);
CREATE INDEX archive_files_hour ON archive_files(kind, hour_s);
CREATE TABLE archive_moves (
    id TEXT PRIMARY KEY,
    below_sec INTEGER NOT NULL,
    below_rid INTEGER NOT NULL
);
"""


_V3 = """
ALTER TABLE alerts ADD COLUMN incident_key TEXT;
ALTER TABLE alerts ADD COLUMN last_s REAL;
UPDATE alerts SET last_s = created_s;
CREATE INDEX alerts_incident ON alerts(rule, incident_key, last_s) WHERE closed_s IS NULL;
"""


_V4 = """
CREATE TABLE rules_done (
    key TEXT PRIMARY KEY,
    alerts TEXT NOT NULL,
    at_s REAL NOT NULL
);
CREATE INDEX rules_done_at ON rules_done(at_s);
"""


def _v1(db: Connection) -> None:
    for statement in _statements(_V1):
        db.execute(statement)
    have = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
    for column in ("app", "board"):
        if column not in have:
            db.execute(f"ALTER TABLE alerts ADD COLUMN {column} TEXT")


def _closed_s(record: str) -> float | None:
    data = json.loads(record)
    closed = data.get("resolved_at") or data.get("false_alarm_at")
    return datetime.fromisoformat(closed).timestamp() if closed else None


def _v2(db: Connection) -> None:
    for statement in _statements(_V2):
        db.execute(statement)
    rows = db.execute("SELECT id, record FROM alerts WHERE status IN ('resolved', 'false_alarm')")
    db.executemany(
        "UPDATE alerts SET closed_s = ? WHERE id = ?",
        [(_closed_s(record), alert_id) for alert_id, record in rows.fetchall()],
    )


def _v3(db: Connection) -> None:
    for statement in _statements(_V3):
        db.execute(statement)


def _v4(db: Connection) -> None:
    for statement in _statements(_V4):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """The statements of `script` (no statement here holds a ';' inside a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]


STEPS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4)
VERSION = len(STEPS)


def migrate(db: Connection) -> int:
    """Bring the store behind `db` (autocommit mode, busy timeout set) to `VERSION` (on
    PostgreSQL: see `scenes.pgschema`); returns the version it found. Each step commits with
    its version number, so a crash between steps resumes at the next one."""
    if db.dialect == POSTGRES:
        return pgschema.migrate(db)
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    for version in range(found + 1, VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current < version:  # another process may have run it meanwhile
                log.info("live store: schema %d -> %d", current, version)
                STEPS[version - 1](db)
                db.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return found
