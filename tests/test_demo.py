"""`twin demo`'s tokens and page URLs: created once, so the wall URL it prints keeps working after
the demo restarts (the scenario it feeds is tested in the browser: test_web_wall.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from twin.demo import DEMO_ROLES, demo_pages, demo_tokens


def test_demo_tokens_are_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "demo-tokens.json"
    tokens = demo_tokens(path)
    assert set(tokens) == set(DEMO_ROLES) and len(set(tokens.values())) == len(DEMO_ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_tokens(path) == tokens, "a restart keeps the tokens the wall holds"
    pages = demo_pages("http://127.0.0.1:8000", tokens)
    assert pages["wall"] == f"http://127.0.0.1:8000/?token={tokens['viewer']}&wall=1"
    assert pages["desk"].endswith(f"?token={tokens['operator']}")
