"""Live RTSP cameras against GStreamer's RTSP server serving the demo clip: the stream source
reconnects with backoff when the server restarts mid-stream and measures the gap, a slow model
drops frames instead of lagging, and `twin detect` (a stream URL, and `--config` feeds) keeps
the server's feed health honest through an outage (`/readyz` lists the camera as stale while
it is down and fresh once it is back)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from paths import TWIN
from rtsp import RtspCamera, make_clip
from servers import TOKENS, LiveServer
from waiting import wait_for

from twin.live.frames import Frame
from twin.live.sources import open_source
from twin.live.stream import QUEUE_FRAMES, StreamSource

CAMERA = "camera:cam-bund-road"
OUTAGE_S = 3.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("rtsp"))


@pytest.fixture
def camera(clip: Path) -> Iterator[RtspCamera]:
    served = RtspCamera(clip)
    served.start()
    yield served
    served.stop()


def _take(frames: Iterator[Frame], count: int) -> list[Frame]:
    return [next(frames) for _ in range(count)]


def test_the_stream_comes_back_after_the_server_restarts(camera: RtspCamera) -> None:
    source = open_source(camera.url, fps=0, loop=1)
    assert isinstance(source, StreamSource)
    frames = source.frames()
    assert isinstance(frames, Generator)  # closed below, which closes the stream
    before = _take(frames, 15)
    camera.stop()
    stopped = time.monotonic()
    time.sleep(OUTAGE_S)
    camera.start()
    after = _take(frames, 15)
    back = time.monotonic() - stopped
    frames.close()
    assert [f.index for f in before + after] == list(range(30))
    assert source.reconnects == 1 and len(source.gaps) == 1
    # The gap runs from the last frame before the restart to the first after it.
    assert OUTAGE_S <= source.gaps[0] <= back + 1.0
    assert all(f.size == (240, 320) for f in after)
    assert after[0].time > before[-1].time


def test_a_slow_model_drops_frames_instead_of_lagging(camera: RtspCamera) -> None:
    source = StreamSource(camera.url)
    frames = source.frames()
    assert isinstance(frames, Generator)  # closed below, which closes the stream
    _take(frames, 3)  # the stream runs
    ages = []
    for _ in range(8):
        frame = next(frames)
        ages.append((datetime.now(UTC) - frame.time).total_seconds())
        time.sleep(0.4)  # a model at 2.5 fps on a 10 fps camera
    frames.close()
    assert source.dropped >= 15
    # At most QUEUE_FRAMES frames wait: a frame is never much older than that many frame
    # intervals (an unbounded queue would add 0.3 s of lag per frame here).
    assert max(ages) < QUEUE_FRAMES * 0.1 + 0.25, ages


def _readyz(server: LiveServer) -> dict:
    with server.client("viewer") as c:
        return dict(c.get("/readyz").json()["feeds"])


def _fresh(server: LiveServer) -> bool:
    return CAMERA not in (_readyz(server)["stale"] or [])


def _frame_pushed(server: LiveServer) -> bool:
    with server.client("viewer") as c:
        return c.get(f"/api/cameras/{CAMERA}/frame").status_code == 200


def _detect(
    server: LiveServer, args: list[str], scenario: Callable[[], None]
) -> subprocess.CompletedProcess[str]:
    """Run `twin detect ARGS` against `server` until its frames arrive and the camera's feed is
    fresh, then `scenario()`, then Ctrl+C."""
    worker = subprocess.Popen([TWIN, "detect", *args, "--server", server.url, "--token",
                               TOKENS["ingest"]], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: _frame_pushed(server) and _fresh(server), timeout_s=60)
        scenario()
    finally:
        worker.send_signal(signal.SIGINT)
        _, err = worker.communicate(timeout=60)
    return subprocess.CompletedProcess(worker.args, worker.returncode, "", err)


@pytest.fixture
def feeds_server(sample_ws: Path, server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(sample_ws, {"TWIN_FEED_STALE_S": "2"})


def test_twin_detect_on_a_stream(feeds_server: LiveServer, camera: RtspCamera) -> None:
    def people_seen() -> None:
        with feeds_server.client("viewer") as c:
            wait_for(
                lambda: any(e["source"] == CAMERA for e in c.get("/api/live").json()["items"]),
                timeout_s=60,
            )

    result = _detect(feeds_server, [camera.url, "--camera", CAMERA], people_seen)
    assert result.returncode == 0, result.stderr
    assert "0 reconnects" in result.stderr and "observations sent" in result.stderr


def test_a_config_feed_reports_the_outage_as_feed_health(
    feeds_server: LiveServer, camera: RtspCamera, tmp_path: Path
) -> None:
    def outage() -> None:  # /readyz: stale while the camera is down, fresh once it is back
        camera.stop()
        wait_for(lambda: not _fresh(feeds_server), timeout_s=30)
        camera.start()
        wait_for(lambda: _fresh(feeds_server), timeout_s=60)

    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump([{"source": camera.url, "camera": "cam-bund-road"}]))
    result = _detect(feeds_server, ["--config", str(config)], outage)
    assert result.returncode == 0, result.stderr
    done = [line for line in result.stderr.splitlines() if ": done: " in line]
    assert len(done) == 1 and "1 reconnects (longest gap" in done[0], result.stderr
    assert "back after" in result.stderr
    with httpx.Client(base_url=feeds_server.url) as c:
        assert c.get("/readyz").json()["feeds"]["stale"] is None  # ids only for readers
