"""scenes.history: the mover (hot window, archive files, compaction, expiry, retention, disk
budget) on a fake clock, the reader over the live store and the archive as one (cursor paging
across the boundary, tracks, alerts, figures, replay), GeoParquet read back by pyarrow and
geopandas alone, migrations, and the WAL bound. Real SQLite, real files, no sleeps."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from scenes.history import (
    AlertQuery,
    Cursor,
    HistoryMover,
    HistoryPolicy,
    HistoryReader,
    ObservationQuery,
)
from scenes.history import manifest as mf
from scenes.lifecycle import transition
from scenes.migrations import _V1, VERSION, _statements
from scenes.models import Alert, AlertStatus, Observation
from scenes.rows import to_us
from scenes.store import LiveStore

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CAMERA = "camera:cam-bund-road"
HOT = HistoryPolicy(hot_s=3600.0, entity_ttl_s=600.0, batch_rows=400, delete_chunk=50,
                    compact_delay_s=60.0)  # fmt: skip


def observation(i: int, at: datetime, *, track: int | None = None, lon: float = 121.49,
                lat: float = 31.24, kind: str = "person") -> Observation:  # fmt: skip
    return Observation.model_validate(
        {"id": f"{to_us(at):016x}-{i:06d}", "kind": kind, "cls": kind, "source": CAMERA,
         "track_id": str(i % 7 if track is None else track), "lon": lon, "lat": lat,
         "height": 4.25, "confidence": 0.5 + (i % 50) / 100, "time": at,
         "attributes": {"n": i, "名": "外滩"}}
    )  # fmt: skip


def spread(count: int, start: datetime, end: datetime, seed: int = 1) -> list[Observation]:
    """`count` observations at random times in [start, end) over a ~900 × 700 m box."""
    rnd = random.Random(seed)
    span = (end - start).total_seconds()
    items = []
    for i in range(count):
        at = start + timedelta(seconds=rnd.random() * span)
        lon = 121.484 + rnd.random() * 0.009
        lat = 31.236 + rnd.random() * 0.007
        items.append(observation(i + seed * 1_000_000, at, lon=lon, lat=lat))
    return items


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


class History:
    """A store, its mover and reader in a temporary workspace."""

    def __init__(self, root: Path, policy: HistoryPolicy = HOT, when: datetime = NOW) -> None:
        self.ws = root
        self.ws.mkdir(exist_ok=True)
        self.store = LiveStore(root / "live.sqlite")
        self.clock = Clock(when)
        self.mover = HistoryMover(self.store, root / "history", root, policy, clock=self.clock)
        self.reader = HistoryReader(self.store, root / "history")
        assert self.mover.acquire()

    def save(self, items: list[Observation], alerts: list[Alert] | None = None,
             received: datetime | None = None) -> None:  # fmt: skip
        received_s = (received or NOW).timestamp()
        for start in range(0, len(items), 250):
            self.store.save(items[start : start + 250], [], received_s=received_s)
        if alerts:
            self.store.save([], alerts, received_s=received_s)

    def run(self, when: datetime | None = None) -> None:
        if when is not None:
            self.clock.now = when.timestamp()
        while self.mover.run_once(self.clock.now):
            pass

    def all_ids(self, start: datetime, end: datetime, limit: int = 97) -> list[str]:
        """Every id by cursor paging over [start, end)."""
        query = ObservationQuery(to_us(start), to_us(end))
        ids: list[str] = []
        after = None
        while True:
            page = self.reader.observations(query, limit=limit, after=after)
            ids += [o.id or "" for o in page.items]
            if page.next is None:
                return ids
            after = page.next

    def hot_ids(self) -> set[str]:
        with self.store.snapshot() as db:
            return {r[0] for r in db.execute("SELECT id FROM observations")}

    def files(self, kind: str = "observations") -> list[mf.ArchiveFile]:
        with self.store.snapshot() as db:
            return mf.files(db, kind)

    def close(self) -> None:
        self.mover.release()
        self.reader.close()
        self.store.close()


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "ws")
    yield h
    h.close()


def archive_table(root: Path) -> ds.Dataset:
    return ds.dataset(root / "history" / "observations", format="parquet", partitioning="hive")


# -- the mover -------------------------------------------------------------------------------


def test_mover_keeps_the_hot_window_and_archives_the_rest(history: History) -> None:
    items = spread(3000, NOW - timedelta(hours=3), NOW)
    history.save(items)
    history.run()
    cutoff = NOW - timedelta(hours=1)
    old = {o.id for o in items if o.time < cutoff}
    young = {o.id for o in items if o.time >= cutoff}
    assert history.hot_ids() == young
    # One folder per UTC hour of observation time, every file listed, no pending move.
    folders = sorted(
        p.relative_to(history.ws / "history" / "observations").as_posix()
        for p in (history.ws / "history" / "observations").glob("date=*/hour=*")
    )
    assert folders == ["date=2026-12-04/hour=09", "date=2026-12-04/hour=10"]
    listed = history.files()
    assert {(history.ws / "history" / f.path) for f in listed} == set(
        (history.ws / "history" / "observations").rglob("*.parquet")
    )
    with history.store.snapshot() as db:
        assert mf.pending_moves(db) == []
    # pyarrow alone reads back every moved observation, exactly once, fields intact.
    table = archive_table(history.ws).to_table()
    assert table.num_rows == len(old) and set(table.column("id").to_pylist()) == old
    by_id = {o.id: o for o in items}
    row = table.slice(0, 1).to_pylist()[0]
    source = by_id[row["id"]]
    assert row["time"] == source.time and row["lon"] == source.lon and row["lat"] == source.lat
    assert row["height"] == 4.25 and row["confidence"] == source.confidence
    assert row["entity_id"] == source.entity_id
    assert row["attributes"] == f'{{"n": {source.attributes["n"]}, "名": "外滩"}}'
    assert history.mover.status.observations_moved == len(old)


def test_archive_is_geoparquet_that_geopandas_reads(history: History) -> None:
    items = spread(500, NOW - timedelta(hours=2, minutes=30), NOW - timedelta(hours=1, minutes=5))
    history.save(items)
    history.run()
    [one] = list((history.ws / "history" / "observations").rglob("*.parquet"))[:1]
    metadata = pq.read_schema(one).metadata
    geo = __import__("json").loads(metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Point"]
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 4326}
    frame = geopandas.read_parquet(history.ws / "history" / "observations")
    assert len(frame) == len(items) and frame.crs.to_epsg() == 4326
    by_id = {o.id: o for o in items}
    for _, record in frame.head(20).iterrows():
        source = by_id[record["id"]]
        assert record.geometry.x == source.lon and record.geometry.y == source.lat
    own = pq.read_table(one)
    lons, lats = own.column("lon").to_pylist(), own.column("lat").to_pylist()
    assert column["bbox"] == [min(lons), min(lats), max(lons), max(lats)]


def test_closed_hours_are_merged_sorted_by_track_without_duplicates(history: History) -> None:
    start = NOW - timedelta(hours=3)
    first = spread(900, start, start + timedelta(minutes=50), seed=1)
    history.save(first)
    history.run(NOW - timedelta(hours=1, minutes=55))  # moves part of hour 09 only
    second = spread(400, start + timedelta(minutes=50), start + timedelta(minutes=59), seed=2)
    history.save(second + first[:5])  # five resent: ignored while hot, else dropped at merge
    history.run(NOW - timedelta(minutes=50))
    hour = [f for f in history.files() if f.hour_s == to_us(start) // 1_000_000]
    assert len(hour) > 1 and not any(f.compacted for f in hour)  # files too young to merge
    history.run(NOW)
    [merged] = [f for f in history.files() if f.hour_s == to_us(start) // 1_000_000]
    assert merged.compacted and merged.rows == 1300
    table = pq.read_table(history.ws / "history" / merged.path)
    keys = list(zip(table.column("entity_id").to_pylist(), table.column("time").to_pylist(),
                    strict=True))  # fmt: skip
    assert keys == sorted(keys) and len(set(table.column("id").to_pylist())) == 1300
    assert history.mover.status.compactions >= 1


def test_entities_expire_and_alerts_move_once_closed(history: History) -> None:
    seen_long_ago = [observation(1, NOW - timedelta(minutes=30), track=1)]
    seen_now = [observation(2, NOW - timedelta(seconds=5), track=2)]
    history.save(seen_long_ago, received=NOW - timedelta(minutes=20))
    history.save(seen_now, received=NOW)
    alerts = [
        Alert(id=f"a{i}", rule="r", app="app1", board="basic", title="t", lon=121.49,
              lat=31.24, unit="Bund", created_at=NOW - timedelta(hours=5, minutes=i))
        for i in range(3)
    ]  # fmt: skip
    history.store.save([], alerts, received_s=NOW.timestamp(), crops={"a0": b"jpeg"})
    closed_at = NOW - timedelta(hours=2)
    for alert_id in ("a0", "a1"):
        closed = transition(history.store.get_alert(alert_id), AlertStatus.false_alarm, by="op",
                            at=closed_at)  # fmt: skip
        with history.store.transaction() as db:
            db.execute("UPDATE alerts SET status=?, record=?, closed_s=? WHERE id=?",
                       (closed.status.value, closed.model_dump_json(), closed_at.timestamp(),
                        alert_id))  # fmt: skip
    history.run()
    live = {e.id for e in history.store.entities(received_since_s=0)}
    assert live == {f"{CAMERA}/2"}
    assert [a.id for a in history.store.open_alerts()] == ["a2"]  # open alerts stay hot
    assert history.store.alert_crop("a0") == b"jpeg"  # crops stay until alert retention
    frame = geopandas.read_parquet(history.ws / "history" / "alerts")
    assert sorted(frame["id"]) == ["a0", "a1"] and set(frame["status"]) == {"false_alarm"}
    assert all(frame["closed_at"] == closed_at)
    page = history.reader.alerts(AlertQuery(to_us(NOW - timedelta(days=1)), to_us(NOW)), limit=10)
    assert [a.id for a in page.items] == ["a0", "a1", "a2"] and page.next is None
    assert page.items[0].status is AlertStatus.false_alarm and page.items[0].false_alarm_by == "op"
    by_status = history.reader.alerts(
        AlertQuery(to_us(NOW - timedelta(days=1)), to_us(NOW), status="false_alarm"), limit=1
    )
    assert [a.id for a in by_status.items] == ["a0"] and by_status.next is not None
    rest = history.reader.alerts(
        AlertQuery(to_us(NOW - timedelta(days=1)), to_us(NOW), status="false_alarm"),
        limit=1, before=by_status.next,
    )  # fmt: skip
    assert [a.id for a in rest.items] == ["a1"]
    still_open = AlertQuery(to_us(NOW - timedelta(days=1)), to_us(NOW), closed=False)
    assert [a.id for a in history.reader.alerts(still_open, limit=10).items] == ["a2"]
    closed_query = replace(still_open, closed=True)
    assert [a.id for a in history.reader.alerts(closed_query, limit=10).items] == ["a0", "a1"]
    [unit] = history.reader.stats(AlertQuery(to_us(NOW - timedelta(days=1)), to_us(NOW)), "unit")
    assert unit == {"key": "Bund", "count": 3, "handled": 2, "handled_ratio": 0.6667,
                    "responses": 0, "median_response_s": None}  # fmt: skip


def test_retention_and_disk_budget_drop_the_oldest_partitions(tmp_path: Path) -> None:
    days = HistoryPolicy(hot_s=3600.0, retention_s=2 * 86_400.0, alert_retention_s=3 * 86_400.0)
    history = History(tmp_path / "ws", days)
    try:
        for age in (4, 3, 2, 1, 0):  # one batch per day, each archived the same day
            day = NOW - timedelta(days=age)
            history.save(spread(300, day - timedelta(hours=3), day - timedelta(hours=2),
                                seed=age + 1))  # fmt: skip
            history.run(day)
        hours = sorted({f.hour_s for f in history.files()})
        oldest_kept = NOW - timedelta(days=2)
        assert all(h + 3600 > oldest_kept.timestamp() for h in hours) and len(hours) >= 2
        assert history.mover.status.partitions_dropped >= 2
        # Now a budget just under what the workspace holds: the oldest partition goes first,
        # and the status warns (>= 90 % of the budget).
        used = history.mover.status.workspace_bytes
        newest = max(hours)
        over = replace(days, disk_budget_bytes=used - 1)
        history.mover.policy = over
        history.mover._measured_s = None
        history.run(NOW)
        left = {f.hour_s for f in history.files()}
        assert min(hours) not in left and newest in left
        assert history.mover.status.workspace_bytes <= used - 1
        assert history.mover.status.warning and "disk budget" in history.mover.status.warning
    finally:
        history.close()


# -- the reader ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cursor_paging_is_exact_across_the_boundary_while_the_mover_runs(
    history: History,
) -> None:
    items = spread(2500, NOW - timedelta(hours=2), NOW)
    # Equal times and ids in order: ties are broken by id.
    tie = NOW - timedelta(minutes=61)
    items += [observation(900_000 + i, tie) for i in range(5)]
    history.save(items)
    expected = sorted((to_us(o.time), o.id) for o in items)
    history.run(NOW - timedelta(minutes=30))  # part archived, part hot
    assert 0 < len(history.hot_ids()) < len(items)
    start, end = NOW - timedelta(hours=3), NOW + timedelta(minutes=1)
    assert history.all_ids(start, end) == [i for _, i in expected]
    # Page while the mover moves between pages (and leaves a move pending midway).
    query = ObservationQuery(to_us(start), to_us(end))
    seen: list[str] = []
    after: Cursor | None = None
    step = 0
    while True:
        page = history.reader.observations(query, limit=211, after=after)
        seen += [o.id or "" for o in page.items]
        step += 1
        history.clock.now = (NOW - timedelta(minutes=30 - 3 * step)).timestamp()
        history.mover._move_observations(int(history.clock.now - 3600), batches=1)
        if page.next is None:
            break
        after = page.next
    assert seen == [i for _, i in expected]


def test_a_pending_move_is_read_once_and_finished_at_start(history: History) -> None:
    items = spread(1000, NOW - timedelta(hours=2), NOW - timedelta(minutes=61))
    history.save(items)
    db = history.store.connect()
    due = mf.due_observations(db, int((NOW - timedelta(hours=1)).timestamp()), 10_000)
    db.close()
    assert due is not None and len(due.rows) == 1000
    move = mf.Move("m1", due.below_sec, due.below_rid)
    listed = history.mover._write_partitions(move, due.rows)
    with history.store.transaction() as tx:
        mf.begin_move(tx, move, listed)
        assert mf.delete_rows(tx, "rid", due.rids[:300]) == 300
    both = history.all_ids(NOW - timedelta(hours=3), NOW)
    expected = sorted(o.id for o in items if o.id is not None)
    assert sorted(both) == expected and len(both) == len(set(both))
    history.mover.recover()
    with history.store.snapshot() as snap:
        assert mf.pending_moves(snap) == []
    assert history.hot_ids() == set()
    assert sorted(history.all_ids(NOW - timedelta(hours=3), NOW)) == expected


def test_box_kind_source_filters_and_tracks(history: History) -> None:
    walk = [observation(i, NOW - timedelta(minutes=90 - i), track=42, lon=121.48 + i * 1e-4,
                        lat=31.23, kind="vehicle") for i in range(80)]  # fmt: skip
    others = spread(600, NOW - timedelta(minutes=90), NOW)
    history.save(walk + others)
    history.run()
    box = (121.4799, 31.2299, 121.4830, 31.2301)  # the first 31 steps of the walk
    span = (to_us(NOW - timedelta(hours=2)), to_us(NOW))
    page = history.reader.observations(ObservationQuery(*span, bbox=box), limit=1000)
    assert [o.id for o in page.items] == [o.id for o in walk[:31]]
    vehicles = history.reader.observations(ObservationQuery(*span, kind="vehicle"), limit=1000)
    assert [o.id for o in vehicles.items] == [o.id for o in walk]
    none = history.reader.observations(ObservationQuery(*span, source="camera:x"), limit=10)
    assert none.items == [] and none.next is None
    track = history.reader.track(f"{CAMERA}/42", *span, limit=1000)
    assert [o.id for o in track] == [o.id for o in walk]  # archive and hot parts, in order
    assert track[0] == walk[0]  # every field back as it came
    assert history.reader.track(f"{CAMERA}/42", *span, limit=5) == walk[:5]


def test_replay_samples_each_entity_per_step(history: History) -> None:
    walk = [observation(i, NOW - timedelta(minutes=62) + timedelta(seconds=i), track=5,
                        lon=121.48 + i * 1e-4) for i in range(240)]  # fmt: skip
    history.save(walk)
    history.run()
    start = NOW - timedelta(minutes=62)
    tracks, truncated = history.reader.replay(
        to_us(start), to_us(start + timedelta(minutes=4)), 10_000_000, bbox=None,
        max_entities=10,
    )  # fmt: skip
    [track] = tracks
    assert not truncated and track.id == f"{CAMERA}/5" and len(track.samples) == 24
    # The last observation of each 10 s step, the archive (first 2 min) and the store alike.
    assert [s[1] for s in track.samples] == pytest.approx(
        [121.48 + (10 * k + 9) * 1e-4 for k in range(24)]
    )


# -- the store under it ----------------------------------------------------------------------


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(_V1):
        db.execute(statement)
    db.execute("ALTER TABLE alerts ADD COLUMN app TEXT")
    db.execute("ALTER TABLE alerts ADD COLUMN board TEXT")
    old = observation(1, NOW - timedelta(seconds=1))
    db.execute(
        "INSERT INTO observations (id, entity_id, lon, lat, time_s, record) VALUES (?,?,?,?,?,?)",
        (old.id, old.entity_id, old.lon, old.lat, old.time.timestamp(), old.model_dump_json()),
    )
    db.close()
    store = LiveStore(path)
    try:
        assert store.observations_by_id([old.id or ""]) == {old.id: old}
        with store.snapshot() as snap:
            assert snap.execute("PRAGMA user_version").fetchone()[0] == VERSION
    finally:
        store.close()


def test_two_processes_migrate_one_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    script = (
        "import sys; from scenes.store import LiveStore; "
        f"LiveStore(__import__('pathlib').Path({str(path)!r})).close()"
    )
    import subprocess
    import sys

    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
            for _ in range(4)]  # fmt: skip
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err.decode()


@pytest.mark.slow
def test_the_wal_stays_bounded_under_back_to_back_commits(tmp_path: Path) -> None:
    """Four writers commit back to back (never a gap for a passive checkpoint) while a reader
    reads every 0.5 s; the WAL must stay near its limit instead of growing without end."""
    limit = 8 * 2**20
    store = LiveStore(tmp_path / "live.sqlite", wal_limit_bytes=limit)
    stop = threading.Event()
    largest = [0]
    rows = [0]

    def write(seed: int) -> None:
        n = 0
        while not stop.is_set():
            batch = [observation(seed * 10_000_000 + n + i, NOW, track=i) for i in range(250)]
            store.save(batch, [], received_s=time.time())
            n += 250
            rows[0] += 250

    def watch() -> None:
        while not stop.is_set():
            largest[0] = max(largest[0], store.wal_bytes())
            store.count_observations()
            stop.wait(0.05)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=watch))
    for thread in threads:
        thread.start()
    time.sleep(8.0)
    stop.set()
    for thread in threads:
        thread.join()
    stats = store.checkpoints
    store.close()
    written = rows[0] * 700  # at least this many bytes of WAL without checkpoints
    assert written > 4 * limit, "too few commits to tell"
    assert stats.restarts >= 1 and largest[0] < 3 * limit
    assert stats.longest_hold_ms < 1000


def test_kill_9_during_moves_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """A worker process saves and moves in a loop (small delete chunks, so moves are often
    pending); it is killed at random moments. After each restart (which recovers), every
    observation saved is in the store or the archive exactly once."""
    import subprocess
    import sys

    ws = tmp_path / "ws"
    ws.mkdir()
    worker = Path(__file__).parent / "history_crash_worker.py"
    saved: set[str] = set()
    rnd = random.Random(7)
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(worker), str(ws), str(round_)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5 + rnd.random() * 1.5)
        proc.kill()
        out, err = proc.communicate(timeout=30)
        lines = out.split("\n")
        complete = lines if out.endswith("\n") else lines[:-1]  # the last may be cut short
        saved.update(i for line in complete for i in line.split() if line != "ready")
        assert "Traceback" not in err, err
    history = History(ws)  # recovers like a restarted server
    try:
        with history.store.snapshot() as db:
            assert mf.pending_moves(db) == []
        hot = history.hot_ids()
        table = archive_table(ws).to_table(columns=["id"])
        archived = table.column("id").to_pylist()
        assert not (set(archived) & hot), "an observation both archived and in the store"
        assert len(archived) == len(set(archived)), "an observation archived twice"
        assert saved <= hot | set(archived), "an acknowledged observation was lost"
        assert len(archived) > 0
        stray = [p for p in (ws / "history").rglob("*") if p.name.startswith(".tmp-")]
        assert stray == []
    finally:
        history.close()


def test_only_one_mover_runs_a_workspace(history: History, tmp_path: Path) -> None:
    other = HistoryMover(history.store, history.ws / "history", history.ws, HOT)
    assert not other.acquire()
    history.mover.release()
    assert other.acquire()
    other.release()
    assert history.mover.acquire()
