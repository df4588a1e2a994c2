"""What a bundle can hold: the kinds (`WHAT`), each kind's NDJSON member, the crop member of an
alert, and the watchlist record (an entry with its list; keyed hash and masked form only)."""

from __future__ import annotations

from pydantic import ConfigDict, field_validator

from scenes.identifiers import WATCHLISTS as LISTS
from scenes.watchlist import Entry

OBSERVATIONS = "observations"
ALERTS = "alerts"
WATCHLISTS = "watchlists"
WHAT = (OBSERVATIONS, ALERTS, WATCHLISTS)
MEMBERS = {kind: f"{kind}.ndjson.gz" for kind in WHAT}


def crop_member(alert_id: str) -> str:
    """The member holding the evidence crop (JPEG) of alert `alert_id`."""
    return f"crops/{alert_id}.jpg"


class WatchlistRecord(Entry):
    """A watchlist entry and the list it is on."""

    model_config = ConfigDict(extra="forbid")

    list: str

    @field_validator("list")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in LISTS:
            raise ValueError(f"no watchlist '{value}' (known: {', '.join(LISTS)})")
        return value
