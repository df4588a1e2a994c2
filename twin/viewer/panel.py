"""The record panel's text: an element record (as ``GET /api/elements/{id}`` gives it), a live
entity, an open alert, as small HTML documents (Qt rich text) with every value escaped."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

OFFLINE_NOTE = "Offline: recent events and live entities appear with --server."


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th align='left'>{escape(k)}</th><td>{escape(_text(v))}</td></tr>"
        for k, v in pairs
        if v not in (None, "", [], {})
    )
    return f"<table cellspacing='2'>{cells}</table>"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.7f}" if abs(value) < 180 and value != round(value, 2) else f"{value:.2f}"
    return str(value)


def _metres(value: Any) -> str | None:
    return None if value is None else f"{float(value):.1f} m"


def record_html(record: dict[str, Any], *, offline: bool) -> str:
    """The one-click record of an element."""
    title = record.get("name") or record["id"]
    jurisdiction = record.get("jurisdiction") or {}
    site = record.get("site") or {}
    parts = [
        f"<h3>{escape(str(title))}</h3>",
        f"<p><b>{escape(str(record.get('kind', '')))}</b> · "
        f"<code>{escape(record['id'])}</code></p>",
        _rows([
            ("Height", _metres(record.get("height"))),
            ("Ground (ellipsoidal)", _metres(record.get("base_height"))),
            ("Lon, lat", f"{record['lon']:.6f}, {record['lat']:.6f}"),
            ("Unit", record.get("unit")),
            ("Jurisdiction", jurisdiction.get("name") or jurisdiction.get("id")),
            ("Site", site.get("name") or site.get("id")),
            ("Source id", record.get("source_id")),
            ("Layer", record.get("layer")),
        ]),
    ]  # fmt: skip
    attributes = record.get("attributes") or {}
    if attributes:
        parts += ["<h4>Attributes</h4>", _rows(sorted(attributes.items()))]
    cameras = record.get("cameras") or []
    if cameras:
        items = "".join(
            f"<li>{escape(str(c.get('name') or c['id']))} — "
            f"{'visible' if c.get('visible') else 'hidden behind something'}"
            f" at ({c.get('u')}, {c.get('v')}) px</li>"
            for c in cameras
        )
        parts += ["<h4>Cameras that see it</h4>", f"<ul>{items}</ul>"]
    events = record.get("recent_events") or []
    if events:
        items = "".join(
            f"<li>{escape(str(e.get('created_at') or e.get('time') or ''))} "
            f"{escape(str(e.get('title') or e.get('cls') or e.get('kind') or ''))}</li>"
            for e in events
        )
        parts += ["<h4>Recent events</h4>", f"<ul>{items}</ul>"]
    nearby = record.get("nearby") or []
    if nearby:
        items = "".join(
            f"<li>{escape(str(n.get('cls') or n.get('kind')))} {escape(str(n.get('id')))}"
            f" — {float(n.get('distance_m', 0.0)):.0f} m</li>"
            for n in nearby
        )
        parts += ["<h4>Live entities nearby</h4>", f"<ul>{items}</ul>"]
    if offline:
        parts.append(f"<p><i>{escape(OFFLINE_NOTE)}</i></p>")
    return "".join(parts)


def entity_html(payload: dict[str, Any]) -> str:
    """A live entity (the latest ``entity`` message of its track)."""
    title = payload.get("cls") or payload.get("kind") or "entity"
    return "".join([
        f"<h3>{escape(str(title))}</h3>",
        f"<p><b>live {escape(str(payload.get('kind')))}</b> · <code>"
        f"{escape(str(payload.get('id')))}</code></p>",
        _rows([
            ("Seen by", payload.get("source")),
            ("Track", payload.get("track_id")),
            ("Confidence", payload.get("confidence")),
            ("Time", payload.get("time")),
            ("Lon, lat", f"{payload['lon']:.6f}, {payload['lat']:.6f}"),
            ("Height (ellipsoidal)", _metres(payload.get("height"))),
        ]),
        _rows(sorted((payload.get("attributes") or {}).items())),
    ])  # fmt: skip


def alert_html(alert: dict[str, Any]) -> str:
    """An open alert: what, where, who it is routed to, its evidence."""
    evidence = alert.get("evidence") or {}
    cameras = ", ".join(str(c.get("name") or c.get("id")) for c in evidence.get("cameras", []))
    return "".join([
        f"<h3>{escape(str(alert.get('title') or alert.get('rule')))}</h3>",
        f"<p><b>{escape(str(alert.get('severity')))} alert</b> · "
        f"{escape(str(alert.get('status')))} · <code>{escape(str(alert.get('id')))}</code></p>",
        _rows([
            ("Rule", alert.get("rule")),
            ("Unit", alert.get("unit")),
            ("Jurisdiction", alert.get("jurisdiction_id")),
            ("Where", alert.get("element_id")),
            ("Entity", alert.get("entity_id")),
            ("Observed", alert.get("observed_at")),
            ("Raised", alert.get("created_at")),
            ("Lon, lat", f"{alert['lon']:.6f}, {alert['lat']:.6f}"),
            ("Seen by", cameras),
        ]),
        _rows(sorted((evidence.get("details") or {}).items())),
    ])  # fmt: skip
