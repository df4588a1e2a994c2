"""The desktop viewer's Qt window under Xvfb (pytest-qt): synthetic clicks pick and highlight
a building and show its record, a drag does not; search flies to its result; measuring
between two known points; and the live layer fed by a real `twin serve` over /ws/live."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from servers import TOKENS, LiveServer
from viewer_workspace import viewer_ws
from xvfb import display

from twin.viewer.district import District
from twin.viewer.records import WorkspaceRecords

__all__ = ["display", "viewer_ws"]  # session fixtures, used by name
pytestmark = pytest.mark.usefixtures("display")  # the X display exists before the QApplication

BUILDING = "building:-6651434"
CAMERA = "camera:cam-bund-road"


def _window(qtbot: Any, ws: Path, server: LiveServer | None = None) -> Any:
    from twin.viewer.client import TwinClient
    from twin.viewer.live import LiveFeed
    from twin.viewer.window import ViewerWindow

    client = TwinClient(server.url, TOKENS["viewer"]) if server is not None else None
    feed = LiveFeed(client.live_url).start() if client is not None else None
    window = ViewerWindow(District.open(ws), client=client, feed=feed)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(viewer_ws: Path, qtbot: Any) -> Iterator[Any]:
    win = _window(qtbot, viewer_ws)
    yield win
    win.close()


def _click(qtbot: Any, window: Any, x: float, y: float) -> None:
    """A left click at VTK display position (x, y) (origin bottom-left) of the 3D view."""
    from qtpy import QtCore

    widget = window.plotter.interactor
    pos = QtCore.QPoint(round(x), widget.height() - 1 - round(y))
    qtbot.mouseClick(widget, QtCore.Qt.MouseButton.LeftButton, pos=pos)


def _settle(window: Any) -> None:
    window.scene.settle()
    window.scene.render()


def _roof(window: Any, element_id: str) -> np.ndarray:
    """The middle of a building's (flat) roof, ENU m."""
    mesh = window.district.building_mesh(element_id)
    points = np.asarray(mesh.points)
    return np.asarray(points[points[:, 2] > points[:, 2].max() - 0.01].mean(axis=0))


def _under_pixel(window: Any, x: int, y: int, z: float) -> np.ndarray:
    """Where the ray through display pixel (x, y) meets the plane at height z (ENU m)."""
    renderer = window.plotter.renderer
    ends = []
    for depth in (0.0, 1.0):
        renderer.SetDisplayPoint(x, y, depth)
        renderer.DisplayToWorld()
        world = np.array(renderer.GetWorldPoint())
        ends.append(world[:3] / world[3])
    a, b = ends
    return np.asarray(a + (b - a) * (z - a[2]) / (b[2] - a[2]))


def test_a_click_picks_highlights_and_shows_the_record(qtbot: Any, window: Any) -> None:
    assert "Offline" in window._status.text()
    view = window.scene.element_view(BUILDING)
    window.scene.set_view(view)
    _settle(window)
    x, y = window.scene.world_to_display(_roof(window, BUILDING))
    _click(qtbot, window, x, y)
    assert window.scene.selected == BUILDING
    assert window.scene.highlight.actors  # drawn in the highlight colour
    expected = WorkspaceRecords(window.district).record(BUILDING)
    assert expected is not None
    assert window.record == expected
    for key in ("id", "kind", "name", "attributes", "lon", "lat", "height", "jurisdiction",
                "site", "cameras", "recent_events", "nearby"):  # fmt: skip
        assert key in window.record
    text = window.record_view.toPlainText()
    assert BUILDING in text and (expected["unit"] or "") in text

    # A drag (press, move 60 px, release) turns the view and picks nothing.
    from qtpy import QtCore

    widget = window.plotter.interactor
    start = QtCore.QPoint(40, 40)
    qtbot.mousePress(widget, QtCore.Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(widget, QtCore.QPoint(100, 40))
    qtbot.mouseRelease(widget, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(100, 40))
    assert window.scene.selected == BUILDING and window.record["id"] == BUILDING


def test_search_lists_matches_and_flies_to_the_chosen_one(qtbot: Any, window: Any) -> None:
    from qtpy import QtCore

    window.search_box.setText("苏州河")
    qtbot.keyClick(window.search_box, QtCore.Qt.Key.Key_Return)
    assert window.result_list.count() >= 1
    chosen = window.results[0]
    assert chosen["name"] == "苏州河" and chosen["kind"] == "water"
    window.result_list.itemActivated.emit(window.result_list.item(0))
    qtbot.waitUntil(lambda: not window._fly, timeout=5000)
    assert window.scene.selected == chosen["id"] and window.record["id"] == chosen["id"]
    el = window.district.catalog.get(chosen["id"])
    centre, _ = window.district.element_target(el)
    focal = np.array(window.plotter.renderer.GetActiveCamera().GetFocalPoint())
    assert np.linalg.norm(focal - centre) < 1.0
    assert "苏州河" in window.record_view.toPlainText()

    window.home()  # fly home again
    qtbot.waitUntil(lambda: not window._fly, timeout=5000)
    home = window.scene.home_view()
    position = np.array(window.plotter.renderer.GetActiveCamera().GetPosition())
    assert np.linalg.norm(position - home.position) < 1.0


def test_screenshot_of_the_window_at_any_size(window: Any, tmp_path: Path) -> None:
    out = tmp_path / "big.png"
    window.scene.save_png(str(out), (2000, 1250))
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (1250, 2000, 3)
    assert len(np.unique(image.reshape(-1, 3)[::13], axis=0)) > 300  # the district, drawn
    assert tuple(window.plotter.window_size) != (2000, 1250)  # the window keeps its size


def test_measuring_between_two_known_points(qtbot: Any, window: Any) -> None:
    window.scene.show_only(["buildings"])
    a_id = BUILDING
    b_id = next(el.id for el, d in window.district.catalog.near(121.4938, 31.2375, 120.0,
                                                                ["building"])
                if el.id != a_id and d > 40)  # fmt: skip
    a, b = _roof(window, a_id), _roof(window, b_id)
    middle = (a + b) / 2
    span = float(np.linalg.norm(a[:2] - b[:2]))
    from twin.viewer.actors import above
    from twin.viewer.scene import CameraView

    window.scene.set_view(CameraView(above(middle, span * 2.2), middle, np.array([0, 1.0, 0])))
    _settle(window)
    window.set_mode("distance")
    known = []
    for roof in (a, b):
        x, y = (round(v) for v in window.scene.world_to_display(roof))
        known.append(_under_pixel(window, x, y, roof[2]))
        _click(qtbot, window, x, y)
    truth = np.linalg.norm(known[1] - known[0])
    assert window.measurement.straight == pytest.approx(truth, abs=0.1)
    assert window.measurement.horizontal == pytest.approx(
        np.linalg.norm(known[1][:2] - known[0][:2]), abs=0.1
    )
    assert window.scene.plain["measure"].actors  # the line and its label are drawn

    window.set_mode("height")
    x, y = (round(v) for v in window.scene.world_to_display(a))
    _click(qtbot, window, x, y)
    top = _under_pixel(window, x, y, a[2])
    ground = window.district.ground.heights(top[None, :2])[0]
    assert window.measurement.metres == pytest.approx(top[2] - ground, abs=0.1)


def _solid_jpeg(bgr: tuple[int, int, int]) -> bytes:
    return cv2.imencode(".jpg", np.full((1080, 810, 3), bgr, np.uint8))[1].tobytes()


def test_live_layer_from_a_running_server(
    viewer_ws: Path, qtbot: Any, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(viewer_ws)
    window = _window(qtbot, viewer_ws, server)
    try:
        qtbot.waitUntil(lambda: window.feed.status == "connected", timeout=15000)
        camera = window.district.catalog.get(CAMERA)
        lon, lat = camera.lon, camera.lat + 0.0006  # in the sample's Bund road zone
        with server.client("ingest") as http:
            assert http.put(f"/api/cameras/{CAMERA}/frame", content=_solid_jpeg((40, 40, 230)),
                            headers={"Content-Type": "image/jpeg"}).status_code == 204  # fmt: skip
            people = [
                {"kind": "person", "cls": "person", "source": CAMERA, "track_id": f"p{i}",
                 "lon": lon + i * 0.00003, "lat": lat}
                for i in range(3)
            ]  # fmt: skip
            car = {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "c1",
                   "lon": lon, "lat": lat + 0.0002,
                   "attributes": {"bbox": [100, 200, 500, 800]}}  # fmt: skip
            reply = http.post("/api/observations", json={"observations": [*people, car]})
            assert reply.status_code == 200, reply.text
            assert reply.json()["alerts"]
            telemetry = {"lon": lon, "lat": lat, "altitude": 80.0, "yaw": 0.0,
                         "gimbal": {"pitch": -60.0}}  # fmt: skip
            assert http.post("/api/drones/drone-7/telemetry", json=telemetry).status_code == 200
        qtbot.waitUntil(
            lambda: len(window.state.tracks) == 4 and window.state.alerts
            and "drone-7" in window.state.drones,
            timeout=15000,
        )  # fmt: skip
        qtbot.waitUntil(lambda: bool(window.scene.plain["entities"].actors), timeout=5000)
        assert window.scene.plain["alerts"].actors and window.scene.plain["drones"].actors
        markers = window.scene._markers["entity"]
        track = markers.ids.index(f"{CAMERA}/c1")
        expected = window.district.to_enu(lon, lat + 0.0002, 0.0)
        assert np.allclose(markers.points.points[track], expected, atol=0.01)
        assert "Live (connected)" in window._status.text()

        # Click the alert's marker: the alert and its evidence crop (the frame's colour).
        alert = next(a for a in window.state.alerts.values() if a["rule"] == "bund-road-vehicles")
        heads = window.scene._markers["alert"]
        window.scene.set_view(window.scene.view_of(heads.points.points[0], 60.0))
        _settle(window)
        x, y = window.scene.world_to_display(heads.points.points[heads.ids.index(alert["id"])])
        _click(qtbot, window, x, y)
        assert window.record["id"] == alert["id"]
        assert alert["title"] in window.record_view.toPlainText()
        crop = window.crop_view.pixmap().toImage()
        colour = crop.pixelColor(crop.width() // 2, crop.height() // 2)
        assert colour.red() > 200 and colour.green() < 90 and colour.blue() < 90

        # Records come from the server now, and the camera view shows its latest frame.
        window.select(BUILDING)
        assert window.record["id"] == BUILDING and "Offline" not in window.record_view.toHtml()
        window.look_through("cam-bund-road")
        assert window.plotter.renderer.GetTexturedBackground()
    finally:
        window.close()
