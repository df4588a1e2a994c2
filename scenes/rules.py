"""Scenario rule files (YAML), validated by strict models: an unknown key is a `RuleError` that
names it.

```yaml
rules:
  - id: bund-promenade-vehicles
    title: Vehicle in the Bund pedestrian zone
    type: zone                   # an observation of a matching kind/class inside a polygon
    kinds: [vehicle]             # observation kinds; optional (all kinds when absent)
    classes: [car, bus, truck]   # detector classes; optional (all classes when absent)
    zone: {element: "site:..."}  # or {polygon: [[lon, lat], ...], crs: EPSG:4326}
    severity: warning
    cooldown_s: 60               # per (rule, entity): no second alert within this time
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scenes.errors import RuleError
from scenes.models import ObservationKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Strict):
    """Where a zone rule applies: a catalog polygon element, or a polygon given inline."""

    element: str | None = Field(default=None, title="Catalog element id of a polygon element")
    polygon: list[tuple[float, float]] | None = Field(
        default=None, min_length=3, title="Ring of [x, y] vertices in `crs` (lon, lat by default)"
    )
    crs: str = Field(default="EPSG:4326", title="CRS of `polygon` (any CRS pyproj knows)")

    @model_validator(mode="after")
    def _exactly_one(self) -> Zone:
        if (self.element is None) == (self.polygon is None):
            raise ValueError("give exactly one of 'element' or 'polygon'")
        return self


class ZoneRule(_Strict):
    """An observation of a matching kind and class inside a zone raises an alert."""

    id: str = Field(min_length=1, max_length=128, title="Stable rule id")
    title: str = Field(min_length=1, title="Alert title shown to operators")
    type: Literal["zone"] = Field(default="zone", title="Rule type")
    kinds: list[ObservationKind] | None = Field(default=None, title="Observation kinds matched")
    classes: list[str] | None = Field(default=None, title="Detector classes matched")
    zone: Zone
    severity: Literal["info", "warning", "critical"] = Field(default="warning", title="Severity")
    cooldown_s: float = Field(
        default=60.0, ge=0, le=86_400, title="Seconds before the same entity can alert again"
    )


class RuleSet(_Strict):
    """The whole rule file."""

    rules: list[ZoneRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id '{rule.id}'")
            seen.add(rule.id)
        return self


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_rules(raw: Any, *, source: str = "rules") -> RuleSet:
    """Validate a parsed YAML document; raise `RuleError` naming the file and the key at fault."""
    if raw is None:
        return RuleSet()
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: must be a mapping with a 'rules' list")
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        if first["type"] == "extra_forbidden":
            raise RuleError(f"{source}: unknown key '{key}'") from exc
        where = f"key '{key}': " if key else ""
        raise RuleError(f"{source}: {where}{first['msg']}") from exc


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file (YAML)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read rule file ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    return parse_rules(raw, source=str(path))
