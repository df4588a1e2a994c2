"""Alert lifecycle: new → acknowledged → resolved (resolve also straight from new)."""

from __future__ import annotations

from datetime import datetime

from scenes.errors import AlertTransitionError
from scenes.models import Alert, AlertStatus, utcnow

_ALLOWED: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.acknowledged: frozenset({AlertStatus.new}),
    AlertStatus.resolved: frozenset({AlertStatus.new, AlertStatus.acknowledged}),
}


def transition(alert: Alert, status: AlertStatus, *, by: str, at: datetime | None = None) -> Alert:
    """The alert moved to `status` by `by` (a role/token label, never a token) at `at` (UTC)."""
    allowed = _ALLOWED.get(status, frozenset())
    if alert.status not in allowed:
        raise AlertTransitionError(
            f"alert {alert.id} is {alert.status.value}: cannot move to {status.value}"
        )
    when = at or utcnow()
    if status is AlertStatus.acknowledged:
        return alert.model_copy(
            update={"status": status, "acknowledged_at": when, "acknowledged_by": by}
        )
    return alert.model_copy(update={"status": status, "resolved_at": when, "resolved_by": by})
