"""What a server's Prometheus registry (`server.metrics`) reads from its state at each scrape:
bus queue depth and drops per topic, WebSocket clients, WAL and workspace bytes, frames kept,
each feed's last observation age."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.state import TwinState
from server.topics import STALE_TOPICS, Topic

BUS_TOPICS = tuple(sorted({*STALE_TOPICS, Topic.ENTITIES, Topic.ALERT}))
"""Topics whose drops are always reported (0 until one is dropped), so alert rules see them."""


class StateCollector(Collector):
    """Gauges and counters read from the server's state at each scrape."""

    def __init__(self, state: TwinState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        bus = state.bus.stats()
        clients = bus["clients"]
        yield _gauge("twin_websocket_clients", "Connected /ws/live clients", len(clients))
        yield _gauge(
            "twin_bus_queued_messages", "Messages waiting in the live clients' queues",
            sum(c["queued"] for c in clients),
        )  # fmt: skip
        yield _gauge(
            "twin_bus_pending_entities", "Entity records waiting for the live clients",
            sum(c["pending_entities"] for c in clients),
        )  # fmt: skip
        dropped = CounterMetricFamily(
            "twin_bus_dropped", "Messages (entity records for 'entities') dropped for slow "
            "live clients, by topic", labels=["topic"],
        )  # fmt: skip
        by_topic = {topic: 0 for topic in BUS_TOPICS} | bus["totals"]["dropped_by_topic"]
        for topic, count in sorted(by_topic.items()):
            dropped.add_metric([topic], count)
        yield dropped
        store = state.live.store
        yield _gauge("twin_store_wal_bytes", "Live store write-ahead log, bytes", store.wal_bytes())
        history = state.mover.status
        yield _gauge("twin_workspace_bytes", "Workspace on disk (last history pass), bytes",
                     history.workspace_bytes)  # fmt: skip
        yield _gauge("twin_archive_bytes", "History archive on disk, bytes", history.archive_bytes)
        frames, frame_bytes = state.frames.kept
        yield _gauge("twin_frames_kept", "Camera frames held in memory", frames)
        yield _gauge("twin_frame_bytes", "Bytes of camera frames held in memory", frame_bytes)
        ages = GaugeMetricFamily(
            "twin_feed_last_observation_age_seconds",
            "Seconds since each camera or sensor last sent an observation (since the server "
            "started when it sent none)", labels=["feed"],
        )  # fmt: skip
        for feed, age in state.feeds.ages().items():
            ages.add_metric([feed], round(age, 3))
        yield ages


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
