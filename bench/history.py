"""History queries over a day of a busy county: the GeoParquet archive read with DuckDB against
the same rows in one SQLite table.

`python -m bench history [--rows 100000000] [--queries 20] [--no-sqlite]` writes a synthetic
archive (not shipped) of `--rows` observations over 24 UTC hours: 200 cameras spread over a
20 × 20 km county, 10,000 tracks an hour, each hour one merged file sorted by track and time as
the mover writes them. The same rows then go into the live store's observations table of a
second workspace (its indexes as in production). Both are asked through `HistoryReader`, the
code behind the history API:

- a 1-hour × 1 km² box (the first page of 1,000, and every row through cursor pages of 5,000);
- a track: one entity's observations over the whole day.

Printed: rows, bytes per observation, write times, and p50/p95/max per query and engine, with
the SQLite/archive ratio. Goals: box p95 < 1 s, track p95 < 200 ms on the archive.
"""

from __future__ import annotations

import argparse
import functools
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.common import console, percentiles, show
from scenes.history import HistoryReader, ObservationQuery
from scenes.history import manifest as mf
from scenes.history.files import write_table
from scenes.history.layout import TIME, partition_dir, wkb_points
from scenes.rows import OBSERVATION_COLUMNS
from scenes.store import LiveStore

START = datetime(2026, 11, 2, tzinfo=UTC)
HOURS = 24
CAMERAS = 200
TRACKS_PER_HOUR = 10_000
ORIGIN = (121.40, 31.15)  # south-west corner of the county (deg)
SIZE_DEG = (0.21, 0.18)  # ~20 × 20 km
KM_DEG = (1 / 95.2, 1 / 111.0)  # a kilometre in degrees of lon and lat at 31°N
PAGE = 1_000
ALL_PAGE = 5_000
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_ids(rng: np.random.Generator, count: int) -> pa.Array:
    """`count` random 32-hex-digit ids as an Arrow string array (built without Python
    strings)."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    chars = np.empty((count, 32), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    offsets = np.arange(0, 32 * (count + 1), 32, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())]
    )


def hour_table(hour: int, rows: int, cameras: np.ndarray, seed: int) -> pa.Table:
    """One hour of observations, sorted by track and time (as the mover merges them)."""
    rng = np.random.default_rng(seed)
    start_us = int((START.timestamp() + hour * 3600) * 1e6)
    track_camera = rng.integers(0, CAMERAS, TRACKS_PER_HOUR)
    names = sorted(
        (f"camera:cam-{track_camera[t]:03d}/{hour}-{t}", t) for t in range(TRACKS_PER_HOUR)
    )
    rank = np.empty(TRACKS_PER_HOUR, dtype=np.int64)
    rank[[t for _, t in names]] = np.arange(TRACKS_PER_HOUR)
    track = rng.integers(0, TRACKS_PER_HOUR, rows)
    time_us = start_us + rng.integers(0, 3_600_000_000, rows)
    order = np.lexsort((time_us, rank[track]))
    track, time_us = track[order], time_us[order]
    centre = cameras[track_camera[track]]
    offset = rng.normal(0, 1, (TRACKS_PER_HOUR, 2)) * np.array(KM_DEG) * 0.05
    lon = centre[:, 0] + offset[track, 0] + rng.normal(0, 2e-5, rows)
    lat = centre[:, 1] + offset[track, 1] + rng.normal(0, 2e-5, rows)
    person = rng.random(TRACKS_PER_HOUR) < 0.7
    kind = pa.DictionaryArray.from_arrays(
        pa.array(np.where(person[track], 0, 1).astype(np.int32)), pa.array(["person", "vehicle"])
    ).cast(pa.string())
    cls = pa.DictionaryArray.from_arrays(
        pa.array(np.where(person[track], 0, 1).astype(np.int32)), pa.array(["person", "car"])
    ).cast(pa.string())
    entity = pa.DictionaryArray.from_arrays(
        pa.array(rank[track].astype(np.int32)), pa.array([n for n, _ in names])
    ).cast(pa.string())
    source = pa.DictionaryArray.from_arrays(
        pa.array(track_camera[track].astype(np.int32)),
        pa.array([f"camera:cam-{c:03d}" for c in range(CAMERAS)]),
    ).cast(pa.string())
    track_id = pa.DictionaryArray.from_arrays(
        pa.array(track.astype(np.int32)), pa.array([f"{hour}-{t}" for t in range(TRACKS_PER_HOUR)])
    ).cast(pa.string())
    return pa.table(
        {
            "id": hex_ids(rng, rows),
            "time": pa.array(time_us).cast(TIME),
            "kind": kind,
            "cls": cls,
            "confidence": pa.array(np.round(rng.uniform(0.3, 1.0, rows), 2)),
            "source": source,
            "track_id": track_id,
            "entity_id": entity,
            "lon": pa.array(lon),
            "lat": pa.array(lat),
            "height": pa.array(np.zeros(rows)),
            "attributes": pa.array(["{}"] * rows, type=pa.string()),
            "geometry": wkb_points(lon, lat),
        }
    )


def write_archive(ws: Path, rows: int, cameras: np.ndarray) -> tuple[LiveStore, int, float]:
    """The archive of `rows` observations under `ws`, listed in its live store: the store,
    bytes written and seconds taken."""
    store = LiveStore(ws / "live.sqlite")
    root = ws / "history"
    total, start = 0, time.perf_counter()
    for hour in range(HOURS):
        table = hour_table(hour, rows // HOURS, cameras, seed=hour)
        hour_s = int(START.timestamp()) + hour * 3600
        final = partition_dir(root, "observations", hour_s) / f"bench-{hour:02d}.parquet"
        written = write_table(table, final, time_column="time")
        listed = mf.listing(written, root, "observations", hour_s, now=time.time(),
                            compacted=True)  # fmt: skip
        with store.transaction() as db:
            mf.add_files(db, [listed])
        total += written.bytes
        console.print(f"archive: hour {hour + 1}/{HOURS} written", end="\r")
    return store, total, time.perf_counter() - start


def load_sqlite(ws: Path, rows: int, cameras: np.ndarray) -> tuple[LiveStore, float]:
    """The same rows in the observations table of a live store under `ws` (bulk-loaded
    without a journal, its indexes built afterwards)."""
    LiveStore(ws / "live.sqlite").close()  # the schema, as the server makes it
    db = sqlite3.connect(ws / "live.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1048576")  # 1 GiB: the unique id index takes random inserts
    indexes = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'observations'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for (sql,) in indexes:
        db.execute("DROP INDEX " + sql.split()[2])
    start = time.perf_counter()
    marks = ",".join("?" * len(OBSERVATION_COLUMNS))
    for hour in range(HOURS):
        table = hour_table(hour, rows // HOURS, cameras, seed=hour)
        us = table.column("time").cast(pa.int64()).to_numpy()
        lon, lat = table.column("lon").to_numpy(), table.column("lat").to_numpy()
        cells = ((lon + 180.0) * 1000.0).astype(np.int64) << 20 | ((lat + 90.0) * 1000.0).astype(
            np.int64
        )
        texts = [table.column(name).to_pylist() for name in ("id", "entity_id", "kind", "cls")]
        values = zip(
            *texts, table.column("confidence").to_pylist(), table.column("source").to_pylist(),
            table.column("track_id").to_pylist(), lon.tolist(), lat.tolist(),
            [0.0] * len(us), us.tolist(), (us // 1_000_000).tolist(), cells.tolist(),
            ["{}"] * len(us), strict=True,
        )  # fmt: skip
        db.execute("BEGIN")
        db.executemany(
            f"INSERT INTO observations ({', '.join(OBSERVATION_COLUMNS)}) VALUES ({marks})", values
        )
        db.execute("COMMIT")
        console.print(f"sqlite: hour {hour + 1}/{HOURS} loaded", end="\r")
    console.print(f"sqlite: rows in after {time.perf_counter() - start:.0f} s; indexing")
    for (sql,) in indexes:
        db.execute(sql)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return LiveStore(ws / "live.sqlite"), time.perf_counter() - start


def timed(runs: list[float], ask: Callable[[], int]) -> int:
    """Run `ask`, add its time (ms) to `runs`; what it returned."""
    start = time.perf_counter()
    found = ask()
    runs.append((time.perf_counter() - start) * 1000.0)
    return found


def measure(
    reader: HistoryReader, boxes: list[ObservationQuery], tracks: list[str]
) -> dict[str, tuple[list[float], int]]:
    """Times (ms) and rows of each query kind over `boxes` and `tracks`."""
    first: list[float] = []
    every: list[float] = []
    track: list[float] = []
    counts = {"first": 0, "every": 0, "track": 0}

    def first_page(q: ObservationQuery) -> int:
        return len(reader.observations(q, limit=PAGE).items)

    for query in boxes:
        counts["first"] += timed(first, functools.partial(first_page, query))

        def all_pages(q: ObservationQuery = query) -> int:
            got, after = 0, None
            while True:
                page = reader.observations(q, limit=ALL_PAGE, after=after)
                got += len(page.items)
                if page.next is None:
                    return got
                after = page.next

        counts["every"] += timed(every, all_pages)
    day = (int(START.timestamp() * 1e6), int((START.timestamp() + HOURS * 3600) * 1e6))

    def track_points(entity: str) -> int:
        return len(reader.track(entity, *day, limit=100_000))

    for entity in tracks:
        counts["track"] += timed(track, functools.partial(track_points, entity))
    return {"first": (first, counts["first"]), "every": (every, counts["every"]),
            "track": (track, counts["track"])}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench history")
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite side")
    args = parser.parse_args(argv or [])
    rng = random.Random(5)
    cams = np.random.default_rng(0).uniform(0, 1, (CAMERAS, 2)) * SIZE_DEG + ORIGIN
    boxes, tracks = [], []
    for _ in range(args.queries):
        hour = rng.randrange(HOURS)
        cx, cy = cams[rng.randrange(CAMERAS)]
        box = (cx - KM_DEG[0] / 2, cy - KM_DEG[1] / 2, cx + KM_DEG[0] / 2, cy + KM_DEG[1] / 2)
        start_us = int((START.timestamp() + hour * 3600) * 1e6)
        boxes.append(ObservationQuery(start_us, start_us + 3_600_000_000, box))
    with tempfile.TemporaryDirectory() as tmp:
        archive_ws, sqlite_ws = Path(tmp) / "archive", Path(tmp) / "sqlite"
        archive_ws.mkdir()
        sqlite_ws.mkdir()
        store, size, seconds = write_archive(archive_ws, args.rows, cams)
        rows = args.rows // HOURS * HOURS
        console.print(f"archive: {rows:,} observations, {size / 2**30:.2f} GiB,"
                      f" {size / rows:.1f} B/observation, written in {seconds:.0f} s")  # fmt: skip
        for _ in range(args.queries):
            hour = rng.randrange(HOURS)
            tracks.append(_track_name(hour, rng.randrange(TRACKS_PER_HOUR)))
        reader = HistoryReader(store, archive_ws / "history")
        results = {"archive (GeoParquet + DuckDB)": measure(reader, boxes, tracks)}
        reader.close()
        store.close()
        if not args.no_sqlite:
            sq_store, sq_seconds = load_sqlite(sqlite_ws, args.rows, cams)
            sq_size = (sqlite_ws / "live.sqlite").stat().st_size
            console.print(f"sqlite: loaded in {sq_seconds:.0f} s, {sq_size / 2**30:.2f} GiB,"
                          f" {sq_size / rows:.1f} B/observation")  # fmt: skip
            sq_reader = HistoryReader(sq_store, sqlite_ws / "history")
            results["one SQLite table (live-store schema)"] = measure(sq_reader, boxes, tracks)
            sq_reader.close()
            sq_store.close()
    table_rows = []
    labels = {"first": f"1 h × 1 km² box, first {PAGE:,}", "every": "1 h × 1 km² box, every row",
              "track": "track over the day"}  # fmt: skip
    base = next(iter(results.values()))
    for what, label in labels.items():
        for engine, measured in results.items():
            runs, found = measured[what]
            stats = percentiles(runs)
            p95 = float(np.percentile(runs, 95))
            ratio = p95 / float(np.percentile(base[what][0], 95))
            table_rows.append([label, engine, f"{found / len(runs):,.0f}", stats["p50"], p95,
                               stats["max"], f"{ratio:.1f}×"])  # fmt: skip
    show(
        f"History queries over {rows:,} observations (24 h, {CAMERAS} cameras), "
        f"{args.queries} queries each (goals on the archive: box p95 < 1 s, track p95 < 200 ms)",
        ["query", "engine", "rows/query", "p50 ms", "p95 ms", "max ms", "p95 vs archive"],
        table_rows,
    )


def _track_name(hour: int, track: int) -> str:
    """The entity id (with its camera) of track `track` of `hour` as `hour_table` draws it
    (its first draw picks each track's camera)."""
    camera = np.random.default_rng(hour).integers(0, CAMERAS, TRACKS_PER_HOUR)[track]
    return f"camera:cam-{camera:03d}/{hour}-{track}"


if __name__ == "__main__":
    main()
