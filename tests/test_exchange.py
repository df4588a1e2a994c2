"""One-way exchange bundles: `twin keys generate`, `twin export` from a real server's
workspace (live store and archive), `twin import` into another district copy, served back by a
real server; importing again (also once the mover archived the imported rows) changes nothing;
a tampered, truncated, unsigned or foreign-signed bundle, or one of another site's watchlist
secret, imports nothing and says why in one line."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import ultralytics
from paths import TWIN
from servers import LiveServer, start_server

SECRET = {"TWIN_WATCHLIST_SECRET": "shared-site-secret-for-tests"}
FAST_MOVER = {"TWIN_HISTORY_INTERVAL_S": "0.2", **SECRET}
CAMERA = "camera:cam-bund-road"
SENSOR = "sensor:water-bund-wall"  # limit 4.8 m
PLATE = "沪A12345"
BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
OLD, RECENT = 40, 10  # observations 3 hours ago (archived) and now


def _twin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TWIN, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@dataclass
class Exported:
    """A source district with history, its bundle and the keys that signed it."""

    source: LiveServer
    bundle: Path
    keys: Path
    since: datetime
    observation_ids: set[str]
    alert_ids: set[str]
    crop: bytes


def _wait(ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _archived_files(server: LiveServer) -> int:
    return int(httpx.get(server.url + "/healthz", timeout=10).json()["disk"]["archive_files"])


def _fill(server: LiveServer) -> tuple[set[str], set[str]]:
    """Old and recent observations, a car in the road zone with a box over a pushed frame (an
    alert with a crop), a water level over its limit (an alert), a plate on a watchlist."""
    now = datetime.now(UTC)
    with server.client("viewer") as c:
        camera = c.get(f"/api/elements/{CAMERA}").json()
    lon, lat = camera["lon"], camera["lat"] + 0.0006
    old = now - timedelta(hours=3)
    people = [
        {"kind": "person", "cls": "person", "source": CAMERA, "track_id": f"p{i}",
         "lon": lon + 0.0001 * (i % 7), "lat": lat,
         "time": (old - timedelta(seconds=i)).isoformat()}
        for i in range(OLD)
    ] + [
        {"kind": "person", "cls": "person", "source": CAMERA, "track_id": f"q{i}",
         "lon": lon, "lat": lat - 0.0002, "time": (now - timedelta(seconds=i)).isoformat()}
        for i in range(RECENT)
    ]  # fmt: skip
    with server.client("ingest") as c:
        put = c.put(f"/api/cameras/{CAMERA}/frame", content=BUS_JPG.read_bytes(),
                    headers={"Content-Type": "image/jpeg"})  # fmt: skip
        assert put.status_code == 204, put.text
        stored = c.post("/api/observations", json={"observations": people}).json()["ids"]
        car = c.post("/api/observations", json={"observations": [
            {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "car-1", "lon": lon,
             "lat": lat, "attributes": {"bbox": [100, 200, 500, 800]}},
            {"kind": "environment", "cls": "water_level", "source": SENSOR,
             "lon": 121.4864, "lat": 31.237, "attributes": {"water_level": 5.3}},
        ]}).json()  # fmt: skip
    with server.client("admin") as c:
        entry = c.post("/api/watchlists/suspended-licences/entries",
                       json={"value": PLATE, "reason": "test"})  # fmt: skip
        assert entry.status_code == 201, entry.text
    assert len(car["alerts"]) == 2, car  # the car in the zone, the water level
    return {*stored, *car["ids"]}, {a["id"] for a in _alerts(server)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, sample_ws: Path) -> Exported:
    root = tmp_path_factory.mktemp("exchange")
    ws = root / "police"
    shutil.copytree(sample_ws, ws)
    source = start_server(ws, FAST_MOVER)
    observation_ids, alert_ids = _fill(source)
    _wait(lambda: _archived_files(source) > 0)  # the old observations reached the archive
    keys = root / "keys"
    generated = _twin("keys", "generate", str(keys))
    assert generated.returncode == 0, generated.stderr
    since = datetime.now(UTC) - timedelta(hours=4)
    bundle = root / "police.twinb"
    result = _twin(
        "export", str(ws), "--since", since.isoformat(), "--key", str(keys / "twin.key"),
        "-o", str(bundle), env=SECRET,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    total = OLD + RECENT + 2
    assert f"{total} observations, {len(alert_ids)} alerts, 1 watchlists" in result.stderr
    assert "1 crop(s)" in result.stderr
    [crop_alert] = [a for a in _alerts(source) if a["evidence"]["crop"]]
    with source.client("viewer") as c:
        crop = c.get(f"/api/alerts/{crop_alert['id']}/crop.jpg").content
    source.stop()
    return Exported(source, bundle, keys, since, observation_ids, alert_ids, crop)


def _alerts(server: LiveServer) -> list[dict]:
    with server.client("viewer") as c:
        return list(c.get("/api/alerts").json()["items"])


def _history_ids(server: LiveServer, since: datetime) -> list[str]:
    ids: list[str] = []
    cursor = None
    with server.client("viewer") as c:
        while True:
            params: dict[str, str | int] = {
                "from": since.isoformat(), "to": datetime.now(UTC).isoformat(),
                "limit": 20, **({"cursor": cursor} if cursor else {})}  # fmt: skip
            page = c.get("/api/history/observations", params=params).json()
            ids += [o["id"] for o in page["items"]]
            if not (cursor := page["next"]):
                return ids


def test_keys_are_written_private_and_never_replaced(exported: Exported) -> None:
    assert (exported.keys / "twin.key").stat().st_mode & 0o777 == 0o600
    assert (exported.keys / "twin.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = _twin("keys", "generate", str(exported.keys))
    assert "already there; not replaced" in _one_error_line(again)


def test_bundle_is_a_tar_of_ndjson_crops_and_a_signed_manifest(exported: Exported) -> None:
    with tarfile.open(exported.bundle) as tar:
        names = tar.getnames()
        manifest = json.loads(_member(tar, "manifest.json"))
        assert len(_member(tar, "manifest.sig")) == 64
    assert names[:2] == ["manifest.json", "manifest.sig"]
    members = {m["name"]: m for m in manifest["members"]}
    assert set(names[2:]) == set(members)
    assert members["observations.ndjson.gz"]["records"] == OLD + RECENT + 2
    assert sum(1 for n in members if n.startswith("crops/")) == 1
    assert all(len(m["sha256"]) == 64 for m in members.values())
    assert manifest["source"] and manifest["what"] == ["alerts", "observations", "watchlists"]


def test_round_trip_then_importing_again_changes_nothing(
    exported: Exported, sample_ws: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "town"
    shutil.copytree(sample_ws, ws)
    trust = str(exported.keys / "twin.pub")
    first = _twin("import", str(ws), str(exported.bundle), "--trust", trust, env=SECRET)
    assert first.returncode == 0, first.stderr
    total = OLD + RECENT + 2
    alerts_count = len(exported.alert_ids)
    assert f"{total} new / 0 known observations, {alerts_count} new / 0 known alerts" in (
        first.stderr
    )
    assert "1 new / 0 known watchlists; 1 crop(s)" in first.stderr

    town = start_server(ws, FAST_MOVER)
    try:
        assert sorted(_history_ids(town, exported.since)) == sorted(exported.observation_ids)
        alerts = {a["id"]: a for a in _alerts(town)}
        assert set(alerts) == exported.alert_ids
        [crop_alert] = [a for a in alerts.values() if a["evidence"]["crop"]]
        with town.client("viewer") as c:
            assert c.get(f"/api/alerts/{crop_alert['id']}/crop.jpg").content == exported.crop
        with town.client("admin") as c:
            entries = c.get("/api/watchlists/suspended-licences").json()["entries"]
        assert [e["masked"] for e in entries] == ["沪A·***45"]
        # The hashes work here: the same plate on a car raises the suspended-licence alert.
        with town.client("ingest") as c:
            hit = c.post("/api/observations", json={"observations": [
                {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "v9",
                 "lon": 121.49, "lat": 31.24, "attributes": {"plate": PLATE}}]}).json()  # fmt: skip
        assert any(
            a["app"] == "suspended-licence" for a in _alerts(town) if a["id"] in hit["alerts"]
        )

        # Imported observations 3 hours old move to the archive; a second import finds them
        # there (and the recent ones in the live store) and stores nothing.
        _wait(lambda: _archived_files(town) > 0)
        again = _twin("import", str(ws), str(exported.bundle), "--trust", trust, env=SECRET)
        assert again.returncode == 0, again.stderr
        assert f"0 new / {total} known observations, 0 new / {alerts_count} known" in again.stderr
        assert "0 new / 1 known watchlists; 0 crop(s)" in again.stderr
        held = sorted(_history_ids(town, exported.since))
        assert held == sorted({*exported.observation_ids, *hit["ids"]})
        assert len(_alerts(town)) == alerts_count + 1  # the imported ones and the plate's
    finally:
        town.stop()


def _member_offset(bundle: Path, name: str) -> int:
    with tarfile.open(bundle) as tar:
        return tar.getmember(name).offset_data


def _retar(bundle: Path, out: Path, edit: Callable[[str, bytes], bytes | None]) -> Path:
    """A copy of `bundle` with each member's bytes passed through `edit` (None drops it)."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src.getmembers():
            data = edit(info.name, _member(src, info))
            if data is not None:
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return out


def _member(tar: tarfile.TarFile, member: str | tarfile.TarInfo) -> bytes:
    """The bytes of a regular file in a bundle."""
    file = tar.extractfile(member)
    assert file is not None, member
    return file.read()


def _truncate(bundle: Path, out: Path) -> Path:
    out.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    return out


def _not_a_bundle(bundle: Path, out: Path) -> Path:
    out.write_bytes(b"hello")
    return out


def _flip_byte(bundle: Path, out: Path) -> Path:
    data = bytearray(bundle.read_bytes())
    data[_member_offset(bundle, "observations.ndjson.gz") + 40] ^= 0x01
    out.write_bytes(bytes(data))
    return out


def _more_records(name: str, data: bytes) -> bytes:
    if name != "manifest.json":
        return data
    manifest = json.loads(data)
    manifest["members"][0]["records"] += 1
    return json.dumps(manifest).encode()


BAD_BUNDLES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "tampered member": (_flip_byte, "SHA-256 differs from the manifest's"),
    "truncated": (_truncate, "truncated"),
    "unsigned": (lambda b, o: _retar(b, o, lambda n, d: None if n == "manifest.sig" else d),
                 "unsigned"),
    "manifest edited": (lambda b, o: _retar(b, o, _more_records), "signature does not verify"),
    "member added": (lambda b, o: _retar(b, o, lambda n, d: d) and _append(o), "members differ"),
    "not a bundle": (_not_a_bundle, "not a bundle"),
}  # fmt: skip


def _append(bundle: Path) -> Path:
    with tarfile.open(bundle, "a") as tar:
        info = tarfile.TarInfo("crops/extra.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return bundle


def _tree(ws: Path) -> dict[str, str]:
    """Every file of workspace `ws` and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def town(sample_ws: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "town"
    shutil.copytree(sample_ws, ws)
    return ws


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_a_bad_bundle_imports_nothing(
    case: str, exported: Exported, town: Path, tmp_path: Path
) -> None:
    make, reason = BAD_BUNDLES[case]
    bad = make(exported.bundle, tmp_path / "bad.twinb")
    before = _tree(town)
    result = _twin("import", str(town), str(bad), "--trust", str(exported.keys / "twin.pub"),
                   env=SECRET)  # fmt: skip
    assert reason in _one_error_line(result)
    assert _tree(town) == before  # not a byte changed


def test_another_sites_key_or_secret_imports_nothing(
    exported: Exported, town: Path, tmp_path: Path
) -> None:
    before = _tree(town)
    _twin("keys", "generate", str(tmp_path / "other"))
    foreign = _twin("import", str(town), str(exported.bundle), "--trust",
                    str(tmp_path / "other" / "twin.pub"), env=SECRET)  # fmt: skip
    assert "signature does not verify with the trusted key" in _one_error_line(foreign)
    secret = _twin("import", str(town), str(exported.bundle), "--trust",
                   str(exported.keys / "twin.pub"),
                   env={"TWIN_WATCHLIST_SECRET": "another-site"})  # fmt: skip
    assert "another site secret" in _one_error_line(secret)
    assert _tree(town) == before
