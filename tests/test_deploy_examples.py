"""The `deploy/` examples hold: the systemd units pass `systemd-analyze verify` and their
command lines are ones `twin` accepts; the Prometheus config and alert rules pass `promtool`
(the rules' own unit tests included), and every metric the rules name is one a real server
exports. Both tools come from Debian (`make install`: systemd, prometheus)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_workspace as tiny
from paths import TWIN
from servers import LiveServer

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = DEPLOY / "systemd"
PROMETHEUS = DEPLOY / "prometheus"
INSTALLED_TWIN = "/opt/twin/.venv/bin/twin"


def _env(path: Path) -> dict[str, str]:
    """KEY=value lines of an environment file (comments skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))  # fmt: skip
    return {key: value for key, value in pairs}


def _exec_start(unit: Path) -> str:
    return next(line.split("=", 1)[1] for line in unit.read_text().splitlines()
                if line.startswith("ExecStart="))  # fmt: skip


def _here(unit: Path, target: Path, env_file: Path) -> Path:
    """`unit` written to `target` with this checkout's twin and `env_file` as its
    EnvironmentFile (the paths of an installed system do not exist here)."""
    text = re.sub(r"^EnvironmentFile=.*$", f"EnvironmentFile={env_file}", unit.read_text(),
                  flags=re.M).replace(INSTALLED_TWIN, TWIN)  # fmt: skip
    target.write_text(text)
    return target


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: make install (Debian package systemd)"
    env_file = tmp_path / "twin.env"
    shutil.copy(DEPLOY / "twin.env.example", env_file)
    server = _here(UNITS / "twin-server.service", tmp_path / "twin-server.service", env_file)
    feed = _here(UNITS / "twin-detect@.service", tmp_path / "twin-detect@cam-bund-road.service",
                 DEPLOY / "feeds" / "cam-bund-road.env.example")  # fmt: skip
    result = subprocess.run([tool, "verify", str(server), str(feed)], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


@pytest.mark.parametrize(
    ("unit", "env_file"),
    [
        ("twin-server.service", "twin.env.example"),
        ("twin-detect@.service", "feeds/cam-bund-road.env.example"),
    ],
)
def test_the_units_command_lines_are_accepted_by_twin(unit: str, env_file: str) -> None:
    """ExecStart with the example environment filled in, plus --help: every option exists."""
    command = _exec_start(UNITS / unit)
    for key, value in _env(DEPLOY / env_file).items():
        command = command.replace("${" + key + "}", value)
    assert "${" not in command, command
    args = shlex.split(command.replace(INSTALLED_TWIN, TWIN))
    result = subprocess.run([*args, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    options = [a for a in args if a.startswith("--")]
    assert all(option in result.stdout for option in options), (options, result.stdout)


def _promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: make install (Debian package prometheus)"
    return tool


def test_the_prometheus_config_and_rules_check(tmp_path: Path) -> None:
    token = tmp_path / "twin-token"
    token.write_text("a-viewer-token\n")
    config = tmp_path / "prometheus.yml"
    config.write_text((PROMETHEUS / "prometheus.yml").read_text()
                      .replace("/etc/prometheus/twin-token", str(token)))  # fmt: skip
    shutil.copy(PROMETHEUS / "twin-alerts.yml", tmp_path)
    for args in (["check", "config", str(config)],
                 ["test", "rules", str(PROMETHEUS / "twin-alerts.test.yml")]):  # fmt: skip
        result = subprocess.run([_promtool(), *args], capture_output=True, text=True,
                                timeout=120, cwd=PROMETHEUS)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def test_every_metric_the_rules_name_is_exported(
    tmp_path: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny.build(tmp_path / "tiny"), {"TWIN_METRICS_PUBLIC": "true"},
                            copy=False)  # fmt: skip
    server.client("viewer").get("/api/alerts")  # a request: the latency histogram has buckets
    lines = server.client().get("/metrics").text.splitlines()
    exported = {line.split("{")[0].split()[0] for line in lines if not line.startswith("#")}
    named = set(re.findall(r"\btwin_[a-z0-9_]+", (PROMETHEUS / "twin-alerts.yml").read_text()))
    assert named and named <= exported, named - exported
