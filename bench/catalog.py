"""One-click lookups over a county-sized catalog, through the HTTP API, on both backends.

`python -m bench catalog [--elements 1000000] [--requests 300] [--no-postgres]` builds the
sample workspace, adds `--elements` generated buildings (20 × 20 km around the sample, 40 %
unnamed, Chinese and English names) to its catalog, then serves it twice — from the workspace's
SQLite file, and loaded into a PostgreSQL 15 + PostGIS started here (`TWIN_DATABASE_URL`) — and
asks each, one request at a time over keep-alive:

- `GET /api/elements/{id}` of random elements (the one-click record);
- `GET /api/pick` at random points (about half land on a building);
- `GET /api/elements?q=` name searches, from rare to very common words;
- `GET /api/elements?bbox=` of a 200 m box.

Printed: p50/p99/max per query and backend, the catalog load time into PostgreSQL, and the
goals (get and pick p99 < 20 ms, name search p99 < 50 ms)."""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from rich.progress import Progress
from shapely.geometry import box

from bench.common import SAMPLE, TWIN, console, percentiles, served, show
from bench.engines import start_postgres, stop_postgres
from twin.catalog import Catalog, CatalogWriter, Element

# docs/deploy.md's sizing for a 1 M-element catalog: the elements table (~600 MiB with its
# indexes) fits the shared buffers, so a broad name search rechecks its matches in memory.
PG_SETTINGS = {"shared_buffers": "1GB", "effective_cache_size": "4GB", "work_mem": "16MB"}

ORIGIN = (121.38, 31.13)  # south-west corner of the generated county (deg)
SIZE_DEG = (0.21, 0.18)  # ~20 × 20 km
FOOTPRINT_DEG = 0.0002  # ~20 m square buildings
BATCH = 50_000
CHARS = (
    "上海黄浦外滩南京东路中山人民广场静安寺陆家嘴"
    "世纪大道花园新村公寓大厦中心商业银行酒店学校医院派出所"
)
WORDS = ("Bund", "Peace", "Century", "Garden", "Tower", "Plaza", "Centre")
USES = ("Hotel", "Bank", "School", "Mall", "Park", "Court")
# From a handful of matches to hundreds of thousands (ranked, first page of 50).
QUERIES = ("外滩", "黄浦中心", "派出所", "上海", "Bund", "Bund Hotel", "hotel 12", "Garden Court 7")
TOKEN = "bench-viewer"


def generated(count: int, seed: int = 3) -> Iterator[list[Element]]:
    """`count` square buildings in batches, reproducible from `seed`."""
    rng = random.Random(seed)
    batch: list[Element] = []
    for i in range(count):
        lon = ORIGIN[0] + rng.random() * SIZE_DEG[0]
        lat = ORIGIN[1] + rng.random() * SIZE_DEG[1]
        r = rng.random()
        if r < 0.4:
            name = None
        elif r < 0.8:
            name = "".join(rng.choice(CHARS) for _ in range(rng.randint(3, 9)))
        else:
            name = f"{rng.choice(WORDS)} {rng.choice(USES)} {rng.randint(1, 999)}"
        batch.append(Element(
            id=f"building:gen-{i}", kind="building", name=name, layer="buildings",
            lon=lon + FOOTPRINT_DEG / 2, lat=lat + FOOTPRINT_DEG / 2,
            geometry=box(lon, lat, lon + FOOTPRINT_DEG, lat + FOOTPRINT_DEG),
            height=rng.uniform(3, 100), attributes={"levels": rng.randint(1, 30)},
        ))  # fmt: skip
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def county_workspace(folder: Path, count: int) -> Path:
    """The sample workspace with `count` generated buildings added to its catalog."""
    ws = folder / "ws"
    subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)
    built = ws / "catalog.sqlite"
    bigger = folder / "catalog.sqlite"
    writer = CatalogWriter(bigger)
    writer.add(Catalog(built).all())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating the catalog", total=count)
        for batch in generated(count):
            progress.advance(task, writer.add(batch))
    writer.close()
    shutil.move(bigger, built)
    return ws


def timed(client: httpx.Client, paths: list[str]) -> tuple[list[float], int]:
    """Milliseconds of each GET, and how many answered 200 (404 counts as an answer)."""
    samples, found = [], 0
    for path in paths:
        start = time.perf_counter()
        reply = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if reply.status_code not in (200, 404):
            raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
        found += reply.status_code == 200
    return samples, found


def measure(url: str, count: int, requests: int) -> list[tuple[str, dict[str, float], str]]:
    """Per query: its latency percentiles and what it found."""
    rng = random.Random(11)

    def point() -> str:
        lon = ORIGIN[0] + rng.random() * SIZE_DEG[0]
        lat = ORIGIN[1] + rng.random() * SIZE_DEG[1]
        return f"lon={lon:.7f}&lat={lat:.7f}"

    cases: list[tuple[str, Callable[[], str]]] = [
        ("get", lambda: f"/api/elements/building:gen-{rng.randrange(count)}"),
        ("pick", lambda: f"/api/pick?{point()}"),
        (
            "bbox 200 m",
            lambda: "/api/elements?geometry=false&bbox=" + ",".join(f"{v:.6f}" for v in _box(rng)),
        ),
    ]
    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=30) as client:  # fmt: skip
        timed(client, [cases[0][1]() for _ in range(20)])  # warm the connection and caches
        for label, make in cases:
            samples, found = timed(client, [make() for _ in range(requests)])
            rows.append((label, percentiles(samples), f"{found}/{requests} found"))
        search: list[float] = []
        for q in QUERIES:
            reply = client.get("/api/elements", params={"q": q, "geometry": "false"})
            total = reply.json()["total"]
            samples, _ = timed(client, [f"/api/elements?geometry=false&q={q}"] * (requests // 10))
            search += samples
            rows.append((f"search '{q}'", percentiles(samples), f"{total} match"))
        rows.append(("search (all)", percentiles(search), f"{len(QUERIES)} queries"))
    return rows


def _box(rng: random.Random) -> tuple[float, float, float, float]:
    lon = ORIGIN[0] + rng.random() * (SIZE_DEG[0] - 0.002)
    lat = ORIGIN[1] + rng.random() * (SIZE_DEG[1] - 0.002)
    return lon, lat, lon + 0.0021, lat + 0.0018


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench catalog", description=__doc__)
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="per query kind")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv or [])
    env = {"TWIN_TOKENS": f"{TOKEN}:viewer"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        ws = county_workspace(tmp, args.elements)
        size = (ws / "catalog.sqlite").stat().st_size / 2**20
        console.print(f"catalog: {args.elements:,} generated elements, {size:.0f} MiB "
                      f"(built in {time.perf_counter() - start:.0f} s)")  # fmt: skip
        with served(ws, tmp / "sqlite.log", env) as (url, _):
            rows += [("SQLite", *row) for row in measure(url, args.elements, args.requests)]
        if not args.no_postgres:
            cluster = start_postgres(PG_SETTINGS)
            try:
                database = cluster.create_database("bench")
                start = time.perf_counter()
                with served(ws, tmp / "pg.log", {**env, "TWIN_DATABASE_URL": database},
                            start_s=1800) as (url, _):  # fmt: skip
                    console.print(f"PostgreSQL: started with the catalog loaded in "
                                  f"{time.perf_counter() - start:.0f} s")  # fmt: skip
                    rows += [("PostgreSQL", *row)
                             for row in measure(url, args.elements, args.requests)]  # fmt: skip
            finally:
                stop_postgres(cluster)
    show(
        f"Catalog of {args.elements:,} elements over HTTP, one request at a time, ms "
        "(goals: get and pick p99 < 20, search p99 < 50)",
        ["backend", "query", "p50", "p99", "max", "found"],
        [(b, q, p["p50"], p["p99"], p["max"], f) for b, q, p, f in rows],
    )


if __name__ == "__main__":
    main()
