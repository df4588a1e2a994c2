"""Ingest past one process: the sample workspace on SQLite (one process, the default) beside
PostgreSQL 15 + Redis (started here) with one and with two `twin serve` processes.

`python -m bench scale [--seconds 15] [--posters 4] [--clients 10]`: in each set-up `--posters`
posters per process send batches of 250 observations back to back (every batch holds an
uncovered muck truck and a listed plate, as in `bench ingest`, so alerts flow), while
`--clients` WebSocket clients per process listen. Printed per set-up: observations/s committed,
POST p50/p99, alerts, the latency from the start of the POST that raised an alert to its
arrival on the clients (with two processes: on the clients of both, so half the alerts cross
the Redis stream) and alerts a client missed.

On the 2 cores of the reference machine the server processes, PostgreSQL, Redis and the load
generator share the cores: the two-process figure shows the cost of the shared engines and that
nothing is lost or raised twice, not how a second host scales (see docs/deploy.md)."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import SAMPLE, TWIN, console, percentiles, served, show
from bench.engines import start_postgres, start_redis, stop_postgres
from bench.ingest import PLATE, TOPICS, Listener, listen, post_for

TOKEN = "bench-admin"


async def run(urls: list[str], seconds: float, posters: int, clients: int) -> tuple[object, ...]:
    """One set-up's row: posters and listeners spread over the server `urls`."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=urls[0], headers=headers, timeout=60) as admin:
        reply = await admin.post("/api/watchlists/suspended-licences/entries",
                                 json={"value": PLATE, "reason": "bench"})  # fmt: skip
        reply.raise_for_status()
    listeners = [Listener(slow=False) for _ in urls for _ in range(clients)]
    readies = [asyncio.Event() for _ in listeners]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(listen(
            urls[i // clients].replace("http", "ws") + f"/ws/live?token={TOKEN}&topics={TOPICS}",
            listener, ready, stop,
        ))
        for i, (listener, ready) in enumerate(zip(listeners, readies, strict=True))
    ]  # fmt: skip
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
    sent: dict[str, float] = {}
    round_trips: list[float] = []
    counter = [0]
    posting = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60) for url in urls]
    start = time.perf_counter()
    accepted = sum(await asyncio.gather(*(
        post_for(client, seconds, counter, sent, round_trips)
        for client in posting for _ in range(posters)
    )))  # fmt: skip
    elapsed = time.perf_counter() - start
    for client in posting:
        await client.aclose()
    await asyncio.sleep(5.0)  # alerts still on their way
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [(li.arrivals[a] - t0) * 1000.0 for li in listeners
                 for a, t0 in sent.items() if a in li.arrivals]  # fmt: skip
    missed = sum(a not in li.arrivals for li in listeners for a in sent)
    posts, alerts = percentiles(round_trips), percentiles(latencies or [float("nan")])
    return (accepted / elapsed, posts["p50"], posts["p99"], len(sent), alerts["p50"],
            alerts["p99"], missed)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--posters", type=int, default=4, help="per server process")
    parser.add_argument("--clients", type=int, default=10, help="WebSocket clients per process")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this folder")
    args = parser.parse_args(argv or [])
    env = {"TWIN_TOKENS": f"{TOKEN}:admin"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        logs = args.logs or tmp
        logs.mkdir(parents=True, exist_ok=True)
        ws = tmp / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)

        def measure(label: str, urls: list[str]) -> None:
            console.print(f"{label} …")
            row = asyncio.run(run(urls, args.seconds, args.posters, args.clients))
            rows.append((label, *row))

        with served(ws, logs / "sqlite.log", env) as (url, _):
            measure("SQLite, 1 process", [url])
        cluster = start_postgres()
        redis = start_redis()
        try:
            for count in (1, 2):
                shared = {**env, "TWIN_DATABASE_URL": cluster.create_database(f"scale{count}"),
                          "TWIN_BUS_URL": redis.url}  # fmt: skip
                with ExitStack() as stack:
                    urls = [stack.enter_context(served(ws, logs / f"pg{count}-{i}.log", shared))[0]
                            for i in range(count)]  # fmt: skip
                    measure(f"PostgreSQL + Redis, {count} process{'es' if count > 1 else ''}",
                            urls)  # fmt: skip
                subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], check=True,
                               capture_output=True)  # fmt: skip
        finally:
            redis.stop()
            stop_postgres(cluster)
    show(
        f"Ingest, {args.posters} posters per process × 250 obs/request for {args.seconds:.0f} s, "
        f"{args.clients} WebSocket clients per process",
        ["set-up", "obs/s", "POST p50 ms", "POST p99 ms", "alerts", "alert p50 ms",
         "alert p99 ms", "alerts missed"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
