"""Questions about the past, answered from the live store and the archive as one.

Every answer starts from one read transaction on the live store: its rows, the archive files
the manifest lists and the moves still pending are of the same moment, so an observation is
found exactly once (see `scenes.history.manifest`), whatever the mover does meanwhile. Archive
files are read with DuckDB; when a file of that moment has been merged away before DuckDB
opens it, the question is asked again from a new moment.

Times are microseconds since the Unix epoch (UTC); positions lon/lat degrees.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from statistics import median
from typing import Any, TypeVar

import duckdb

from scenes.db import POSTGRES, Connection
from scenes.facts import AlertFacts
from scenes.history import manifest as mf
from scenes.history.cursor import Cursor
from scenes.models import Alert, Observation
from scenes.rows import RECORD_COLUMNS, cells_in, from_us, observation_from, to_us
from scenes.store import LiveStore

log = logging.getLogger("twin.scenes")
T = TypeVar("T")
BBox = tuple[float, float, float, float]  # minlon, minlat, maxlon, maxlat (deg)
MAX_CELLS = 64  # a box of at most this many grid cells is read cell by cell from the store
RETRIES = 3
DUCKDB_MEMORY = "512MB"
_TIME = RECORD_COLUMNS.index("time_us")
_ID = RECORD_COLUMNS.index("id")
_ARCHIVE_RECORD = ", ".join("epoch_us(time)" if c == "time_us" else c for c in RECORD_COLUMNS)
FILES = "read_parquet($files, hive_partitioning = false)"  # never columns from folder names
STATS_KEYS = ("hour", "unit", "app", "board")
FACTS_CACHED = 500_000  # alert facts of archive files kept in memory (~100 MB at most)


@dataclass(frozen=True)
class ObservationQuery:
    """Which observations: [from_us, to_us), inside `bbox`, of `kind` and `source`."""

    from_us: int
    to_us: int
    bbox: BBox | None = None
    kind: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class AlertQuery:
    """Which alerts: created in [from_us, to_us), with these fields, closed (resolved or false
    alarm) or open (None: any)."""

    from_us: int
    to_us: int
    unit: str | None = None
    app: str | None = None
    board: str | None = None
    status: str | None = None
    severity: str | None = None
    rule: str | None = None
    closed: bool | None = None

    def matches(self, alert: AlertFacts) -> bool:
        if self.closed is not None and alert.closed != self.closed:
            return False
        return self.from_us <= alert.created_us < self.to_us and all(
            wanted is None or wanted == have
            for wanted, have in (
                (self.unit, alert.unit), (self.app, alert.app), (self.board, alert.board),
                (self.status, alert.status), (self.severity, alert.severity),
                (self.rule, alert.rule),
            )
        )  # fmt: skip


@dataclass
class Page:
    """Items in order and the cursor of the next page (None after the last)."""

    items: list[Any]
    next: Cursor | None


@dataclass
class ReplayTrack:
    """One entity's path in a replay window: ``samples`` of (µs, lon, lat, height m), the last
    observation in each step, in time order."""

    id: str
    kind: str
    cls: str
    source: str
    samples: list[tuple[int, float, float, float]] = field(default_factory=list)


class FilesChanged(Exception):
    """An archive file of the moment read was merged or deleted before DuckDB opened it."""


class HistoryReader:
    """Reads the history of the store behind `store` and its archive at ``root``."""

    def __init__(self, store: LiveStore, root: Path) -> None:
        self.store, self.root = store, Path(root)
        self._duck = duckdb.connect(
            config={"memory_limit": DUCKDB_MEMORY, "threads": "2", "enable_object_cache": "true"}
        )
        self._duck_lock = threading.Lock()
        self._facts: OrderedDict[str, list[AlertFacts]] = OrderedDict()
        self._facts_count = 0
        self._facts_lock = threading.Lock()

    def close(self) -> None:
        self._duck.close()

    # -- plumbing --------------------------------------------------------------------------

    def _retrying(self, ask: Callable[[], T]) -> T:
        for attempt in range(RETRIES):
            try:
                return ask()
            except FilesChanged:
                log.debug("history: archive changed under a query (attempt %d)", attempt + 1)
        return ask()

    def _archive(self, sql: str, files: Sequence[mf.ArchiveFile], args: dict[str, Any]) -> Any:
        """Run `sql` (reading ``{FILES}``) over `files`; FilesChanged when one is gone."""
        paths = [str(self.root / f.path) for f in files]
        if not paths:
            return None
        with self._duck_lock:
            cursor = self._duck.cursor()
        try:
            return cursor.execute(sql, {"files": paths, **args})
        except duckdb.IOException as exc:
            if not all(Path(p).exists() for p in paths):
                raise FilesChanged(str(exc)) from exc
            raise

    # -- observations ----------------------------------------------------------------------

    def observations(
        self, query: ObservationQuery, *, limit: int, after: Cursor | None = None
    ) -> Page:
        """Observations matching `query` in (time, id) order, `limit` at most, after `after`."""
        return self._retrying(lambda: self._observations(query, limit, after))

    def _observations(self, query: ObservationQuery, limit: int, after: Cursor | None) -> Page:
        start = max(query.from_us, after.time_us if after else query.from_us)
        with self.store.snapshot() as db:
            hot = _hot_observations(db, query, start, limit, after)
            files = mf.files(db, "observations", from_us=start, to_us=query.to_us,
                             bbox=query.bbox)  # fmt: skip
        where, args = _archive_filter(query, start, after)
        cold: list[tuple[object, ...]] = []
        for _, hour in groupby(files, key=lambda f: f.hour_s):  # oldest hour first
            result = self._archive(
                f"SELECT {_ARCHIVE_RECORD} FROM {FILES} WHERE {where}"
                " ORDER BY time, id LIMIT $limit",
                list(hour),
                {**args, "limit": limit - len(cold)},
            )
            cold += result.fetchall()
            if len(cold) >= limit:  # later hours hold only later rows
                break
        merged: list[tuple[object, ...]] = []
        last: tuple[int, str] | None = None
        for row in heapq.merge(hot, cold, key=_order_key):
            key = _order_key(row)
            if key != last:
                merged.append(row)
                last = key
            if len(merged) == limit:
                break
        items = [observation_from(row) for row in merged]
        more = len(merged) == limit
        nxt = Cursor(*_order_key(merged[-1])) if more and merged else None
        return Page(items, nxt)

    def track(self, entity_id: str, from_us: int, to_us: int, *, limit: int) -> list[Observation]:
        """The observations of `entity_id` in [from_us, to_us), oldest first (`limit` at
        most: the oldest)."""
        return self._retrying(lambda: self._track(entity_id, from_us, to_us, limit))

    def _track(self, entity_id: str, from_us: int, to_us: int, limit: int) -> list[Observation]:
        with self.store.snapshot() as db:
            hot = _hot_track(db, entity_id, from_us, to_us, limit)
            files = mf.files(db, "observations", from_us=from_us, to_us=to_us)
        result = self._archive(
            f"SELECT {_ARCHIVE_RECORD} FROM {FILES} WHERE entity_id = $entity"
            " AND time >= make_timestamp($from_us)::TIMESTAMPTZ"
            " AND time < make_timestamp($to_us)::TIMESTAMPTZ ORDER BY time, id LIMIT $limit",
            files,
            {"entity": entity_id, "from_us": from_us, "to_us": to_us, "limit": limit},
        )
        cold = result.fetchall() if result is not None else []
        rows = list(heapq.merge(hot, cold, key=_order_key))[:limit]
        return [observation_from(row) for row in rows]

    def replay(
        self, from_us: int, to_us: int, step_us: int, *, bbox: BBox | None, max_entities: int
    ) -> tuple[list[ReplayTrack], bool]:
        """Where each entity was in [from_us, to_us): its last observation in every `step_us`
        window from `from_us` on, for `max_entities` entities at most (those seen most); and
        whether some were left out."""
        return self._retrying(lambda: self._replay(from_us, to_us, step_us, bbox, max_entities))

    def _replay(
        self, from_us: int, to_us: int, step_us: int, bbox: BBox | None, max_entities: int
    ) -> tuple[list[ReplayTrack], bool]:
        query = ObservationQuery(from_us, to_us, bbox)
        with self.store.snapshot() as db:
            hot = _hot_samples(db, query, step_us)
            files = mf.files(db, "observations", from_us=from_us, to_us=to_us, bbox=bbox)
        where, args = _archive_filter(query, from_us, None)
        result = self._archive(
            "SELECT entity_id, any_value(kind), any_value(cls), any_value(source),"
            " max(epoch_us(time)), arg_max(lon, time), arg_max(lat, time),"
            f" arg_max(height, time) FROM {FILES} WHERE {where}"
            " GROUP BY entity_id, (epoch_us(time) - $from_us) // $step",
            files,
            {**args, "step": step_us},
        )
        tracks: dict[str, ReplayTrack] = {}
        samples: dict[tuple[str, int], tuple[int, float, float, float]] = {}
        cold: list[tuple[Any, ...]] = result.fetchall() if result is not None else []
        for rows in (hot, cold):
            for ent, kind, cls, source, us, lon, lat, height in rows:
                tracks.setdefault(ent, ReplayTrack(ent, kind, cls or "", source))
                key = (ent, (int(us) - from_us) // step_us)
                sample = (int(us), float(lon), float(lat), float(height))
                if key not in samples or samples[key][0] < sample[0]:
                    samples[key] = sample
        for (ent, _), sample in sorted(samples.items(), key=lambda kv: kv[1][0]):
            tracks[ent].samples.append(sample)
        ranked = sorted(tracks.values(), key=lambda t: len(t.samples), reverse=True)
        return ranked[:max_entities], len(ranked) > max_entities

    # -- identity --------------------------------------------------------------------------

    def known_ids(self, kind: str, ids: Sequence[str], from_us: int, to_us: int) -> set[str]:
        """Which of `ids` are stored already, in the live store or the archive: observations
        (`kind` "observations") whose time, or alerts ("alerts") whose creation, lies in
        [from_us, to_us). For imports that must not store a record twice."""
        return self._retrying(lambda: self._known_ids(kind, list(ids), from_us, to_us))

    def _known_ids(self, kind: str, ids: list[str], from_us: int, to_us: int) -> set[str]:
        if kind not in ("observations", "alerts"):
            raise ValueError(f"no history of '{kind}'")
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        with self.store.snapshot() as db:
            hot = db.execute(f"SELECT id FROM {kind} WHERE id IN ({marks})", ids).fetchall()
            files = mf.files(db, kind, from_us=from_us, to_us=to_us)
        found = {str(r[0]) for r in hot}
        result = self._archive(
            f"SELECT DISTINCT id FROM {FILES} WHERE id IN (SELECT unnest($ids))", files,
            {"ids": ids},
        )  # fmt: skip
        if result is not None:
            found.update(str(r[0]) for r in result.fetchall())
        return found

    # -- alerts ----------------------------------------------------------------------------

    def alerts(self, query: AlertQuery, *, limit: int, before: Cursor | None = None) -> Page:
        """Alerts matching `query`, newest first (created time, then id, descending), `limit`
        at most, before `before`."""
        return self._retrying(lambda: self._alerts(query, limit, before))

    def _alerts(self, query: AlertQuery, limit: int, before: Cursor | None) -> Page:
        end = min(query.to_us, before.time_us + 1 if before else query.to_us)
        with self.store.snapshot() as db:
            hot = [
                a for a in _hot_alerts(db, query.from_us, end) if query.matches(AlertFacts.of(a))
            ]
            files = mf.files(db, "alerts", from_us=query.from_us, to_us=end)
        clauses = ["created_at >= make_timestamp($from_us)::TIMESTAMPTZ",
                   "created_at < make_timestamp($to_us)::TIMESTAMPTZ"]  # fmt: skip
        args: dict[str, Any] = {"from_us": query.from_us, "to_us": end, "limit": limit}
        for name in ("unit", "app", "board", "status", "severity", "rule"):
            value = getattr(query, name)
            if value is not None:
                clauses.append(f"{name} = ${name}")
                args[name] = value
        if query.closed is not None:
            clauses.append(f"closed_at IS {'NOT ' if query.closed else ''}NULL")
        if before is not None:
            clauses.append(
                "(epoch_us(created_at) < $before_us OR (epoch_us(created_at) = $before_us"
                " AND id < $before_id))"
            )
            args.update(before_us=before.time_us, before_id=before.id)
        result = self._archive(
            f"SELECT record FROM {FILES} WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at DESC, id DESC LIMIT $limit",
            files,
            args,
        )
        cold = [Alert.model_validate_json(r[0]) for r in result.fetchall()] if result else []
        found = {a.id: a for a in [*cold, *hot]}.values()
        ordered = sorted(found, key=lambda a: (to_us(a.created_at), a.id), reverse=True)
        if before is not None:
            limit_key = (before.time_us, before.id)
            ordered = [a for a in ordered if (to_us(a.created_at), a.id) < limit_key]
        items = ordered[:limit]
        nxt = Cursor(to_us(items[-1].created_at), items[-1].id) if len(items) == limit else None
        return Page(items, nxt)

    def alert_facts(self, query: AlertQuery) -> list[AlertFacts]:
        """The facts of every alert matching `query` (for statistics), in no order. Facts of
        archive files (which never change) are kept in memory, `FACTS_CACHED` at most."""
        return self._retrying(lambda: self._alert_facts(query))

    def _alert_facts(self, query: AlertQuery) -> list[AlertFacts]:
        with self.store.snapshot() as db:
            hot = [AlertFacts.of(a) for a in _hot_alerts(db, query.from_us, query.to_us)]
            files = mf.files(db, "alerts", from_us=query.from_us, to_us=query.to_us)
        with self._facts_lock:
            missing = [f for f in files if f.path not in self._facts]
        if missing:
            result = self._archive(
                "SELECT filename, id, epoch_us(created_at), rule, app, board, unit, status,"
                " severity, response_s FROM"
                " read_parquet($files, filename = true, hive_partitioning = false)",
                missing,
                {},
            )
            loaded: dict[str, list[AlertFacts]] = {f.path: [] for f in missing}
            prefix = len(str(self.root)) + 1
            for filename, *values in result.fetchall():
                loaded[filename[prefix:]].append(AlertFacts(*values))
            with self._facts_lock:
                for path, facts in loaded.items():
                    self._facts[path] = facts
                    self._facts_count += len(facts)
                while self._facts_count > FACTS_CACHED and len(self._facts) > 1:
                    self._facts_count -= len(self._facts.popitem(last=False)[1])
        found = list(hot)
        with self._facts_lock:
            for item in files:
                cached = self._facts.get(item.path)
                if cached is None:  # evicted meanwhile: ask again
                    raise FilesChanged(item.path)
                self._facts.move_to_end(item.path)
                found.extend(cached)
        return [f for f in found if query.matches(f)]

    def stats(self, query: AlertQuery, by: str) -> list[dict[str, Any]]:
        """Alert figures per `by` (hour: UTC hour start as ISO text; unit; app; board): count,
        handled (closed: resolved or false alarm), handled ratio, dispatch → on-scene response
        times (count and median, s)."""
        return alert_figures(self.alert_facts(query), by)


def alert_figures(alerts: Iterable[AlertFacts], by: str) -> list[dict[str, Any]]:
    """See `HistoryReader.stats`; groups in key order (hours oldest first), None last."""
    groups: dict[str | None, list[AlertFacts]] = {}
    for alert in alerts:
        if by == "hour":
            start = from_us(alert.created_us - alert.created_us % 3_600_000_000)
            key: str | None = start.isoformat().replace("+00:00", "Z")
        else:
            key = getattr(alert, by)
        groups.setdefault(key, []).append(alert)
    figures = []
    for key in sorted(groups, key=lambda k: (k is None, k or "")):
        members = groups[key]
        handled = sum(1 for a in members if a.closed)
        responses = [a.response_s for a in members if a.response_s is not None]
        figures.append({
            "key": key, "count": len(members), "handled": handled,
            "handled_ratio": round(handled / len(members), 4),
            "responses": len(responses),
            "median_response_s": round(median(responses), 3) if responses else None,
        })  # fmt: skip
    return figures


# -- the live store's part -------------------------------------------------------------------


def _order_key(row: Sequence[object]) -> tuple[int, str]:
    return int(str(row[_TIME])), str(row[_ID])


def _pending_clause(db: Connection) -> tuple[str, list[object]]:
    """SQL leaving out rows of pending moves (they are read from their files)."""
    clause, args = "", list[object]()
    for move in mf.pending_moves(db):
        where, values = move.sql()
        clause += f" AND NOT {where}"
        args += values
    return clause, args


def _hot_filter(
    query: ObservationQuery, start_us: int, after: Cursor | None
) -> tuple[str, list[object]]:
    sql = " AND time_us >= ? AND time_us < ?"
    args: list[object] = [start_us, query.to_us]
    if after is not None:
        sql += " AND (time_us > ? OR (time_us = ? AND id > ?))"
        args += [after.time_us, after.time_us, after.id]
    if query.bbox is not None:
        sql += " AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?"
        args += [query.bbox[0], query.bbox[2], query.bbox[1], query.bbox[3]]
    for name in ("kind", "source"):
        if getattr(query, name) is not None:
            sql += f" AND {name} = ?"
            args.append(getattr(query, name))
    return sql, args


def _hot_observations(
    db: Connection, query: ObservationQuery, start_us: int, limit: int,
    after: Cursor | None,
) -> list[tuple[object, ...]]:  # fmt: skip
    """The store's first `limit` matching rows in (time, id) order: through the grid-cell
    index, a cell at a time, for a small box; else through the time index."""
    where, args = _hot_filter(query, start_us, after)
    pending, pending_args = _pending_clause(db)
    secs = (start_us // 1_000_000, (query.to_us - 1) // 1_000_000)
    select = f"SELECT {', '.join(RECORD_COLUMNS)} FROM observations"
    order = " ORDER BY sec, time_us, id LIMIT ?"
    cells = cells_in(*query.bbox) if query.bbox is not None else []
    if query.bbox is not None and len(cells) <= MAX_CELLS:
        per_cell = [
            db.execute(
                f"{select} WHERE cell = ? AND sec BETWEEN ? AND ?{where}{pending}{order}",
                [cell, *secs, *args, *pending_args, limit],
            ).fetchall()
            for cell in cells
        ]
        return list(heapq.merge(*per_cell, key=_order_key))[:limit]
    return db.execute(
        f"{select} WHERE sec BETWEEN ? AND ?{where}{pending}{order}",
        [*secs, *args, *pending_args, limit],
    ).fetchall()


def _hot_track(
    db: Connection, entity_id: str, from_us: int, to_us: int, limit: int
) -> list[tuple[object, ...]]:
    """The store's rows of one entity: one index probe per second of the range that the
    store holds (its range is the hot window, so at most that many probes)."""
    span = db.execute("SELECT min(sec), max(sec) FROM observations").fetchone()
    if span[0] is None:
        return []
    first = max(from_us // 1_000_000, int(span[0]))
    last = min((to_us - 1) // 1_000_000, int(span[1]))
    if first > last:
        return []
    pending, pending_args = _pending_clause(db)
    columns = ", ".join(f"o.{c}" for c in RECORD_COLUMNS)
    return db.execute(
        "WITH RECURSIVE s(x) AS (SELECT CAST(? AS BIGINT) UNION ALL SELECT x + 1 FROM s"
        " WHERE x < ?)"
        f" SELECT {columns} FROM s JOIN observations AS o ON o.sec = s.x AND o.entity_id = ?"
        f" WHERE o.time_us >= ? AND o.time_us < ?{pending.replace(' sec', ' o.sec')}"
        " ORDER BY o.time_us, o.id LIMIT ?",
        [first, last, entity_id, from_us, to_us, *pending_args, limit],
    ).fetchall()


def _hot_samples(db: Connection, query: ObservationQuery, step_us: int) -> list[tuple[Any, ...]]:
    """The store's last observation per entity and step (SQLite takes the other columns of
    the row holding the max; PostgreSQL picks that row with DISTINCT ON)."""
    where, args = _hot_filter(query, query.from_us, None)
    pending, pending_args = _pending_clause(db)
    secs = (query.from_us // 1_000_000, (query.to_us - 1) // 1_000_000)
    step = "(time_us - ?) / ?"
    if db.dialect == POSTGRES:
        sql = (
            f"SELECT DISTINCT ON (entity_id, {step}) entity_id, kind, cls, source, time_us, lon,"
            f" lat, height FROM observations WHERE sec BETWEEN ? AND ?{where}{pending}"
            f" ORDER BY entity_id, {step}, time_us DESC"
        )
        values = [query.from_us, step_us, *secs, *args, *pending_args, query.from_us, step_us]
    else:
        sql = (
            "SELECT entity_id, kind, cls, source, max(time_us), lon, lat, height FROM"
            f" observations WHERE sec BETWEEN ? AND ?{where}{pending} GROUP BY entity_id, {step}"
        )
        values = [*secs, *args, *pending_args, query.from_us, step_us]
    return db.execute(sql, values).fetchall()


def _hot_alerts(db: Connection, from_us: int, to_us: int) -> list[Alert]:
    rows = db.execute(
        "SELECT record FROM alerts WHERE created_s >= ? AND created_s < ?",
        (from_us / 1e6 - 1e-3, to_us / 1e6 + 1e-3),
    )
    return [Alert.model_validate_json(str(r[0])) for r in rows]


def _archive_filter(
    query: ObservationQuery, start_us: int, after: Cursor | None
) -> tuple[str, dict[str, Any]]:
    clauses = [
        "time >= make_timestamp($from_us)::TIMESTAMPTZ",
        "time < make_timestamp($to_us)::TIMESTAMPTZ",
    ]
    args: dict[str, Any] = {"from_us": start_us, "to_us": query.to_us}
    if after is not None:
        clauses.append(
            "(time > make_timestamp($after_us)::TIMESTAMPTZ OR (epoch_us(time) = $after_us"
            " AND id > $after_id))"
        )
        args.update(after_us=after.time_us, after_id=after.id)
    if query.bbox is not None:
        clauses.append("lon BETWEEN $minlon AND $maxlon AND lat BETWEEN $minlat AND $maxlat")
        args.update(minlon=query.bbox[0], minlat=query.bbox[1], maxlon=query.bbox[2],
                    maxlat=query.bbox[3])  # fmt: skip
    for name in ("kind", "source"):
        if getattr(query, name) is not None:
            clauses.append(f"{name} = ${name}")
            args[name] = getattr(query, name)
    return " AND ".join(clauses), args
