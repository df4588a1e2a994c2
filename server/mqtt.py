"""The MQTT bridge (``TWIN_MQTT_URL``): observations in from ``twin/in/observations``, alerts
(and, with ``TWIN_MQTT_ENTITIES``, entity updates) out; topics and payloads in
`server.mqttwire`.

- **In.** Subscribed with QoS 1 in a persistent session (``TWIN_MQTT_CLIENT_ID``, stable across
  restarts), so the broker queues what arrives while the server is away. Messages are ingested
  in arrival order through `server.ingest` — the HTTP route's step, with the rights of an
  ``ingest`` token and nothing more — merged into batches of up to 1,000 observations while
  they queue; a batch the service refuses (unknown source, time out of bounds, an id already
  stored) is retried message by message so one bad message costs only itself. Each message is
  acknowledged (PUBACK) only once it was stored, refused or found malformed: a server stopped
  mid-way has the broker deliver the rest again (give observations ids, and a redelivered one
  is refused as a duplicate instead of stored twice). Bad payloads and refused messages are
  counted and logged (a line a second at most), and never stop the subscription.
- **Out.** A bus subscriber publishes each ``alert`` (and ``entity``) message with QoS 1, not
  retained. While the broker is away paho keeps them (at most `MAX_QUEUED`; past that they are
  dropped and counted) and sends them once it is back.
- **Reconnection.** paho's network thread reconnects by itself, `RECONNECT_MIN_S` doubling to
  `RECONNECT_MAX_S`, and the bridge subscribes again on every connection.

- **Several processes** (``TWIN_BUS_URL``): one bridge runs at a time, in the process that
  holds the lease ``twin:mqtt:bridge`` in Redis (`server.lease`); it ingests for all and
  publishes every alert of the shared stream once. When that process dies the lease lapses, another
  takes it, resumes the broker session (one client id for the deployment) and first publishes
  the alerts after the last one its predecessor published (kept in ``twin:mqtt:published``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
import redis.asyncio as aioredis
from paho.mqtt.enums import CallbackAPIVersion
from redis.exceptions import RedisError

from scenes.errors import SceneError
from scenes.models import Observation
from server.bus import EventBus, Message
from server.ingest import ingest
from server.lease import RENEW_S, Lease
from server.mqttstats import MqttCollector, MqttStats
from server.mqttwire import IN_TOPIC, Broker, alert_topic, entity_topic, observations_of
from server.redisbus import RedisBus, stream_key
from server.settings import TwinSettings
from server.state import TwinState
from server.topics import Topic

log = logging.getLogger("twin.server.mqtt")

QOS = 1
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
MAX_QUEUED = 10_000
"""Most outgoing messages paho holds while the broker is away; the bus holds as many more."""
MAX_WAITING = 2_000
"""Most QoS 0 messages waiting to be ingested (QoS 1 ones are capped by the broker's in-flight
window, as they are acknowledged only once stored)."""
BATCH = 1_000
COMPLAIN_EVERY_S = 1.0
LEASE_KEY = "twin:mqtt:bridge"
PUBLISHED_KEY = "twin:mqtt:published"  # stream id of the last alert the bridge published


@dataclass(frozen=True)
class _Received:
    """A message handed from paho's thread: its payload, id and QoS, and the connection it came
    on (an acknowledgement only goes back on that connection)."""

    payload: bytes
    mid: int
    qos: int
    connection: int


class _Complaints:
    """Warnings about messages, at most one line every `COMPLAIN_EVERY_S`, with how many
    were held back."""

    def __init__(self) -> None:
        self._next, self._held = 0.0, 0

    def warn(self, what: str, why: str) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        more = f" ({self._held} more since the last line)" if self._held else ""
        log.warning("mqtt: %s: %s%s", what, why[:300], more)
        self._next, self._held = now + COMPLAIN_EVERY_S, 0


def default_client_id(state: TwinState) -> str:
    """``twin-`` and 12 hex digits of the SHA-1 of the workspace path, or of the bus URL when
    several processes share one: the same at every start, on every host."""
    shared = state.settings.bus_url
    digest = hashlib.sha1((shared or str(state.paths.root.resolve())).encode()).hexdigest()[:12]
    return f"twin-{digest}"


class MqttBridge:
    """The bridge of one server (see the module docstring); `start` and `stop` it on the
    event loop."""

    def __init__(
        self,
        state: TwinState,
        broker: Broker,
        client_id: str,
        *,
        entities: bool,
        resume: _ResumePoint | None = None,
    ) -> None:
        self.state, self.broker, self.resume = state, broker, resume
        self.stats = MqttStats()
        self._connection = 0
        self._complaints = _Complaints()
        self._incoming: asyncio.Queue[_Received] = asyncio.Queue()
        topics = [Topic.ALERT, *([Topic.ENTITY] if entities else [])]
        self._sub = state.bus.subscribe(topics, MAX_QUEUED)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False, manual_ack=True)  # fmt: skip
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    async def start(self) -> None:
        """Connect in the background (paho's thread retries until the broker answers) and
        start ingesting and publishing."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        self._tasks = [asyncio.create_task(self._ingest()), asyncio.create_task(self._publish())]

    async def stop(self) -> None:
        """Disconnect, stop paho's thread and the tasks; what was not acknowledged comes
        again at the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self.state.bus.unsubscribe(self._sub)

    # -- paho's network thread -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, reason: Any, __: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: %s:%d refused the connection (%s)", self.broker.host,
                        self.broker.port, reason)  # fmt: skip
            return
        self._connection += 1
        self.stats.connected, self.stats.connects = True, self.stats.connects + 1
        client.subscribe(IN_TOPIC, qos=QOS)
        log.info("mqtt: connected to %s:%d (connection %d, session %s)", self.broker.host,
                 self.broker.port, self.stats.connects,
                 "resumed" if flags.session_present else "new")  # fmt: skip

    def _on_disconnect(self, _: paho.Client, __: Any, ___: Any, reason: Any, ____: Any) -> None:
        if self.stats.connected:
            log.warning("mqtt: disconnected from %s:%d (%s); reconnecting", self.broker.host,
                        self.broker.port, reason)  # fmt: skip
        self.stats.connected = False

    def _on_message(self, _: paho.Client, __: Any, message: paho.MQTTMessage) -> None:
        item = _Received(bytes(message.payload), message.mid, message.qos, self._connection)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._offer, item)

    # -- the event loop ------------------------------------------------------------------

    def _offer(self, item: _Received) -> None:
        """Queue a received message; a QoS 0 one is dropped (counted) past `MAX_WAITING`. QoS 1
        ones always wait: the broker sends no more than its in-flight window unacknowledged."""
        if item.qos == 0 and self._incoming.qsize() >= MAX_WAITING:
            self.stats.overflow += 1
            self._complaints.warn("message dropped", f"{MAX_WAITING} messages already waiting")
            return
        self._incoming.put_nowait(item)

    async def _ingest(self) -> None:
        """Take waiting messages in order, a batch at a time, store them, acknowledge them."""
        while True:
            messages = [await self._incoming.get()]
            while not self._incoming.empty() and len(messages) < BATCH:
                messages.append(self._incoming.get_nowait())
            parsed: list[tuple[_Received, list[Observation]]] = []
            for item in messages:
                self.stats.received += 1
                try:
                    parsed.append((item, observations_of(item.payload)))
                except ValueError as exc:
                    self.stats.bad += 1
                    self._complaints.warn(f"bad payload on {IN_TOPIC}", str(exc))
            await self._store(parsed)
            for item in messages:
                if item.qos and item.connection == self._connection:
                    self._client.ack(item.mid, item.qos)

    async def _store(self, parsed: list[tuple[_Received, list[Observation]]]) -> None:
        """Ingest the messages' observations, merged into batches of at most `BATCH`; a
        refused batch again message by message, so only the refused ones are lost."""
        for group in _groups(parsed):
            merged = [obs for _, observations in group for obs in observations]
            if len(group) > 1 and await self._try(merged) is None:
                continue
            for _, observations in group:
                refusal = await self._try(observations)
                if refusal is not None:
                    self.stats.refused += 1
                    self._complaints.warn(f"message on {IN_TOPIC} refused", str(refusal))

    async def _try(self, observations: list[Observation]) -> SceneError | None:
        """Store `observations`; the service's refusal, if it refused them (nothing stored)."""
        try:
            result = await ingest(self.state, observations)
        except SceneError as exc:
            return exc
        self.stats.observations += len(result.observations)
        return None

    async def _publish(self) -> None:
        """Publish each alert (and entity) message of the bus; with a `resume` point, first
        the alerts of the shared stream after the last one a previous holder published."""
        last: tuple[int, int] | None = None
        if self.resume is not None:
            missed = await self.resume.missed(self.state.bus)
            for message in missed:
                self._send(message)
            last = stream_key(missed[-1].id) if missed and missed[-1].id else None
        while True:
            message = await self._sub.get()
            if last is not None and message.id and stream_key(message.id) <= last:
                continue  # published from the replay already
            self._send(message)
            if self.resume is not None and message.id:
                self.resume.passed(message.id)

    def _send(self, message: Message) -> None:
        """Publish one bus message on its MQTT topic (QoS 1)."""
        payload = message.data()
        topic = alert_topic(payload) if message.topic == Topic.ALERT else entity_topic(payload)
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        info = self._client.publish(topic, text, qos=QOS, retain=False)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            self.stats.dropped += 1
            self._complaints.warn("not published", f"{MAX_QUEUED} messages already queued")
        else:  # sent, or kept until the broker is back
            self.stats.published[message.topic] += 1


def _groups(
    parsed: list[tuple[_Received, list[Observation]]],
) -> Iterator[list[tuple[_Received, list[Observation]]]]:
    """Consecutive messages holding at most `BATCH` observations together (a bigger message
    alone)."""
    group: list[tuple[_Received, list[Observation]]] = []
    size = 0
    for entry in parsed:
        if group and size + len(entry[1]) > BATCH:
            yield group
            group, size = [], 0
        group.append(entry)
        size += len(entry[1])
    if group:
        yield group


def configured_broker(settings: TwinSettings) -> Broker | None:
    """The broker of ``TWIN_MQTT_URL`` (None without one); `MqttConfigError` for a bad URL."""
    return None if settings.mqtt_url is None else Broker.parse(settings.mqtt_url.get_secret_value())


class _ResumePoint:
    """The stream id of the last message the bridge published, kept in Redis for the next
    holder of the bridge (saved every `RENEW_S`: a takeover may publish a few alerts twice,
    never skip one the stream still holds)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.latest: str | None = None
        self._saved: str | None = None

    async def missed(self, bus: EventBus) -> list[Message]:
        """The alerts of the shared stream after the saved id (none the first time)."""
        since = await self.client.get(PUBLISHED_KEY)
        if since is None or not isinstance(bus, RedisBus):
            return []
        messages, gap = await bus.replay_since(since.decode(), [Topic.ALERT])
        if gap:
            log.warning("mqtt: the stream no longer holds every alert since %s", since.decode())
        log.info("mqtt: publishing %d alert(s) raised since the last holder", len(messages))
        return messages

    def passed(self, stream_id: str) -> None:
        self.latest = stream_id

    async def save(self) -> None:
        if self.latest is not None and self.latest != self._saved:
            await self.client.set(PUBLISHED_KEY, self.latest)
            self._saved = self.latest


@contextlib.asynccontextmanager
async def _running(
    state: TwinState, broker: Broker, resume: _ResumePoint | None = None
) -> AsyncIterator[MqttBridge]:
    """A started bridge with its figures on /metrics; stopped on leaving."""
    settings = state.settings
    bridge = MqttBridge(state, broker, settings.mqtt_client_id or default_client_id(state),
                        entities=settings.mqtt_entities, resume=resume)  # fmt: skip
    registry = state.metrics.registry
    collector = MqttCollector(bridge.stats)
    registry.register(collector)
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()
        registry.unregister(collector)


async def _hold(state: TwinState, broker: Broker, url: str) -> None:
    """Run the bridge whenever this process holds the lease (a task, cancelled at stop)."""
    client = aioredis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    lease = Lease(client, LEASE_KEY)
    try:
        while True:
            try:
                if await lease.take():
                    log.info("mqtt: this process runs the bridge")
                    resume = _ResumePoint(client)
                    async with _running(state, broker, resume):
                        try:
                            while await lease.renew():
                                await resume.save()
                                await asyncio.sleep(RENEW_S)
                            log.warning("mqtt: the bridge's lease lapsed; stopping it here")
                        finally:
                            with contextlib.suppress(RedisError, OSError):
                                await resume.save()
                await asyncio.sleep(RENEW_S)
            except (RedisError, OSError) as exc:
                log.warning("mqtt: Redis unreachable (%s); trying again", exc)
                await asyncio.sleep(RENEW_S)
    finally:
        with contextlib.suppress(RedisError, OSError):
            await lease.release()
            await client.aclose()


@contextlib.asynccontextmanager
async def bridging(state: TwinState, broker: Broker | None) -> AsyncIterator[None]:
    """While inside: the MQTT bridge to `broker` runs (nothing for None) — in this process,
    or, with a shared bus, in whichever process holds the bridge's lease."""
    if broker is None:
        yield
        return
    if state.settings.bus_url is None:
        async with _running(state, broker):
            yield
        return
    task = asyncio.create_task(_hold(state, broker, state.settings.bus_url), name="mqtt-lease")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
