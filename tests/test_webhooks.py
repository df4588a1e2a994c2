"""Per-unit alert webhooks (server/webhooks.py) against a real HTTP receiver on loopback (a
`http.server` thread in this test) that answers 503 to its first requests."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apps_workspace as aws
import pytest
from servers import LiveServer, start_server
from waiting import wait_for
from webhook_receiver import Receiver

from bench.common import free_port
from server.webhooks import (
    DB_FILE,
    Retry,
    WebhookConfigError,
    WebhookDispatcher,
    parse_webhooks,
    signature,
)

SECRET = "webhook-test-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


def alert(alert_id: str, unit: str, status: str = "new") -> dict[str, Any]:
    return {"id": alert_id, "unit": unit, "status": status, "title": "告警 test"}


def test_retries_with_backoff_and_signs(tmp_path: Path, receiver: Receiver) -> None:
    hooks = WebhookDispatcher(tmp_path / DB_FILE, {"Unit A": receiver.url}, SECRET.encode(),
                              retry=Retry(backoff_s=0.1))  # fmt: skip
    hooks.start()
    try:
        assert hooks.submit(alert("a1", "Unit A"))
        assert not hooks.submit(alert("a2", "Unit B"))  # no webhook for that unit
        wait_for(lambda: len(receiver.delivered()) == 1)
    finally:
        hooks.stop()
    assert [code for *_, code in receiver.requests] == [503, 503, 204]
    headers, body, _ = receiver.requests[-1]
    assert json.loads(body) == alert("a1", "Unit A")
    assert headers["X-Twin-Signature"] == signature(
        SECRET.encode(), headers["X-Twin-Timestamp"], body
    )
    assert headers["X-Twin-Alert-Status"] == "new"
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        state, attempts = db.execute("SELECT state, attempts FROM deliveries").fetchone()
        tries = db.execute("SELECT at_s, http_status FROM attempts ORDER BY at_s").fetchall()
    assert (state, attempts) == ("delivered", 3)
    assert [code for _, code in tries] == [503, 503, 204]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.1 s, then 0.2 s


def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"  # nobody listens yet: connection refused
    retry = Retry(backoff_s=0.05)
    first = WebhookDispatcher(tmp_path / DB_FILE, {"*": url}, SECRET.encode(), retry=retry)
    first.start()
    first.submit(alert("b1", "Any unit"))
    wait_for(lambda: first.stats.retried >= 2)
    first.stop()
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        assert db.execute("SELECT state FROM deliveries").fetchone() == ("pending",)
        errors = db.execute("SELECT http_status, error FROM attempts").fetchall()
    assert errors and all(code is None and "ConnectError" in err for code, err in errors)

    receiver = Receiver(port, fail_first=0)
    second = WebhookDispatcher(tmp_path / DB_FILE, {"*": url}, SECRET.encode(), retry=retry)
    second.start()
    try:
        wait_for(lambda: receiver.delivered() == [alert("b1", "Any unit")])
        wait_for(lambda: second.pending() == 0)
    finally:
        second.stop()
        receiver.close()


def test_a_client_error_is_not_retried(tmp_path: Path) -> None:
    hooks = WebhookDispatcher(tmp_path / DB_FILE, {"*": "http://127.0.0.1:9/"}, b"k" * 16,
                              retry=Retry(max_attempts=3, backoff_s=0.01))  # fmt: skip
    hooks.start()
    try:
        hooks.submit(alert("c1", "u"))
        wait_for(lambda: hooks.stats.failed == 1)  # 3 refused connections, then given up
    finally:
        hooks.stop()
    assert hooks.stats.retried == 2


def test_deliveries_done_are_forgotten_after_the_retention(
    tmp_path: Path, receiver: Receiver
) -> None:
    hooks = WebhookDispatcher(tmp_path / DB_FILE, {"*": receiver.url}, SECRET.encode(),
                              retry=Retry(backoff_s=0.01), retention_s=3600.0)  # fmt: skip
    hooks.start()
    try:
        hooks.submit(alert("r1", "u"))
        wait_for(lambda: len(receiver.delivered()) == 1)
        hooks.submit(alert("r2", "u"))
        wait_for(lambda: len(receiver.delivered()) == 2)
    finally:
        hooks.stop()
    hooks = WebhookDispatcher(tmp_path / DB_FILE, {"*": receiver.url}, SECRET.encode(),
                              retention_s=3600.0)  # fmt: skip
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        done = dict(db.execute("SELECT alert_id, done_s FROM deliveries").fetchall())
        db.execute("INSERT INTO deliveries (id, alert_id, alert_status, unit, url, body, state,"
                   " next_s, created_s) VALUES ('p', 'r3', 'new', 'u', 'x', '{}', 'pending', 0,"
                   " 0)")  # fmt: skip
    # An hour and a bit after the first was delivered: it goes, the second and the pending stay.
    first = done["r1"] + 3600.0 + (done["r2"] - done["r1"]) / 2
    assert hooks.prune(first) == 1
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        left = sorted(r[0] for r in db.execute("SELECT alert_id FROM deliveries"))
        orphans = db.execute(
            "SELECT COUNT(*) FROM attempts WHERE delivery_id NOT IN (SELECT id FROM deliveries)"
        ).fetchone()[0]
    assert left == ["r2", "r3"] and orphans == 0
    assert hooks.prune(done["r2"] + 3601.0) == 0  # at most once an hour
    assert hooks.prune(first + 3600.0) == 1  # then the second goes; the pending one never
    hooks.stop()


def test_bounded_queue_drops_and_counts(tmp_path: Path) -> None:
    hooks = WebhookDispatcher(tmp_path / DB_FILE, {"*": "http://127.0.0.1:9/"}, b"k" * 16,
                              max_queue=3)  # fmt: skip
    sent = [hooks.submit(alert(f"d{i}", "u")) for i in range(5)]  # worker not started
    assert sent == [True, True, True, False, False] and hooks.stats.dropped == 2
    hooks.stop()


def test_settings_are_checked(tmp_path: Path) -> None:
    assert parse_webhooks("") == {}
    assert parse_webhooks('{"交警": "https://x.example/h"}') == {"交警": "https://x.example/h"}
    file = tmp_path / "hooks.json"
    file.write_text(json.dumps({"*": "http://127.0.0.1:1/"}))
    assert parse_webhooks(str(file)) == {"*": "http://127.0.0.1:1/"}
    for bad in ('{"u": "ftp://x"}', "[1]", "{nope", str(tmp_path / "missing.json")):
        with pytest.raises(WebhookConfigError):
            parse_webhooks(bad)


def test_server_posts_alerts_to_the_units_webhook(tmp_path: Path, receiver: Receiver) -> None:
    """Through the real server: an intrusion alert (police) goes to the catch-all webhook after
    two 503s, not to the traffic squad's; acknowledging it sends the acknowledged record."""
    ws = aws.build(tmp_path / "ws")
    traffic = Receiver(fail_first=0)
    hooks = {"*": receiver.url, aws.TRAFFIC_UNIT: traffic.url}
    srv: LiveServer | None = None
    try:
        srv = start_server(ws, {"TWIN_WEBHOOKS": json.dumps(hooks), "TWIN_WEBHOOK_SECRET": SECRET})
        person = {"kind": "person", "cls": "person", "source": aws.GATE_READER, "track_id": "t1",
                  "lon": aws.CLOSED[0], "lat": aws.CLOSED[1]}  # fmt: skip
        r = srv.client("ingest").post("/api/observations", json={"observations": [person]})
        assert r.status_code == 200, r.text
        [alert_id] = r.json()["alerts"]
        wait_for(lambda: len(receiver.delivered()) == 1)
        record = receiver.delivered()[0]
        assert record["id"] == alert_id and record["status"] == "new"
        assert record["app"] == "closed-zone" and record["evidence"]["observation_ids"]
        assert srv.client("operator").post(f"/api/alerts/{alert_id}/ack").status_code == 200
        wait_for(lambda: len(receiver.delivered()) == 2)
        assert receiver.delivered()[1]["status"] == "acknowledged"
        headers, raw, _ = receiver.requests[-1]
        assert headers["X-Twin-Signature"] == signature(
            SECRET.encode(), headers["X-Twin-Timestamp"], raw
        )
        assert traffic.requests == []
    finally:
        if srv is not None:
            srv.stop()
        traffic.close()
    assert [code for *_, code in receiver.requests] == [503, 503, 204, 204]
    with sqlite3.connect(ws / DB_FILE) as db:
        rows = db.execute("SELECT alert_status, state, attempts FROM deliveries ORDER BY created_s")
        assert rows.fetchall() == [("new", "delivered", 3), ("acknowledged", "delivered", 1)]
