"""Real PostgreSQL 15 (+ PostGIS) and Redis servers for the tests and benchmarks, from Debian's
packages: each started on a free loopback port with a temporary data folder, and stopped
afterwards. No mocks.

PostgreSQL refuses to run as root: when the tests run as root, initdb and the server run as
the `postgres` account, with the data folder under /tmp (readable by it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "twin"


def postgres_available() -> bool:
    """True when Debian's PostgreSQL 15 with PostGIS 3 is installed."""
    return (PG_BIN / "initdb").exists() and any(
        Path("/usr/share/postgresql/15/extension").glob("postgis.control")
    )


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    """A running PostgreSQL cluster: its port and data folder; `url(db)` for a database."""

    port: int
    data: Path
    settings: dict[str, str] = field(default_factory=dict)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database `name`; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=on"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self.pg_ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def start(self) -> None:
        """Start it again on the same port (after `stop`; it kept nothing)."""
        self.process = _redis_process(self.port)
        _wait_for_port(self.port, self.process)


def start_postgres(settings: dict[str, str] | None = None) -> Postgres:
    """initdb a temporary cluster and start it on a free port, with server `settings`
    (e.g. ``{"shared_buffers": "1GB"}``) beyond the defaults."""
    data = Path(tempfile.mkdtemp(prefix="twin-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", PG_USER,
                      "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    cluster = Postgres(free_port(), data, dict(settings or {}))
    cluster.start()
    return cluster


def stop_postgres(cluster: Postgres) -> None:
    try:
        cluster.stop("immediate")
    finally:
        shutil.rmtree(cluster.data, ignore_errors=True)


def _redis_process(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def start_redis() -> Redis:
    """A redis-server on a free port, nothing saved to disk."""
    port = free_port()
    process = _redis_process(port)
    _wait_for_port(port, process)
    return Redis(port, process)


def postgres_cluster() -> Iterator[Postgres]:
    """Generator for a session fixture: one cluster for every test that needs one."""
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        stop_postgres(cluster)
