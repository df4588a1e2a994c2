"""The live store's schema on PostgreSQL 15 (``TWIN_DATABASE_URL``): versioned steps, each run
once, in order, inside a transaction that holds an advisory lock (a second server starting at
the same moment waits for it, then finds the schema current) and records its version in
``schema_migrations``.

The tables are those of the SQLite store (`scenes.migrations`), with observations partitioned
by day of their time (``sec``): a partition for each day around now is made ahead of time
(`ensure_partitions`), a default partition takes anything else, and days past the hot window
are dropped once empty. An id is unique per second of time (a partitioned table's unique keys
must hold its partition key): a resent observation, which keeps its time, is found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from scenes.db import Connection

log = logging.getLogger("twin.scenes")
LOCK_KEY = 8_151_051  # pg_advisory_xact_lock key of schema migrations
DAY_S = 86_400
DAYS_AHEAD = 3

_V1 = """
CREATE SEQUENCE observations_rid_seq;
CREATE TABLE observations (
    rid BIGINT NOT NULL DEFAULT nextval('observations_rid_seq'),
    id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    cls TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    track_id TEXT,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL,
    height DOUBLE PRECISION NOT NULL,
    time_us BIGINT NOT NULL,
    sec BIGINT NOT NULL,
    cell BIGINT NOT NULL,
    attributes TEXT NOT NULL,
    UNIQUE (sec, id)
) PARTITION BY RANGE (sec);
CREATE TABLE observations_default PARTITION OF observations DEFAULT;
CREATE INDEX observations_sec ON observations (sec, entity_id);
CREATE INDEX observations_cell ON observations (cell, sec);
CREATE INDEX observations_id ON observations (id);
CREATE INDEX observations_rid ON observations (rid);
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL,
    time_s DOUBLE PRECISION NOT NULL,
    received_s DOUBLE PRECISION NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX entities_received ON entities (received_s);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    unit TEXT,
    element_id TEXT,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL,
    created_s DOUBLE PRECISION NOT NULL,
    record TEXT NOT NULL,
    app TEXT,
    board TEXT,
    closed_s DOUBLE PRECISION,
    incident_key TEXT,
    last_s DOUBLE PRECISION
);
CREATE INDEX alerts_created ON alerts (created_s);
CREATE INDEX alerts_element ON alerts (element_id);
CREATE INDEX alerts_closed ON alerts (closed_s);
CREATE INDEX alerts_incident ON alerts (rule, incident_key, last_s) WHERE closed_s IS NULL;
CREATE TABLE alert_crops (
    alert_id TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BYTEA NOT NULL,
    created_s DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX alert_crops_created ON alert_crops (created_s);
CREATE TABLE app_settings (
    id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    parameters TEXT NOT NULL
);
CREATE TABLE watchlist_hits (
    rid BIGSERIAL PRIMARY KEY,
    time_s DOUBLE PRECISION NOT NULL, list TEXT NOT NULL, hash TEXT NOT NULL, masked TEXT,
    observation_id TEXT NOT NULL, source TEXT NOT NULL,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL, alert_id TEXT
);
CREATE INDEX watchlist_hits_time ON watchlist_hits (time_s);
CREATE TABLE archive_files (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    hour_s BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    min_us BIGINT NOT NULL, max_us BIGINT NOT NULL,
    minlon DOUBLE PRECISION NOT NULL, minlat DOUBLE PRECISION NOT NULL,
    maxlon DOUBLE PRECISION NOT NULL, maxlat DOUBLE PRECISION NOT NULL,
    compacted INTEGER NOT NULL DEFAULT 0,
    created_s DOUBLE PRECISION NOT NULL,
    move_id TEXT
);
CREATE INDEX archive_files_hour ON archive_files (kind, hour_s);
CREATE TABLE archive_moves (
    id TEXT PRIMARY KEY,
    below_sec BIGINT NOT NULL,
    below_rid BIGINT NOT NULL
)
"""


def _run(script: str) -> Callable[[Connection], None]:
    def step(db: Connection) -> None:
        for statement in (s.strip() for s in script.split(";")):
            if statement:
                db.execute(statement)

    return step


_V2 = """
CREATE TABLE rules_done (
    key TEXT PRIMARY KEY,
    alerts TEXT NOT NULL,
    at_s DOUBLE PRECISION NOT NULL
);
CREATE INDEX rules_done_at ON rules_done (at_s)
"""

STEPS: tuple[Callable[[Connection], None], ...] = (_run(_V1), _run(_V2))
VERSION = len(STEPS)


def migrate(db: Connection) -> int:
    """Bring the PostgreSQL store behind `db` to `VERSION` (see the module docstring);
    returns the version it found."""
    db.execute("BEGIN")
    try:
        # The lock first: two servers creating even the versions table at once collide.
        db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                   " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")  # fmt: skip
        found = int(db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
                    .fetchone()[0])  # fmt: skip
        for version in range(found + 1, VERSION + 1):
            log.info("live store (PostgreSQL): schema %d -> %d", version - 1, version)
            STEPS[version - 1](db)
            db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        ensure_partitions(db, datetime.now(UTC))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


def _day_name(day: datetime) -> str:
    return f"observations_{day:%Y%m%d}"


def ensure_partitions(db: Connection, now: datetime, *, ahead: int = DAYS_AHEAD) -> int:
    """Make the day partitions from yesterday to `ahead` days after `now` (UTC) that do not
    exist yet; how many were made. A day whose rows already sit in the default partition is
    left there."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    have = {row[0] for row in db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'observations'"
    ).fetchall()}  # fmt: skip
    made = 0
    for offset in range(-1, ahead + 1):
        day = start + timedelta(days=offset)
        name = _day_name(day)
        if name in have:
            continue
        low = int(day.timestamp())
        db.execute("SAVEPOINT partition")
        try:
            db.execute(f"CREATE TABLE {name} PARTITION OF observations"
                       f" FOR VALUES FROM ({low}) TO ({low + DAY_S})")  # fmt: skip
            db.execute("RELEASE SAVEPOINT partition")
            made += 1
        except Exception:  # rows of that day already in the default partition
            db.execute("ROLLBACK TO SAVEPOINT partition")
    return made


def drop_empty_days(db: Connection, before_s: float) -> list[str]:
    """Drop the day partitions wholly before epoch seconds `before_s` that hold no row (their
    rows moved to the archive); their names."""
    rows = db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'observations'"
        " AND c.relname <> 'observations_default'"
    ).fetchall()
    dropped = []
    for (name,) in rows:
        day = datetime.strptime(name.removeprefix("observations_"), "%Y%m%d").replace(tzinfo=UTC)
        if day.timestamp() + DAY_S > before_s:
            continue
        # Locked before it is looked at: a late row inserted meanwhile waits, then goes to
        # the default partition once this one is gone.
        db.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
        if db.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone() is None:
            db.execute(f"DROP TABLE {name}")
            dropped.append(name)
    return dropped
