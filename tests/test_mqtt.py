"""The MQTT bridge through a real mosquitto: a sensor reading published on MQTT raises a
shipped app's alert that arrives on the alert topic (and each status change after it) and in
`/api/alerts`; entity updates on their topic; bad payloads counted and logged while the
subscription goes on; the broker restarted in the middle of a stream, the bridge reconnecting
by itself, every observation stored once."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from mosquitto import Mosquitto, client
from servers import LiveServer
from waiting import wait_for

from bench.engines import Redis

IN = "twin/in/observations"
WATER = {"kind": "environment", "cls": "water_level", "source": "water-bund-wall",
         "lon": 121.4864, "lat": 31.237}  # fmt: skip # sensor:water-bund-wall, limit 4.8 m
PM25 = {"kind": "environment", "cls": "pm25", "source": "sensor:pm25-bund",
        "lon": 121.48615, "lat": 31.2398}  # fmt: skip # limit 75 µg/m³
NOISE = {"kind": "environment", "cls": "noise", "source": "sensor:noise-lujiazui",
         "lon": 121.4999, "lat": 31.237}  # fmt: skip # limit 70 dB(A)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    served = Mosquitto(tmp_path / "mosquitto")
    served.start()
    yield served
    served.stop()


class Listener:
    """A subscriber of ``twin/out/#`` keeping (topic, payload) of what arrives."""

    def __init__(self, broker: Mosquitto) -> None:
        self.received: list[tuple[str, dict]] = []
        self.mqtt = client(broker, "war-room-listener", session=False)
        self.mqtt.on_message = lambda _c, _u, m: self.received.append(
            (m.topic, json.loads(m.payload))
        )
        self.mqtt.on_connect = lambda c, *_: c.subscribe("twin/out/#", qos=1)
        self.mqtt.subscribe("twin/out/#", qos=1)

    def on(self, topic: str) -> list[dict]:
        return [payload for t, payload in list(self.received) if t == topic]

    def close(self) -> None:
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


def _metric(server: LiveServer, name: str) -> float:
    """A sample of ``/metrics`` (``name`` with its labels, e.g. twin_mqtt_connects_total)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _publish(mqtt: paho.Client, payload: object) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    mqtt.publish(IN, body, qos=1).wait_for_publish(10)


@pytest.fixture
def bridged(
    broker: Mosquitto, sample_ws: Path, server_factory: Callable[..., LiveServer]
) -> LiveServer:
    server = server_factory(sample_ws, {
        "TWIN_MQTT_URL": broker.url(), "TWIN_MQTT_ENTITIES": "true",
        "TWIN_METRICS_PUBLIC": "true",
    })  # fmt: skip
    wait_for(lambda: _metric(server, "twin_mqtt_connected") == 1.0)
    return server


def test_a_sensor_reading_on_mqtt_raises_an_alert_out_on_mqtt_and_in_the_api(
    broker: Mosquitto, bridged: LiveServer
) -> None:
    listener = Listener(broker)
    sensor = client(broker, "water-gauge-7")
    try:
        _publish(sensor, {**WATER, "attributes": {"water_level": 5.3}})
        topic = "twin/out/alerts/public-service/environment"
        wait_for(lambda: bool(listener.on(topic)))
        [alert] = listener.on(topic)
        assert alert["app"] == "environment" and alert["status"] == "new"
        assert alert["evidence"]["details"]["reading"] == 5.3
        with bridged.client("operator") as c:
            listed = c.get("/api/alerts", params={"app": "environment"}).json()["items"]
            assert [a["id"] for a in listed] == [alert["id"]]
            assert c.post(f"/api/alerts/{alert['id']}/ack").status_code == 200
        wait_for(lambda: len(listener.on(topic)) == 2)
        assert listener.on(topic)[1]["status"] == "acknowledged"
        entities = listener.on("twin/out/entities/sensor:water-bund-wall")
        assert entities and entities[0]["attributes"]["water_level"] == 5.3
        assert _metric(bridged, 'twin_mqtt_published_total{topic="alert"}') == 2.0
    finally:
        sensor.loop_stop()
        listener.close()


def test_bad_payloads_are_counted_and_logged_and_the_subscription_goes_on(
    broker: Mosquitto, bridged: LiveServer
) -> None:
    sensor = client(broker, "noisy-gateway")
    try:
        _publish(sensor, b"\xff not json")
        _publish(sensor, {"kind": "person"})  # no source, no position
        _publish(sensor, [{**NOISE, "attributes": {"noise": 50}}] * 1001)  # over a batch
        _publish(sensor, {**NOISE, "source": "sensor:nowhere"})  # not in the catalog
        _publish(sensor, {**NOISE, "id": "n-1", "attributes": {"noise": 55}})
        _publish(sensor, [{**NOISE, "id": "n-1"}])  # the same id again
        _publish(sensor, {"observations": [{**NOISE, "id": "n-2", "attributes": {"noise": 56}}]})
        wait_for(lambda: _metric(bridged, 'twin_mqtt_messages_total{outcome="received"}') == 7)
    finally:
        sensor.loop_stop()
    assert _metric(bridged, 'twin_mqtt_messages_total{outcome="bad"}') == 3.0
    assert _metric(bridged, 'twin_mqtt_messages_total{outcome="refused"}') == 2.0
    assert _metric(bridged, "twin_mqtt_observations_total") == 2.0
    with bridged.client("viewer") as c:
        stored = c.get("/api/history/observations",
                       params={"source": "sensor:noise-lujiazui"}).json()["items"]  # fmt: skip
    assert sorted(o["id"] for o in stored) == ["n-1", "n-2"]
    log = next(bridged.ws.parent.glob("server-*.log")).read_text()
    assert "mqtt: bad payload on twin/in/observations: not UTF-8 JSON" in log


def test_the_broker_restarts_mid_stream_and_nothing_is_lost(
    broker: Mosquitto, bridged: LiveServer
) -> None:
    count, rate = 400, 100.0
    listener = Listener(broker)
    sensor = client(broker, "noise-gateway")  # a persistent session: it queues while away
    sent: list[str] = []

    def stream() -> None:
        for i in range(count):
            now = datetime.now(UTC).isoformat()
            reading = {**NOISE, "id": f"stream-{i:04d}", "time": now,
                       "attributes": {"noise": 40 + i % 10}}  # fmt: skip
            sensor.publish(IN, json.dumps(reading), qos=1)
            sent.append(f"stream-{i:04d}")
            time.sleep(1.0 / rate)

    publisher = threading.Thread(target=stream)
    started = time.monotonic()
    publisher.start()
    try:
        wait_for(lambda: len(sent) >= count // 4)
        broker.stop()  # the broker goes away while the stream flows ...
        time.sleep(1.0)
        broker.start()  # ... and comes back on the same port
        back = time.monotonic()
        reconnect_s = wait_for(lambda: _metric(bridged, "twin_mqtt_connects_total") >= 2)
        publisher.join()
        wait_for(lambda: _metric(bridged, "twin_mqtt_observations_total") >= count, 60)
        took = time.monotonic() - started
        # Alerts go out again after the restart.
        _publish(sensor, {**PM25, "attributes": {"pm25": 90}})
        wait_for(lambda: bool(listener.on("twin/out/alerts/public-service/environment")))
    finally:
        sensor.loop_stop()
        listener.close()
    with bridged.client("viewer") as c:
        ids: list[str] = []
        cursor = None
        while True:
            page = c.get("/api/history/observations", params={
                "source": "sensor:noise-lujiazui", "limit": 500,
                **({"cursor": cursor} if cursor else {})}).json()  # fmt: skip
            ids += [o["id"] for o in page["items"]]
            if not (cursor := page["next"]):
                break
    assert sorted(ids) == sorted(sent)  # each one stored, and once
    print(f"\nmqtt: {count} observations at {rate:.0f}/s across a broker restart in {took:.1f} s;"
          f" bridge back {reconnect_s:.1f} s after the broker ({time.monotonic() - back:.1f} s"
          " to the end)")  # fmt: skip


def test_several_processes_run_one_bridge_and_hand_it_over(
    broker: Mosquitto,
    sample_ws: Path,
    server_factory: Callable[..., LiveServer],
    database: str,
    redis: Redis,
) -> None:
    """Two processes on PostgreSQL + Redis: one runs the bridge, every alert goes out once
    whichever process raised it; kill -9 of the holder hands the bridge (its broker session
    and the alerts raised meanwhile) to the other."""
    env = {"TWIN_MQTT_URL": broker.url(), "TWIN_DATABASE_URL": database,
           "TWIN_BUS_URL": redis.url, "TWIN_METRICS_PUBLIC": "true"}  # fmt: skip
    servers = [server_factory(sample_ws, env), server_factory(sample_ws, env)]

    def holders() -> list[LiveServer]:
        return [s for s in servers if _metric(s, "twin_mqtt_connected") == 1.0]

    wait_for(lambda: len(holders()) == 1)
    [holder] = holders()
    [other] = [s for s in servers if s is not holder]
    listener = Listener(broker)
    sensor = client(broker, "gauges")
    topic = "twin/out/alerts/public-service/environment"
    try:
        with other.client("ingest") as c:  # raised through the process without the bridge
            reply = c.post("/api/observations", json={"observations": [
                {**WATER, "attributes": {"water_level": 5.3}}]})  # fmt: skip
        [water] = reply.json()["alerts"]
        wait_for(lambda: bool(listener.on(topic)))
        time.sleep(2.5)  # the holder saves where it is every 2 s
        holder.stop(kill=True)
        with other.client("ingest") as c:  # raised while nobody holds the bridge (the
            # rules leader may have been the killed one too: then raised when `other` leads)
            assert c.post("/api/observations", json={"observations": [
                {**PM25, "attributes": {"pm25": 90}}]}).status_code == 200  # fmt: skip
        wait_for(lambda: _metric(other, "twin_mqtt_connected") == 1.0, 30)  # lease lapsed
        _publish(sensor, {**NOISE, "id": "after-handover", "attributes": {"noise": 50}})
        wait_for(lambda: _metric(other, "twin_mqtt_observations_total") == 1.0)
        wait_for(lambda: len(listener.on(topic)) == 2)
        time.sleep(1.0)
        first, second = listener.on(topic)  # each once
        assert first["id"] == water and second["evidence"]["details"]["reading"] == 90
        with other.client("viewer") as c:
            stored = c.get("/api/alerts", params={"app": "environment"}).json()["items"]
        assert sorted(a["id"] for a in stored) == sorted([water, second["id"]])
    finally:
        sensor.loop_stop()
        listener.close()
