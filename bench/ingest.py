"""Ingest benchmark: sustained `POST /api/observations` into `twin serve` (the bundled sample,
every shipped app enabled, plus the sample's rule file) while 50 WebSocket clients listen on
`/ws/live`, one of them deliberately slow.

Measured: observations/s accepted (committed before each reply), and the latency from the start
of the POST that raised an alert to that alert's arrival on each fast client (p50/p99); from
the server log, the fsyncs per request (concurrent requests share a commit, see scenes.store). Every
batch holds one uncovered muck truck on a new track (→ one `muck-truck` alert) and one car whose
plate is on the suspended-licence list (→ `suspended-licence` alert, per-track cooldown); the
rest are people and cars moving about. Clients subscribe like the war-room page
(``?topics=entities,alert,camera,drone``: entity updates coalesced per client, alerts first).

Three runs on one server: posters back to back (saturated: the most obs/s; an alert waits
behind the requests queued before it) with 50 clients of which one is slow (it sleeps
SLOW_READ_S after each message, so its bounded queue overflows and the bus drops the oldest);
posters paced to PACED_RATE obs/s in all (open loop), the latency at the goal rate; then
saturated with 49 fast clients alone, to show the slow one does not slow the others. The bus
counters (GET /api/live/stats) are read before the clients leave. Server and load generator
share the machine's cores.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.common import SAMPLE, TWIN, percentiles, served, show

TOKEN = "bench-admin"
CAMERA = "camera:cam-bund-road"
CENTRE = (121.4880, 31.2390)
PLATE = "沪B·54321"
CLIENTS = 50
SLOW_READ_S = 0.05
POSTERS = 4
BATCH = 250
DURATION_S = 15.0
PACED_RATE = 5_000.0  # observations/s of the paced run (the goal rate)
ALERT_PREFIX = '{"topic":"alert"'  # starlette sends compact JSON
TOPICS = "entities,alert,camera,drone"  # as web/src/live.js asks


@dataclass
class Listener:
    """A /ws/live client: arrival time (perf_counter) of each alert id, messages read."""

    slow: bool
    arrivals: dict[str, float] = field(default_factory=dict)
    messages: int = 0


async def listen(url: str, listener: Listener, ready: asyncio.Event, stop: asyncio.Event) -> None:
    async with websockets.connect(url, max_size=None, max_queue=64) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            text = raw if isinstance(raw, str) else raw.decode()
            listener.messages += 1
            if text.startswith('{"topic":"ready"'):
                ready.set()
            elif text.startswith(ALERT_PREFIX):
                match = re.search(r'"id":"([0-9a-f]{32})"', text)
                if match and match.group(1) not in listener.arrivals:
                    listener.arrivals[match.group(1)] = time.perf_counter()
            if listener.slow and ready.is_set():  # slow once the snapshot is read
                await asyncio.sleep(SLOW_READ_S)


def _obs(cls: str, track: str, lon: float, lat: float, **attributes: Any) -> dict[str, Any]:
    kind = "person" if cls == "person" else "vehicle"
    return {"kind": kind, "cls": cls, "source": CAMERA, "track_id": track, "lon": lon,
            "lat": lat, "attributes": attributes}  # fmt: skip


def batch(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """One request: people and cars on 2,000 tracks, an uncovered truck, a listed plate."""
    items = [
        _obs(
            "person" if rng.random() < 0.7 else "car",
            str(rng.randrange(2000)),
            CENTRE[0] + rng.uniform(-0.004, 0.004),
            CENTRE[1] + rng.uniform(-0.003, 0.003),
        )
        for _ in range(BATCH - 2)
    ]
    items.append(_obs("truck", f"truck-{n}", *CENTRE, covered=False))
    items.append(_obs("car", f"plate-{n}", *CENTRE, plate=PLATE))
    return items


async def post_for(
    client: httpx.AsyncClient,
    seconds: float,
    counter: list[int],
    sent: dict[str, float],
    round_trips: list[float],
    interval_s: float | None = None,
) -> int:
    """POST batches until `seconds` have passed, back to back or one every `interval_s`
    (open loop: latency counts from the scheduled start, so a server falling behind pays for
    its backlog); observations accepted. Each POST's time to its reply (ms) goes to
    `round_trips`."""
    rng = random.Random(len(sent))
    accepted = 0
    began = time.perf_counter()
    deadline = began + seconds
    sends = 0
    while time.perf_counter() < deadline:
        counter[0] += 1
        body = {"observations": batch(counter[0], rng)}
        start = time.perf_counter()
        if interval_s is not None:
            start = began + sends * interval_s
            sends += 1
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
        r = await client.post("/api/observations", json=body)
        round_trips.append((time.perf_counter() - start) * 1000.0)
        r.raise_for_status()
        reply = r.json()
        accepted += reply["accepted"]
        for alert_id in reply["alerts"]:
            sent[alert_id] = start
    return accepted


@dataclass
class Result:
    accepted: int
    requests: int
    elapsed_s: float
    listeners: list[Listener]
    sent: dict[str, float]  # alert id → perf_counter at the start of the POST that raised it
    stats: dict[str, Any]  # GET /api/live/stats before the clients left
    round_trips: list[float]  # ms from each POST's (scheduled) start to its reply


async def run(url: str, with_slow: bool, first: int, rate: float | None = None) -> Result:
    """One run, posting as fast as replies come or at `rate` observations/s in all; batches are
    numbered from `first` (new truck and plate tracks each run)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        r = await client.post(
            "/api/watchlists/suspended-licences/entries", json={"value": PLATE, "reason": "bench"}
        )
        r.raise_for_status()
        ws_url = url.replace("http", "ws") + f"/ws/live?token={TOKEN}&topics={TOPICS}"
        count = CLIENTS if with_slow else CLIENTS - 1
        listeners = [Listener(slow=with_slow and i == 0) for i in range(count)]
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in listeners]
        tasks = [asyncio.create_task(listen(ws_url, li, ev, stop))
                 for li, ev in zip(listeners, readies, strict=True)]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in readies)), 60)
        sent: dict[str, float] = {}
        round_trips: list[float] = []
        counter = [first]
        start = time.perf_counter()
        interval = None if rate is None else POSTERS * (BATCH + 2) / rate
        accepted = sum(
            await asyncio.gather(
                *(
                    post_for(client, DURATION_S, counter, sent, round_trips, interval)
                    for _ in range(POSTERS)
                )
            )
        )
        elapsed = time.perf_counter() - start
        await asyncio.sleep(3.0)  # let the fast clients catch up
        stats = (await client.get("/api/live/stats")).raise_for_status().json()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Result(accepted, counter[0] - first, elapsed, listeners, sent, stats, round_trips)


def _row(label: str, result: Result) -> tuple[object, ...]:
    sent = result.sent
    fast = [li for li in result.listeners if not li.slow]
    slow = [li for li in result.listeners if li.slow]
    latencies = [(li.arrivals[a] - t0) * 1000.0 for li in fast
                 for a, t0 in sent.items() if a in li.arrivals]  # fmt: skip
    missing = sum(a not in li.arrivals for li in fast for a in sent)
    lat = percentiles(latencies) if latencies else {"p50": float("nan"), "p99": float("nan")}
    clients = result.stats["clients"]
    drops = sorted((c["dropped"] for c in clients), reverse=True)
    return (
        label,
        result.accepted / result.elapsed_s,
        result.requests,
        percentiles(result.round_trips)["p50"],
        percentiles(result.round_trips)["p99"],
        len(sent),
        lat["p50"],
        lat["p99"],
        missing,
        f"{sum(a in slow[0].arrivals for a in sent)}/{len(sent)}" if slow else "-",
        drops[0] if drops else 0,
        sum(drops[1:]),
        sum(c["coalesced"] for c in clients),
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = tmp / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)
        log_path = tmp / "server.log"
        with served(ws, log_path, {"TWIN_TOKENS": f"{TOKEN}:admin"}) as (url, _):
            with_slow = asyncio.run(run(url, with_slow=True, first=0))
            paced = asyncio.run(run(url, with_slow=True, first=2_000_000, rate=PACED_RATE))
            without = asyncio.run(run(url, with_slow=False, first=1_000_000))
        server_log = log_path.read_text(errors="replace")
    logged = [int(n) for n in re.findall(r"dropped (\d+) message", server_log)]
    print(f"server log: {len(logged)} client(s) reported drops on disconnect: {logged}")
    commits = re.search(r"live store: (\d+) ingest write\(s\) in (\d+) commit\(s\)", server_log)
    if commits:
        writes, fsyncs = int(commits.group(1)), int(commits.group(2))
        print(f"server log: {writes} ingest writes in {fsyncs} commits (one WAL fsync each): "
              f"{fsyncs / max(writes, 1):.2f} fsyncs per request")  # fmt: skip
    show(
        f"Ingest: {POSTERS} posters × {BATCH} obs/request for {DURATION_S:.0f} s per run, "
        f"WebSocket clients on ?topics={TOPICS}",
        [
            "run",
            "obs/s",
            "requests",
            "POST p50 ms",
            "POST p99 ms",
            "alerts",
            "alert p50 ms (fast)",
            "alert p99 ms (fast)",
            "alerts missed (fast)",
            "slow client: alerts seen",
            "drops: worst client",
            "drops: all others",
            "entity updates coalesced",
        ],
        [
            _row("saturated, 50 clients, 1 slow", with_slow),
            _row(f"paced {PACED_RATE:.0f} obs/s, 50 clients, 1 slow", paced),
            _row("saturated, 49 fast clients", without),
        ],
    )


if __name__ == "__main__":
    main()
