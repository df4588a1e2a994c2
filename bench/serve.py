"""Tile-serving benchmark, wrk (64 connections, one load-generator thread; the 2 cores are
shared with the load generator), the same files three ways: `twin serve` alone, nginx with the
configuration `twin deploy nginx` writes (tiles from disk, gzip_static, in front of `twin
serve`), and a plain nginx serving the folder. The deployed nginx is asked for gzip, as
browsers do."""

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


def _wrk(url: str, seconds: int = 5, *, gzip: bool = False) -> tuple[float, str, str]:
    headers = ["-H", "Accept-Encoding: gzip"] if gzip else []
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(_field(r"Requests/sec:\s+([\d.]+)", out))
    # anchored: the thread-stats table also holds percentages ("75.50%")
    return rate, _field(r"^\s+50%\s+(\S+)", out), _field(r"^\s+99%\s+(\S+)", out)


def _field(pattern: str, out: str) -> str:
    """The first group of `pattern` (multi-line) in wrk's report."""
    found = re.search(pattern, out, re.M)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in the wrk report:\n{out}")
    return found.group(1)


def main() -> None:
    if not shutil.which("wrk") or not shutil.which("nginx"):
        raise SystemExit("wrk and nginx are needed: make install")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers run as an unprivileged user when started as root
        ws = tmp / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True, capture_output=True)
        glb = sorted((ws / "tiles").rglob("*.glb"))[0].relative_to(ws / "tiles")
        twin_port, nginx_port, deploy_port = free_port(), free_port(), free_port()
        (tmp / "nginx.conf").write_text(
            NGINX_CONF.format(tmp=tmp, port=nginx_port, tiles=ws / "tiles")
        )
        subprocess.run(
            [TWIN, "deploy", "nginx", str(ws), "--listen", f"127.0.0.1:{deploy_port}",
             "--upstream", f"127.0.0.1:{twin_port}", "--out", str(tmp / "deploy")],
            check=True, capture_output=True,
        )  # fmt: skip
        server = subprocess.Popen(
            [TWIN, "serve", str(ws), "--port", str(twin_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TWIN_TOKENS": "bench:viewer"},
        )
        nginxes = [
            subprocess.Popen(["nginx", *args, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
            for args in (["-c", str(tmp / "nginx.conf")],
                         ["-p", str(tmp / "deploy"), "-c", "nginx.conf"])
        ]  # fmt: skip
        try:
            _wait(f"http://127.0.0.1:{twin_port}/healthz")
            _wait(f"http://127.0.0.1:{nginx_port}/tiles/tileset.json")
            _wait(f"http://127.0.0.1:{deploy_port}/tiles/tileset.json")
            rows = []
            servers = (("twin serve", twin_port, False), ("twin deploy nginx", deploy_port, True),
                       ("plain nginx", nginx_port, False))  # fmt: skip
            for label, port, gzip in servers:
                for path in ("tileset.json", str(glb)):
                    url = f"http://127.0.0.1:{port}/tiles/{path}"
                    rate, p50, p99 = _wrk(url, gzip=gzip)
                    rows.append((label, path, rate, p50, p99))
        finally:
            server.terminate()
            server.wait()
            for nginx in nginxes:
                nginx.terminate()
                nginx.wait()
    show(
        "Tile serving, wrk -c64 -d5s (same files)",
        ["server", "file", "req/s", "p50", "p99"],
        rows,
    )


if __name__ == "__main__":
    main()
