"""Per-unit webhooks: every alert message (creation and each status change) POSTed as JSON to
the URL of the unit it is routed to, signed, retried with exponential backoff.

Configuration (`TwinSettings.webhooks`): a JSON object ``{"unit name": "https://…", "*": …}``
(``*`` catches units not listed), given inline or as the path of a file holding it.

Each request carries the alert record as its body and the headers
``X-Twin-Delivery`` (delivery id), ``X-Twin-Alert-Status``, ``X-Twin-Timestamp`` (epoch s) and
``X-Twin-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"{timestamp}." + body`` with the
webhook secret (`signature`); a receiver recomputes it and rejects stale timestamps.

Deliveries go through a bounded in-memory queue (a full queue drops the message and counts it:
the publisher never waits) to one worker thread, which records each delivery and every attempt
in ``WS/webhooks.sqlite`` (or PostgreSQL) before and after sending it, so pending deliveries
resume after a restart. With several server processes each sends the alerts it published; a
process that stops hands its pending deliveries over, and those of a process gone without a
word for a minute are taken over by another. A 2xx answer delivers; a connection error,
timeout, 408, 429 or 5xx is retried after ``backoff_s × 2^(attempt−1)`` s (capped at
`backoff_max_s`) up to `max_attempts` (`Retry`); any other answer fails the delivery at once.
Deliveries of one alert are independent: a receiver should keep the record with the latest
status (the body carries every status time). Deliveries done longer ago than the alert
retention (``TWIN_ALERT_RETENTION_DAYS``) are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scenes.db import POSTGRES, SQLITE, begin_write, connect, create_schema
from scenes.identifiers import load_or_create_secret
from server.bus import EventBus
from server.settings import TwinSettings
from server.topics import Topic
from twin.errors import TwinError

log = logging.getLogger("twin.server.webhooks")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    alert_status TEXT NOT NULL,
    unit TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,            -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_s DOUBLE PRECISION NOT NULL,
    created_s DOUBLE PRECISION NOT NULL,
    done_s DOUBLE PRECISION,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_s);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    at_s DOUBLE PRECISION NOT NULL,
    http_status INTEGER,
    error TEXT,
    duration_ms DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);
CREATE TABLE IF NOT EXISTS webhook_senders (
    owner TEXT PRIMARY KEY,
    seen_s DOUBLE PRECISION NOT NULL
)
"""
SCHEMA_LOCK = 8_151_054  # PostgreSQL advisory lock key of this schema
OWNER_TIMEOUT_S = 60.0  # a sender unseen this long is gone: its pending deliveries are taken
_COLUMNS = {
    SQLITE: "SELECT name FROM pragma_table_info('deliveries')",
    POSTGRES: "SELECT column_name FROM information_schema.columns WHERE table_name = 'deliveries'",
}
RETRY_STATUSES = frozenset({408, 429})
DB_FILE = "webhooks.sqlite"
PRUNE_EVERY_S = 3600.0
KEY_FILE = "webhook.key"


class WebhookConfigError(TwinError):
    """The webhooks setting is not a JSON object of unit → http(s) URL (or a file holding one)."""


def parse_webhooks(value: str) -> dict[str, str]:
    """Unit → URL from the setting: inline JSON (starts with ``{``) or a JSON file's path."""
    value = value.strip()
    if not value:
        return {}
    text = value
    if not value.startswith("{"):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise WebhookConfigError(f"TWIN_WEBHOOKS file {value}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookConfigError(f"TWIN_WEBHOOKS is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebhookConfigError("TWIN_WEBHOOKS must be a JSON object of unit → URL")
    for unit, url in data.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WebhookConfigError(f"TWIN_WEBHOOKS: unit '{unit}' needs an http(s) URL")
    return {str(unit): str(url) for unit, url in data.items()}


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Twin-Signature`` value for a body sent at `timestamp` (epoch seconds, text)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class Retry:
    """When a delivery that may succeed later is tried again: after ``backoff_s ×
    2^(attempt−1)`` seconds, at most `backoff_max_s`, until `max_attempts` attempts."""

    max_attempts: int = 8
    backoff_s: float = 0.5
    backoff_max_s: float = 300.0

    def again(self, attempt: int) -> bool:
        """Whether a delivery that failed attempt number `attempt` is tried again."""
        return attempt < self.max_attempts

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)


@dataclass
class WebhookStats:
    """Counters since start: queued, dropped (queue full), delivered, failed, retried."""

    queued: int = 0
    dropped: int = 0
    delivered: int = 0
    failed: int = 0
    retried: int = 0


class WebhookDispatcher:
    """Delivers alert messages to unit webhooks from a background thread (`start`/`stop`)."""

    def __init__(
        self,
        db_target: Path | str,
        urls: dict[str, str],
        secret: bytes,
        *,
        max_queue: int = 1000,
        retry: Retry = Retry(),
        timeout_s: float = 5.0,
        retention_s: float = 365 * 86_400.0,
    ) -> None:
        self.urls, self.secret, self.retention_s = urls, secret, retention_s
        self._pruned_s = 0.0
        self.retry, self.timeout_s = retry, timeout_s
        self.stats = WebhookStats()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.owner = uuid.uuid4().hex[:12]
        self._db = connect(db_target)
        create_schema(self._db, _SCHEMA, lock_key=SCHEMA_LOCK)
        begin_write(self._db)  # a deliveries table from before several senders: add the column
        if "owner" not in {r[0] for r in self._db.execute(_COLUMNS[self._db.dialect])}:
            self._db.execute("ALTER TABLE deliveries ADD COLUMN owner TEXT")
        self._db.execute("COMMIT")

    def url_for(self, unit: str | None) -> str | None:
        """The webhook URL of `unit` (or the ``*`` one), None when it has none."""
        if unit is None:
            return self.urls.get("*")
        return self.urls.get(unit, self.urls.get("*"))

    def submit(self, alert: dict[str, Any]) -> bool:
        """Queue an alert record (JSON-ready) for its unit's webhook without waiting. False when
        the unit has no webhook or the queue is full (the message is dropped and counted)."""
        if self.url_for(alert.get("unit")) is None:
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.stats.dropped += 1
            log.warning("webhook queue full: alert %s not delivered", alert.get("id"))
            return False
        self.stats.queued += 1
        self._wake.set()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker (pending deliveries stay recorded for the next start)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._db.execute(  # hand what is pending to whichever sender runs next
            "UPDATE deliveries SET owner = NULL WHERE owner = ? AND state = 'pending'",
            (self.owner,),
        )
        self._db.execute("DELETE FROM webhook_senders WHERE owner = ?", (self.owner,))
        self._db.close()

    def pending(self) -> int:
        """Deliveries recorded but not yet delivered or failed."""
        row = self._db.execute("SELECT COUNT(*) FROM deliveries WHERE state='pending'").fetchone()
        return int(row[0])

    def prune(self, now: float) -> int:
        """At most once an hour: forget deliveries done (delivered or failed) more than
        `retention_s` before `now`, with their attempts; how many."""
        if now - self._pruned_s < PRUNE_EVERY_S:
            return 0
        self._pruned_s = now
        before = now - self.retention_s
        begin_write(self._db)
        self._db.execute(
            "DELETE FROM attempts WHERE delivery_id IN"
            " (SELECT id FROM deliveries WHERE state != 'pending' AND done_s < ?)",
            (before,),
        )
        gone = self._db.execute(
            "DELETE FROM deliveries WHERE state != 'pending' AND done_s < ?", (before,)
        ).rowcount
        self._db.execute("COMMIT")
        return int(gone)

    # -- worker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stopping.is_set():
                self._record_queued()
                wait = self._deliver_due(client)
                self.prune(time.time())
                self._wake.wait(wait)
                self._wake.clear()

    def _record_queued(self) -> None:
        rows = []
        now = time.time()
        while True:
            try:
                alert = self._queue.get_nowait()
            except queue.Empty:
                break
            unit = alert.get("unit")
            url = self.url_for(unit)
            if url is None:
                continue
            body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
            rows.append((uuid.uuid4().hex, str(alert.get("id")), str(alert.get("status")),
                         unit or "", url, body, now, now))  # fmt: skip
        if rows:
            self._db.executemany(
                "INSERT INTO deliveries (id, alert_id, alert_status, unit, url, body, state,"
                " next_s, created_s, owner) VALUES (?,?,?,?,?,?,'pending',?,?,?)",
                [(*row, self.owner) for row in rows],
            )

    def _claim_orphans(self, now: float) -> None:
        """Say this sender is alive; take the pending deliveries of senders (other server
        processes) unseen for `OWNER_TIMEOUT_S` — each delivery has one sender at a time."""
        self._db.execute(
            "INSERT INTO webhook_senders (owner, seen_s) VALUES (?, ?) ON CONFLICT (owner) DO"
            " UPDATE SET seen_s = excluded.seen_s",
            (self.owner, now),
        )
        self._db.execute(
            "UPDATE deliveries SET owner = ? WHERE state = 'pending' AND (owner IS NULL OR owner"
            " IN (SELECT owner FROM webhook_senders WHERE seen_s < ?))",
            (self.owner, now - OWNER_TIMEOUT_S),
        )
        self._db.execute("DELETE FROM webhook_senders WHERE seen_s < ?", (now - OWNER_TIMEOUT_S,))

    def _deliver_due(self, client: httpx.Client) -> float:
        """Send every due delivery of this sender; seconds until the next one is due (at most
        1 s)."""
        self._claim_orphans(time.time())
        due = self._db.execute(
            "SELECT id, alert_status, url, body, attempts FROM deliveries WHERE owner = ? AND"
            " state = 'pending' AND next_s <= ? ORDER BY next_s LIMIT 100",
            (self.owner, time.time()),
        ).fetchall()
        for delivery_id, status, url, body, attempts in due:
            if self._stopping.is_set():
                break
            self._attempt(client, delivery_id, status, url, body.encode(), attempts + 1)
        row = self._db.execute(
            "SELECT MIN(next_s) FROM deliveries WHERE owner = ? AND state = 'pending'",
            (self.owner,),
        ).fetchone()
        if row[0] is None:
            return 1.0
        return float(min(max(row[0] - time.time(), 0.0), 1.0))

    def _attempt(
        self, client: httpx.Client, delivery_id: str, status: str, url: str, body: bytes, n: int
    ) -> None:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Twin-Delivery": delivery_id,
            "X-Twin-Alert-Status": status,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature(self.secret, stamp, body),
        }
        start = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            code = client.post(url, content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        took_ms = (time.monotonic() - start) * 1000.0
        now = time.time()
        if code is not None and 200 <= code < 300:
            state, next_s = "delivered", now
            self.stats.delivered += 1
        elif (code is None or code >= 500 or code in RETRY_STATUSES) and self.retry.again(n):
            state = "pending"
            next_s = now + self.retry.delay_s(n)
            self.stats.retried += 1
        else:
            state, next_s = "failed", now
            self.stats.failed += 1
            log.warning("webhook %s to %s failed after %d attempt(s)", delivery_id, url, n)
        begin_write(self._db)
        self._db.execute(
            "INSERT INTO attempts (delivery_id, at_s, http_status, error, duration_ms)"
            " VALUES (?,?,?,?,?)",
            (delivery_id, now, code, error, took_ms),
        )
        self._db.execute(
            "UPDATE deliveries SET state=?, attempts=?, next_s=?, done_s=? WHERE id=?",
            (state, n, next_s, None if state == "pending" else now, delivery_id),
        )
        self._db.execute("COMMIT")


async def forward_alerts(bus: EventBus, dispatcher: WebhookDispatcher) -> None:
    """Hand every ``alert`` message published on `bus` to `dispatcher` (run as a task)."""
    sub = bus.subscribe([Topic.ALERT], maxsize=10_000, own=True)  # each process sends its own
    try:
        while True:
            message = await sub.get()
            dispatcher.submit(message.data())
    finally:
        bus.unsubscribe(sub)


@contextlib.asynccontextmanager
async def forwarding(bus: EventBus, dispatcher: WebhookDispatcher | None) -> AsyncIterator[None]:
    """While inside: the dispatcher's worker runs and alerts on `bus` go to it (no-op for
    None). On exit the worker stops; what is still pending resumes on the next start."""
    if dispatcher is None:
        yield
        return
    dispatcher.start()
    task = asyncio.create_task(forward_alerts(bus, dispatcher))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(dispatcher.stop)


def open_dispatcher(settings: TwinSettings, root: Path) -> WebhookDispatcher | None:
    """The dispatcher for workspace folder `root` (deliveries in root/webhooks.sqlite, or in
    the PostgreSQL database of ``TWIN_DATABASE_URL``), None when no webhook is configured.
    Raises WebhookConfigError for a bad setting."""
    urls = parse_webhooks(settings.webhooks)
    if not urls:
        return None
    if settings.webhook_secret is not None:
        secret = settings.webhook_secret.get_secret_value().encode()
    else:
        secret = load_or_create_secret(root / KEY_FILE)
    return WebhookDispatcher(
        settings.database_url or root / DB_FILE, urls, secret,
        retention_s=settings.alert_retention_days * 86_400.0,
    )  # fmt: skip
