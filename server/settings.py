"""Runtime settings for the server, the detection worker and the demo: one object, read from the
environment (prefix ``TWIN_``) and an optional ``.env`` file. Source descriptions live in
`twin.yaml` instead (twin.config)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("viewer", "operator", "ingest", "admin")

# What each role may do. "read": GET /api; "alerts": alert actions; "ingest": observations and
# telemetry; "admin": everything, watchlists included.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "alerts"}),
    "ingest": frozenset({"read", "ingest"}),
    "admin": frozenset({"read", "alerts", "ingest", "admin"}),
}


class TwinSettings(BaseSettings):
    """Every runtime option, with defaults that work on one machine."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", env_file=".env", extra="ignore")

    tokens: str = Field(
        default="",
        title="Access tokens and roles: 'token:role,token:role' (roles: viewer, operator, "
        "ingest, admin)",
    )
    public_read: bool = Field(default=False, title="Open /api reads without a token")
    host: str = Field(default="127.0.0.1", title="Address the server listens on")
    port: int = Field(default=8000, ge=0, le=65535, title="Port the server listens on")
    cors_origins: str = Field(default="*", title="Comma-separated origins allowed by CORS")
    rules: Path | None = Field(default=None, title="Scenario rule file (default: WS/rules.yaml)")
    live_ttl_s: float = Field(default=30.0, gt=0, title="Seconds a live entity stays on the map")
    entity_stale_s: float = Field(
        default=10.0,
        gt=0,
        title="Seconds without an update after which the page draws a live entity faded (it "
        "leaves the map after live_ttl_s)",
    )
    nearby_radius_m: float = Field(default=150.0, gt=0, title="Radius of 'live entities nearby'")
    recent_events: int = Field(default=20, ge=0, title="Events listed in an element record")
    frame_history_mib: float = Field(
        default=64.0,
        ge=0,
        title="MiB of camera frames kept behind each camera's newest, all cameras together "
        "(alert crops are cut from the frame nearest an observation's time)",
    )
    frame_newest_mib: float = Field(
        default=32.0,
        ge=0,
        title="MiB of the cameras' newest frames, all cameras together: past it the camera "
        "that pushed longest ago loses its frames",
    )
    frame_ttl_s: float = Field(
        default=300.0, gt=0, title="Seconds a camera's frames are kept after its latest push"
    )
    drone_ttl_s: float = Field(
        default=300.0, gt=0, title="Seconds a drone stays a live camera after its telemetry"
    )
    max_drones: int = Field(
        default=100, ge=1, le=10_000, title="Most live drones; past it the stalest is dropped"
    )
    max_observations_body_mib: float = Field(
        default=4.0,
        gt=0,
        le=1024,
        title="Largest POST /api/observations body, MiB (1,000 observations take about 0.5)",
    )
    max_frame_mib: float = Field(
        default=8.0, gt=0, le=1024, title="Largest camera frame (PUT .../frame body), MiB"
    )
    max_body_kib: float = Field(
        default=256.0, gt=0, le=1024 * 1024, title="Largest body of any other request, KiB"
    )
    max_clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        title="Furthest an observation's time may lie ahead of the server's clock, s",
    )
    max_observation_age_s: float = Field(
        default=86_400.0,
        gt=0,
        title="Furthest an observation's time may lie behind the server's clock, s (a "
        "detector catching up after an outage)",
    )
    ws_snapshot_max: int = Field(
        default=20_000,
        ge=0,
        title="Most live entities in the snapshot a /ws/live client gets on connect (the most "
        "recently seen first)",
    )
    ws_send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        title="Seconds a /ws/live client may take to accept one message before it is "
        "disconnected as stalled",
    )
    ws_origins: str = Field(
        default="",
        title="Comma-separated browser origins allowed on /ws/live besides the page's own "
        "('*': any); clients that send no Origin (not browsers) are allowed",
    )
    feed_stale_s: float = Field(
        default=300.0,
        gt=0,
        title="Seconds without an observation after which a camera or sensor is listed as "
        "stale by /readyz and the page",
    )
    metrics_public: bool = Field(
        default=False, title="Open GET /metrics without a token (else read permission)"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", title="Server log lines: text, or one JSON object a line"
    )
    hot_minutes: float = Field(
        default=60.0,
        gt=0,
        title="Minutes of observations kept in the live store; older ones move to the archive "
        "(WS/history, GeoParquet), as do alerts closed longer ago",
    )
    entity_ttl_s: float = Field(
        default=600.0, gt=0, title="Seconds after which an entity not seen again is removed"
    )
    retention_days: float = Field(default=90.0, gt=0, title="Days archived observations are kept")
    alert_retention_days: float = Field(
        default=365.0,
        gt=0,
        title="Days alerts, their evidence crops and the watchlist hit log are kept",
    )
    disk_budget_gb: float | None = Field(
        default=None,
        gt=0,
        title="Most GB the workspace may use: past it the oldest observation partitions are "
        "deleted first; /healthz and the log warn from 90 %",
    )
    database_url: str | None = Field(
        default=None,
        pattern=r"^postgres(ql)?://",
        title="PostgreSQL 15 + PostGIS 3 (postgresql://user@host:port/db) holding the catalog, "
        "the live store, watchlists, webhook deliveries and app settings; unset: SQLite files "
        "in the workspace",
    )
    bus_url: str | None = Field(
        default=None,
        pattern=r"^rediss?://",
        title="Redis (redis://host:port/db) carrying live messages and rule evaluation between "
        "server processes; unset: in this process",
    )
    bus_replay: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        title="Messages the shared stream keeps for clients that reconnect with the last id "
        "they saw",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        title="Server processes on one port; more than 1 needs TWIN_DATABASE_URL and TWIN_BUS_URL",
    )
    history_interval_s: float = Field(
        default=5.0, gt=0, title="Seconds between the history mover's passes once caught up"
    )
    watchlist_secret: SecretStr | None = Field(
        default=None,
        title="Site secret for the keyed hashes of plates and identity tokens (default: a random "
        "secret created once in WS/secret.key, mode 0600)",
    )
    webhooks: str = Field(
        default="",
        title="Per-unit alert webhooks: a JSON object {unit: URL, '*': URL for the rest}, or the "
        "path of a JSON file holding one",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        title="Key of the webhooks' HMAC signatures (default: a random key created once in "
        "WS/webhook.key, mode 0600)",
    )
    mqtt_url: SecretStr | None = Field(
        default=None,
        title="MQTT broker, mqtt://[user:pass@]host:port (mqtts:// for TLS): observations in "
        "on twin/in/observations, alerts out on twin/out/alerts/{board}/{app}",
    )
    mqtt_entities: bool = Field(
        default=False, title="Also publish each entity update on twin/out/entities/{source}"
    )
    mqtt_client_id: str = Field(
        default="",
        max_length=128,
        title="MQTT client id (default: 'twin-' and a hash of the workspace's path, the same at "
        "every start, so the broker keeps the session and its queued messages)",
    )

    @model_validator(mode="after")
    def _hot_within_retention(self) -> TwinSettings:
        if self.hot_minutes * 60.0 >= self.retention_days * 86_400.0:
            raise ValueError("TWIN_HOT_MINUTES must be shorter than TWIN_RETENTION_DAYS")
        return self

    @model_validator(mode="after")
    def _workers_share_engines(self) -> TwinSettings:
        if self.workers > 1 and not (self.database_url and self.bus_url):
            raise ValueError(
                "TWIN_WORKERS > 1 needs TWIN_DATABASE_URL and TWIN_BUS_URL: each process would "
                "otherwise keep its own store and its own live messages"
            )
        return self

    @cached_property
    def token_roles(self) -> dict[str, str]:
        """Token → role, parsed from `tokens`. Unknown roles are an error."""
        parsed: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.tokens.split(","))):
            token, sep, role = item.rpartition(":")
            if not sep or not token or role not in ROLES:
                raise ValueError(f"TWIN_TOKENS entry '{item}' is not 'token:role' (known roles)")
            parsed[token] = role
        return parsed
