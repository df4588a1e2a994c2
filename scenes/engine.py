"""Rule evaluation: observations in, alerts out, one observation at a time (incremental).

Rules come in groups: the workspace rule file (no app) and each enabled app. A group can be
replaced at run time (`configure`), which restarts its rules' state. A rule alerts at most once
per key (an entity: source + track; a zone for crowds) within its ``cooldown_s``, measured on
observation times. Outside a rule's time window its state still advances but nothing alerts.

Each alert names the incident it belongs to (``incident_key``: the area of the rule's zone that
holds it, else its key); the live service folds a repeat into the open incident of the same
rule and key seen within the rule's ``incident_s`` (`scenes.incidents`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from scenes.apps import AppConfig
from scenes.errors import RuleError
from scenes.evaluate import EVERYWHERE, Area, Evaluator, Membership, RuleContext, Trigger
from scenes.evidence import CameraIndex
from scenes.models import Alert, Evidence, Observation
from scenes.routing import Picker, Router
from scenes.rules import RuleSet, RuleSpec
from scenes.zones import AreaIndex, zone_areas
from twin.catalog import Catalog

_COOLDOWN_KEYS = 200_000


@dataclass
class _Compiled:
    spec: RuleSpec
    app: str | None
    board: str | None
    index: AreaIndex | None
    evaluator: Evaluator

    def areas(self, obs: Observation) -> list[Area]:
        return [EVERYWHERE] if self.index is None else self.index.holding(obs.lon, obs.lat)


class Engine:
    """Evaluates rule groups over observations. Not thread-safe: call from one thread."""

    def __init__(
        self,
        rules: RuleSet,
        catalog: Catalog,
        *,
        apps: Sequence[AppConfig] = (),
        watchlists: Membership | None = None,
    ) -> None:
        self.catalog = catalog
        self.context = RuleContext(catalog, watchlists)
        self.router = Router(catalog)
        self.picker = Picker(catalog)
        self.cameras = CameraIndex(catalog)
        self._groups: dict[str | None, list[_Compiled]] = {}
        self._last: dict[tuple[str, str], datetime] = {}
        self._set_group(None, self._compile(rules.rules, None, None))
        for app in apps:
            self.configure(app)

    @property
    def rules(self) -> list[RuleSpec]:
        """Every active rule."""
        return [c.spec for group in self._groups.values() for c in group]

    def configure(self, app: AppConfig) -> None:
        """Install (enabled) or remove (disabled) an app's rules, with fresh state."""
        if not app.enabled:
            self._groups.pop(app.spec.id, None)
            return
        self._set_group(app.spec.id, self._compile(app.rules, app.spec.id, app.spec.board))

    def _set_group(self, key: str | None, compiled: list[_Compiled]) -> None:
        taken = {c.spec.id: k for k, group in self._groups.items() if k != key for c in group}
        for c in compiled:
            if c.spec.id in taken:
                owner = f"app '{taken[c.spec.id]}'" if taken[c.spec.id] else "the rule file"
                raise RuleError(f"rule id '{c.spec.id}' is also used by {owner}")
        self._groups[key] = compiled

    def _compile(
        self, rules: Iterable[RuleSpec], app: str | None, board: str | None
    ) -> list[_Compiled]:
        compiled = []
        for spec in rules:
            index = None
            if spec.zone is not None:
                index = AreaIndex(zone_areas(spec.id, spec.zone, self.catalog))
            compiled.append(_Compiled(spec, app, board, index, spec.start(self.context)))
        return compiled

    def seed(self, alerts: Iterable[Alert]) -> None:
        """Remember earlier alerts (e.g. from the store after a restart) for the cooldowns."""
        for alert in alerts:
            seen = alert.last_seen_at or alert.observed_at
            if alert.entity_id and seen:
                key = (alert.rule, alert.entity_id)
                if key not in self._last or self._last[key] < seen:
                    self._last[key] = seen

    def process(self, observations: Iterable[Observation]) -> list[Alert]:
        """Evaluate every active rule on each observation, in order; return the alerts raised."""
        alerts: list[Alert] = []
        for obs in observations:
            for group in self._groups.values():
                for compiled in group:
                    spec = compiled.spec
                    if not spec.matches(obs):
                        continue
                    for trigger in compiled.evaluator.step(obs, compiled.areas(obs)):
                        if spec.when is not None and not spec.when.contains(obs.time):
                            continue
                        if self._cooled_down(spec, trigger.dedup_key, obs.time):
                            alerts.append(self._raise(compiled, trigger))
        return alerts

    def incident_s(self, rule_id: str) -> float:
        """How long after an incident was last seen a repeat of rule `rule_id` joins it (s);
        0 for a rule no longer active."""
        return next((spec.incident_s for spec in self.rules if spec.id == rule_id), 0.0)

    def _cooled_down(self, rule: RuleSpec, key: str, at: datetime) -> bool:
        last = self._last.get((rule.id, key))
        if last is not None and abs((at - last).total_seconds()) < rule.cooldown_s:
            return False
        if len(self._last) >= _COOLDOWN_KEYS:
            self._forget_cooled(at)
        self._last[(rule.id, key)] = at
        return True

    def _forget_cooled(self, at: datetime) -> None:
        longest = max((r.cooldown_s for r in self.rules), default=0.0)
        self._last = {k: t for k, t in self._last.items()
                      if (at - t).total_seconds() < longest}  # fmt: skip

    def _raise(self, compiled: _Compiled, trigger: Trigger) -> Alert:
        spec, obs = compiled.spec, trigger.obs
        lon, lat = trigger.position
        where = self.router.route(lon, lat, spec.route_to)
        element_id = trigger.area.element_id or self.picker.element_at(lon, lat)
        ids = [i for i in trigger.observation_ids if i] or ([obs.id] if obs.id else [])
        return Alert(
            id=uuid.uuid4().hex,
            rule=spec.id,
            app=compiled.app,
            board=compiled.board,
            title=spec.title,
            severity=spec.severity,
            lon=lon,
            lat=lat,
            height=obs.height,
            element_id=element_id,
            jurisdiction_id=where.jurisdiction_id,
            unit=where.unit,
            observation_ids=ids,
            entity_id=trigger.dedup_key,
            observed_at=obs.time,
            incident_key=trigger.dedup_key if trigger.area is EVERYWHERE else trigger.area.key,
            first_seen_at=obs.time,
            last_seen_at=obs.time,
            evidence=Evidence(
                observation_ids=ids, lon=lon, lat=lat, height=obs.height,
                cameras=self.cameras.seeing(lon, lat, obs.height, source=obs.source),
                details={"source": obs.source, "cls": obs.cls, **trigger.details},
            ),
            nearby_units=where.nearby,
        )  # fmt: skip
