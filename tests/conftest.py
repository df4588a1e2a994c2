"""Shared fixtures: the sample workspace (built once per session), a real server on loopback,
tokens for every role. Tests talk to real parts only."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engines import (
    Postgres,
    Redis,
    postgres_available,
    postgres_cluster,
    redis_available,
    start_redis,
)
from paths import SAMPLE_SRC, TWIN
from servers import LiveServer, start_server

_DATABASES = itertools.count()


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample district, built once with the real CLI."""
    ws = tmp_path_factory.mktemp("sample") / "ws"
    result = subprocess.run(
        [TWIN, "build", str(SAMPLE_SRC), "-o", str(ws)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return ws


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
