"""The bus's topics and what each carries. A topic's value is its name on the wire: the
``"topic"`` of a WebSocket message, the ``t`` field of a shared-stream entry, a ``?topics=``
choice. Messages are published only through `server.publish`, one function per topic, which
takes the topic's typed payload.

=========== ================================================================================
topic       payload
=========== ================================================================================
entity      one entity's state: `scenes.models.Entity` as JSON
entities    the latest state of several entities, coalesced: a list of ``entity`` payloads
alert       an alert as raised or as a life-cycle action left it: `scenes.models.Alert` as JSON
camera      a camera's description after a PTZ move or calibration: `CameraRecord`
drone       a drone camera's description after a telemetry sample: `CameraRecord`
ready       (``/ws/live`` only, never on the bus) the end of a socket's snapshot
=========== ================================================================================
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Topic(StrEnum):
    """A kind of live message (see the module docstring for its payload)."""

    ENTITY = "entity"
    ENTITIES = "entities"
    ALERT = "alert"
    CAMERA = "camera"
    DRONE = "drone"
    READY = "ready"


CameraRecord = dict[str, Any]
"""A camera's or drone's description (`twin.cameras.rig.CameraRig.describe`): pose,
intrinsics, PTZ state, calibration report and ground footprint."""

STALE_TOPICS = frozenset({Topic.ENTITY, Topic.CAMERA, Topic.DRONE})
"""Topics whose messages a newer one of the same kind supersedes: dropped first when full."""
