"""Incidents: a rule's repeats for the same area of its zone (or, without a zone, the same
entity) within the rule's ``incident_s`` are one alert, whose ``count`` says how often the rule
fired, with the first and latest time seen and the latest evidence.

The alert keeps its id, place, routing, life cycle and creation time: an operator's row and map
symbol stay where they are while repeats arrive. Pure functions; the live service looks up the
open incident in the store (`LiveStore.find_incident`), folds repeats of one batch here, and
the store applies `merged` to the stored incident in the transaction that stores the repeat's
observations (`LiveStore.save`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from scenes.models import Alert

MAX_OBSERVATION_IDS = 50
"""Most observation ids an incident keeps: the latest evidence's, then earlier ones."""


def seen_at(alert: Alert) -> datetime:
    """When the alert's (latest) observation was made, else when it was raised."""
    return alert.last_seen_at or alert.observed_at or alert.created_at


def first_seen(alert: Alert) -> datetime:
    """When the alert's first observation was made, else when it was raised."""
    return alert.first_seen_at or alert.observed_at or alert.created_at


def joins(incident: Alert, repeat: Alert, window_s: float) -> bool:
    """Whether `repeat` belongs to the open `incident`: same rule and incident key, seen at
    most `window_s` seconds after the incident was last seen."""
    return (
        window_s > 0
        and not incident.closed
        and incident.rule == repeat.rule
        and incident.incident_key is not None
        and incident.incident_key == repeat.incident_key
        and seen_at(repeat) - seen_at(incident) <= timedelta(seconds=window_s)
    )


def with_crop(alert: Alert, crop: str | None) -> Alert:
    """`alert` whose evidence names `crop` (the URL of its crop) when one is given."""
    if crop is None or alert.evidence is None:
        return alert
    return alert.model_copy(update={"evidence": alert.evidence.model_copy(update={"crop": crop})})


def merged(incident: Alert, repeat: Alert, *, crop: str | None = None) -> Alert:
    """`incident` with `repeat` folded in: counts added, last seen moved on, the repeat's
    evidence (with `crop`, the URL of a new crop, else the incident's crop) and its
    observations first among the ids kept."""
    evidence = repeat.evidence
    if evidence is not None:
        kept = crop or (incident.evidence.crop if incident.evidence else None)
        evidence = evidence.model_copy(update={"crop": kept})
    ids = list(dict.fromkeys([*repeat.observation_ids, *incident.observation_ids]))
    first = min(first_seen(incident), first_seen(repeat))
    return incident.model_copy(
        update={
            "count": incident.count + repeat.count,
            "first_seen_at": first,
            "last_seen_at": max(seen_at(incident), seen_at(repeat)),
            "evidence": evidence,
            "observation_ids": ids[:MAX_OBSERVATION_IDS],
        }
    )


def fold(alerts: Sequence[Alert], window_s: dict[str, float]) -> list[Alert]:
    """`alerts` of one batch (in order) with each repeat folded into the earlier alert it
    joins (`window_s`: each rule's ``incident_s``)."""
    folded: list[Alert] = []
    for alert in alerts:
        for index, earlier in enumerate(folded):
            if joins(earlier, alert, window_s.get(alert.rule, 0.0)):
                folded[index] = merged(earlier, alert)
                break
        else:
            folded.append(alert)
    return folded
