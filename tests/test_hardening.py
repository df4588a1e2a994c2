"""The server against an attacker, a fuzzer and a careless integrator (issue 14), on the real
server: inputs that used to give a 500, bodies bounded before they are read (and refused
without a token before they are read), duplicate observation ids, observation times out of
bounds, 422 bodies always the documented array, OPTIONS/Allow, the OpenAPI's security and
error responses, the WebSocket's Origin check, frames and drones bounded and expiring."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import tiny_workspace as tiny
from fastapi.routing import APIRoute
from servers import TOKENS, LiveServer, start_server
from waiting import wait_for
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from server.app import create_app
from server.frames import FrameStore
from server.jsonbody import StrictJSONRoute
from server.routing import RouteTable

JPEG = b"\xff\xd8\xff\xe0" + bytes(1000)
MIB = 2**20


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny-hardening") / "ws")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server (its own workspace) with small drone and frame bounds."""
    env = {"TWIN_DRONE_TTL_S": "2", "TWIN_FRAME_NEWEST_MIB": "0.5", "TWIN_MAX_FRAME_MIB": "0.3"}
    server = start_server(tiny.build(tmp_path_factory.mktemp("tiny-srv") / "ws"), env)
    yield server
    server.stop()


def observation(**kw: Any) -> dict[str, Any]:
    return {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": "t",
            "lon": tiny.OUTSIDE[0], "lat": tiny.OUTSIDE[1], **kw}  # fmt: skip


def post_raw(server: LiveServer, body: bytes, role: str = "ingest") -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[role]}", "Content-Type": "application/json"}
    return httpx.post(server.url + "/api/observations", content=body, headers=headers)


def assert_problems(response: httpx.Response, *locs: list[Any]) -> list[dict[str, Any]]:
    """A 422 whose ``detail`` is the documented array naming `locs`."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for item in detail:
        assert isinstance(item["msg"], str) and isinstance(item["type"], str)
        assert all(isinstance(part, str | int) for part in item["loc"])
    for loc in locs:
        assert loc in [item["loc"] for item in detail], detail
    return detail


# -- what used to give a 500 ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/alerts", "/api/elements"])
def test_a_huge_offset_is_a_422(srv: LiveServer, path: str) -> None:
    with srv.client("viewer") as viewer:
        r = viewer.get(path, params={"offset": "9223372036854775808"})
    assert_problems(r, ["query", "offset"])


@pytest.mark.parametrize("field", ["lon", "lat", "height", "confidence"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(srv: LiveServer, field: str, value: str) -> None:
    body = f'{{"observations": [{{"kind": "person", "source": "{tiny.CAMERA_ID}", "lon": 121.49,'
    body += f' "lat": 31.239, "{field}": {value}}}]}}'
    [problem] = assert_problems(post_raw(srv, body.encode()))
    assert "not a JSON number" in problem["msg"]


def test_a_lone_surrogate_is_a_422(srv: LiveServer) -> None:
    for text in (r'"\ud800"', r'"ok\udfff"'):
        body = f'{{"observations": [{{"kind": "person", "cls": {text}, "source": "{tiny.CAMERA_ID}"'
        body += ', "lon": 121.49, "lat": 31.239, "attributes": {"note": "x"}}]}'
        [problem] = assert_problems(post_raw(srv, body.encode()))
        assert "surrogate" in problem["msg"]
    nested = json.dumps({"observations": [observation(attributes={"plate": "\ud800"})]})
    assert_problems(post_raw(srv, nested.encode()))  # json.dumps escapes it: \\ud800
    assert srv.client("viewer").get("/api/live").status_code == 200


def test_a_body_that_is_not_utf8_is_a_422(srv: LiveServer) -> None:
    assert_problems(post_raw(srv, b'{"observations": "\xff\xfe"}'))


def test_a_time_before_year_one_in_utc_is_a_422(srv: LiveServer) -> None:
    body = {"observations": [observation(time="0001-01-01T00:00:00+14:00")]}
    assert_problems(srv.client("ingest").post("/api/observations", json=body),
                    ["body", "observations", 0, "time"])  # fmt: skip


def test_the_echo_of_a_bad_input_is_short(srv: LiveServer) -> None:
    """A 20 MiB bad PUT /ptz used to come back as a 63 MB answer echoing the input."""
    with srv.client("admin") as admin:
        r = admin.put(f"/api/cameras/{tiny.CAMERA_ID}/ptz", json={"pan": "x" * 200_000})
    assert_problems(r, ["body", "pan"])
    assert len(r.content) < 2000


# -- 422s are the documented array --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/api/boards", {"tz": "0"}, ["query", "tz"]),
        ("/api/elements", {"kind": ""}, ["query", "kind"]),
        ("/api/elements", {"bbox": "1,2,3"}, ["query", "bbox"]),
        (f"/api/cameras/{tiny.CAMERA_ID}/ray", {"u": "-1e174", "v": "0"}, ["query", "u"]),
        ("/api/alerts", {"since": "0.5"}, ["query", "since"]),
    ],
)
def test_every_422_detail_is_an_array(
    srv: LiveServer, path: str, params: dict[str, str], loc: list[str]
) -> None:
    assert_problems(srv.client("viewer").get(path, params=params), loc)


def test_an_unknown_source_is_a_422_array_naming_it(srv: LiveServer) -> None:
    body = {"observations": [observation(), observation(source="camera:ghost")]}
    [problem] = assert_problems(srv.client("ingest").post("/api/observations", json=body),
                                ["body", "observations", 1, "source"])  # fmt: skip
    assert "camera:ghost" in problem["msg"]


# -- observation ids and times ----------------------------------------------------------------


def test_a_duplicate_id_is_a_409_naming_it_and_nothing_is_stored(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws)
    lane = observation(lon=tiny.INSIDE[0], lat=tiny.INSIDE[1])
    with server.client("ingest") as ingest:
        twice = ingest.post(
            "/api/observations",
            json={
                "observations": [
                    {**lane, "id": "obs-1", "track_id": "a"},
                    {**lane, "id": "obs-1", "track_id": "b"},
                ]
            },
        )
        assert twice.status_code == 409 and "obs-1" in twice.json()["detail"], twice.text
        first = ingest.post("/api/observations", json={"observations": [{**lane, "id": "obs-1"}]})
        assert first.status_code == 200 and first.json()["ids"] == ["obs-1"]
        [alert_id] = first.json()["alerts"]
        again = ingest.post(
            "/api/observations",
            json={"observations": [observation(id="new"), {**lane, "id": "obs-1"}]},
        )
        assert again.status_code == 409 and "'obs-1'" in again.json()["detail"]
    with server.client("viewer") as viewer:
        alert = viewer.get("/api/alerts").json()["items"]
        history = viewer.get("/api/history/observations").json()["items"]
    assert [a["id"] for a in alert] == [alert_id] and alert[0]["observation_ids"] == ["obs-1"]
    assert [o["id"] for o in history] == ["obs-1"]  # the refused batches stored nothing


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-02T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "in 10 minutes",
    ],
)
def test_observation_times_out_of_bounds_are_422(srv: LiveServer, when: str) -> None:
    if when == "in 10 minutes":  # from when the test runs, not when it was collected
        when = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    body = {"observations": [observation(), observation(time=when)]}
    [problem] = assert_problems(srv.client("ingest").post("/api/observations", json=body),
                                ["body", "observations", 1, "time"])  # fmt: skip
    assert "server's clock" in problem["msg"]
    assert srv.client("viewer").get("/api/alerts").json()["total"] == 0


def test_a_source_may_be_named_by_its_layer_id(srv: LiveServer) -> None:
    """Wherever a camera id is taken, ``camera:X`` and ``X`` both work."""
    layer_id = tiny.CAMERA_ID.removeprefix("camera:")
    body = {"observations": [observation(source=layer_id, track_id="layer-id")]}
    with srv.client("ingest") as ingest:
        assert ingest.post("/api/observations", json=body).status_code == 200
    with srv.client("viewer") as viewer:
        [entity] = [
            e for e in viewer.get("/api/live").json()["items"] if e["track_id"] == "layer-id"
        ]
        assert entity["source"] == tiny.CAMERA_ID and entity["id"] == f"{tiny.CAMERA_ID}/layer-id"
        assert viewer.get(f"/api/cameras/{layer_id}").json()["id"] == tiny.CAMERA_ID
        ray = viewer.get(f"/api/cameras/{layer_id}/ray", params={"u": 640, "v": 600})
        assert ray.status_code == 200 and ray.json()["hit"]


def test_a_number_is_not_a_time(srv: LiveServer) -> None:
    body = {"observations": [observation(time=0)]}
    response = srv.client("ingest").post("/api/observations", json=body)
    assert_problems(response, ["body", "observations", 0, "time"])


# -- bodies bounded before they are read ---------------------------------------------------------


def raw_exchange(server: LiveServer, head: str, body: bytes = b"", wait_s: float = 5) -> bytes:
    """Send `head` (and `body`) on a fresh connection; return what comes back in `wait_s`."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait_s) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and b'"}' in data:
                    break
        except TimeoutError:
            pass
    return data


def _head(path: str, length: int, token: str | None, method: str = "POST") -> str:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n")  # fmt: skip


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_a_write_without_a_valid_token_is_refused_before_its_body(
    srv: LiveServer, token: str | None
) -> None:
    """Headers announcing 200 MiB and no byte of body: the 401 comes at once."""
    start = time.monotonic()
    reply = raw_exchange(srv, _head("/api/observations", 200 * MIB, token))
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"WWW-Authenticate: Bearer" in reply or b"www-authenticate: Bearer" in reply
    assert time.monotonic() - start < 4


@pytest.mark.parametrize(
    ("path", "method", "limit"),
    [
        ("/api/observations", "POST", 4 * MIB),
        (f"/api/cameras/{tiny.CAMERA_ID}/frame", "PUT", int(0.3 * MIB)),
        (f"/api/cameras/{tiny.CAMERA_ID}/ptz", "PUT", 256 * 1024),
    ],
)
def test_an_announced_body_over_its_limit_is_413_before_it_is_read(
    srv: LiveServer, path: str, method: str, limit: int
) -> None:
    reply = raw_exchange(srv, _head(path, limit + 1, TOKENS["admin"], method))
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert f"{limit:,} bytes".encode() in reply


def test_a_chunked_body_is_cut_off_at_its_limit(srv: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"pan": "'
        for _ in range(40):
            yield b"x" * 16384  # 640 KiB in all, over the 256 KiB of a PTZ move

    with srv.client("admin") as admin:
        r = admin.put(f"/api/cameras/{tiny.CAMERA_ID}/ptz", content=chunks())
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_every_route_with_a_json_body_parses_it_strictly(tiny_ws: Path) -> None:
    """A route added without `StrictJSONRoute` would take NaN and lone surrogates again, and
    answer a body that is not UTF-8 with an undocumented 400."""
    app = create_app(tiny_ws)
    with_body = [r for r in RouteTable(app.router.routes).routes
                 if isinstance(r, APIRoute) and r.body_field is not None]  # fmt: skip
    assert with_body and [r.path for r in with_body if not isinstance(r, StrictJSONRoute)] == []


# -- OPTIONS / Allow, OpenAPI ------------------------------------------------------------------


def test_options_lists_every_method_of_the_path(srv: LiveServer) -> None:
    r = httpx.options(srv.url + "/api/apps/crowd")
    assert r.status_code == 204 and r.headers["allow"] == "GET, OPTIONS, PUT"
    assert httpx.options(srv.url + "/api/nothing-here").status_code == 404
    wrong = srv.client("admin").delete("/api/apps/crowd")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, OPTIONS, PUT"


def test_the_openapi_declares_its_security_and_error_answers(srv: LiveServer) -> None:
    spec = httpx.get(srv.url + "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "A token of TWIN_TOKENS: `Authorization: Bearer <token>`",
    }  # fmt: skip
    ops = {(path, method): op for path, item in spec["paths"].items()
           for method, op in item.items()}  # fmt: skip
    ingest = ops[("/api/observations", "post")]
    assert ingest["security"] == [{"bearer": []}]
    assert {"401", "403", "409", "413", "422"} <= set(ingest["responses"])
    assert {"401", "403", "404"} <= set(ops[("/api/elements/{element_id}", "get")]["responses"])
    assert {"404", "409"} <= set(ops[("/api/alerts/{alert_id}/ack", "post")]["responses"])
    assert ops[("/readyz", "get")]["security"] == [{}, {"bearer": []}]
    assert "security" not in ops[("/healthz", "get")]
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["detail"]


# -- the WebSocket's Origin --------------------------------------------------------------------


def test_a_foreign_origin_cannot_open_the_live_socket(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws, {"TWIN_WS_ORIGINS": "https://wall.example"})
    url = server.url.replace("http://", "ws://") + f"/ws/live?token={TOKENS['viewer']}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=Origin("https://evil.example")).close()
    assert refused.value.response.status_code == 403
    own = server.url.replace("http://", "")
    for origin in (f"http://{own}", "https://wall.example", None):
        with connect(url, origin=origin) as conn:  # type: ignore[arg-type]
            assert '"ready"' in conn.recv(timeout=10)


# -- frames and drones --------------------------------------------------------------------------


def test_frames_stay_within_their_budgets_and_expire() -> None:
    now = [100.0]  # s on the store's clock
    store = FrameStore(history_bytes=3000, newest_bytes=2500, ttl_s=0.3, clock=lambda: now[0])
    for camera in ("a", "b", "c"):
        store.put(camera, bytes(1000), "image/jpeg")
    # Three newest frames of 1000 bytes pass the 2500-byte budget: the camera that pushed
    # longest ago loses its frames.
    assert store.get("a") is None and store.get("b") is not None and store.kept == (2, 2000)
    store.put("b", bytes(1000), "image/jpeg")
    assert store.kept == (3, 3000) and store.history_kept == 1000
    now[0] += 0.29
    assert store.get("b") is not None and store.kept == (3, 3000)
    now[0] += 0.02
    assert store.get("b") is None and store.kept == (0, 0)


def test_drone_frames_are_bounded_and_drones_expire(srv: LiveServer) -> None:
    sample = {"lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1], "altitude": 120.0, "yaw": 0.0}
    frame = b"\xff\xd8\xff\xe0" + bytes(200_000)
    with srv.client("ingest") as ingest:
        for n in range(5):  # 5 × 0.2 MB newest frames against a 0.5 MiB budget
            assert ingest.post(f"/api/drones/d{n}/telemetry", json=sample).status_code == 200
            assert ingest.put(f"/api/cameras/d{n}/frame", content=frame).status_code == 204
        metrics = ingest.get("/metrics").text
        assert ingest.get("/api/cameras/d0/frame").status_code == 204  # dropped for d4's
        assert ingest.get("/api/cameras/d4/frame").status_code == 200
    kept = float(next(line.split()[1] for line in metrics.splitlines()
                      if line.startswith("twin_frame_bytes ")))  # fmt: skip
    assert 0 < kept <= 0.5 * MIB
    with srv.client("viewer") as viewer:

        def drones_gone() -> bool:
            ids = [c["id"] for c in viewer.get("/api/cameras").json()["items"]]
            assert tiny.CAMERA_ID in ids
            return not any(i.startswith("d") for i in ids)

        wait_for(drones_gone, timeout_s=10)  # TWIN_DRONE_TTL_S=2
        assert viewer.get("/api/cameras/d4").status_code == 404


def test_bad_drone_telemetry_is_a_422_not_a_poisoned_rig(srv: LiveServer) -> None:
    """hfov 1e-323 once made every later GET /api/cameras a 500 (division by zero)."""
    sample = {"lon": 121.49, "lat": 31.239, "altitude": 100.0, "yaw": 0.0, "hfov": 1e-323}
    with srv.client("ingest") as ingest:
        assert_problems(ingest.post("/api/drones/x/telemetry", json=sample), ["body", "hfov"])
        assert ingest.get("/api/cameras").status_code == 200
