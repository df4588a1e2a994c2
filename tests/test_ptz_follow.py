"""`twin ptz follow --config feeds.yaml`: PTZ heads polled over ONVIF (SOAP GetStatus with a
WS-Security digest) and Hikvision ISAPI (HTTP Digest) on local device doubles, their poses sent
to a real server, following an operator who turns a head from another system; a camera named
by its GB/T 28181 code; wrong passwords move nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from paths import TWIN
from ptz_doubles import Head, IsapiDouble, OnvifDouble
from servers import TOKENS, LiveServer
from waiting import wait_for

from twin.cameras.ptz import OnvifPtz, PtzStatus
from twin.errors import TwinError

PTZ = "camera:cam-lujiazui-ptz"
PTZ_GB_CODE = "31011500001320000001"  # its gb_code in the sample's cameras layer
EAGLE = "camera:cam-pearl-eagle"
PASSWORD = "s3cret-pass"


@pytest.fixture
def onvif() -> Iterator[OnvifDouble]:
    double = OnvifDouble("admin", PASSWORD, "Profile_1")
    yield double
    double.close()


@pytest.fixture
def isapi() -> Iterator[IsapiDouble]:
    double = IsapiDouble("admin", PASSWORD)
    yield double
    double.close()


def _ptz(server: LiveServer, camera: str) -> dict | None:
    with server.client("viewer") as c:
        return c.get(f"/api/cameras/{camera}").json()["ptz"]


def test_follow_onvif_and_isapi_heads(
    live_server: LiveServer, onvif: OnvifDouble, isapi: IsapiDouble, tmp_path: Path
) -> None:
    onvif.head = Head(pan=0.25, tilt=-0.1, zoom=0.5)  # generic space: 45°, -9°, half zoom
    isapi.head = Head(pan=247.5, tilt=20.0, zoom=4.0)  # azimuth, elevation down, 4×
    feeds = [
        {"source": "rtsp://127.0.0.1:1/ptz", "camera": PTZ_GB_CODE, "ptz": {
            "interval_s": 0.2, "onvif": {"url": onvif.xaddr, "profile": "Profile_1",
                                         "username": "admin", "password_env": "PTZ_PASSWORD"}}},
        {"source": "rtsp://127.0.0.1:1/eagle", "camera": "cam-pearl-eagle", "ptz": {
            "interval_s": 0.2, "isapi": {"url": isapi.url, "username": "admin",
                                         "password": PASSWORD, "zoom_ratio": 25}}},
        {"source": "rtsp://127.0.0.1:1/road", "camera": "camera:cam-bund-road"},
    ]  # fmt: skip
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump(feeds))
    follower = subprocess.Popen(
        [TWIN, "ptz", "follow", "--config", str(config), "--server", live_server.url,
         "--token", TOKENS["operator"]],
        stderr=subprocess.PIPE, text=True, env={"PTZ_PASSWORD": PASSWORD, "PATH": "/usr/bin"},
    )  # fmt: skip
    try:
        wait_for(lambda: _ptz(live_server, PTZ) == {"pan": 45.0, "tilt": -9.0, "zoom": 0.5})
        wait_for(lambda: _ptz(live_server, EAGLE) is not None)
        eagle = _ptz(live_server, EAGLE)
        assert eagle is not None
        assert (eagle["pan"], eagle["tilt"]) == pytest.approx((247.5, -20.0))
        assert eagle["zoom"] == pytest.approx(3.0 / 24.0)  # 4× on a 25× lens

        # An operator turns the head from the video platform: the twin follows.
        onvif.head = Head(pan=-0.5, tilt=-0.2, zoom=0.0)
        wait_for(lambda: _ptz(live_server, PTZ) == {"pan": -90.0, "tilt": -18.0, "zoom": 0.0})
        with live_server.client("viewer") as c:
            record = c.get(f"/api/cameras/{PTZ}").json()
        assert record["heading"] == pytest.approx(270.0) and record["pitch"] == pytest.approx(-18)
        polls = onvif.requests
        time.sleep(0.6)
        assert onvif.requests >= polls + 2  # still polling every 0.2 s
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=20)
    assert follower.returncode == 0, err
    assert "following 2 PTZ head(s)" in err
    sent = {line.split(":")[1]: line for line in err.splitlines() if "pose(s) sent" in line}
    assert set(sent) == {"cam-lujiazui-ptz", "cam-pearl-eagle"}
    assert " 2 pose(s) sent" in sent["cam-lujiazui-ptz"]  # sent when it moved, not every poll
    assert onvif.refused == 0 and isapi.refused >= 1  # ISAPI: one challenge, then digest


def test_a_wrong_password_moves_nothing(onvif: OnvifDouble) -> None:
    onvif.head = Head(pan=0.5, tilt=0.0, zoom=0.0)
    assert OnvifPtz(onvif.xaddr, "Profile_1", "admin", PASSWORD).status() == PtzStatus(90.0, 0.0)
    with pytest.raises(TwinError, match="answered 400"):
        OnvifPtz(onvif.xaddr, "Profile_1", "admin", "wrong").status()
    assert onvif.refused == 1


def test_a_config_without_ptz_heads_fails_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump([{"source": "a.mp4", "camera": "cam-1"}]))
    result = subprocess.run([TWIN, "ptz", "follow", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "no feed has a ptz: block" in lines[0]


def test_a_ptz_block_names_exactly_one_protocol(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump([{"source": "a.mp4", "camera": "cam-1", "ptz": {
        "onvif": {"url": "http://x", "profile": "p", "username": "u", "password": "p"},
        "isapi": {"url": "http://y", "username": "u", "password": "p"}}}]))  # fmt: skip
    result = subprocess.run([TWIN, "ptz", "follow", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1
    assert "row 1" in lines[0] and "exactly one of onvif, isapi" in lines[0]
