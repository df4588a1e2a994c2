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
from scenes.facts import AlertFacts
from scenes.rows import to_us

DEFAULT_TZ = "Asia/Shanghai"
WEEK = timedelta(days=7)


def week_start(now: datetime) -> datetime:
    """The start of the statistics window (7 days before `now`)."""
    return now - WEEK


def _figures(alerts: Sequence[AlertFacts], today_us: int) -> dict[str, Any]:
    responses = [a.response_s for a in alerts if a.response_s is not None]
    closed = sum(1 for a in alerts if a.closed)
    return {
        "today": sum(1 for a in alerts if a.created_us >= today_us),
        "week": len(alerts),
        "handled_ratio": round(closed / len(alerts), 4) if alerts else None,
        "median_response_s": round(median(responses), 3) if responses else None,
        "responses": len(responses),
    }


def _group(alerts: Iterable[AlertFacts], key: str) -> dict[str, list[AlertFacts]]:
    groups: dict[str, list[AlertFacts]] = {}
    for alert in alerts:
        value = getattr(alert, key)
        if value is not None:
            groups.setdefault(value, []).append(alert)
    return groups


def board_stats(
    alerts: Sequence[AlertFacts], apps: Sequence[AppConfig], now: datetime, tz: str = DEFAULT_TZ
) -> dict[str, Any]:
    """Figures for every board and app (even with no alerts) and every unit alerted, from the
    alerts created in the 7 days before `now` (aware)."""
    local = now.astimezone(ZoneInfo(tz))
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    today_us, since_us = to_us(today), to_us(now - WEEK)
    recent = [a for a in alerts if a.created_us >= since_us]
    by_app, by_board = _group(recent, "app"), _group(recent, "board")
    boards = []
    for board, title in BOARDS.items():
        members = [app for app in apps if app.spec.board == board]
        boards.append({
            "id": board, "title": title, **_figures(by_board.get(board, []), today_us),
            "apps": [{"id": app.spec.id, "title": app.spec.title.model_dump(),
                      "enabled": app.enabled, **_figures(by_app.get(app.spec.id, []), today_us)}
                     for app in members],
        })  # fmt: skip
    units = [{"unit": unit, **_figures(items, today_us)}
             for unit, items in sorted(_group(recent, "unit").items())]  # fmt: skip
    return {"tz": tz, "today_start": today.isoformat(), "boards": boards, "units": units}
