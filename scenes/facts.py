"""The few facts of an alert that statistics need (boards, history figures), light enough to
read by the ten thousand from the live store and the archive alike."""

from __future__ import annotations

from dataclasses import dataclass

from scenes.models import CLOSED_STATUSES, Alert
from scenes.rows import to_us

_CLOSED = frozenset(status.value for status in CLOSED_STATUSES)


@dataclass(frozen=True)
class AlertFacts:
    """An alert's id, creation time (µs since the epoch, UTC), rule, app, board, unit, status,
    severity and response time (dispatch → on scene, s; None until both happened)."""

    id: str
    created_us: int
    rule: str
    app: str | None
    board: str | None
    unit: str | None
    status: str
    severity: str
    response_s: float | None

    @property
    def closed(self) -> bool:
        """Resolved or a false alarm."""
        return self.status in _CLOSED

    @classmethod
    def of(cls, alert: Alert) -> AlertFacts:
        return cls(
            alert.id, to_us(alert.created_at), alert.rule, alert.app, alert.board, alert.unit,
            alert.status.value, alert.severity, alert.response_s(),
        )  # fmt: skip
