"""What the MQTT bridge did (`MqttStats`) and its figures on ``/metrics`` (`MqttCollector`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class MqttStats:
    """What the bridge did since start: connections, messages received, observations stored,
    malformed and refused messages, messages published (by kind) and dropped."""

    connected: bool = False
    connects: int = 0
    received: int = 0
    observations: int = 0
    bad: int = 0
    refused: int = 0
    overflow: int = 0
    published: Counter[str] = field(default_factory=Counter)
    dropped: int = 0


class MqttCollector(Collector):
    """The bridge's figures for ``/metrics``."""

    def __init__(self, stats: MqttStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield GaugeMetricFamily("twin_mqtt_connected", "1 while connected to the MQTT broker",
                                value=int(stats.connected))  # fmt: skip
        yield CounterMetricFamily("twin_mqtt_connects", "Connections made to the MQTT broker",
                                  value=stats.connects)  # fmt: skip
        messages = CounterMetricFamily(
            "twin_mqtt_messages", "Messages received on twin/in/observations, by outcome: "
            "received (all), bad (malformed), refused (by the live service), overflow (no room)",
            labels=["outcome"],
        )  # fmt: skip
        for outcome in ("received", "bad", "refused", "overflow"):
            messages.add_metric([outcome], getattr(stats, outcome))
        yield messages
        yield CounterMetricFamily("twin_mqtt_observations", "Observations stored from MQTT",
                                  value=stats.observations)  # fmt: skip
        published = CounterMetricFamily(
            "twin_mqtt_published", "Messages published (or queued while away), by bus topic",
            labels=["topic"],
        )  # fmt: skip
        for topic, count in sorted(stats.published.items()):
            published.add_metric([topic], count)
        yield published
        yield CounterMetricFamily("twin_mqtt_dropped", "Messages not published: queue full",
                                  value=stats.dropped)  # fmt: skip
