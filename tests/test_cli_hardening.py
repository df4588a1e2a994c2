"""The CLI on careless input: a bad port, a screenshot that is not a PNG, a busy port (serve
and demo, which must fail before printing a URL and tokens), a bad setting, and camera ids
given as the layer's own id (``cam-bund-road`` for ``camera:cam-bund-road``)."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_workspace as tiny
import ultralytics
from paths import TWIN
from servers import TOKENS, LiveServer

from bench.common import free_port

LAYER_ID = tiny.CAMERA_ID.removeprefix("camera:")


def _twin(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny-cli") / "ws")


def test_a_port_out_of_range_is_a_usage_error(tiny_ws: Path) -> None:
    result = _twin("serve", str(tiny_ws), "--port", "99999")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--port" in result.stderr and "65535" in result.stderr


def test_a_screenshot_that_is_not_a_png_fails_in_one_line(tiny_ws: Path) -> None:
    line = _one_error_line(_twin("view", str(tiny_ws), "--screenshot", "x.txt"))
    assert "x.txt" in line and "PNG" in line


def test_a_bad_setting_fails_in_one_line_naming_it(tiny_ws: Path) -> None:
    result = _twin("serve", str(tiny_ws), "--port", str(free_port()), TWIN_MAX_DRONES="many")
    assert "TWIN_MAX_DRONES" in _one_error_line(result)


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_busy_port_fails_at_once_with_a_hint(command: str, tiny_ws: Path) -> None:
    """`twin demo` on a busy port used to print a fresh URL and tokens, start its feeds and
    then fail with 401 tracebacks: the port is now taken before anything else."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = str(holder.getsockname()[1])
        args = ["serve", str(tiny_ws)] if command == "serve" else ["demo"]
        result = _twin(*args, "--port", port, timeout=60)
    line = _one_error_line(result)
    assert f"port {port}" in line and "already in use" in line and "--port" in line
    assert "token" not in result.stdout + result.stderr


def test_detect_takes_the_camera_by_its_layer_id(
    tiny_ws: Path, server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = server_factory(tiny_ws)
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(Path(ultralytics.__file__).parent / "assets" / "bus.jpg", frames / "bus.jpg")
    result = _twin("detect", str(frames), "--camera", LAYER_ID, "--server", server.url,
                   "--token", TOKENS["ingest"], timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 frames" in result.stderr
    with server.client("viewer") as viewer:
        frame = viewer.get(f"/api/cameras/{LAYER_ID}/frame")
        assert frame.status_code == 200 and frame.content[:3] == b"\xff\xd8\xff"
        assert viewer.get(f"/api/cameras/{tiny.CAMERA_ID}/frame").content == frame.content


def test_calibrate_takes_the_camera_by_its_layer_id(tiny_ws: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(tiny_ws, ws)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["u", "v", "lon", "lat", "height"])
        for u, v, lon, lat in [(100, 500, 121.4899, 31.2391), (1180, 500, 121.4907, 31.2391),
                               (640, 400, 121.4903, 31.2395), (640, 650, 121.4903, 31.2389),
                               (300, 600, 121.4900, 31.2390)]:  # fmt: skip
            writer.writerow([u, v, lon, lat, 10.0])
    result = _twin("camera", "calibrate", str(ws), LAYER_ID, str(pairs))
    assert result.returncode == 0, result.stderr
    assert f"calibrated {LAYER_ID}" in result.stderr
    assert tiny.CAMERA_ID in (ws / "cameras.json").read_text()


def test_view_looks_through_the_camera_named_by_its_layer_id(
    sample_ws: Path, tmp_path: Path
) -> None:
    shots = {}
    for name in (LAYER_ID, tiny.CAMERA_ID):  # the sample has the same road camera
        shot = tmp_path / f"{name.replace(':', '_')}.png"
        result = _twin("view", str(sample_ws), "--screenshot", str(shot), "--size", "320x200",
                       "--camera", name, "--layers", "buildings,cameras", timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr
        shots[name] = shot.read_bytes()
    assert shots[LAYER_ID][:8] == b"\x89PNG\r\n\x1a\n" and shots[LAYER_ID] == shots[tiny.CAMERA_ID]
