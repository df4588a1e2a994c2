"""The live service: ingest observations (check, store, evaluate rules), alert actions, and the
live questions an element record asks (recent events, entities nearby).

Positions are lon/lat degrees; distances are metres on a local equirectangular approximation
(good to well under 1 % over the few hundred metres these radii span).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from scenes.apps import AppConfig, AppSpec, configure
from scenes.boards import DEFAULT_TZ, board_stats, week_start
from scenes.crops import CropSource, evidence_crop, observation_box
from scenes.engine import Engine
from scenes.errors import (
    AlertNotFound,
    AlertTransitionError,
    AppConfigError,
    AppNotFound,
    DuplicateObservationError,
    ObservationTimeError,
    RuleError,
    SceneError,
    UnknownSourceError,
)
from scenes.facts import AlertFacts
from scenes.history.reader import AlertQuery, HistoryReader
from scenes.identifiers import KeyedHasher
from scenes.incidents import fold, merged, seen_at, with_crop
from scenes.models import Alert, AlertStatus, Entity, Observation, utcnow
from scenes.rows import to_us
from scenes.store import BBox, EntityRecord, LiveStore
from scenes.watchlist import WatchlistStore
from twin.catalog import Catalog, resolve_id
from twin.geo import metres_per_degree

SOURCE_KINDS = ("camera", "sensor")
# Recent observations with a box kept in memory for evidence crops, so an alert finds the
# boxed observation of an earlier batch even while that batch's commit is still in flight.
RECENT_BOXED = 20_000
APPS_SYNC_S = 2.0  # how stale app settings saved by another process may be, s
log = logging.getLogger("twin.scenes")


@dataclass(frozen=True)
class IngestResult:
    """What one batch did: the stored observations (ids set), entities updated (and each one's
    JSON text, as stored), alerts raised."""

    observations: list[Observation]
    entities: list[Entity]
    alerts: list[Alert]
    entity_json: list[str]


@dataclass(frozen=True)
class TimeBounds:
    """How far from the server's clock an observation's time may lie: at most `max_age_s`
    seconds before it (a detector catching up after an outage) and `max_skew_s` after it (a
    detector's clock running ahead)."""

    max_age_s: float
    max_skew_s: float

    def check(self, obs: Observation, index: int, now: datetime) -> None:
        """Raise `ObservationTimeError` when `obs` lies outside the bounds around `now`."""
        ahead = (obs.time - now).total_seconds()
        if ahead > self.max_skew_s or -ahead > self.max_age_s:
            raise ObservationTimeError(
                f"time {obs.time.isoformat()} is more than {self.max_age_s:g} s before or "
                f"{self.max_skew_s:g} s after the server's clock ({now.isoformat()})",
                index=index, field="time",
            )  # fmt: skip


def time_ordered_ids(count: int) -> list[str]:
    """`count` UUIDv7 ids (RFC 9562) as 32 hex digits: the Unix time in milliseconds, then 74
    random bits. New ids sort after older ones, so the store's id index grows at its end
    instead of dirtying a random page per observation (a 250-observation commit into 50 k
    rows wrote 2.4 MB of WAL with random ids, 1.5 MB with these)."""
    prefix = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | 0b10 << 62
    random_bits = os.urandom(10 * count)
    ids = []
    for i in range(count):
        r = int.from_bytes(random_bits[10 * i : 10 * i + 10], "big")
        ids.append(f"{prefix | (r >> 68) << 64 | r & ((1 << 62) - 1):032x}")
    return ids


def _metric(geometry: BaseGeometry, lon: float, lat: float) -> BaseGeometry:
    """`geometry` in metres east/north of lon/lat (local equirectangular)."""
    origin = np.array([lon, lat])
    scale = np.array(metres_per_degree(lat))
    return shapely.transform(geometry, lambda xy: (xy - origin) * scale)


def _grown_box(geometry: BaseGeometry, radius_m: float) -> BBox:
    minlon, minlat, maxlon, maxlat = geometry.bounds
    mx, my = metres_per_degree((minlat + maxlat) / 2)
    dlon, dlat = radius_m / mx, radius_m / my
    return BBox(minlon - dlon, minlat - dlat, maxlon + dlon, maxlat + dlat)


class LiveService:
    """Ingest and alert actions over a `LiveStore`, with rules from an `Engine`, the apps it
    runs (settings kept in the store), and optionally watchlists and identifier hashing."""

    def __init__(
        self,
        catalog: Catalog,
        store: LiveStore,
        engine: Engine,
        *,
        ttl_s: float,
        apps: Sequence[AppSpec] = (),
        hasher: KeyedHasher | None = None,
        watchlists: WatchlistStore | None = None,
        history: HistoryReader | None = None,
        time_bounds: TimeBounds | None = None,
    ) -> None:
        self.catalog, self.store, self.engine, self.ttl_s = catalog, store, engine, ttl_s
        self.hasher, self.watchlists, self.history = hasher, watchlists, history
        self.time_bounds = time_bounds
        self.on_save: Callable[[float], None] | None = None  # told each commit's wait, s
        self.sources = {el.id for kind in SOURCE_KINDS for el in catalog.all(kind)}  # feeds
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()  # given ids of batches between their rules and commit
        self._recent_boxed: OrderedDict[str, Observation] = OrderedDict()
        self.apps: dict[str, AppConfig] = {}
        self._saved_apps: dict[str, tuple[bool, dict[str, Any]]] = {}
        self._apps_read_at = 0.0  # monotonic time the saved settings were last read
        self._specs = list(apps)
        self._apply_saved_apps(store.app_settings())
        longest = max((rule.cooldown_s for rule in engine.rules), default=0.0)
        engine.seed(store.alerts_since(time.time() - longest - 60.0))

    def ingest(
        self, observations: Sequence[Observation], crops: CropSource | None = None
    ) -> IngestResult:
        """Check the batch (`checked`), assign missing ids (`time_ordered_ids`), evaluate rules
        and store it all in one transaction (with each new alert's evidence crop when `crops`
        gives one, and the watchlist hits), committed before returning. Rules run one batch at
        a time; the commit is shared with batches of other threads that wait for one meanwhile
        (group commit). Raises (nothing stored) `UnknownSourceError`, `ObservationTimeError`,
        or `DuplicateObservationError` for an id given twice, already stored in the hot window
        or taken by a batch still being stored."""
        self.sync_apps()
        checked, stamped, given = self._stamped(observations)
        images: dict[str, bytes] = {}
        with self._lock:
            self._claim(checked)
            try:
                self._remember_boxed(stamped)
                alerts, opened, joined = self._incidents(self.engine.process(stamped), stamped,
                                                         crops, images)  # fmt: skip
                # Incidents are committed before another batch looks for the one it joins.
                saved = (self._save(stamped, alerts, opened, joined, images)
                         if opened or joined else None)  # fmt: skip
            except BaseException:
                self._in_flight.difference_update(given)
                raise
        try:
            if saved is None:
                saved = self._save(stamped, alerts, opened, joined, images)
        finally:
            with self._lock:
                self._in_flight.difference_update(given)
        return IngestResult(
            stamped, [rec.entity for rec in saved], alerts, [rec.json for rec in saved]
        )

    def accept(self, observations: Sequence[Observation]) -> IngestResult:
        """The first half of `ingest` when the rules run in another process (several server
        processes share one rules leader): check, stamp and store the batch and its entities,
        committed before returning, without evaluating rules (``alerts`` is empty; the leader
        runs `evaluate` on the batch)."""
        checked, stamped, given = self._stamped(observations)
        with self._lock:
            self._claim(checked)
        try:
            saved = self._save(stamped, [], [], [], {})
        finally:
            with self._lock:
                self._in_flight.difference_update(given)
        return IngestResult(stamped, [rec.entity for rec in saved], [],
                            [rec.json for rec in saved])  # fmt: skip

    def evaluate(
        self, batch: Sequence[Observation], crops: CropSource | None = None, *, key: str
    ) -> list[Alert]:
        """The second half: run the rules over an accepted `batch` and store what they raise
        (new incidents, crops, watchlist hits) with `key` (the batch's id in the rules stream)
        in one transaction; a batch whose `key` is stored already is not evaluated again (its
        alerts are returned as they were), so a leader that takes over raises nothing twice."""
        done = self.store.evaluated(key)
        if done is not None:
            return done
        self.sync_apps()
        images: dict[str, bytes] = {}
        with self._lock:
            self._remember_boxed(batch)
            alerts, opened, joined = self._incidents(self.engine.process(batch), batch, crops,
                                                     images)  # fmt: skip
            hits = self.watchlists.hits_of(batch, alerts) if self.watchlists else []
            self.store.save([], opened, received_s=time.time(), crops=images, hits=hits,
                            evaluated=(key, alerts), joined=joined)  # fmt: skip
        return alerts

    def warm_up(self, batches: Iterable[Sequence[Observation]]) -> int:
        """Run the rules over already evaluated `batches` (oldest first) to rebuild their state
        (dwell timers, crowds, speeds, cooldowns) without raising anything — for a process that
        has just become the rules leader; how many observations it saw."""
        count = 0
        with self._lock:
            longest = max((rule.cooldown_s for rule in self.engine.rules), default=0.0)
            self.engine.seed(self.store.alerts_since(time.time() - longest - 60.0))
            for batch in batches:
                self.engine.process(batch)
                count += len(batch)
        return count

    def _stamped(
        self, observations: Sequence[Observation]
    ) -> tuple[list[Observation], list[Observation], list[str]]:
        """The checked batch, the same with ids assigned, and the ids its sender gave."""
        checked = self.checked(observations)
        new_ids = iter(time_ordered_ids(sum(not obs.id for obs in checked)))
        given = [obs.id for obs in checked if obs.id]
        return checked, [self._stamp(obs, new_ids) for obs in checked], given

    def _save(
        self,
        batch: Sequence[Observation],
        alerts: Sequence[Alert],
        opened: Sequence[Alert],
        joined: Sequence[tuple[str, Callable[[Alert], Alert]]],
        images: dict[str, bytes],
    ) -> list[EntityRecord]:
        """Store `batch` with the incidents it `opened`, the repeats it `joined` to stored
        ones, the evidence crops and the watchlist hits of all its `alerts`, in one
        transaction."""
        hits = self.watchlists.hits_of(batch, alerts) if self.watchlists else []
        start = time.perf_counter()
        saved = self.store.save(batch, opened, received_s=time.time(), crops=images, hits=hits,
                                joined=joined)  # fmt: skip
        if self.on_save is not None:
            self.on_save(time.perf_counter() - start)
        return saved

    def _incidents(
        self,
        raised: Sequence[Alert],
        batch: Sequence[Observation],
        crops: CropSource | None,
        images: dict[str, bytes],
    ) -> tuple[list[Alert], list[Alert], list[tuple[str, Callable[[Alert], Alert]]]]:
        """The alerts `raised` by `batch` as incidents: each repeat folded into the open
        incident it joins or into an earlier alert of the batch; the rest open new incidents.
        Returns every incident the batch raised or joined (as it will be once stored), the
        new ones, and ``(incident id, bump)`` for each stored one it joined (applied by the
        store in the batch's transaction). Crops of the latest evidence go to `images`
        (alert id -> JPEG)."""
        windows = {alert.rule: self.engine.incident_s(alert.rule) for alert in raised}
        incidents: list[Alert] = []
        opened: list[Alert] = []
        joined: list[tuple[str, Callable[[Alert], Alert]]] = []
        for alert in fold(raised, windows):
            image = self._crop(alert, batch, crops)

            def url(alert_id: str, image: bytes | None = image) -> str | None:
                return crops.url(alert_id) if crops is not None and image else None

            def bump(incident: Alert, repeat: Alert = alert) -> Alert:
                return merged(incident, repeat, crop=url(incident.id))

            window = windows[alert.rule]
            found = None
            if window > 0 and alert.incident_key is not None:
                since = seen_at(alert) - timedelta(seconds=window)
                found = self.store.find_incident(alert.rule, alert.incident_key,
                                                 seen_since=since)  # fmt: skip
            if found is not None:
                incident = bump(found)
                joined.append((found.id, bump))
            else:
                incident = with_crop(alert, url(alert.id))
                opened.append(incident)
            if image is not None:
                images[incident.id] = image
            incidents.append(incident)
        return incidents, opened, joined

    def checked(self, observations: Sequence[Observation]) -> list[Observation]:
        """`observations` with each source as its element id (a camera or sensor may be named
        by its layer's own id, e.g. ``cam-1`` for ``camera:cam-1``, when that names one), each
        time within `time_bounds`; raises `UnknownSourceError` or `ObservationTimeError`."""
        now = utcnow()
        checked = []
        for index, obs in enumerate(observations):
            source = resolve_id(obs.source, self.sources.__contains__, SOURCE_KINDS)
            if source not in self.sources:
                raise UnknownSourceError(obs.source, index=index)
            if self.time_bounds is not None:
                self.time_bounds.check(obs, index, now)
            renamed = source != obs.source
            checked.append(obs.model_copy(update={"source": source}) if renamed else obs)
        return checked

    def _claim(self, batch: Sequence[Observation]) -> None:
        """Hold the ids given in `batch` until its commit; `DuplicateObservationError` when one
        is repeated in it, stored already or held by another batch. The caller holds
        ``_lock``."""
        seen: dict[str, int] = {}
        for index, obs in enumerate(batch):
            if not obs.id:
                continue
            if obs.id in seen or obs.id in self._in_flight:
                raise DuplicateObservationError(obs.id, index=index)
            seen[obs.id] = index
        stored = self.store.observations_by_id(list(seen)) if seen else {}
        if stored:
            first = min(stored, key=seen.__getitem__)
            raise DuplicateObservationError(first, index=seen[first])
        self._in_flight.update(seen)

    def _crop(
        self, alert: Alert, batch: Sequence[Observation], crops: CropSource | None
    ) -> bytes | None:
        """The evidence crop (JPEG) of one of `alert`'s observations, in `batch` or stored
        earlier, when `crops` has one (see `scenes.crops`)."""
        if crops is None or alert.evidence is None:
            return None
        by_id = {obs.id: obs for obs in batch if obs.id}
        return evidence_crop(alert.observation_ids, by_id, self._earlier, crops)

    def _remember_boxed(self, batch: Sequence[Observation]) -> None:
        """Keep `batch`'s observations that carry a box among the `RECENT_BOXED` newest."""
        for obs in batch:
            if obs.id and observation_box(obs) is not None:
                self._recent_boxed[obs.id] = obs
        while len(self._recent_boxed) > RECENT_BOXED:
            self._recent_boxed.popitem(last=False)

    def _earlier(self, ids: list[str]) -> dict[str, Observation]:
        """Observations of earlier batches by id: recent boxed ones from memory, the rest
        from the store."""
        found = {i: self._recent_boxed[i] for i in ids if i in self._recent_boxed}
        missing = [i for i in ids if i not in found]
        if missing:
            found.update(self.store.observations_by_id(missing))
        return found

    def _stamp(self, obs: Observation, new_ids: Iterator[str]) -> Observation:
        """An id (the next of `new_ids`) when missing; clear identifiers replaced by hash +
        masked form."""
        update: dict[str, Any] = {}
        if not obs.id:
            update["id"] = next(new_ids)
        if self.hasher is not None:
            safe = self.hasher.protect(obs.attributes)
            if safe is not obs.attributes:
                update["attributes"] = safe
        return obs.model_copy(update=update) if update else obs

    def act(self, alert_id: str, status: AlertStatus, *, by: str) -> Alert:
        """Move an alert along its life cycle on behalf of `by` (a label, never a token)."""
        return self.store.transition(alert_id, status, by=by)

    def act_many(
        self, alert_ids: Sequence[str], status: AlertStatus, *, by: str
    ) -> tuple[list[Alert], dict[str, SceneError]]:
        """`act` on each of `alert_ids` (each committed on its own): the alerts moved, and the
        error of each one that could not move (`AlertNotFound`, `AlertTransitionError`)."""
        moved: list[Alert] = []
        refused: dict[str, SceneError] = {}
        for alert_id in dict.fromkeys(alert_ids):
            try:
                moved.append(self.act(alert_id, status, by=by))
            except (AlertNotFound, AlertTransitionError) as exc:
                refused[alert_id] = exc
        return moved, refused

    def _apply_saved_apps(self, saved: dict[str, tuple[bool, dict[str, Any]]]) -> None:
        """Configure every app whose saved settings differ from the ones last applied (all of
        them at start); settings the rules refuse are logged and the defaults used."""
        for spec in self._specs:
            entry = saved.get(spec.id)
            if spec.id in self.apps and entry == self._saved_apps.get(spec.id):
                continue
            enabled, parameters = entry if entry is not None else (None, {})
            try:
                config = configure(spec, enabled=enabled, parameters=parameters)
            except SceneError as exc:
                log.warning("app %s: saved settings ignored (%s)", spec.id, exc)
                config = configure(spec)
            self.engine.configure(config)
            self.apps[spec.id] = config
        self._saved_apps = saved
        self._apps_read_at = time.monotonic()

    def sync_apps(self, max_age_s: float = APPS_SYNC_S) -> None:
        """Pick up app settings another process saved (several processes on one database):
        read them again when the last read is older than `max_age_s` seconds and reconfigure
        the apps that changed (their rules restart with fresh state, as in `configure_app`)."""
        if time.monotonic() - self._apps_read_at < max_age_s:
            return
        saved = self.store.app_settings()
        with self._lock:
            self._apply_saved_apps(saved)

    def app(self, app_id: str) -> AppConfig:
        """An app's current settings; `AppNotFound` when unknown."""
        try:
            return self.apps[app_id]
        except KeyError:
            raise AppNotFound(f"no app '{app_id}'") from None

    def configure_app(
        self, app_id: str, *, enabled: bool | None = None, parameters: dict[str, Any] | None = None
    ) -> AppConfig:
        """Enable/disable or retune an app now (its rules restart with fresh state) and keep
        the settings. Parameters given are merged over the current ones. `AppConfigError` when
        a parameter is unknown or its value is refused by the rules."""
        self.sync_apps(0.0)  # merge over what another process may have saved meanwhile
        current = self.app(app_id)
        merged = {**current.parameters, **(parameters or {})}
        overrides = {k: v for k, v in merged.items() if current.spec.parameters.get(k) != v}
        try:
            config = configure(
                current.spec, enabled=current.enabled if enabled is None else enabled,
                parameters=overrides,
            )  # fmt: skip
        except RuleError as exc:
            raise AppConfigError(str(exc)) from exc
        with self._lock:
            self.engine.configure(config)
            self.store.save_app_settings(app_id, config.enabled, overrides)
            self.apps[app_id] = config
            self._saved_apps = {**self._saved_apps, app_id: (config.enabled, overrides)}
        return config

    def boards(self, tz: str = DEFAULT_TZ) -> dict[str, Any]:
        """Board, app and unit figures over the last 7 days (see scenes.boards), from the live
        store and, when there is one, the archive of closed alerts."""
        now = utcnow()
        since = week_start(now)
        if self.history is not None:
            facts = self.history.alert_facts(AlertQuery(to_us(since), to_us(now) + 1))
        else:
            facts = [AlertFacts.of(a) for a in self.store.alerts_since(since.timestamp())]
        return board_stats(facts, list(self.apps.values()), now, tz)

    def live_entities(self) -> list[Entity]:
        """Entities updated within the last `ttl_s` seconds."""
        return self.store.entities(received_since_s=time.time() - self.ttl_s)

    def live_entity_records(self, limit: int) -> list[str]:
        """The JSON records of at most `limit` entities updated within the last `ttl_s`
        seconds, the most recently updated first."""
        return self.store.entity_records(received_since_s=time.time() - self.ttl_s, limit=limit)

    def nearby(self, geometry: BaseGeometry, radius_m: float) -> list[tuple[Entity, float]]:
        """Live entities within `radius_m` metres of `geometry` (lon/lat), nearest first, with
        their distance in metres (0 inside)."""
        box = _grown_box(geometry, radius_m)
        entities = self.store.entities(received_since_s=time.time() - self.ttl_s, box=box)
        found = []
        for ent in entities:
            dist = float(_metric(geometry, ent.lon, ent.lat).distance(Point(0.0, 0.0)))
            if dist <= radius_m:
                found.append((ent, dist))
        found.sort(key=lambda pair: pair[1])
        return found

    def recent_events(
        self, geometry: BaseGeometry, radius_m: float, *, element_id: str, limit: int
    ) -> list[dict[str, Any]]:
        """Alerts and observations at `element_id` or within `radius_m` metres of `geometry`,
        newest first: each the alert or observation record plus ``type`` ("alert" |
        "observation") and ``time`` (UTC ISO)."""
        if limit <= 0:
            return []
        box = _grown_box(geometry, radius_m)

        def near(lon: float, lat: float) -> bool:
            return bool(_metric(geometry, lon, lat).distance(Point(0.0, 0.0)) <= radius_m)

        events: list[tuple[datetime, dict[str, Any]]] = []
        for alert in self.store.alerts_in(box, element_id=element_id, limit=limit):
            if alert.element_id == element_id or near(alert.lon, alert.lat):
                record = alert.model_dump(mode="json")
                record.update(type="alert", time=record["created_at"])
                events.append((alert.created_at, record))
        for obs in self.store.observations_in(box, limit=limit):
            if near(obs.lon, obs.lat):
                record = obs.model_dump(mode="json")
                record["type"] = "observation"
                events.append((obs.time, record))
        events.sort(key=lambda pair: pair[0], reverse=True)
        return [event for _, event in events[:limit]]
