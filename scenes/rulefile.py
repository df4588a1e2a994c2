"""Rule files: YAML read and validated into a `RuleSet` (built-in and plugin rule types); a
`RuleError` names the file and the key at fault.

Importing this module imports `scenes.ruletypes`, so the built-in types are registered before
any rule is parsed; plugin types register themselves when their module is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scenes.errors import RuleError
from scenes.rules import RULE_TYPES, RuleSet, RuleSpec
from scenes.ruletypes import ZoneRule


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _raise_validation(exc: ValidationError, prefix: str, source: str) -> None:
    first = exc.errors()[0]
    key = _key_path((prefix, *first["loc"]) if prefix else first["loc"])
    if first["type"] == "extra_forbidden":
        raise RuleError(f"{source}: unknown key '{key}'") from exc
    where = f"key '{key}': " if key else ""
    raise RuleError(f"{source}: {where}{first['msg']}") from exc


def parse_rule(raw: Any, *, where: str = "rule", source: str = "rules") -> RuleSpec:
    """Validate one rule mapping by its ``type`` (default ``zone``); `where` names it in errors."""
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: {where} must be a mapping")
    name = raw.get("type", ZoneRule.type_name)
    cls = RULE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(sorted(RULE_TYPES))
        raise RuleError(f"{source}: key '{where}.type': unknown rule type {name!r} ({known})")
    try:
        return cls.model_validate({**raw, "type": name})
    except ValidationError as exc:
        _raise_validation(exc, where, source)
        raise  # unreachable


def parse_rules(raw: Any, *, source: str = "rules") -> RuleSet:
    """Validate a parsed YAML document ``{rules: [...]}``; raise `RuleError` naming the file and
    the key at fault."""
    if raw is None:
        return RuleSet()
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: must be a mapping with a 'rules' list")
    extra = sorted(set(raw) - {"rules"})
    if extra:
        raise RuleError(f"{source}: unknown key '{extra[0]}'")
    items = raw.get("rules") or []
    if not isinstance(items, list):
        raise RuleError(f"{source}: key 'rules': must be a list")
    rules = [parse_rule(item, where=f"rules.{i}", source=source) for i, item in enumerate(items)]
    check_unique(rules, source=source)
    return RuleSet(rules=rules)


def check_unique(rules: list[RuleSpec], *, source: str) -> None:
    """Raise `RuleError` on a duplicate rule id."""
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{source}: duplicate rule id '{rule.id}'")
        seen.add(rule.id)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; `RuleError` naming it when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read rule file ({exc.strerror})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file (YAML)."""
    return parse_rules(read_yaml(path), source=str(path))
