"""Helpers shared by the benchmarks: timing child processes, percentiles, result tables."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
TWIN = str(Path(sys.executable).parent / "twin")
# Piped output (make bench | tee) keeps whole columns instead of wrapping to 80 characters.
console = Console() if Console().is_terminal else Console(width=240)


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mib: float
    returncode: int
    stderr: str


def run_child(cmd: Sequence[str]) -> ChildRun:
    """Run a command; wall time and the peak RSS of the largest child so far (MiB)."""
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return ChildRun(seconds, peak_kib / 1024, proc.returncode, proc.stderr)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 and max of a latency sample in milliseconds."""
    arr = np.asarray(samples_ms, float)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def show(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@contextmanager
def served(
    ws: Path, log_path: Path, env: dict[str, str], port: int | None = None, *, start_s: float = 60
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`twin serve WS` on loopback with `env` added, its output in `log_path`: the base URL
    and the process, once /healthz answers (within `start_s` seconds); stopped (SIGTERM) on
    exit."""
    port = port or free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [TWIN, "serve", str(ws), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_s
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                time.sleep(0.2)
            yield url, server
        finally:
            server.terminate()
            server.wait()
