"""Rule evaluation: the streaming evaluators of the crowd (``count``), loitering (``dwell``) and
``speed`` rules fed one observation at a time, as the engine does, with every track inside one
area (the worst case for per-area state): microseconds per observation.

Run `python -m bench rules`. Observations: 20,000 sightings of people on `TRACKS` tracks at
5,000 a second, all in the area.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry import GeometryCollection

from bench.common import show
from scenes.evaluate import Area, RuleContext
from scenes.models import Observation
from scenes.rulefile import parse_rules

OBSERVATIONS = 20_000
RATE = 5_000.0  # observations/s
RULES: dict[str, dict[str, Any]] = {
    "count (crowd ≥ 5,000, 10 s)": {"type": "count", "min_count": 5_000, "window_s": 10},
    "dwell (60 s)": {"type": "dwell", "dwell_s": 60},
    "speed (> 60 km/h)": {"type": "speed", "above_kmh": 60},
}


def sightings(tracks: int, seed: int = 1) -> list[Observation]:
    """`OBSERVATIONS` people on `tracks` tracks, `RATE` a second, wandering within ~100 m."""
    rng = random.Random(seed)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    return [
        Observation.model_validate(
            {
                "kind": "person",
                "cls": "person",
                "source": "camera:bench",
                "track_id": str(rng.randrange(tracks)),
                "lon": 121.49 + rng.uniform(0, 0.001),
                "lat": 31.24 + rng.uniform(0, 0.001),
                "time": start + timedelta(seconds=i / RATE),
            }
        )
        for i in range(OBSERVATIONS)
    ]


def per_observation_us(rule: dict[str, Any], observations: list[Observation]) -> float:
    """Mean microseconds of one evaluator step over `observations` (all inside the area)."""
    zone = {"zone": {"element": "site:bench"}} if rule["type"] != "speed" else {}
    spec = parse_rules({"rules": [{"id": "r", "title": "t", **rule, **zone}]}).rules[0]
    evaluator = spec.start(RuleContext(catalog=None))  # type: ignore[arg-type]  # unused here
    area = [Area("bench", GeometryCollection(), None)]
    start = time.perf_counter()
    for obs in observations:
        evaluator.step(obs, area)
    return (time.perf_counter() - start) / len(observations) * 1e6


def main() -> None:
    rows = []
    for tracks in (200, 2_000):
        observations = sightings(tracks)
        for name, rule in RULES.items():
            rows.append([name, f"{tracks:,}", f"{per_observation_us(rule, observations):.1f}"])
    show(
        f"Rule evaluators: {OBSERVATIONS:,} observations at {RATE:,.0f}/s, every track in one area",
        ["rule", "tracks in the area", "µs per observation"],
        rows,
    )


if __name__ == "__main__":
    main()
