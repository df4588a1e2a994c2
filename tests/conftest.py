"""Shared fixtures: the sample workspace (built once per session), a real server on loopback,
real engines, a headless Chromium; and the `browser` / `server` / `slow` markers, set from what a
test starts. Tests talk to real parts only."""

from __future__ import annotations

import inspect
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType

import pytest
from browser import CesiumSite, cesium_site
from paths import SAMPLE_SRC, TWIN
from playwright.sync_api import Browser
from servers import LiveServer, start_server

from bench.chromium import launch
from bench.engines import (
    Postgres,
    Redis,
    postgres_available,
    postgres_cluster,
    redis_available,
    start_redis,
)

_DATABASES = itertools.count()
TESTS = Path(__file__).resolve().parent
# Names that make a test `browser`, `server` or `slow` when it (or a fixture or helper it calls)
# uses them: bench/chromium.py's launch starts Chromium; Popen a server process (`twin serve`,
# Redis, mosquitto, nginx, an RTSP server, Xvfb, a worker) and start_postgres a PostgreSQL
# cluster; TWIN runs the `twin` CLI in a subprocess, seconds of imports each time (a fixture
# like `sample_ws` builds with it).
STARTS = {"launch": "browser", "Popen": "server", "start_postgres": "server", "TWIN": "slow"}


def _codes(code: CodeType) -> Iterator[CodeType]:
    """`code` and the code of every function and lambda written inside it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _ours(obj: object) -> bool:
    """A function or class written in tests/ or bench/ (not a library's)."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return False
    try:
        source = Path(inspect.getfile(obj))
    except TypeError:  # a built-in class
        return False
    return source.parent in (TESTS, TESTS.parent / "bench")


def _starts(func: object, seen: set[object]) -> set[str]:
    """What `func` starts ("browser", "server"), itself or through the functions and classes of
    tests/ and bench/ that it names."""
    if not inspect.isfunction(func) or func in seen:
        return set()
    seen.add(func)
    found: set[str] = set()
    for code in _codes(func.__code__):
        for name in code.co_names:
            if name in STARTS:
                found.add(STARTS[name])
            target = func.__globals__.get(name)
            if inspect.isclass(target) and _ours(target):
                for member in vars(target).values():
                    found |= _starts(member, seen)
            elif _ours(target):
                found |= _starts(target, seen)
    return found


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark a test `browser` when it or a fixture it uses starts Chromium, `server` (and `slow`)
    when they start a server process or a real engine, `slow` when they run the `twin` CLI, so
    `-m "not browser and not slow"` is the quick inner loop (`make test-fast`)."""
    seen: dict[object, set[str]] = {}
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        funcs = [item.function] + [
            defs[-1].func for defs in item._fixtureinfo.name2fixturedefs.values() if defs
        ]
        starts: set[str] = set()
        for func in funcs:
            if func not in seen:
                seen[func] = _starts(func, set())
            starts |= seen[func]
        for marker in sorted(starts):
            item.add_marker(marker)
        if "server" in starts or item.get_closest_marker("server"):
            item.add_marker("slow")


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
    """One real PostgreSQL 15 + PostGIS cluster for the session (bench/engines.py); each test
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium (bench/chromium.py) shared by a test module's tests."""
    with launch() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CesiumSite]:
    """A loopback site over a fresh folder with the test module's `PAGE` as index.html and
    CesiumJS under /cesium/; a test writes its tilesets into `served.root`."""
    with cesium_site(tmp_path_factory.mktemp("site"), request.module.PAGE) as site:
        yield site
