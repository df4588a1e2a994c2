"""The sample district's scripted live scenario (for `twin demo`): what its cameras and sensors
would report on a busy evening, sent through the public HTTP API, timed so that every shipped
scenario app fires within a minute of the start and again in every loop.

`configure` points the shipped apps at places of the sample (PUT /api/apps, admin token) and
puts the scenario's plate and identity token on the watchlists; `ScenarioFeed` then sends one
batch of observations a second (ingest token): background traffic on real roads, an uncovered
muck truck (协同治理), a car whose plate is on the suspended-licences list and a wanted person at
a gate (治安管理), a crowd gathering on the Bund (基础应用), a loiterer at a bank and PM2.5 / noise
readings that pass their limits (为民服务). Vehicles follow the roads' OpenStreetMap centre
lines at their speed; people drift around their spot. Positions are lon/lat degrees and
ellipsoidal heights (the element's ground height plus the object's own); times are the server's
now, so the map, the boards and the alert feed move live.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from twin.errors import TwinError
from twin.geo import metres_per_degree

log = logging.getLogger(__name__)

LOOP_S = 180
"""The scenario repeats every LOOP_S seconds with fresh track ids (new people and vehicles)."""
PLATE = "沪A12345"
IDENTITY = "310101199001011234"
CROWD_SITE = "site:-2142077"  # 外滩 The Bund, east of the road camera
BANK_SITE = "site:476149253"  # 交通银行大楼, in the road camera's view
GATE_SITE = "site:1489404198"  # a bus stop in Lujiazui, played as a dormitory gate
CLOSED_LANE = [[121.4853, 31.2384], [121.4865, 31.2384], [121.4865, 31.2398],
               [121.4853, 31.2398]]  # fmt: skip
"""The Bund's closed lane in front of the road camera (lon, lat deg), where the replayed YOLO
detections land."""

APPS: dict[str, dict[str, Any]] = {
    "crowd": {"zone": {"elements": [CROWD_SITE], "buffer_m": 40}, "for_s": 15},
    "loitering": {"zone": {"elements": [BANK_SITE], "buffer_m": 20}, "dwell_s": 40},
    "closed-zone": {"zone": {"polygon": CLOSED_LANE}, "kinds": ["vehicle"]},
    "wanted-person": {"zone": {"elements": [GATE_SITE], "buffer_m": 30}},
}
"""Parameters of the shipped apps for the sample (which has no `zone_role` tags); crowd and
loitering wait less than in production so that the demo shows them within a minute."""
WATCHLIST_ENTRIES = {
    "suspended-licences": (PLATE, "licence revoked (demo)"),
    "wanted-persons": (IDENTITY, "wanted (demo)"),
}

ROAD_CAMERA = "camera:cam-bund-road"
PTZ_CAMERA = "camera:cam-lujiazui-ptz"
EAGLE_CAMERA = "camera:cam-pearl-eagle"


@dataclass(frozen=True)
class Drive:
    """A vehicle along a road from `start_s` to `end_s` (loop seconds) at `speed_mps`."""

    track: str
    cls: str
    road: str
    source: str
    speed_mps: float
    start_s: float = 0.0
    end_s: float = LOOP_S
    offset_m: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stay:
    """`count` people around element `place` within `radius_m`, from `start_s` to `end_s`."""

    track: str
    place: str
    source: str
    count: int
    radius_m: float
    start_s: float
    end_s: float
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """Sensor `source` reading `cls` at `base` (± 5 %), at `peak` from `start_s` to `end_s`."""

    source: str
    cls: str
    base: float
    peak: float
    start_s: float
    end_s: float


SCRIPT: tuple[Drive | Stay | Reading, ...] = (
    Drive("car-a", "car", "road:10689621", PTZ_CAMERA, 13.0),
    Drive("car-b", "car", "road:10689621", PTZ_CAMERA, 11.0, offset_m=600),
    Drive("car-c", "car", "road:40301368", ROAD_CAMERA, 9.0, offset_m=300),
    Drive("taxi-d", "car", "road:39874526", PTZ_CAMERA, 10.0, offset_m=200),
    Drive("bus-e", "bus", "road:40784659", EAGLE_CAMERA, 8.0),
    Drive("bike-f", "bicycle", "road:40301368", ROAD_CAMERA, 4.5, offset_m=100),
    Drive("bike-g", "bicycle", "road:10639405", PTZ_CAMERA, 4.0),
    Drive("muck", "truck", "road:40784659", EAGLE_CAMERA, 7.0, start_s=2, end_s=120,
          offset_m=400, attributes={"covered": False}),
    Drive("plate", "car", "road:39874526", PTZ_CAMERA, 11.0, start_s=4, end_s=90,
          attributes={"plate": PLATE}),
    Stay("walk", CROWD_SITE, ROAD_CAMERA, 6, 60.0, 0, LOOP_S),
    Stay("crowd", CROWD_SITE, ROAD_CAMERA, 22, 22.0, 8, 70),
    Stay("loiter", BANK_SITE, ROAD_CAMERA, 1, 10.0, 5, 85),
    Stay("wanted", GATE_SITE, PTZ_CAMERA, 1, 12.0, 20, 40,
         attributes={"identity_token": IDENTITY}),
    Reading("sensor:pm25-bund", "pm25", 42.0, 92.0, 6, 40),
    Reading("sensor:noise-lujiazui", "noise", 56.0, 78.0, 100, 130),
)  # fmt: skip


@dataclass
class _Path:
    """A road's centre line as points (lon, lat deg) with their distance along it (m)."""

    points: list[tuple[float, float]]
    along: list[float]
    ground: float

    @classmethod
    def of(cls, record: dict[str, Any]) -> _Path:
        geometry = record["geometry"]
        lines = geometry["coordinates"]
        if geometry["type"] == "LineString":
            lines = [lines]
        points = [tuple(p[:2]) for p in max(lines, key=len)]
        along = [0.0]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            mx, my = metres_per_degree(y0)
            along.append(along[-1] + math.hypot((x1 - x0) * mx, (y1 - y0) * my))
        return cls(points, along, float(record.get("base_height") or 0.0))

    def at(self, distance_m: float) -> tuple[float, float, float]:
        """Where a vehicle is after `distance_m` going back and forth: lon, lat, heading deg."""
        length = self.along[-1] or 1.0
        lap = distance_m % (2 * length)
        forward = lap <= length
        d = lap if forward else 2 * length - lap
        i = next((k for k in range(1, len(self.along)) if self.along[k] >= d), len(self.along) - 1)
        (x0, y0), (x1, y1) = self.points[i - 1], self.points[i]
        span = self.along[i] - self.along[i - 1] or 1.0
        f = (d - self.along[i - 1]) / span
        mx, my = metres_per_degree(y0)
        heading = math.degrees(math.atan2((x1 - x0) * mx, (y1 - y0) * my)) % 360
        return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, heading if forward else (heading + 180) % 360


class ScenarioFeed:
    """Sends the scripted scenario to a twin server, one batch a second, until stopped."""

    def __init__(self, server: str, token: str, *, seed: int = 7) -> None:
        self.server = server.rstrip("/")
        self.client = httpx.Client(
            base_url=self.server, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
        self.rng = random.Random(seed)
        self.records: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, _Path] = {}
        self.sent = 0

    def element(self, element_id: str) -> dict[str, Any]:
        """The element record (GET /api/elements/{id}), fetched once."""
        if element_id not in self.records:
            response = self.client.get(f"/api/elements/{quote(element_id, safe=':')}")
            if response.status_code != 200:
                raise TwinError(f"the scenario needs {element_id}: HTTP {response.status_code}")
            self.records[element_id] = response.json()
        return self.records[element_id]

    def observations(self, t: float, loop: int) -> Iterator[dict[str, Any]]:
        """The observations of loop second `t` of loop number `loop`."""
        now = datetime.now(UTC).isoformat()
        for item in SCRIPT:
            if isinstance(item, Reading):
                yield from self._reading(item, t, now)
            elif item.start_s <= t < item.end_s:
                yield from (self._drive(item, t, loop, now) if isinstance(item, Drive)
                            else self._stay(item, loop, now))  # fmt: skip

    def _drive(self, drive: Drive, t: float, loop: int, now: str) -> Iterator[dict[str, Any]]:
        path = self.paths.get(drive.road)
        if path is None:
            path = self.paths[drive.road] = _Path.of(self.element(drive.road))
        lon, lat, heading = path.at(drive.offset_m + drive.speed_mps * (t - drive.start_s))
        attributes = {"heading": round(heading, 1), "speed_mps": drive.speed_mps,
                      **drive.attributes}  # fmt: skip
        yield {"kind": "vehicle", "cls": drive.cls, "source": drive.source,
               "track_id": f"{drive.track}-{loop}", "lon": lon, "lat": lat,
               "height": path.ground + 1.0, "time": now, "confidence": 0.9,
               "attributes": attributes}  # fmt: skip

    def _stay(self, stay: Stay, loop: int, now: str) -> Iterator[dict[str, Any]]:
        place = self.element(stay.place)
        mx, my = metres_per_degree(place["lat"])
        for n in range(stay.count):
            # A fixed spot per person plus a small step each second.
            spot = random.Random(f"{stay.track}/{n}/{loop}")
            angle, r = spot.uniform(0, 2 * math.pi), stay.radius_m * math.sqrt(spot.random())
            dx = r * math.cos(angle) + self.rng.uniform(-1.5, 1.5)
            dy = r * math.sin(angle) + self.rng.uniform(-1.5, 1.5)
            yield {"kind": "person", "cls": "person", "source": stay.source,
                   "track_id": f"{stay.track}-{loop}-{n}", "lon": place["lon"] + dx / mx,
                   "lat": place["lat"] + dy / my, "height": place["base_height"] + 1.0,
                   "time": now, "confidence": 0.85,
                   "attributes": dict(stay.attributes)}  # fmt: skip

    def _reading(self, reading: Reading, t: float, now: str) -> Iterator[dict[str, Any]]:
        if int(t) % 5:
            return  # one reading every 5 s
        sensor = self.element(reading.source)
        level = reading.peak if reading.start_s <= t < reading.end_s else reading.base
        value = round(level * self.rng.uniform(0.95, 1.05), 2)
        yield {"kind": "environment", "cls": reading.cls, "source": reading.source,
               "track_id": reading.cls, "lon": sensor["lon"], "lat": sensor["lat"],
               "height": sensor["base_height"] + 2.0, "time": now,
               "attributes": {reading.cls: value}}  # fmt: skip

    def run(self, stop: threading.Event, period_s: float = 1.0) -> None:
        """Send a batch every `period_s` until `stop` is set; a server that does not answer is
        tried again next time."""
        tick = 0
        while not stop.is_set():
            loop, t = divmod(tick, LOOP_S)
            try:
                batch = list(self.observations(t, loop))
                response = self.client.post("/api/observations", json={"observations": batch})
                if response.status_code == 200:
                    self.sent += len(batch)
                else:
                    log.warning("scenario: HTTP %d %s", response.status_code, response.text[:200])
            except (httpx.HTTPError, TwinError) as exc:
                log.warning("scenario: %s", exc)
            tick += 1
            stop.wait(period_s)


def configure(server: str, admin_token: str) -> None:
    """Point the shipped apps at the sample's places and list the scenario's plate and
    identity token (PUT /api/apps/{id}, POST /api/watchlists/{list}/entries)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=10.0) as client:
        for app, parameters in APPS.items():
            response = client.put(f"/api/apps/{app}", json={"parameters": parameters,
                                                             "enabled": True})  # fmt: skip
            if response.status_code != 200:
                raise TwinError(f"app {app}: HTTP {response.status_code} {response.text[:200]}")
        for name, (value, reason) in WATCHLIST_ENTRIES.items():
            response = client.post(f"/api/watchlists/{name}/entries",
                                   json={"value": value, "reason": reason})  # fmt: skip
            if response.status_code not in (200, 201):
                raise TwinError(f"watchlist {name}: HTTP {response.status_code}")
