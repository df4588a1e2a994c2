"""One small interface over the two engines the twin's stores run on: SQLite, embedded in the
workspace (the default), and PostgreSQL (``TWIN_DATABASE_URL=postgresql://...``).

SQL is written once, with ``?`` placeholders and syntax both engines accept (``INSERT ... ON
CONFLICT ... DO NOTHING/UPDATE``, row values, ``LIMIT``); `Connection.execute` rewrites the
placeholders for psycopg. Where the engines differ (schema, locking, a few queries) the caller
asks `Connection.dialect`. Errors of either engine are `DB_ERRORS`; a PostgreSQL connection
that is lost raises `StoreUnavailable` (the server answers 503) and is opened again on next use.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg

from scenes.errors import SceneError

SQLITE, POSTGRES = "sqlite", "postgres"
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
RETRYABLE: tuple[type[Exception], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
"""Errors after which the same transaction may simply be run again (PostgreSQL rolled it back)."""
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 5


class StoreUnavailable(SceneError):
    """The database cannot be reached now (the request may be sent again)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the stores use of a connection (autocommit; transactions by statement)."""

    dialect: str

    def execute(self, sql: str, args: Sequence[object] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> Cursor: ...

    def close(self) -> None: ...


def is_database_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class SqliteConnection:
    """A sqlite3 connection in autocommit mode (WAL, ``synchronous=FULL``)."""

    dialect = SQLITE

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.raw = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        self.raw.execute("PRAGMA journal_mode=WAL")
        self.raw.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        return self.raw.executemany(sql, rows)

    def close(self) -> None:
        self.raw.close()


_PLACEHOLDERS: dict[str, str] = {}
_PLACEHOLDERS_LOCK = threading.Lock()


def postgres_sql(sql: str) -> str:
    """`sql` with ``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled); no SQL
    here holds a ``?`` inside a string literal."""
    converted = _PLACEHOLDERS.get(sql)
    if converted is None:
        converted = sql.replace("%", "%%").replace("?", "%s")
        with _PLACEHOLDERS_LOCK:
            _PLACEHOLDERS[sql] = converted
    return converted


class PostgresConnection:
    """A psycopg connection in autocommit mode that reconnects after it is lost: a statement
    on a lost connection raises `StoreUnavailable` and the next one opens a new connection."""

    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self.url = url
        self._raw: psycopg.Connection[Any] | None = None
        self.raw  # connect now: a wrong URL fails at start  # noqa: B018

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._raw is None or self._raw.closed:
            try:
                self._raw = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"the database is unreachable: {_first_line(exc)}") from exc
        return self._raw

    def _lost(self, exc: psycopg.Error) -> StoreUnavailable:
        if self._raw is not None:
            try:
                self._raw.close()
            finally:
                self._raw = None
        return StoreUnavailable(f"the database connection was lost: {_first_line(exc)}")

    def execute(self, sql: str, args: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        raw = self.raw
        try:
            return raw.execute(postgres_sql(sql), tuple(args))
        except psycopg.OperationalError as exc:
            if raw.closed or raw.broken:
                raise self._lost(exc) from exc
            raise

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> psycopg.Cursor[Any]:
        raw = self.raw
        cursor = raw.cursor()
        try:
            cursor.executemany(postgres_sql(sql), [tuple(r) for r in rows])
        except psycopg.OperationalError as exc:
            if raw.closed or raw.broken:
                raise self._lost(exc) from exc
            raise
        return cursor

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def connect(target: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Connection:
    """A connection to the database at `target`: a PostgreSQL URL, else a SQLite file path."""
    if is_database_url(target):
        return PostgresConnection(str(target))
    return SqliteConnection(Path(target), busy_timeout_ms=busy_timeout_ms)


def begin_write(db: Connection) -> None:
    """Start a write transaction: SQLite takes its write lock at once (``IMMEDIATE``)."""
    db.execute("BEGIN IMMEDIATE" if db.dialect == SQLITE else "BEGIN")


def create_schema(db: Connection, script: str, *, lock_key: int) -> None:
    """Run the ``;``-separated `script` (``CREATE ... IF NOT EXISTS`` statements) in one write
    transaction; on PostgreSQL under advisory lock `lock_key`, since two processes creating the
    same table at once collide there."""
    begin_write(db)
    try:
        if db.dialect == POSTGRES:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key,))
        for statement in filter(None, (s.strip() for s in script.split(";"))):
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def begin_read(db: Connection) -> None:
    """Start a read transaction in which every statement sees one snapshot (PostgreSQL's
    default, READ COMMITTED, gives each statement its own)."""
    db.execute(
        "BEGIN" if db.dialect == SQLITE else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    )
