"""The page's message catalog (web/src/messages.js, read with Node as the browser reads it): both
languages hold the same keys with the same placeholders, no message is empty, and every key the
page's code and index.html name — directly or as a family such as `status.${status}` — is in
both. (That every visible text comes from the catalog is checked in the browser:
test_web_wall.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"
SOURCES = [*sorted((WEB / "src").glob("*.js")), WEB / "index.html"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
LANGS = ("zh-CN", "en")


@pytest.fixture(scope="module")
def catalog() -> dict[str, dict[str, str]]:
    node = shutil.which("node")
    assert node, "Node.js is installed with the page's npm packages (make install)"
    script = "import('./src/messages.js').then((m) => console.log(JSON.stringify(m.MESSAGES)))"
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=WEB,
                         capture_output=True, text=True, check=True)  # fmt: skip
    messages: dict[str, dict[str, str]] = json.loads(out.stdout)
    return messages


def source_text() -> str:
    return "\n".join(path.read_text() for path in SOURCES if path.name != "messages.js")


def strings_of(name: str, path: str) -> list[str]:
    """The string items of the array constant `name` in web/src/`path`."""
    text = (WEB / "src" / path).read_text()
    match = re.search(rf"const {name} = \[(.*?)\];", text, re.S)
    assert match, f"{name} in {path}"
    return re.findall(r'"([\w-]+)"', match.group(1))


def keys_of(name: str, path: str) -> list[str]:
    """The keys of the object constant `name` in web/src/`path`."""
    text = (WEB / "src" / path).read_text()
    match = re.search(rf"const {name} = \{{(.*?)\}};", text, re.S)
    assert match, f"{name} in {path}"
    return re.findall(r'^\s+"?([\w-]+)"?:', match.group(1), re.M)


def test_both_languages_hold_the_same_messages(catalog: dict[str, dict[str, str]]) -> None:
    assert set(catalog) == set(LANGS)
    zh, en = catalog["zh-CN"], catalog["en"]
    assert sorted(set(zh) ^ set(en)) == [], "a message is missing from one language"
    for key in zh:
        assert zh[key].strip() and en[key].strip(), f"{key} is empty"
        assert set(PLACEHOLDER.findall(zh[key])) == set(PLACEHOLDER.findall(en[key])), key


def test_every_key_the_page_names_is_in_the_catalog(catalog: dict[str, dict[str, str]]) -> None:
    zh = catalog["zh-CN"]
    namespaces = {key.split(".")[0] for key in zh}
    named = set(re.findall(r'"([a-z][A-Za-z]*\.[\w.-]+)"', source_text()))
    named = {key for key in named if key.split(".")[0] in namespaces}
    assert len(named) > 150
    assert sorted(named - set(zh)) == []


def test_every_member_of_a_message_family_is_in_the_catalog(
    catalog: dict[str, dict[str, str]],
) -> None:
    """Keys built from a value (`status.${status}`): every value the page can meet."""
    families = {
        "status": [*strings_of("OPEN_STATUSES", "alertdata.js"), "resolved", "false_alarm"],
        "severity": strings_of("SEVERITIES", "alertdata.js"),
        "layers": strings_of("LAYERS", "layers.js"),
        "action": keys_of("ACTIONS", "alerts.js"),
        "role": ["viewer", "operator", "ingest", "admin", "public"],
        "kind": ["building", "site", "road", "water", "jurisdiction", "camera", "sensor",
                 "person", "vehicle", "object", "environment"],
        "cameraKind": ["fixed", "ptz", "eagle-eye", "drone"],
        "heightSource": ["ndsm", "attribute", "levels", "default"],
        "ptz": ["left", "right", "up", "down", "in", "out"],
        "conn": ["connecting", "open", "closed", "unauthorized"],
        "tiles": ["loading", "loaded", "failed"],
        "filter": ["severity", "board", "app", "unit", "minutes", "status", "last15", "last60",
                   "last1440"],
        "boards": [f"{fig}{end}" for fig in ("today", "week", "handled", "response")
                   for end in ("", "Title")],
        "weekday": [str(day) for day in range(7)],
        "history.col": ["created", "alert", "count", "unit", "severity", "status", "acked",
                        "dispatched", "onScene", "closedAt", "response"],
    }  # fmt: skip
    assert {"ack", "dispatch", "arrive", "resolve", "false-alarm"} <= set(families["action"])
    missing = [f"{family}.{member}" for family, members in families.items() for member in members
               if f"{family}.{member}" not in catalog["zh-CN"]]  # fmt: skip
    assert missing == []
