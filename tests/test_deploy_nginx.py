"""`twin deploy nginx`: the written nginx.conf run by a real nginx (Debian nginx-light) in
front of a real `twin serve`: tiles from disk with their headers (ETag and 304, gzip_static,
CORS, cache lifetimes), the API, the WebSocket and the page through it; an archive-only
workspace's tiles passed to the upstream; bad arguments refused in one line."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from paths import TWIN
from servers import TOKENS, LiveServer, start_server
from websockets.sync.client import connect

from bench.common import free_port
from tiles.archive import write_3tz

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian nginx")


def deploy(ws: Path, out: Path, upstream: str) -> tuple[subprocess.Popen[bytes], str]:
    """Write the config with the real CLI and start nginx on it; the process and base URL."""
    port = free_port()
    result = subprocess.run(
        [TWIN, "deploy", "nginx", str(ws), "--listen", f"127.0.0.1:{port}", "--upstream",
         upstream, "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    nginx = subprocess.Popen(
        ["nginx", "-p", str(out), "-c", "nginx.conf", "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return nginx, url
        except httpx.HTTPError:
            assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(
    sample_ws: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str]]:
    """twin serve on a copy of the sample, nginx in front of it."""
    root = tmp_path_factory.mktemp("nginx")
    ws = root / "ws"
    shutil.copytree(sample_ws, ws)
    server = start_server(ws)
    nginx, url = deploy(ws, root / "deploy", server.url.removeprefix("http://"))
    yield server, url
    nginx.terminate()
    nginx.wait(10)
    server.stop()


def test_the_config_runs_as_is_with_everything_inside_its_folder(
    stack: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, _ = stack
    text = (server.ws.parent / "deploy" / "nginx.conf").read_text()
    for line in text.splitlines():
        for word in line.split():
            if word.startswith("/") and word not in ("/", "/tiles/", "/ws/"):
                inside = word.startswith(str(server.ws.parent.resolve()))
                assert inside, f"a path outside the deployment or the workspace: {line}"
    assert "least_conn;" in text and "gzip_static on;" in text


def test_tiles_come_from_disk_with_their_headers(stack: tuple[LiveServer, str]) -> None:
    server, url = stack
    tiles = server.ws / "tiles"
    plain = httpx.get(url + "/tiles/tileset.json", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == (tiles / "tileset.json").read_bytes()
    assert plain.headers["server"].startswith("nginx")
    assert plain.headers["cache-control"] == "public, max-age=60, must-revalidate"
    assert plain.headers["access-control-allow-origin"] == "*"
    zipped = httpx.get(url + "/tiles/tileset.json", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"  # the build's tileset.json.gz
    raw = int(zipped.headers["content-length"])
    assert raw == (tiles / "tileset.json.gz").stat().st_size
    assert json.loads(gzip.decompress((tiles / "tileset.json.gz").read_bytes()))["asset"]
    etag = plain.headers["etag"]
    revalidate = {"If-None-Match": etag, "Accept-Encoding": "identity"}
    again = httpx.get(url + "/tiles/tileset.json", headers=revalidate)
    assert again.status_code == 304
    glb = sorted(tiles.rglob("*.glb"))[0]
    content = httpx.get(url + "/tiles/" + glb.relative_to(tiles).as_posix())
    assert content.status_code == 200 and content.content == glb.read_bytes()
    assert content.headers["content-type"] == "model/gltf-binary"
    assert content.headers["cache-control"] == "public, max-age=3600"
    assert "etag" in content.headers and "access-control-allow-origin" in content.headers
    escape = httpx.get(url + "/tiles/%2e%2e/twin.json")
    assert escape.status_code in (400, 403, 404) and b"crs" not in escape.content


def test_api_websocket_and_page_go_to_the_upstream(stack: tuple[LiveServer, str]) -> None:
    _, url = stack
    assert httpx.get(url + "/api/elements").status_code == 401
    headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
    page = httpx.get(url + "/api/elements", params={"kind": "camera"}, headers=headers)
    assert page.status_code == 200 and page.json()["total"] > 0
    assert "cesium" in httpx.get(url + "/").text.lower()
    ws_url = url.replace("http://", "ws://") + f"/ws/live?token={TOKENS['viewer']}"
    with connect(ws_url) as socket:
        topics = []
        while "ready" not in topics:
            topics.append(json.loads(socket.recv(timeout=10))["topic"])
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKENS['ingest']}"}) as c:
        reply = c.post("/api/observations", json={"observations": [
            {"kind": "person", "source": "camera:cam-bund-road", "lon": 121.4866,
             "lat": 31.2395}]})  # fmt: skip
    assert reply.status_code == 200 and reply.json()["accepted"] == 1


def test_an_archive_only_workspace_passes_tiles_on(sample_ws: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    write_3tz(ws / "tiles", ws / "tiles.3tz")
    shutil.rmtree(ws / "tiles")
    server = start_server(ws)
    nginx, url = deploy(ws, tmp_path / "deploy", server.url.removeprefix("http://"))
    try:
        reply = httpx.get(url + "/tiles/tileset.json")
        assert reply.status_code == 200 and reply.json()["asset"]["version"] == "1.1"
        assert reply.headers["etag"]  # from twin serve, which reads the archive
    finally:
        nginx.terminate()
        nginx.wait(10)
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "nohost"], "not HOST:PORT"),
        (["--upstream", "a:99999"], "not HOST:PORT"),
    ],
)
def test_bad_arguments_fail_in_one_line(
    sample_ws: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [TWIN, "deploy", "nginx", str(sample_ws), "--listen", "8080", "--out", str(tmp_path),
         *args],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    not_ws = subprocess.run(
        [TWIN, "deploy", "nginx", str(tmp_path), "--listen", "8080", "--upstream", "a:1",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert not_ws.returncode == 2 and "not a built workspace" in not_ws.stderr
