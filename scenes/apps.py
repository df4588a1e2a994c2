"""Scenario apps: rule packs (YAML) with an id, a bilingual title, a board, tunable parameters
and rules. A rule value written ``$name`` is replaced by parameter ``name`` before the rules
are validated, so `PUT /api/apps/{id}` can retune an app without a restart.

The shipped apps are package data in ``scenes/apps/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scenes.errors import AppConfigError, AppNotFound, RuleError
from scenes.rulefile import check_unique, parse_rule, read_yaml
from scenes.rules import RuleSpec

BOARDS: dict[str, dict[str, str]] = {
    "basic": {"zh": "基础应用", "en": "Basic"},
    "public-order": {"zh": "治安管理", "en": "Public order"},
    "joint-governance": {"zh": "协同治理", "en": "Joint governance"},
    "public-service": {"zh": "为民服务", "en": "Public service"},
}
Board = Literal["basic", "public-order", "joint-governance", "public-service"]


class Title(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1, title="Chinese title")
    en: str = Field(min_length=1, title="English title")


class AppSpec(BaseModel):
    """One app as written in its YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", title="Stable app id")
    title: Title
    board: Board
    description: str = Field(default="", title="What it is for (shown to operators)")
    enabled: bool = Field(default=True, title="Enabled unless turned off")
    parameters: dict[str, Any] = Field(default_factory=dict, title="Tunable values, $name")
    rules: list[dict[str, Any]] = Field(min_length=1, title="Rules (see scenes.rules)")


@dataclass(frozen=True)
class AppConfig:
    """An app with its effective settings and validated rules."""

    spec: AppSpec
    enabled: bool
    parameters: dict[str, Any]
    rules: list[RuleSpec]

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": spec.id, "title": spec.title.model_dump(), "board": spec.board,
            "board_title": BOARDS[spec.board], "description": spec.description,
            "enabled": self.enabled, "parameters": self.parameters,
            "defaults": spec.parameters, "rules": [rule.id for rule in self.rules],
        }  # fmt: skip


def _substitute(value: Any, parameters: dict[str, Any], where: str) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        if name not in parameters:
            raise RuleError(f"{where}: unknown parameter '{name}'")
        return parameters[name]
    if isinstance(value, dict):
        return {k: _substitute(v, parameters, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, parameters, f"{where}.{i}") for i, v in enumerate(value)]
    return value


def configure(
    spec: AppSpec, *, enabled: bool | None = None, parameters: dict[str, Any] | None = None
) -> AppConfig:
    """`spec` with settings applied: `parameters` override the declared ones (an undeclared
    name is an `AppConfigError`); the rules are validated with them (`RuleError`)."""
    given = parameters or {}
    unknown = sorted(set(given) - set(spec.parameters))
    if unknown:
        raise AppConfigError(f"app '{spec.id}': unknown parameter '{unknown[0]}'")
    effective = {**spec.parameters, **given}
    source = f"app '{spec.id}'"
    rules = [
        parse_rule(_substitute(raw, effective, f"rules.{i}"), where=f"rules.{i}", source=source)
        for i, raw in enumerate(spec.rules)
    ]
    check_unique(rules, source=source)
    return AppConfig(spec, spec.enabled if enabled is None else enabled, effective, rules)


def parse_app(raw: Any, *, source: str) -> AppSpec:
    """Validate an app document; `RuleError` naming the file and key at fault."""
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: an app file must be a mapping")
    try:
        spec = AppSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise RuleError(f"{source}: unknown key '{key}'") from exc
        raise RuleError(f"{source}: key '{key}': {first['msg']}") from exc
    configure(spec)  # the defaults must give valid rules
    return spec


def load_app(path: Path) -> AppSpec:
    """Read and validate one app file."""
    return parse_app(read_yaml(path), source=str(path))


def shipped_apps() -> list[AppSpec]:
    """The apps shipped in ``scenes/apps``, ordered by id."""
    folder = resources.files("scenes") / "apps"
    specs = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as path:
                specs.append(load_app(path))
    return specs


class AppRegistry:
    """The apps known to a server and their current settings."""

    def __init__(self, specs: list[AppSpec]) -> None:
        self._specs = {spec.id: spec for spec in specs}
        if len(self._specs) != len(specs):
            raise RuleError("two apps share an id")
        self.configs: dict[str, AppConfig] = {}

    def spec(self, app_id: str) -> AppSpec:
        try:
            return self._specs[app_id]
        except KeyError:
            raise AppNotFound(f"no app '{app_id}'") from None

    def ids(self) -> list[str]:
        return list(self._specs)
