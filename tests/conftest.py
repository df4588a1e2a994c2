"""Shared fixtures: the sample workspace (built once per session), a real server on loopback,
tokens for every role. Tests talk to real parts only."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from engines import (
    Postgres,
    Redis,
    postgres_available,
    postgres_cluster,
    redis_available,
    start_redis,
)

REPO = Path(__file__).resolve().parent.parent
_DATABASES = itertools.count()
SAMPLE_SRC = REPO / "data" / "sample"
SCHEMAS = Path(__file__).resolve().parent / "schemas" / "3d-tiles"
TWIN = str(Path(sys.executable).parent / "twin")

TOKENS = {
    "viewer": "viewer-token-123",
    "operator": "operator-token-123",
    "ingest": "ingest-token-123",
    "admin": "admin-token-123",
}
TOKENS_ENV = ",".join(f"{token}:{role}" for role, token in TOKENS.items())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample district, built once with the real CLI."""
    ws = tmp_path_factory.mktemp("sample") / "ws"
    result = subprocess.run(
        [TWIN, "build", str(SAMPLE_SRC), "-o", str(ws)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return ws


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


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on copies of a workspace (each test gets its own live store)."""
    started: list[LiveServer] = []

    def start(ws: Path, extra_env: dict[str, str] | None = None, copy: bool = True) -> LiveServer:
        if copy:
            target = tmp_path / f"ws{len(started)}"
            if not target.exists():
                shutil.copytree(ws, target)
            ws = target
        srv = start_server(ws, extra_env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def live_server(sample_ws: Path, server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A real server on a private copy of the sample workspace."""
    return server_factory(sample_ws)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL 15 + PostGIS cluster for the session (tests/engines.py); each test
    makes its own database in it."""
    if not postgres_available():
        pytest.skip("needs Debian postgresql-15-postgis-3 (make install)")
    yield from postgres_cluster()


@pytest.fixture
def database(postgres: Postgres, request: pytest.FixtureRequest) -> str:
    """The URL of a new empty database for this test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return postgres.create_database(f"{name}_{os.getpid()}_{next(_DATABASES)}")


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A real redis-server on a free port for this test."""
    if not redis_available():
        pytest.skip("needs Debian redis-server (make install)")
    server = start_redis()
    yield server
    server.stop()
