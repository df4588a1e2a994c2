"""What the MQTT bridge says on the wire: the broker URL, the topics (`docs/integrations.md`,
"MQTT") and the observation payloads it accepts.

- in, ``twin/in/observations``: one observation (the API's schema), a JSON list of them, or
  the API's batch ``{"observations": [...]}``; at most 1,000 in a message (as the API);
- out, ``twin/out/alerts/{board}/{app}``: the full alert, on creation and on each status change
  (alerts of the workspace's own rule file, which have no app, on ``twin/out/alerts/rules/
  {rule}``);
- out, ``twin/out/entities/{source}``: each entity update (optional), ``source`` its camera or
  sensor element id.

Topic levels are ids; a ``/``, ``+`` or ``#`` in one (never in ids the twin makes) becomes
``_``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from scenes.models import Observation
from server.schemas import ObservationBatch
from twin.errors import TwinError

IN_TOPIC = "twin/in/observations"
ALERTS = "twin/out/alerts"
ENTITIES = "twin/out/entities"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class MqttConfigError(TwinError):
    """``TWIN_MQTT_URL`` is not ``mqtt[s]://[user:pass@]host[:port]``."""


@dataclass(frozen=True)
class Broker:
    """Where the broker listens and how to log in (``tls`` for mqtts://)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Broker:
        """The broker of a ``mqtt://[user:pass@]host[:port]`` (or ``mqtts://``) URL."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise MqttConfigError(
                "TWIN_MQTT_URL must look like mqtt://[user:pass@]host:port (or mqtts://)"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise MqttConfigError("TWIN_MQTT_URL has a bad port") from None
        return cls(
            host=parts.hostname, port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
        )  # fmt: skip


def _level(value: object) -> str:
    text = str(value) if value else ""
    return "".join("_" if c in "/+#" else c for c in text) or "_"


def alert_topic(alert: dict[str, Any]) -> str:
    """The topic of an alert record (see the module docstring)."""
    if alert.get("app"):
        return f"{ALERTS}/{_level(alert.get('board'))}/{_level(alert['app'])}"
    return f"{ALERTS}/rules/{_level(alert.get('rule'))}"


def entity_topic(entity: dict[str, Any]) -> str:
    """The topic of an entity record."""
    return f"{ENTITIES}/{_level(entity.get('source'))}"


def observations_of(payload: bytes) -> list[Observation]:
    """The observations a message carries; `ValueError` with a one-line reason when it is not
    UTF-8 JSON of the accepted shapes or an observation breaks the schema."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not UTF-8 JSON ({exc})") from None
    if isinstance(data, dict) and "observations" in data:
        data = data["observations"]
    items = data if isinstance(data, list) else [data]
    try:
        return ObservationBatch.model_validate({"observations": items}).observations
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "message"
        raise ValueError(f"{where}: {error['msg']}") from None
