"""Prometheus metrics of one server (`GET /metrics`, text format, `prometheus-client`).

Counted as things happen: requests by route template and status with latency histograms,
observations ingested, alerts by app and status (raised, then every life-cycle change), the
live store's commit latency. Read at scrape time (`StateCollector`): bus queue depth and
drops per topic, WebSocket clients, WAL and workspace bytes, frames kept, each feed's last
observation age. One registry per app, so several apps in one process never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.frames import frame_store
from server.state import TwinState
from server.topics import STALE_TOPICS, Topic

BUS_TOPICS = tuple(sorted({*STALE_TOPICS, Topic.ENTITIES, Topic.ALERT}))
"""Topics whose drops are always reported (0 until one is dropped), so alert rules see them."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The counters and histograms a server updates, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "twin_http_requests", "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "twin_http_request_duration_seconds", "Time to answer an HTTP request, s",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.observations = Counter(
            "twin_observations_ingested", "Observations stored", registry=self.registry
        )
        self.alerts = Counter(
            "twin_alerts", "Alerts that entered a status (new: raised), by app and status",
            ["app", "status"], registry=self.registry,
        )  # fmt: skip
        self.commit = Histogram(
            "twin_store_commit_seconds",
            "Time an ingest waits for its live-store commit (group commit included), s",
            buckets=COMMIT_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def alert(self, app: str | None, status: str) -> None:
        """Count an alert entering `status`."""
        self.alerts.labels(app or "none", status).inc()


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
        frames, frame_bytes = frame_store(state).kept
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


def server_metrics(state: TwinState) -> Metrics:
    """The metrics of `state`'s server (made on first call: the registry with its
    `StateCollector`, and the live store's commit timer)."""

    def make() -> Metrics:
        metrics = Metrics()
        metrics.registry.register(StateCollector(state))
        state.live.on_save = metrics.commit.observe
        return metrics

    return state.shared("metrics", make)
