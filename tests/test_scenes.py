"""scenes: rule files, the zone engine with routing and cooldowns, the alert lifecycle, the
durable live store and the live service. Real SQLite, real catalog (tiny workspace)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tiny_workspace as tiny

from scenes.engine import Engine
from scenes.errors import AlertNotFound, AlertTransitionError, RuleError, UnknownSourceError
from scenes.live import LiveService, time_ordered_ids
from scenes.models import Alert, AlertStatus, Observation
from scenes.rulefile import load_rules, parse_rules
from scenes.store import AlertFilter, EntityRecord, LiveStore
from scenes.watchlist import Hit
from twin.catalog import Catalog

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny") / "ws")


@pytest.fixture(scope="module")
def catalog(ws: Path) -> Catalog:
    return Catalog(ws / "catalog.sqlite")


@pytest.fixture
def engine(ws: Path, catalog: Catalog) -> Engine:
    return Engine(load_rules(ws / "rules.yaml"), catalog)


def obs(
    kind: str = "vehicle",
    cls: str = "car",
    where: tuple[float, float] = tiny.INSIDE,
    track: str = "7",
    at: datetime = T0,
    source: str = tiny.CAMERA_ID,
) -> Observation:
    return Observation.model_validate(
        {"id": f"o-{track}-{at.timestamp()}", "kind": kind, "cls": cls, "source": source,
         "track_id": track, "lon": where[0], "lat": where[1], "time": at}
    )  # fmt: skip


# -- rule files ------------------------------------------------------------------------------


def test_rule_file_parses_both_zone_forms(ws: Path) -> None:
    rules = load_rules(ws / "rules.yaml").rules
    assert [r.id for r in rules] == [tiny.RULE_ID, "lane-people"]
    assert rules[0].zone is not None and rules[1].zone is not None
    assert rules[0].zone.element == tiny.LANE_ID and rules[0].classes == ["car", "bus", "truck"]
    assert rules[1].zone.polygon is not None and rules[1].type == "zone"


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ({"rules": [{"id": "r", "title": "t", "zone": {"element": "x"}, "colour": 1}]}, "colour"),
        ({"rules": [{"id": "r", "title": "t", "zone": {"element": "x", "radius": 3}}]}, "radius"),
        ({"rule": []}, "rule"),
        ({"rules": [{"id": "r", "title": "t", "type": "loiter", "zone": {"element": "x"}}]},
         "type"),
        ({"rules": [{"id": "r", "title": "t", "zone": {}}]}, "exactly one"),
        ({"rules": [{"id": "r", "title": "t", "kinds": ["ufo"], "zone": {"element": "x"}}]},
         "kinds"),
        ({"rules": [{"id": "r", "title": "t", "zone": {"element": "x"}}] * 2}, "duplicate"),
    ],
)  # fmt: skip
def test_bad_rule_files_name_the_key(doc: dict[str, object], named: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rules(doc, source="rules.yaml")
    assert named in str(err.value) and "rules.yaml" in str(err.value)


def test_rule_file_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_zone_element_must_exist_and_be_a_polygon(catalog: Catalog) -> None:
    for element, message in (("site:nowhere", "not in the catalog"), (tiny.CAMERA_ID, "Point")):
        rules = parse_rules({"rules": [{"id": "r", "title": "t", "zone": {"element": element}}]})
        with pytest.raises(RuleError, match=message):
            Engine(rules, catalog)


def test_projected_polygon_zone(catalog: Catalog) -> None:
    """A zone given in UTM 51N (EPSG:32651) metres catches a point given in lon/lat."""
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32651", always_xy=True)
    x, y = to_utm.transform(*tiny.INSIDE)
    ring = [[x - 20, y - 20], [x + 20, y - 20], [x + 20, y + 20], [x - 20, y + 20]]
    rules = parse_rules(
        {"rules": [{"id": "utm", "title": "t", "zone": {"polygon": ring, "crs": "EPSG:32651"}}]}
    )
    engine = Engine(rules, catalog)
    assert [a.rule for a in engine.process([obs()])] == ["utm"]
    assert engine.process([obs(where=tiny.OUTSIDE, track="8")]) == []


# -- engine ----------------------------------------------------------------------------------


def test_vehicle_in_zone_alerts_routed_to_smallest_jurisdiction(engine: Engine) -> None:
    [alert] = engine.process([obs()])
    assert alert.rule == tiny.RULE_ID and alert.status is AlertStatus.new
    assert alert.unit == tiny.SMALL_UNIT and alert.jurisdiction_id == "jurisdiction:bund-ps"
    assert alert.element_id == tiny.LANE_ID
    assert alert.entity_id == f"{tiny.CAMERA_ID}/7" and alert.observation_ids == [obs().id]
    assert alert.observed_at == T0 and (alert.lon, alert.lat) == tiny.INSIDE


def test_bare_polygon_zone_takes_the_element_picked_there(engine: Engine) -> None:
    [alert] = engine.process([obs(kind="person", cls="person")])
    assert alert.rule == "lane-people" and alert.severity == "info"
    assert alert.element_id == tiny.LANE_ID  # what a click there picks


def test_outside_zone_and_wrong_kind_or_class_raise_nothing(engine: Engine) -> None:
    assert engine.process([obs(where=tiny.OUTSIDE)]) == []
    assert engine.process([obs(cls="bicycle", track="9")]) == []
    assert engine.process([obs(kind="object", cls="backpack", track="10")]) == []


def test_cooldown_per_rule_and_entity(engine: Engine) -> None:
    assert len(engine.process([obs(at=T0)])) == 1
    assert engine.process([obs(at=T0 + timedelta(seconds=30))]) == []  # same track, 30 s later
    assert len(engine.process([obs(track="other", at=T0 + timedelta(seconds=30))])) == 1
    assert len(engine.process([obs(at=T0 + timedelta(seconds=61))])) == 1  # cooled down


def test_seeded_cooldown_survives_a_new_engine(ws: Path, catalog: Catalog) -> None:
    first = Engine(load_rules(ws / "rules.yaml"), catalog)
    alerts = first.process([obs()])
    second = Engine(load_rules(ws / "rules.yaml"), catalog)
    second.seed(alerts)
    assert second.process([obs(at=T0 + timedelta(seconds=10))]) == []


def test_naive_times_are_utc() -> None:
    naive = Observation.model_validate(
        {"kind": "person", "source": "s", "lon": 0, "lat": 0, "time": "2026-05-01T08:00:00"}
    )
    assert naive.time == T0


# -- store and lifecycle ---------------------------------------------------------------------


def test_store_lifecycle_and_durability(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "live.sqlite"
    store = LiveStore(path)
    observation = obs()
    [alert] = engine.process([observation])
    entities = store.save([observation], [alert], received_s=T0.timestamp())
    assert entities[0].entity.id == f"{tiny.CAMERA_ID}/7"
    store.close()

    store = LiveStore(path)  # reopened: everything committed is there
    assert store.count_observations() == 1
    assert store.get_alert(alert.id) == alert
    acked = store.transition(alert.id, AlertStatus.acknowledged, by="operator#abcd1234")
    assert acked.status is AlertStatus.acknowledged and acked.acknowledged_by == "operator#abcd1234"
    assert acked.acknowledged_at is not None
    with pytest.raises(AlertTransitionError):
        store.transition(alert.id, AlertStatus.acknowledged, by="x")
    resolved = store.transition(alert.id, AlertStatus.resolved, by="admin#1")
    assert resolved.resolved_by == "admin#1" and resolved.acknowledged_by == "operator#abcd1234"
    with pytest.raises(AlertTransitionError, match="resolved"):
        store.transition(alert.id, AlertStatus.acknowledged, by="x")
    with pytest.raises(AlertNotFound):
        store.transition("nope", AlertStatus.resolved, by="x")
    items, total = store.alerts(AlertFilter(status=AlertStatus.resolved, unit=tiny.SMALL_UNIT))
    assert total == 1 and items[0].status is AlertStatus.resolved
    assert store.alerts(AlertFilter(status=AlertStatus.new))[1] == 0
    assert store.open_alerts() == []
    store.close()


def test_resolve_straight_from_new(tmp_path: Path, engine: Engine) -> None:
    store = LiveStore(tmp_path / "live.sqlite")
    [alert] = engine.process([obs()])
    store.save([obs()], [alert], received_s=T0.timestamp())
    assert store.transition(alert.id, AlertStatus.resolved, by="op").status is AlertStatus.resolved
    store.close()


def _queued_saves(
    store: LiveStore, batches: list[tuple[list[Observation], list[Alert]]]
) -> tuple[dict[int, list[EntityRecord]], dict[int, Exception]]:
    """Run one `save` per batch on its own thread while a commit is in flight (the writer lock
    held here), so they all queue; then let them go. Returns what each returned or raised."""
    saved: dict[int, list[EntityRecord]] = {}
    failed: dict[int, Exception] = {}

    def save(i: int) -> None:
        observations, alerts = batches[i]
        try:
            saved[i] = store.save(observations, alerts, received_s=T0.timestamp())
        except sqlite3.Error as exc:
            failed[i] = exc

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(batches))]
    with store._lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(store._queued) < len(batches) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not saved and not failed  # nobody returns before the commit
    for thread in threads:
        thread.join(10)
    return saved, failed


def test_concurrent_saves_share_one_commit(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "live.sqlite"
    store = LiveStore(path)
    [alert] = engine.process([obs()])
    hit = Hit(
        time_s=T0.timestamp(), list="suspended-licences", hash="h" * 64, masked="沪A·***45",
        observation_id="o-0-0", source=tiny.CAMERA_ID, lon=1.0, lat=2.0, alert_id=alert.id,
    )  # fmt: skip
    store.save([obs(track="first")], [alert], received_s=T0.timestamp(), hits=[hit])
    assert store.commits == 1 and store.watchlist_hits() == [hit]

    batches: list[tuple[list[Observation], list[Alert]]] = [
        ([obs(track=f"{i}-{j}") for j in range(40)], []) for i in range(6)
    ]
    saved, failed = _queued_saves(store, batches)
    assert store.commits == 2 and store.saves == 7 and not failed  # six saves, one commit
    assert [len(saved[i]) for i in range(6)] == [40] * 6
    assert saved[2][5].entity.id == f"{tiny.CAMERA_ID}/2-5"
    assert json.loads(saved[2][5].json)["track_id"] == "2-5"

    # The same alert id again fails the group; each write is retried on its own, so only the
    # bad one fails.
    batches = [([obs(track=f"x{i}")], [alert] if i == 1 else []) for i in range(3)]
    saved, failed = _queued_saves(store, batches)
    assert sorted(saved) == [0, 2] and isinstance(failed[1], sqlite3.IntegrityError)
    assert store.commits == 4
    store.close()

    store = LiveStore(path)  # reopened: every acknowledged write is there
    assert store.count_observations() == 1 + 6 * 40 + 2
    assert store.watchlist_hits() == [hit]
    store.close()


# -- live service ----------------------------------------------------------------------------


def test_live_service_ingest_and_element_questions(
    tmp_path: Path, ws: Path, catalog: Catalog
) -> None:
    store = LiveStore(tmp_path / "live.sqlite")
    service = LiveService(catalog, store, Engine(load_rules(ws / "rules.yaml"), catalog), ttl_s=30)
    unnamed = Observation.model_validate(
        {"kind": "vehicle", "cls": "bus", "source": tiny.CAMERA_ID, "track_id": "3",
         "lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1]}
    )  # fmt: skip
    result = service.ingest([unnamed, obs(kind="environment", cls="pm25", source=tiny.SENSOR_ID)])
    first = result.observations[0].id
    assert first and uuid.UUID(first).version == 7  # time-ordered
    time.sleep(0.002)
    assert time_ordered_ids(1)[0] > first
    assert [a.rule for a in result.alerts] == [tiny.RULE_ID]
    building = catalog.get(tiny.BUILDING_ID)
    assert building is not None
    near = service.nearby(building.geometry, 150.0)
    assert {ent.id for ent, _ in near} == {f"{tiny.CAMERA_ID}/3", f"{tiny.SENSOR_ID}/7"}
    assert all(0 < dist < 150 for _, dist in near)
    events = service.recent_events(building.geometry, 150.0, element_id=building.id, limit=10)
    assert [e["type"] for e in events].count("alert") == 1 and len(events) == 3
    far = catalog.get(tiny.FAR_BUILDING_ID)
    assert far is not None and service.nearby(far.geometry, 150.0) == []

    with pytest.raises(UnknownSourceError, match=r"observations\[1\].source.*camera:ghost"):
        service.ingest([obs(track="ok"), obs(source="camera:ghost")])
    assert store.count_observations() == 2  # nothing of the rejected batch was stored
    store.close()
