"""Memory under attack, on the real server: 200 MiB bodies (announced, streamed in chunks,
with and without a token, to every route class) and WebSocket clients that never read,
while the live store holds more entities than a snapshot may carry. The server process must
stay within `BOUND_MB` of its resident memory before the attack, and drop the stalled
clients within its send timeout.

Before the fixes: 200 MiB observation posts took the server from 171 to 1,573 MB (and 1.4 GB
of store), ten stalled clients with ~100k entities from 370 to 1,848 MB."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import tiny_workspace as tiny
from servers import TOKENS, LiveServer

BOUND_MB = 150.0
"""Most the server's resident memory may grow during the test, MB."""
ATTACK_BYTES = 200 * 2**20
CHUNK = b"x" * 2**20
ENTITIES = 30_000  # live entities: more than the 20,000 a snapshot carries
STALLED = 5  # WebSocket clients that never read
SEND_TIMEOUT_S = 3.0


def _rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 1e6


@contextmanager
def peak_rss(pid: int) -> Iterator[list[float]]:
    """Samples the resident memory of process `pid` every 20 ms; yields [peak MB]."""
    process, peak, stop = psutil.Process(pid), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb(process))
            stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def flood(server: LiveServer, head: str, seconds: float = 20.0) -> bytes:
    """Send `head` then up to 200 MiB of body as fast as the server takes it; return the
    answer (the server answers early and stops reading: the send fails or stalls)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(head.encode())
        deadline, sent = time.monotonic() + seconds, 0
        try:
            while sent < ATTACK_BYTES and time.monotonic() < deadline:
                sock.sendall(CHUNK if "chunked" not in head else b"100000\r\n" + CHUNK + b"\r\n")
                sent += len(CHUNK)
        except OSError:
            pass  # the server answered and closed
        try:
            return sock.recv(4096)
        except OSError:
            return b""


def _head(method: str, path: str, token: str | None, chunked: bool = False) -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {ATTACK_BYTES}"
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"{length}\r\n\r\n")  # fmt: skip


def fill_live_store(server: LiveServer) -> None:
    """`ENTITIES` live entities, each with a padded attribute (~300 bytes a record)."""
    with server.client("ingest") as ingest:
        for start in range(0, ENTITIES, 1000):
            batch = [{"kind": "person", "source": tiny.CAMERA_ID, "track_id": f"e{n}",
                      "lon": tiny.OUTSIDE[0] + n * 1e-7, "lat": tiny.OUTSIDE[1],
                      "attributes": {"note": "p" * 120}}
                     for n in range(start, start + 1000)]  # fmt: skip
            assert ingest.post("/api/observations", json={"observations": batch}).status_code == 200


def stalled_client(server: LiveServer, topics: str) -> socket.socket:
    """A WebSocket handshake, then nothing read ever (a 4 KiB receive window)."""
    parts = urlsplit(server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(
        (f"GET /ws/live?token={TOKENS['viewer']}&topics={topics} HTTP/1.1\r\nHost: x\r\n"
         "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
    )  # fmt: skip
    return sock


def live_clients(server: LiveServer) -> int:
    with server.client("viewer") as viewer:
        return int(viewer.get("/api/live/stats").json()["subscribers"])


@pytest.mark.slow
def test_big_bodies_and_stalled_clients_keep_the_server_within_its_bound(
    tmp_path: Path, server_factory: Callable[..., LiveServer]
) -> None:
    ws = tiny.build(tmp_path / "tiny")
    server = server_factory(ws, {"TWIN_WS_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
                                 "TWIN_LIVE_TTL_S": "600"}, copy=False)  # fmt: skip
    fill_live_store(server)
    process = psutil.Process(server.process.pid)
    before = _rss_mb(process)
    camera = f"/api/cameras/{tiny.CAMERA_ID}"
    attacks = [
        ("POST", "/api/observations", TOKENS["ingest"], False, b"413"),
        ("POST", "/api/observations", None, False, b"401"),
        ("POST", "/api/observations", "forged", False, b"401"),
        ("POST", "/api/observations", TOKENS["ingest"], True, b"413"),
        ("PUT", f"{camera}/frame", TOKENS["ingest"], False, b"413"),
        ("PUT", f"{camera}/frame", TOKENS["ingest"], True, b"413"),
        ("PUT", f"{camera}/ptz", TOKENS["admin"], False, b"413"),
        ("PUT", f"{camera}/ptz", TOKENS["admin"], True, b"413"),
    ]
    with peak_rss(server.process.pid) as peak:
        stalled = [stalled_client(server, "entities" if n % 2 else "entity,alert")
                   for n in range(STALLED)]  # fmt: skip
        answers: list[bytes] = [b""] * len(attacks)

        def attack(i: int) -> None:
            method, path, token, chunked, _ = attacks[i]
            answers[i] = flood(server, _head(method, path, token, chunked))

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(len(attacks))]
        for thread in threads:
            thread.start()
        fill_live_store(server)  # every entity again: the stalled clients' queues fill up
        for thread in threads:
            thread.join(60)
        deadline = time.monotonic() + SEND_TIMEOUT_S + 20
        while live_clients(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        clients_left = live_clients(server)
        after = _rss_mb(process)
    for sock in stalled:
        sock.close()
    for (method, path, token, chunked, status), answer in zip(attacks, answers, strict=True):
        assert answer.startswith(b"HTTP/1.1 " + status), (method, path, token, chunked, answer)
    assert clients_left == 0  # the stalled clients were dropped
    grown = peak[0] - before
    print(f"server RSS {before:.0f} MB before, peak {peak[0]:.0f} MB (+{grown:.0f}), "
          f"{after:.0f} MB after; bound +{BOUND_MB:.0f} MB")  # fmt: skip
    assert grown < BOUND_MB
    store = ws / "live.sqlite"
    assert store.stat().st_size < 100e6  # nothing of the 200 MiB bodies was stored
    with server.client("viewer") as viewer:
        assert viewer.get("/api/live").status_code == 200
    assert json.loads(httpx.get(server.url + "/healthz").text)["status"] in ("ok", "warning")
