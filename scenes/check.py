"""Whether a server could run a rule file on a workspace, asked before the workspace is in
place (``twin build``): the checks `TwinState.open` makes on the rules, without opening a
live store."""

from __future__ import annotations

from pathlib import Path

from scenes.apps import configure, shipped_apps
from scenes.engine import Engine
from scenes.rulefile import load_rules
from twin.catalog import Catalog
from twin.workspace import WorkspacePaths


def check_rule_file(rules: Path, workspace: Path) -> None:
    """Raise `RuleError` naming `rules` and the key at fault when the server would refuse the
    rule file on `workspace`: a key or type the file cannot hold, a zone naming an element
    the built catalog lacks, a rule id a shipped app already uses."""
    apps = [configure(spec) for spec in shipped_apps()]
    Engine(load_rules(rules), Catalog(WorkspacePaths(workspace).catalog), apps=apps)
