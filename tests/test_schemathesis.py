"""schemathesis 4.32.5 over /openapi.json against a real `twin serve` (the tiny workspace),
once with an admin token and once with none: every check but two must pass, and the server
must answer no request with a 5xx (counted on the server itself, from /metrics).

Left out: ``positive_data_acceptance`` (the API refuses schema-valid requests it cannot
serve: an unknown time zone, ``from`` after ``to``, a cursor it did not issue, a source that
is not in the catalog) and ``negative_data_rejection`` (pydantic reads ``true`` as 1.0 where
a number is expected). Bounded: a fixed number of examples per operation and a fixed seed,
about a minute a run on two cores (`tests/schemathesis.toml` draws path ids that exist).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_workspace as tiny
from prometheus_client.parser import text_string_to_metric_families
from servers import TOKENS, LiveServer

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
EXCLUDED = ("positive_data_acceptance", "negative_data_rejection")
EXAMPLES = {"admin": 40, None: 15}
SEED = 14


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny-fuzz") / "ws")


def answered(server: LiveServer) -> dict[str, float]:
    """Requests the server has answered, by status (from its own /metrics)."""
    with server.client("admin") as admin:
        text = admin.get("/metrics").text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "twin_http_requests_total":
                status = sample.labels["status"]
                counts[status] = counts.get(status, 0) + sample.value
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", None], ids=["admin", "no-token"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    role: str | None, tiny_ws: Path, server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = server_factory(tiny_ws)
    before = answered(server)
    command = [
        SCHEMATHESIS, "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
        "--checks", "all", "--exclude-checks", ",".join(EXCLUDED),
        "--max-examples", str(EXAMPLES[role]), "--seed", str(SEED), "--workers", "2",
        "--request-timeout", "30",
    ]  # fmt: skip
    if role is not None:
        command += ["--header", f"Authorization: Bearer {TOKENS[role]}"]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    wall_s = time.monotonic() - start
    after = answered(server)
    sent = sum(after.values()) - sum(before.values()) - 1  # less the scrape itself
    errors = sum(n - before.get(s, 0) for s, n in after.items() if s.startswith("5"))
    print(f"schemathesis ({role or 'no token'}): {sent:.0f} requests in {wall_s:.0f} s, "
          f"{errors:.0f} answered 5xx")  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert errors == 0
    assert sent > 500  # it really ran
