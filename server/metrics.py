"""Prometheus metrics of one server (`GET /metrics`, text format, `prometheus-client`).

Counted as things happen: requests by route template and status with latency histograms,
observations ingested, alerts by app and status (raised, then every life-cycle change), the
live store's commit latency; what is read at scrape time is `server.collector`. One registry
per app (`TwinState.metrics`), so several apps in one process never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
