"""A real `twin serve` process on loopback, the bearer tokens it accepts, posting observations
to it and a raw HTTP GET."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from paths import TWIN

from bench.common import free_port

TOKENS = {
    "viewer": "viewer-token-123",
    "operator": "operator-token-123",
    "ingest": "ingest-token-123",
    "admin": "admin-token-123",
}
TOKENS_ENV = ",".join(f"{token}:{role}" for role, token in TOKENS.items())


@dataclass
class LiveServer:
    """A `twin serve` process on loopback."""

    url: str
    ws: Path
    process: subprocess.Popen[bytes]

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=20)


def start_server(
    ws: Path, extra_env: dict[str, str] | None = None, port: int | None = None
) -> LiveServer:
    """Start `twin serve WS` on `port` (default: a free loopback port) and wait until /healthz
    answers."""
    port = port or free_port()
    env = {**os.environ, "TWIN_TOKENS": TOKENS_ENV, **(extra_env or {})}
    log = open(ws.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - kept open for the process
    process = subprocess.Popen(
        [TWIN, "serve", str(ws), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((ws.parent / f"server-{port}.log").read_text())
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return LiveServer(url, ws, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start in 60 s")


def ingest(server: LiveServer, *observations: dict[str, Any]) -> dict[str, Any]:
    """POST `observations` to /api/observations as the ingest role; the 200 reply's body."""
    with server.client("ingest") as client:
        response = client.post("/api/observations", json={"observations": list(observations)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client-side path normalisation); status and body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
