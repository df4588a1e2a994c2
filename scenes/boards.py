"""Board statistics: per board, per app and per unit — alerts today and over the last 7 days,
the handled ratio (closed: resolved or false alarm, over the 7 days' alerts) and the median
response time (dispatch → on scene, seconds). "Today" starts at local midnight in `tz`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from scenes.apps import BOARDS, AppConfig
from scenes.models import Alert

DEFAULT_TZ = "Asia/Shanghai"
WEEK = timedelta(days=7)


def week_start(now: datetime) -> datetime:
    """The start of the statistics window (7 days before `now`)."""
    return now - WEEK


def _figures(alerts: Sequence[Alert], today: datetime) -> dict[str, Any]:
    responses = [r for a in alerts if (r := a.response_s()) is not None]
    closed = sum(1 for a in alerts if a.closed)
    return {
        "today": sum(1 for a in alerts if a.created_at >= today),
        "week": len(alerts),
        "handled_ratio": round(closed / len(alerts), 4) if alerts else None,
        "median_response_s": round(median(responses), 3) if responses else None,
        "responses": len(responses),
    }


def _group(alerts: Iterable[Alert], key: str) -> dict[str, list[Alert]]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        value = getattr(alert, key)
        if value is not None:
            groups.setdefault(value, []).append(alert)
    return groups


def board_stats(
    alerts: Sequence[Alert], apps: Sequence[AppConfig], now: datetime, tz: str = DEFAULT_TZ
) -> dict[str, Any]:
    """Figures for every board and app (even with no alerts) and every unit alerted, from the
    alerts created in the 7 days before `now` (aware)."""
    local = now.astimezone(ZoneInfo(tz))
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    recent = [a for a in alerts if a.created_at >= now - WEEK]
    by_app, by_board = _group(recent, "app"), _group(recent, "board")
    boards = []
    for board, title in BOARDS.items():
        members = [app for app in apps if app.spec.board == board]
        boards.append({
            "id": board, "title": title, **_figures(by_board.get(board, []), today),
            "apps": [{"id": app.spec.id, "title": app.spec.title.model_dump(),
                      "enabled": app.enabled, **_figures(by_app.get(app.spec.id, []), today)}
                     for app in members],
        })  # fmt: skip
    units = [{"unit": unit, **_figures(items, today)}
             for unit, items in sorted(_group(recent, "unit").items())]  # fmt: skip
    return {"tz": tz, "today_start": today.isoformat(), "boards": boards, "units": units}
