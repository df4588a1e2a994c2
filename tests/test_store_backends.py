"""One live-store contract on both engines: SQLite in a temporary folder and a real PostgreSQL 15
(bench/engines.py): every write is read back the same, alerts move along their life cycle, the
history mover archives and the reader pages the two tiers exactly once, and concurrent saves
share commits. Run by both backends, so they cannot drift apart."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.engines import Postgres
from scenes.errors import AlertNotFound, AlertTransitionError
from scenes.history import HistoryMover, HistoryPolicy, HistoryReader, ObservationQuery
from scenes.models import Alert, AlertStatus, Observation
from scenes.rows import to_us
from scenes.store import AlertFilter, BBox, LiveStore
from scenes.watchlist import Hit

NOW = datetime.now(UTC).replace(microsecond=123456)
CAMERA = "camera:cam-bund-road"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where the store lives: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "live.sqlite"
    database: str = request.getfixturevalue("database")
    return database


@pytest.fixture
def store(target: str | Path) -> Iterator[LiveStore]:
    live = LiveStore(target)
    yield live
    live.close()


def obs(i: int, at: datetime = NOW, track: str = "7", **kw: object) -> Observation:
    return Observation.model_validate(
        {"id": f"o{i:06d}", "kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": track,
         "lon": 121.4866 + i * 1e-6, "lat": 31.2395, "height": 1.5, "confidence": 0.75,
         "time": at.isoformat(), "attributes": {"plate_hash": "h" * 8, "名": i}, **kw}
    )  # fmt: skip


def alert(alert_id: str, *, unit: str = "Bund PS", at: datetime = NOW) -> Alert:
    return Alert(id=alert_id, rule="lane", app="closed-zone", board="public-order",
                 title="车辆闯入", lon=121.4866, lat=31.2395, unit=unit, created_at=at,
                 observation_ids=["o000001"], entity_id=f"{CAMERA}/7")  # fmt: skip


def test_writes_read_back_alike(store: LiveStore) -> None:
    batch = [obs(i) for i in range(5)]
    hit = Hit(time_s=NOW.timestamp(), list="suspended-licences", hash="x" * 64, masked="沪A***",
              observation_id="o000001", source=CAMERA, lon=1.0, lat=2.0, alert_id="a1")  # fmt: skip
    records = store.save(batch, [alert("a1")], received_s=NOW.timestamp(),
                         crops={"a1": b"\xff\xd8jpeg\x00bytes"}, hits=[hit])  # fmt: skip
    assert [r.entity.id for r in records] == [f"{CAMERA}/7"] * 5
    [entity] = store.entities(received_since_s=NOW.timestamp() - 1)
    assert entity.lon == batch[4].lon  # the latest of equal times
    assert store.save([obs(0)], [], received_s=NOW.timestamp())  # a resend adds nothing
    assert store.count_observations() == 5
    got = store.observations_by_id(["o000002", "nope"])
    assert got == {"o000002": batch[2]}  # every field back, the time to the microsecond
    near = store.observations_in(BBox(121.486, 31.239, 121.487, 31.240), limit=3)
    assert len(near) == 3 and {o.id for o in near} <= {o.id for o in batch}
    assert store.alert_crop("a1") == b"\xff\xd8jpeg\x00bytes"
    assert store.watchlist_hits() == [hit]
    store.save_app_settings("crowd", False, {"min_count": 9})
    assert store.app_settings() == {"crowd": (False, {"min_count": 9})}


def test_alert_life_cycle_alike(store: LiveStore) -> None:
    store.save([], [alert("a1"), alert("a2", unit="Other PS")], received_s=NOW.timestamp())
    assert store.transition("a1", AlertStatus.acknowledged, by="op").acknowledged_by == "op"
    with pytest.raises(AlertTransitionError):
        store.transition("a1", AlertStatus.acknowledged, by="op")
    with pytest.raises(AlertNotFound):
        store.transition("nope", AlertStatus.resolved, by="op")
    store.transition("a2", AlertStatus.resolved, by="op")
    items, total = store.alerts(AlertFilter(unit="Bund PS"))
    assert total == 1 and items[0].status is AlertStatus.acknowledged
    assert [a.id for a in store.open_alerts()] == ["a1"]
    assert {a.id for a in store.alerts_since(NOW.timestamp() - 5)} == {"a1", "a2"}
    assert store.get_alert("a2").resolved_by == "op"


def test_concurrent_saves_share_commits(store: LiveStore) -> None:
    threads = [
        threading.Thread(target=store.save, args=([obs(1000 * t + i, track=str(t))
                                                    for i in range(50)], []),
                         kwargs={"received_s": NOW.timestamp()})
        for t in range(8)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.count_observations() == 400 and store.saves == 8


def test_history_moves_and_pages_alike(store: LiveStore, tmp_path: Path) -> None:
    start = NOW - timedelta(hours=2)
    batch = [obs(i, at=start + timedelta(seconds=i * 7)) for i in range(900)]
    for chunk in range(0, 900, 250):
        store.save(batch[chunk : chunk + 250], [], received_s=NOW.timestamp())
    policy = HistoryPolicy(hot_s=3600.0, batch_rows=200, delete_chunk=70)
    mover = HistoryMover(store, tmp_path / "history", tmp_path, policy)
    assert mover.acquire()
    try:
        while mover.run_once(NOW.timestamp()):
            pass
        assert 0 < store.count_observations() < 900  # the last hour stays hot
        reader = HistoryReader(store, tmp_path / "history")
        query = ObservationQuery(to_us(start - timedelta(minutes=1)), to_us(NOW))
        seen: list[str] = []
        after = None
        while True:
            page = reader.observations(query, limit=77, after=after)
            seen += [o.id or "" for o in page.items]
            if page.next is None:
                break
            after = page.next
        assert seen == [o.id for o in batch]
        track = reader.track(f"{CAMERA}/7", query.from_us, query.to_us, limit=10_000)
        assert [o.id for o in track] == [o.id for o in batch]
        reader.close()
    finally:
        mover.release()


def test_one_mover_per_store(store: LiveStore, tmp_path: Path) -> None:
    """A file lock for SQLite, an advisory lock for PostgreSQL (movers on several hosts)."""
    policy = HistoryPolicy()
    first = HistoryMover(store, tmp_path / "a" / "history", tmp_path / "a", policy)
    second = HistoryMover(store, (tmp_path / "a" if store.dialect == "sqlite" else tmp_path / "b")
                          / "history", tmp_path / "b", policy)  # fmt: skip
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_day_partitions_follow_the_clock(database: str, tmp_path: Path) -> None:
    """PostgreSQL only: the mover makes the coming days' partitions and drops the days it
    emptied into the archive; a late row of a dropped day lands in the default partition."""
    store = LiveStore(database)
    old_day = NOW - timedelta(days=5)
    store.save([obs(1, at=old_day)], [], received_s=NOW.timestamp())  # default partition
    later = NOW + timedelta(days=4)
    mover = HistoryMover(store, tmp_path / "history", tmp_path, HistoryPolicy(hot_s=3600.0))
    assert mover.acquire()
    try:
        mover.run_once(later.timestamp())
        names = {row[0] for row in store.connect().execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'observations'"
        ).fetchall()}  # fmt: skip
        days = {later.date() + timedelta(days=d) for d in range(-1, 4)}
        assert {f"observations_{d:%Y%m%d}" for d in days} <= names
        assert f"observations_{NOW:%Y%m%d}" not in names  # emptied into the archive, dropped
        assert mover.status.day_partitions_made == 4 and mover.status.day_partitions_dropped >= 1
        store.save([obs(2, at=NOW)], [], received_s=later.timestamp())  # a late row still fits
        assert store.count_observations() == 1
    finally:
        mover.release()
        store.close()


def test_servers_starting_at_once_migrate_once(postgres: Postgres) -> None:
    """PostgreSQL only: stores opened at the same moment on new databases (the workers of
    `twin serve --workers N` starting) all open, and each schema step runs once."""
    for round_ in range(3):
        database = postgres.create_database(f"at_once_{os.getpid()}_{round_}")
        start = time.time() + 4  # all six at once, once their interpreters are up
        with ProcessPoolExecutor(6, mp_context=multiprocessing.get_context("spawn")) as pool:
            versions = list(pool.map(_open_store, [database] * 6, [start] * 6))
        assert versions == [[1, 2]] * 6


def _open_store(database: str, start: float) -> list[int]:
    """Open the store at epoch seconds `start` (in a process of its own); the schema versions
    it finds recorded."""
    time.sleep(max(0.0, start - time.time()))
    store = LiveStore(database)
    try:
        rows = store.connect().execute("SELECT version FROM schema_migrations").fetchall()
        return sorted(int(row[0]) for row in rows)
    finally:
        store.close()
