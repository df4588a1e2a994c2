"""The history mover: keeps the live store to its hot window and the archive to its retention
and disk budget (the server runs it in a process of its own: `scenes.history.process`).

Each pass (`HistoryMover.run_once`, also callable with a fake clock) moves observations older
than the hot window to GeoParquet files in bounded batches (see `scenes.history.manifest` for
how a move stays exact through a crash), moves alerts closed longer ago than the hot window,
merges partitions that stopped filling into one file sorted by track and time, removes unseen
entities, expired crops, hits and partitions, and enforces the disk budget. Only one process
moves a workspace at a time (an advisory lock on ``history/.lock``); another process's mover
waits for the lock and takes over when the holder dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow.parquet as pq

from scenes import pgschema
from scenes.db import DB_ERRORS, POSTGRES, Connection, StoreUnavailable
from scenes.history import manifest as mf
from scenes.history.files import (
    TMP_PREFIX,
    WrittenFile,
    clear_temporary,
    compact,
    remove_tree_if_empty,
    write_table,
)
from scenes.history.layout import (
    HOUR_S,
    KINDS,
    alert_table,
    hour_of,
    observation_table,
    partition_dir,
)
from scenes.history.policy import WARN_RATIO, HistoryPolicy
from scenes.models import Alert
from scenes.rows import OBSERVATION_COLUMNS
from scenes.store import LiveStore

log = logging.getLogger("twin.scenes")
LOCK_FILE = ".lock"
PG_LOCK_KEY = 8_151_055  # the mover's advisory lock when the store is in PostgreSQL
ALERT_BATCH = 200
DUCKDB_MEMORY = "256MB"
MEASURE_EVERY_S = 60.0  # how often the workspace is measured against the disk budget
PARTITIONS_EVERY_S = 3600.0  # how often PostgreSQL's day partitions are made and dropped
EVALUATED_KEPT_S = 86_400.0  # how long the rules stream's evaluated batches are remembered
_SEC = OBSERVATION_COLUMNS.index("sec")
_ORDER = {"observations": "entity_id, time, id", "alerts": "created_at, id"}
_TIME_COLUMN = {"observations": "time", "alerts": "created_at"}


@dataclass
class MoverStatus:
    """What the mover has done and sees (for /healthz and the logs). Bytes are on disk."""

    active: bool = False
    passes: int = 0
    observations_moved: int = 0
    alerts_moved: int = 0
    compactions: int = 0
    partitions_dropped: int = 0
    day_partitions_made: int = 0  # PostgreSQL's observation partitions
    day_partitions_dropped: int = 0
    entities_expired: int = 0
    longest_delete_ms: float = 0.0
    workspace_bytes: int = 0
    archive_bytes: int = 0
    archive_files: int = 0
    budget_bytes: int | None = None
    warning: str | None = None
    last_pass_s: float | None = None
    last_error: str | None = None
    errors: int = 0
    _warned: bool = field(default=False, repr=False)


def tree_bytes(root: Path) -> int:
    """Bytes of every file under `root` (not following links)."""
    total = 0
    stack = [root]
    while stack:
        with suppress(FileNotFoundError, NotADirectoryError), os.scandir(stack.pop()) as it:
            for entry in it:
                with suppress(FileNotFoundError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
    return total


class HistoryMover:
    """Moves the live store's old rows of workspace `workspace` into its archive ``root``
    under `policy`. `clock` gives epoch seconds (the thread's notion of now)."""

    def __init__(
        self,
        store: LiveStore,
        root: Path,
        workspace: Path,
        policy: HistoryPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.root, self.workspace = store, Path(root), Path(workspace)
        self.policy, self.clock = policy, clock
        self.status = MoverStatus(budget_bytes=policy.disk_budget_bytes)
        self._lock_file: IO[bytes] | None = None
        self._reader: Connection | None = None
        self._lock_db: Connection | None = None
        self._measured_s: float | None = None
        self._partitioned_s: float | None = None
        self._duck: duckdb.DuckDBPyConnection | None = None

    # -- life cycle ------------------------------------------------------------------------

    def run_forever(
        self,
        wait: Callable[[float], bool],
        on_pass: Callable[[MoverStatus], None] = lambda status: None,
    ) -> None:
        """Run passes until ``wait(seconds)`` (the pause before the next one) returns True,
        then release the lock. A pass that fails is logged and the next one tries again;
        `on_pass` gets the status after every pass (and while another process holds the lock)."""
        delay = 0.0
        try:
            while not wait(delay):
                delay = self.policy.interval_s
                if self.acquire():
                    try:
                        if self.run_once(self.clock()):
                            delay = 0.0
                    except Exception as exc:  # a bad pass must not end the mover
                        log.exception("history mover pass failed")
                        self.status.errors += 1
                        self.status.last_error = f"{type(exc).__name__}: {exc}"
                        clear_temporary(self.root)
                on_pass(self.status)
        finally:
            self.release()

    def acquire(self) -> bool:
        """Take the mover lock (without waiting) and, when newly taken, finish what a crashed
        holder left; False when another process holds it. The lock is a file lock on
        ``history/.lock`` for a SQLite store, and a PostgreSQL advisory lock (held by a
        connection of its own) for a store there: several hosts share one database and must
        share one mover."""
        if self._lock_file is not None or self._lock_db is not None:
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        if self.store.dialect == POSTGRES:
            db = self.store.connect()
            if not db.execute("SELECT pg_try_advisory_lock(?)", (PG_LOCK_KEY,)).fetchone()[0]:
                db.close()
                return False
            self._lock_db = db
        else:
            handle = open(self.root / LOCK_FILE, "ab")  # noqa: SIM115 - held while moving
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._lock_file = handle
        self.status.active = True
        self.recover()
        return True

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the lock
            self._lock_file = None
        if self._lock_db is not None:
            with suppress(*DB_ERRORS, StoreUnavailable):
                self._lock_db.close()  # closing drops the advisory lock
            self._lock_db = None
        self.status.active = False
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    def recover(self) -> None:
        """Finish pending moves and delete what crashes left behind: half-written files and
        files the manifest does not list."""
        removed = clear_temporary(self.root)
        with self.store.snapshot() as db:
            pending = mf.pending_moves(db)
            listed = mf.all_paths(db)
        for move in pending:
            self._finish(move)
        orphans = [
            path
            for kind in KINDS
            for path in sorted((self.root / kind).rglob("*.parquet"))
            if not path.name.startswith(".")
            and path.relative_to(self.root).as_posix() not in listed
        ]
        for path in orphans:
            path.unlink()
            remove_tree_if_empty(path.parent, self.root)
        if removed or orphans or pending:
            log.warning(
                "history: recovered %d pending move(s), deleted %d half-written and %d unlisted"
                " file(s)", len(pending), removed, len(orphans),
            )  # fmt: skip

    # -- one pass --------------------------------------------------------------------------

    def run_once(self, now: float) -> bool:
        """One pass at epoch seconds `now`; True when observations are still due (the next
        pass should follow at once)."""
        policy = self.policy
        cutoff = now - policy.hot_s
        more = self._move_observations(int(cutoff // 1))
        self._move_alerts(cutoff)
        self._compact(now, int(cutoff // 1))
        self._expire(now)
        self._retain(now)
        if self.store.dialect == POSTGRES and (
            self._partitioned_s is None or now - self._partitioned_s >= PARTITIONS_EVERY_S
        ):
            self._partitioned_s = now
            self._keep_partitions(now, cutoff)
        if self._measured_s is None or now - self._measured_s >= MEASURE_EVERY_S:
            self._measured_s = now
            self._enforce_budget()
        with self.store.snapshot() as db:
            self.status.archive_files, self.status.archive_bytes = mf.totals(db)
        self.status.passes += 1
        self.status.last_pass_s = now
        return more

    def _keep_partitions(self, now: float, cutoff: float) -> None:
        """PostgreSQL: make the day partitions of yesterday and the coming days, drop the empty
        ones wholly before both `cutoff` and yesterday (their rows are in the archive); epoch
        seconds."""
        today = int(now // pgschema.DAY_S) * pgschema.DAY_S
        with self.store.transaction() as db:
            made = pgschema.ensure_partitions(db, datetime.fromtimestamp(now, UTC))
            dropped = pgschema.drop_empty_days(db, min(cutoff, today - pgschema.DAY_S))
        self.status.day_partitions_made += made
        self.status.day_partitions_dropped += len(dropped)
        if made or dropped:
            log.info("day partitions: %d made, %s dropped", made, ", ".join(dropped) or "none")

    def _connection(self) -> Connection:
        if self._reader is None:
            self._reader = self.store.connect()
        return self._reader

    def _move_observations(self, before_sec: int, *, batches: int = 8) -> bool:
        """Move up to `batches` batches of due observations; True when some are left."""
        for _ in range(batches):
            due = mf.due_observations(self._connection(), before_sec, self.policy.batch_rows)
            if due is None:
                return False
            move = mf.Move(uuid.uuid4().hex, due.below_sec, due.below_rid)
            listed = self._write_partitions(move, due.rows)
            with self.store.transaction() as db:
                mf.begin_move(db, move, listed)
            self._finish(move, due.rids)
            self.status.observations_moved += len(due.rows)
        return True

    def _write_partitions(
        self, move: mf.Move, rows: Sequence[tuple[Any, ...]]
    ) -> list[mf.ArchiveFile]:
        """Write `rows` into one file per UTC hour; their listings (not yet listed)."""
        now = self.clock()
        written: list[mf.ArchiveFile] = []
        try:
            # Rows come oldest second first: each hour's rows are together.
            for hour, group in groupby(rows, key=lambda r: hour_of(r[_SEC])):
                final = partition_dir(self.root, "observations", hour) / f"{move.id}.parquet"
                done = write_table(observation_table(list(group)), final, time_column="time")
                listed = mf.listing(
                    done, self.root, "observations", hour, now=now, compacted=False,
                    move_id=move.id,
                )  # fmt: skip
                written.append(listed)
        except BaseException:
            for item in written:
                with suppress(FileNotFoundError):
                    (self.root / item.path).unlink()
            raise
        return written

    def _finish(self, move: mf.Move, rids: Sequence[int] | None = None) -> None:
        """Delete `move`'s rows from the live store a chunk at a time — by their `rids`, or
        (a move a crash left pending) by the ids its files hold — then mark it done."""
        with self.store.snapshot() as db:
            files = mf.move_files(db, move)
        missing = [f.path for f in files if not (self.root / f.path).is_file()]
        if missing:  # written and synced before listing: only a damaged disk gets here
            log.error("history: move %s lost file(s) %s", move.id, missing)
            with self.store.transaction() as db:
                mf.remove_files(db, missing)
        column, values = ("rid", list(rids)) if rids is not None else ("id", self._ids(files))
        chunk = self.policy.delete_chunk
        for start in range(0, len(values), chunk):
            with self.store.transaction() as db:
                began = time.perf_counter()
                mf.delete_rows(db, column, values[start : start + chunk])
                held_ms = (time.perf_counter() - began) * 1000.0  # the commit's fsync aside
            self.status.longest_delete_ms = max(self.status.longest_delete_ms, held_ms)
            time.sleep(0.001)  # let waiting ingest commits in first
        with self.store.transaction() as db:
            mf.finish_move(db, move)

    def _ids(self, files: Sequence[mf.ArchiveFile]) -> list[object]:
        """The observation ids the listed `files` hold (those still on disk)."""
        ids: list[object] = []
        for item in files:
            path = self.root / item.path
            if path.is_file():
                ids.extend(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        return ids

    def _move_alerts(self, closed_before_s: float) -> None:
        while True:
            alerts = mf.due_alerts(self._connection(), closed_before_s, ALERT_BATCH)
            if not alerts:
                return
            now = self.clock()
            written: list[mf.ArchiveFile] = []
            name = f"{uuid.uuid4().hex}.parquet"
            try:
                for hour, group in groupby(
                    sorted(alerts, key=lambda a: a.created_at),
                    key=lambda a: hour_of(a.created_at.timestamp()),
                ):
                    done = self._write_alerts(list(group), hour, name)
                    listed = mf.listing(done, self.root, "alerts", hour, now=now, compacted=False)
                    written.append(listed)
                with self.store.transaction() as db:
                    mf.archive_alerts(db, written, [a.id for a in alerts])
            except BaseException:
                for item in written:
                    with suppress(FileNotFoundError):
                        (self.root / item.path).unlink()
                raise
            self.status.alerts_moved += len(alerts)

    def _write_alerts(self, alerts: list[Alert], hour: int, name: str) -> WrittenFile:
        final = partition_dir(self.root, "alerts", hour) / name
        return write_table(alert_table(alerts), final, time_column="created_at")

    # -- compaction, expiry, retention -----------------------------------------------------

    def _partitions(self, kind: str) -> Iterator[tuple[int, list[mf.ArchiveFile]]]:
        with self.store.snapshot() as db:
            listed = mf.files(db, kind)
        for hour, group in groupby(listed, key=lambda f: f.hour_s):
            yield hour, list(group)

    def _compact(self, now: float, cutoff_sec: int) -> None:
        """Merge each partition that stopped filling (`compact_delay_s`; for observations,
        only once its hour is past the hot window) into one file; in a partition still
        filling, merge the new files once there are more than `compact_after_files` (each row
        is merged about twice, however long the hour)."""
        policy = self.policy
        for kind in KINDS:
            for hour, files in self._partitions(kind):
                if any(f.move_id for f in files):
                    continue
                settled = max(f.created_s for f in files) <= now - policy.compact_delay_s
                closed = kind == "alerts" or hour + HOUR_S <= cutoff_sec
                fresh = [f for f in files if not f.compacted]
                if closed and settled and (len(files) > 1 or fresh):
                    self._merge(kind, hour, files, now)
                elif len(fresh) > policy.compact_after_files:
                    self._merge(kind, hour, fresh, now)

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self._duck is None:
            spill = self.root / f"{TMP_PREFIX}duckdb"
            self._duck = duckdb.connect(
                config={
                    "memory_limit": DUCKDB_MEMORY,
                    "threads": "1",
                    "temp_directory": str(spill),
                    "preserve_insertion_order": "false",
                }
            )
        return self._duck

    def _merge(self, kind: str, hour: int, files: list[mf.ArchiveFile], now: float) -> None:
        final = partition_dir(self.root, kind, hour) / f"{uuid.uuid4().hex}.parquet"
        done = compact(
            [self.root / f.path for f in files], final, order=_ORDER[kind],
            time_column=_TIME_COLUMN[kind], con=self._duckdb(),
        )  # fmt: skip
        merged = mf.listing(done, self.root, kind, hour, now=now, compacted=True)
        with self.store.transaction() as db:
            mf.remove_files(db, [f.path for f in files])
            mf.add_files(db, [merged])
        for item in files:
            with suppress(FileNotFoundError):
                (self.root / item.path).unlink()
        self.status.compactions += 1

    def _expire(self, now: float) -> None:
        policy = self.policy
        for what, before in (
            ("entities", now - policy.entity_ttl_s),
            ("crops", now - policy.alert_retention_s),
            ("hits", now - policy.alert_retention_s),
            ("evaluated", now - EVALUATED_KEPT_S),
        ):
            while True:
                with self.store.transaction() as db:
                    gone = mf.expire(db, what, before, policy.delete_chunk)
                if what == "entities":
                    self.status.entities_expired += gone
                if gone < policy.delete_chunk:
                    break

    def _drop(self, files: Sequence[mf.ArchiveFile]) -> None:
        with self.store.transaction() as db:
            mf.remove_files(db, [f.path for f in files])
        for item in files:
            path = self.root / item.path
            with suppress(FileNotFoundError):
                path.unlink()
            remove_tree_if_empty(path.parent, self.root)
        self.status.partitions_dropped += 1

    def _retain(self, now: float) -> None:
        keep = {"observations": self.policy.retention_s, "alerts": self.policy.alert_retention_s}
        for kind in KINDS:
            for hour, files in self._partitions(kind):
                if hour + HOUR_S > now - keep[kind]:
                    break
                if not any(f.move_id for f in files):
                    log.info("history: %s of %s past retention: deleted", kind, files[0].path)
                    self._drop(files)

    def _enforce_budget(self) -> None:
        """Measure the workspace; past the budget, delete the oldest observation partitions
        until it fits (the live store and the tiles are never touched)."""
        status = self.status
        used = tree_bytes(self.workspace)
        budget = self.policy.disk_budget_bytes
        if budget is not None and used > budget:
            for _, files in self._partitions("observations"):
                if used <= budget:
                    break
                if any(f.move_id for f in files):
                    continue
                freed = sum(f.bytes for f in files)
                log.warning(
                    "history: workspace %.2f GB over its %.2f GB budget: deleted %s (%d bytes)",
                    used / 1e9, budget / 1e9, Path(files[0].path).parent, freed,
                )  # fmt: skip
                self._drop(files)
                used -= freed
        status.workspace_bytes = used
        self._warn(used, budget)

    def _warn(self, used: int, budget: int | None) -> None:
        status = self.status
        if budget is None or used < WARN_RATIO * budget:
            status.warning, status._warned = None, False
            return
        status.warning = (
            f"workspace uses {used / 1e9:.2f} GB, {100 * used / budget:.0f} % of its"
            f" {budget / 1e9:.2f} GB disk budget"
        )
        if not status._warned:
            log.warning("history: %s", status.warning)
            status._warned = True
