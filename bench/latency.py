"""Frame → WebSocket latency: a real `twin serve` on the sample district, `twin detect` on real
frames posting observations, and a `/ws/live` client that timestamps each `entity` message
against the capture time of its frame (the observation's ``time``, stamped when the frame was
decoded). Same machine, same clock: p50/p99 in milliseconds."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import SAMPLE, TWIN, free_port, percentiles, show

SECONDS = 30.0
FPS = 4.0
CAMERA = "camera:cam-bund-road"
TOKENS = "bench-ingest:ingest,bench-viewer:viewer"


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("twin serve did not start")


def _collect(url: str, seconds: float) -> list[float]:
    """Latencies (ms) of the entity messages that arrive within `seconds` after the snapshot."""
    from websockets.sync.client import connect

    samples: list[float] = []
    ws_url = url.replace("http://", "ws://") + "/ws/live?token=bench-viewer"
    with connect(ws_url) as socket:
        while json.loads(socket.recv())["topic"] != "ready":
            pass
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                message = json.loads(socket.recv(timeout=max(0.01, end - time.monotonic())))
            except TimeoutError:
                break
            if message["topic"] != "entity":
                continue
            sent = datetime.fromisoformat(message["payload"]["time"])
            samples.append((datetime.now(UTC) - sent).total_seconds() * 1000)
    return samples


def main() -> None:
    from twin.demo import pan_frames

    env = {**os.environ, "TWIN_TOKENS": TOKENS}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True,
                       capture_output=True)  # fmt: skip
        frames = pan_frames(Path(tmp) / "frames", count=12)
        url = f"http://127.0.0.1:{free_port()}"
        server = subprocess.Popen(
            [TWIN, "serve", str(ws), "--port", url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        detector = None
        try:
            _wait(url, server)
            detector = subprocess.Popen(
                [TWIN, "detect", str(frames), "--camera", CAMERA, "--server", url,
                 "--token", "bench-ingest", "--workspace", str(ws), "--fps", str(FPS),
                 "--loop", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            samples = _collect(url, SECONDS)
        finally:
            for process in (detector, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)
    if not samples:
        raise SystemExit("no entity messages arrived")
    stats = percentiles(samples)
    show(
        f"Frame → WebSocket latency ({len(samples)} entity messages, {FPS:.0f} fps feed, "
        "detector + server + client on the same 2 cores)",
        ["p50 ms", "p90 ms", "p99 ms", "max ms"],
        [(stats["p50"], stats["p90"], stats["p99"], stats["max"])],
    )


if __name__ == "__main__":
    main()
