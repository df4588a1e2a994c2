"""Tile-serving benchmark: `twin serve` against nginx serving the same tile files, with wrk
(64 connections, one load-generator thread; the 2 cores are shared with the load generator)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import SAMPLE, TWIN, free_port, show

NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  types {{ application/json json; model/gltf-binary glb; }}
  server {{
    listen 127.0.0.1:{port};
    location /tiles/ {{ alias {tiles}/; etag on; }}
  }}
}}
"""


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def _wrk(url: str, seconds: int = 5) -> tuple[float, str, str]:
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    return rate, p50, p99


def main() -> None:
    if not shutil.which("wrk") or not shutil.which("nginx"):
        raise SystemExit("wrk and nginx are needed: make install")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers run as an unprivileged user when started as root
        ws = tmp / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)
        glb = sorted((ws / "tiles").rglob("*.glb"))[0].relative_to(ws / "tiles")
        twin_port, nginx_port = free_port(), free_port()
        (tmp / "nginx.conf").write_text(
            NGINX_CONF.format(tmp=tmp, port=nginx_port, tiles=ws / "tiles")
        )
        server = subprocess.Popen(
            [TWIN, "serve", str(ws), "--port", str(twin_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TWIN_TOKENS": "bench:viewer"},
        )
        nginx = subprocess.Popen(
            ["nginx", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{twin_port}/healthz")
            _wait(f"http://127.0.0.1:{nginx_port}/tiles/tileset.json")
            rows = []
            for label, port in (("twin serve", twin_port), ("nginx", nginx_port)):
                for path in ("tileset.json", str(glb)):
                    rate, p50, p99 = _wrk(f"http://127.0.0.1:{port}/tiles/{path}")
                    rows.append((label, path, rate, p50, p99))
        finally:
            server.terminate()
            nginx.terminate()
            server.wait()
            nginx.wait()
    show(
        "Tile serving, wrk -c64 -d5s (same files)",
        ["server", "file", "req/s", "p50", "p99"],
        rows,
    )


if __name__ == "__main__":
    main()
