"""Connector benchmark: MQTT ingest into `twin serve` through a local mosquitto (one observation
a message, and 100 a message, QoS 1, as fast as one publisher goes; observations/s counted
from publish start to the last one stored), the bridge's reconnection after a broker restart,
and exchange bundles (export of observations from the live store and the archive, the bundle's
size, its import into another copy of the district, and importing it again).

`python -m bench connectors [--messages 20000] [--observations 100000]`. Server, broker and
publisher share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import SAMPLE, TWIN, free_port, served, show

TOKEN = "bench-admin"
NOISE = {"kind": "environment", "cls": "noise", "source": "sensor:noise-lujiazui",
         "lon": 121.4999, "lat": 31.237, "attributes": {"noise": 50}}  # fmt: skip
CAMERA = "camera:cam-bund-road"
BROKER_TUNING = "max_inflight_messages 1000\nmax_queued_messages 100000\n"
"""As docs/integrations.md advises: the bridge acknowledges a message once stored, so the
broker's in-flight window is its batch size, and the queue must hold a burst."""


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait(check: object, timeout: float = 600.0) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() > start + timeout:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.05)
    return time.monotonic() - start


class Broker:
    """mosquitto on a free loopback port (anonymous, no persistence)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{BROKER_TUNING}"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()


def _mqtt_rows(url: str, broker: Broker, messages: int) -> list[list[object]]:
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    publisher.max_inflight_messages_set(100)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    rows: list[list[object]] = []
    stored = 0.0
    for per_message in (1, 100):
        count = messages if per_message == 1 else messages * 5
        body = json.dumps([NOISE] * per_message) if per_message > 1 else json.dumps(NOISE)
        start = time.monotonic()
        for _ in range(count // per_message):
            publisher.publish("twin/in/observations", body, qos=1)
        target = stored + count
        _wait(lambda t=target: _metric(url, "twin_mqtt_observations_total") >= t)
        seconds = time.monotonic() - start
        stored = target
        rows.append([f"{per_message} a message", count, seconds, count / seconds])
    publisher.loop_stop()
    return rows


def _restart_gap(url: str, broker: Broker) -> float:
    """Seconds from the broker's restart to the bridge's next connection."""
    before = _metric(url, "twin_mqtt_connects_total")
    broker.stop()
    time.sleep(1.0)
    broker.start()
    return _wait(lambda: _metric(url, "twin_mqtt_connects_total") > before)


def _fill(url: str, observations: int) -> None:
    """`observations` people over the last two hours, posted 1,000 a request."""
    now = datetime.now(UTC)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=60) as client:  # fmt: skip
        for start in range(0, observations, 1000):
            batch = [
                {"kind": "person", "cls": "person", "source": CAMERA, "track_id": f"t{i % 500}",
                 "lon": 121.488 + (i % 100) * 1e-5, "lat": 31.239,
                 "time": (now - timedelta(seconds=7200 * (1 - i / observations))).isoformat()}
                for i in range(start, min(start + 1000, observations))
            ]  # fmt: skip
            response = client.post("/api/observations", json={"observations": batch})
            response.raise_for_status()


def _timed(args: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run([TWIN, *args], capture_output=True, text=True, check=True,
                            env={"TWIN_WATCHLIST_SECRET": "bench", "PATH": "/usr/bin"})  # fmt: skip
    return time.monotonic() - start, result.stderr.strip()


def _bundle_rows(ws: Path, tmp: Path, observations: int) -> list[list[object]]:
    keys, bundle = tmp / "keys", tmp / "bench.twinb"
    _timed(["keys", "generate", str(keys)])
    since = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    seconds, _ = _timed(["export", str(ws), "--since", since, "--key", str(keys / "twin.key"),
                         "-o", str(bundle)])  # fmt: skip
    size = bundle.stat().st_size
    town = tmp / "town"
    shutil.copytree(_pristine(tmp), town)
    trust = str(keys / "twin.pub")
    first, _ = _timed(["import", str(town), str(bundle), "--trust", trust])
    again, _ = _timed(["import", str(town), str(bundle), "--trust", trust])
    mib = size / 2**20
    return [
        ["export", observations, seconds, observations / seconds, f"{mib:.1f} MiB"],
        ["import", observations, first, observations / first, f"{size / observations:.0f} B/obs"],
        ["import again", observations, again, observations / again, "0 new"],
    ]


def _pristine(tmp: Path) -> Path:
    """The sample district built into `tmp` (once per run)."""
    pristine = tmp / "pristine"
    if not pristine.exists():
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(pristine)], check=True,
                       capture_output=True)  # fmt: skip
    return pristine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench connectors")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--observations", type=int, default=100_000)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ws = tmp / "ws"
        shutil.copytree(_pristine(tmp), ws)
        broker = Broker(tmp)
        broker.start()
        env = {
            "TWIN_TOKENS": f"{TOKEN}:admin", "TWIN_METRICS_PUBLIC": "true",
            "TWIN_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}", "TWIN_HOT_MINUTES": "60",
        }  # fmt: skip
        try:
            with served(ws, tmp / "server.log", env) as (url, _):
                _wait(lambda: _metric(url, "twin_mqtt_connected") == 1.0, 30)
                rows = _mqtt_rows(url, broker, args.messages)
                gap = _restart_gap(url, broker)
                _fill(url, args.observations)
        finally:
            broker.stop()
        show("MQTT ingest (QoS 1, one publisher)", ["messages", "observations", "s", "obs/s"],
             rows)  # fmt: skip
        print(f"bridge connected again {gap:.1f} s after the broker restarted")
        show("exchange bundles", ["step", "observations", "s", "obs/s", "size"],
             _bundle_rows(ws, tmp, args.observations + args.messages * 6))  # fmt: skip
