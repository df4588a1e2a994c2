"""Alert life cycle: new → acknowledged → dispatched → on_scene → resolved | false_alarm.

Steps may be skipped forward (dispatch straight from new, resolve from any open status), never
taken backwards; a closed alert (resolved or false alarm) moves no more. Each status keeps the
time (UTC) and the principal label that set it.
"""

from __future__ import annotations

from datetime import datetime

from scenes.errors import AlertTransitionError
from scenes.models import Alert, AlertStatus, utcnow

_S = AlertStatus
_ALLOWED: dict[AlertStatus, frozenset[AlertStatus]] = {
    _S.acknowledged: frozenset({_S.new}),
    _S.dispatched: frozenset({_S.new, _S.acknowledged}),
    _S.on_scene: frozenset({_S.dispatched}),
    _S.resolved: frozenset({_S.new, _S.acknowledged, _S.dispatched, _S.on_scene}),
    _S.false_alarm: frozenset({_S.new, _S.acknowledged, _S.dispatched, _S.on_scene}),
}


def transition(alert: Alert, status: AlertStatus, *, by: str, at: datetime | None = None) -> Alert:
    """The alert moved to `status` by `by` (a role/token label, never a token) at `at` (UTC)."""
    allowed = _ALLOWED.get(status, frozenset())
    if alert.status not in allowed:
        raise AlertTransitionError(
            f"alert {alert.id} is {alert.status.value}: cannot move to {status.value}"
        )
    when = at or utcnow()
    return alert.model_copy(
        update={"status": status, f"{status.value}_at": when, f"{status.value}_by": by}
    )
