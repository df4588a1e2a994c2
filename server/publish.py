"""Every message put on the bus is published here: one function per topic (`server.topics`),
each taking that topic's typed payload, called by the routes, the ingest step and the rules
leader alike."""

from __future__ import annotations

from scenes.live import IngestResult
from scenes.models import Alert
from server.bus import EventBus
from server.topics import CameraRecord, Topic


def publish_alert(bus: EventBus, alert: Alert) -> int:
    """Publish ``alert`` (raised, or moved by a life-cycle action); how many local
    subscribers got it."""
    return bus.publish(Topic.ALERT, alert.model_dump(mode="json"))


def publish_ingest(bus: EventBus, result: IngestResult, *, alerts: bool = True) -> None:
    """Publish what an ingest did, in this order: an ``entity`` message per updated entity
    (only when some subscriber takes them one by one), an ``alert`` per alert raised (unless
    `alerts` is False: with shared rules the leader publishes them), then the updated entities
    as coalesced ``entities`` batches (`server.bus`)."""
    if bus.wants(Topic.ENTITY):
        for entity in result.entities:
            bus.publish(Topic.ENTITY, entity.model_dump(mode="json"))
    if alerts:
        for alert in result.alerts:
            publish_alert(bus, alert)
    bus.publish_entities(zip((e.id for e in result.entities), result.entity_json, strict=True))


def publish_camera(bus: EventBus, record: CameraRecord) -> int:
    """Publish ``camera``: a camera's description after a PTZ move or a calibration."""
    return bus.publish(Topic.CAMERA, record)


def publish_drone(bus: EventBus, record: CameraRecord) -> int:
    """Publish ``drone``: a drone camera's description after a telemetry sample."""
    return bus.publish(Topic.DRONE, record)
