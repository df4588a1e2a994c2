"""What a rule type's evaluator sees and returns: the areas an observation is in, the context
(catalog, watchlists), triggers, and a bounded, expiring state map for per-track/per-zone state.

Evaluation is streaming: an evaluator gets one observation at a time (with the areas of the
rule's zone that hold it) and keeps only bounded state; it never queries history.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from shapely.geometry import GeometryCollection
from shapely.geometry.base import BaseGeometry

from scenes.models import Observation
from twin.catalog import Catalog

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Area:
    """One area of a zone: a key, its polygon (lon/lat deg) and the element it came from."""

    key: str
    geometry: BaseGeometry
    element_id: str | None


EVERYWHERE = Area("*", GeometryCollection(), None)


class Membership(Protocol):
    """Watchlist membership by keyed hash (see scenes.watchlist)."""

    def reason(self, list_name: str, digest: str) -> str | None:
        """The entry's reason when `digest` is on `list_name` ('' when none given), else None."""
        ...


@dataclass(frozen=True)
class RuleContext:
    """What an evaluator may consult: the catalog and the watchlists (None: no watchlists)."""

    catalog: Catalog
    watchlists: Membership | None = None


@dataclass
class Trigger:
    """A rule fired. `key` is the cooldown/dedup key (default: the observation's entity);
    position lon/lat deg and ellipsoidal height m (default: the observation's)."""

    obs: Observation
    area: Area
    key: str | None = None
    observation_ids: list[str] = field(default_factory=list)
    lon: float | None = None
    lat: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        return self.key or self.obs.entity_id

    @property
    def position(self) -> tuple[float, float]:
        lon = self.obs.lon if self.lon is None else self.lon
        lat = self.obs.lat if self.lat is None else self.lat
        return lon, lat


class Evaluator(Protocol):
    """Streaming state of one rule."""

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        """Take one observation that passed the rule's match filter; `areas` are the rule's
        areas holding it (``[EVERYWHERE]`` for a rule without a zone, ``[]`` outside)."""
        ...


class BoundedMap(Generic[K, V]):
    """A map of at most `max_entries` entries, each stamped with the time it was last set;
    entries older than `ttl_s` (relative to the newest stamp) are dropped as new ones come."""

    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._items: OrderedDict[K, tuple[datetime, V]] = OrderedDict()
        self._newest: datetime | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def set(self, key: K, value: V, at: datetime) -> None:
        """Store `value` stamped `at` and expire what is too old or too many."""
        self._items[key] = (at, value)
        self._items.move_to_end(key)
        if self._newest is None or at > self._newest:
            self._newest = at
        self._expire()

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        return None if item is None else item[1]

    def items(self) -> Iterator[tuple[K, V]]:
        for key, (_, value) in list(self._items.items()):
            yield key, value

    def _expire(self) -> None:
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        assert self._newest is not None
        while self._items:
            key, (stamp, _) = next(iter(self._items.items()))
            if (self._newest - stamp).total_seconds() <= self.ttl_s:
                break
            del self._items[key]
