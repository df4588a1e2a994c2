"""Soak: sustained ingest through the HTTP API for minutes to hours, with the history mover at
work, to show that rate, latency, memory and disk stay flat.

`python -m bench soak [--minutes 10] [--rate 5000] [--hot-minutes 2] [--clients 50]` builds the
bundled sample, serves it with a hot window of `--hot-minutes` (so observations start moving to
the archive after that long), and for `--minutes` posts `--rate` observations/s (4 posters,
250-observation batches, paced open loop) while `--clients` WebSocket clients listen like the
war-room page. Every shipped app runs; every fifth batch holds an uncovered muck truck and a car
whose plate is on the suspended-licence list, each on a new track (two alerts); an operator
resolves each alert 20 s after it arrives, so alerts close and move to the archive too.

Printed: a table per minute (observations/s accepted, alert latency p50/p99 from the start of
the POST that raised it to its arrival on every client, largest WAL, live-store and archive
size, server RSS and open file descriptors) and the verdict on each goal: rate held, alert p99
< 250 ms in every minute, WAL < 256 MiB throughout, RSS flat after warm-up (< 10 % growth over
the last 5 minutes), archive bytes per observation (aim < 80).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import SAMPLE, TWIN, console, percentiles, served, show
from bench.ingest import CAMERA, CENTRE, PLATE, TOPICS, Listener, listen
from scenes.history.mover import tree_bytes

TOKEN = "soak-admin"
POSTERS = 4
BATCH = 250
ALERT_EVERY = 5  # every n-th batch carries the two alert-raising observations
RESOLVE_AFTER_S = 20.0
SAMPLE_S = 2.0
MiB = 2**20


@dataclass
class Minute:
    """What happened in one minute of the run."""

    accepted: int = 0
    errors: int = 0
    alerts_sent: dict[str, float] = field(default_factory=dict)  # alert id -> POST start
    wal_max: int = 0
    live_bytes: int = 0
    archive_bytes: int = 0
    rss: int = 0
    fds: int = 0


def bodies(count: int, seed: int = 1) -> list[bytes]:
    """`count` request bodies of people and cars on 2,000 tracks near the Bund camera, with
    ``@N@`` where a batch number goes (the alert-raising tracks)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        items = []
        for _ in range(BATCH):
            cls = "person" if rng.random() < 0.7 else "car"
            items.append({
                "kind": "person" if cls == "person" else "vehicle", "cls": cls,
                "source": CAMERA, "track_id": str(rng.randrange(2000)),
                "lon": CENTRE[0] + rng.uniform(-0.004, 0.004),
                "lat": CENTRE[1] + rng.uniform(-0.003, 0.003),
            })  # fmt: skip
        out.append(json.dumps({"observations": items}).encode())
    return out


ALERTING = json.dumps([
    {"kind": "vehicle", "cls": "truck", "source": CAMERA, "track_id": "truck-@N@",
     "lon": CENTRE[0], "lat": CENTRE[1], "attributes": {"covered": False}},
    {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "plate-@N@",
     "lon": CENTRE[0], "lat": CENTRE[1], "attributes": {"plate": PLATE}},
])[1:-1].encode()  # fmt: skip


class Soak:
    """One run against the server at `url` (process `pid`, workspace `ws`)."""

    def __init__(self, url: str, pid: int, ws: Path, rate: float, minutes: float) -> None:
        self.url, self.ws, self.rate, self.minutes = url, ws, rate, minutes
        self.process = psutil.Process(pid)
        self.minutes_seen: dict[int, Minute] = defaultdict(Minute)
        self.start = 0.0
        self.counter = 0
        self.to_resolve: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.resolved = 0

    def minute(self, at: float) -> Minute:
        return self.minutes_seen[int((at - self.start) // 60)]

    async def post(self, client: httpx.AsyncClient, templates: list[bytes], stop: float) -> None:
        interval = POSTERS * BATCH / self.rate
        began = time.perf_counter()
        sends = 0
        while True:
            scheduled = began + sends * interval
            if scheduled >= stop:
                return
            sends += 1
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            self.counter += 1
            n = self.counter
            body = templates[n % len(templates)]
            if n % ALERT_EVERY == 0:
                body = body[:-2] + b"," + ALERTING.replace(b"@N@", str(n).encode()) + b"]}"
            try:
                reply = await client.post("/api/observations", content=body,
                                          headers={"Content-Type": "application/json"})  # fmt: skip
                reply.raise_for_status()
            except httpx.HTTPError:
                self.minute(scheduled).errors += 1
                continue
            answer = reply.json()
            minute = self.minute(scheduled)
            minute.accepted += answer["accepted"]
            for alert_id in answer["alerts"]:
                minute.alerts_sent[alert_id] = scheduled
                self.to_resolve.put_nowait((time.perf_counter() + RESOLVE_AFTER_S, alert_id))

    async def resolve(self, client: httpx.AsyncClient, stop: float) -> None:
        """The operator: resolves each alert RESOLVE_AFTER_S after it was raised."""
        while time.perf_counter() < stop:
            due, alert_id = await self.to_resolve.get()
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            reply = await client.post(f"/api/alerts/{alert_id}/resolve")
            self.resolved += reply.status_code == 200

    async def sample(self, stop: float) -> None:
        live = self.ws / "live.sqlite"
        while time.perf_counter() < stop:
            now = time.perf_counter()
            minute = self.minute(now)
            wal = Path(f"{live}-wal")
            minute.wal_max = max(minute.wal_max, wal.stat().st_size if wal.exists() else 0)
            minute.live_bytes = live.stat().st_size
            minute.archive_bytes = tree_bytes(self.ws / "history")
            minute.rss = self.process.memory_info().rss
            minute.fds = self.process.num_fds()
            await asyncio.sleep(SAMPLE_S)

    async def run(self, clients: int) -> list[Listener]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        limits = httpx.Limits(max_connections=POSTERS + 2)
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60,
                                     limits=limits) as client:  # fmt: skip
            r = await client.post("/api/watchlists/suspended-licences/entries",
                                  json={"value": PLATE, "reason": "soak"})  # fmt: skip
            r.raise_for_status()
            ws_url = self.url.replace("http", "ws") + f"/ws/live?token={TOKEN}&topics={TOPICS}"
            listeners = [Listener(slow=False) for _ in range(clients)]
            done = asyncio.Event()
            readies = [asyncio.Event() for _ in listeners]
            tasks = [asyncio.create_task(listen(ws_url, li, ev, done))
                     for li, ev in zip(listeners, readies, strict=True)]  # fmt: skip
            await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in readies)), 60)
            templates = bodies(64)
            self.start = time.perf_counter()
            stop = self.start + self.minutes * 60.0
            work = [asyncio.create_task(self.post(client, templates, stop)) for _ in range(POSTERS)]
            background = [asyncio.create_task(self.sample(stop + 3.0)),
                          asyncio.create_task(self.resolve(client, stop))]  # fmt: skip
            await asyncio.gather(*work)
            await asyncio.sleep(3.0)  # the last alerts reach the clients
            for task in background:
                task.cancel()
            done.set()
            await asyncio.gather(*tasks, *background, return_exceptions=True)
        return listeners


def archived(ws: Path) -> tuple[int, int]:
    """Observations in the archive and their bytes, from the manifest."""
    db = sqlite3.connect(f"file:{ws / 'live.sqlite'}?mode=ro", uri=True)
    try:
        rows, size = db.execute(
            "SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM archive_files"
            " WHERE kind = 'observations'"
        ).fetchone()
    finally:
        db.close()
    return int(rows), int(size)


def report(soak: Soak, listeners: list[Listener], archive: tuple[int, int]) -> None:
    rows: list[list[Any]] = []
    p99s, rates, wal_max = [], [], 0
    for index in sorted(k for k in soak.minutes_seen if k < soak.minutes):
        minute = soak.minutes_seen[index]
        latencies = [(li.arrivals[a] - t0) * 1000.0 for li in listeners
                     for a, t0 in minute.alerts_sent.items() if a in li.arrivals]  # fmt: skip
        missed = sum(a not in li.arrivals for li in listeners for a in minute.alerts_sent)
        lat = percentiles(latencies) if latencies else {"p50": float("nan"), "p99": float("nan")}
        p99s.append(lat["p99"])
        rates.append(minute.accepted / 60.0)
        wal_max = max(wal_max, minute.wal_max)
        rows.append([
            index + 1, minute.accepted / 60.0, minute.errors, len(minute.alerts_sent),
            lat["p50"], lat["p99"], missed, minute.wal_max / MiB, minute.live_bytes / MiB,
            minute.archive_bytes / MiB, minute.rss / MiB, minute.fds,
        ])  # fmt: skip
    show(
        f"Soak: {soak.rate:,.0f} obs/s through POST /api/observations for {soak.minutes:g} min,"
        f" {len(listeners)} WebSocket clients, every shipped app on",
        ["minute", "obs/s", "errors", "alerts", "alert p50 ms", "alert p99 ms", "missed",
         "WAL max MiB", "live MiB", "archive MiB", "RSS MiB", "fds"],
        rows,
    )  # fmt: skip
    rss = [soak.minutes_seen[i].rss for i in sorted(soak.minutes_seen) if i < soak.minutes]
    tail = rss[-5:] if len(rss) >= 5 else rss
    growth = (tail[-1] - tail[0]) / tail[0] * 100.0 if tail and tail[0] else float("nan")
    moved, size = archive
    per_obs = size / moved if moved else float("nan")
    goals = [
        ("rate held (every minute ≥ 98 % of the goal)", f"min {min(rates):,.0f} obs/s",
         min(rates) >= 0.98 * soak.rate),
        ("alert p99 < 250 ms in every minute", f"worst {max(p99s):.0f} ms", max(p99s) < 250),
        ("WAL < 256 MiB throughout", f"max {wal_max / MiB:.1f} MiB", wal_max < 256 * MiB),
        ("RSS flat (< 10 % growth over the last 5 minutes)", f"{growth:+.1f} %", growth < 10.0),
        ("archive bytes per observation (aim < 80)", f"{per_obs:.1f} B over {moved:,} obs",
         per_obs < 80),
    ]  # fmt: skip
    show("Soak goals", ["goal", "measured", "met"], [[g, m, "yes" if ok else "NO"]
                                                      for g, m, ok in goals])  # fmt: skip
    console.print(f"alerts resolved by the operator: {soak.resolved:,}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="observations/s")
    parser.add_argument("--hot-minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = tmp / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)
        env = {"TWIN_TOKENS": f"{TOKEN}:admin", "TWIN_HOT_MINUTES": str(args.hot_minutes),
               "TWIN_ENTITY_TTL_S": "120"}  # fmt: skip
        with served(ws, tmp / "server.log", env) as (url, server):
            soak = Soak(url, server.pid, ws, args.rate, args.minutes)
            listeners = asyncio.run(soak.run(args.clients))
            archive = archived(ws)
        log = (tmp / "server.log").read_text(errors="replace")
    report(soak, listeners, archive)
    errors = [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line]
    console.print(f"server log: {len(errors)} error line(s)", errors[:3] if errors else "")
    slow = [line.split("live store ", 1)[-1] for line in log.splitlines() if "restarted" in line]
    console.print(f"server log: {len(slow)} WAL restart(s) held ingest > 50 ms", slow[:5])
    for line in log.splitlines():
        if "live store WAL:" in line or "ingest write(s)" in line:
            console.print("server log:", line.split("live store", 1)[-1].strip())


if __name__ == "__main__":
    main()
