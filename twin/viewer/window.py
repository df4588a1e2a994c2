"""The desktop viewer's window (Qt, pyvistaqt): the 3D scene in the middle; docks for the
layer tree (visibility, opacity, colour modes), search and the record panel; a toolbar with
fly home, measuring (distance, height), screenshots and looking through a camera; a status
line saying whether the live layer is connected.

A click (press and release within `CLICK_PX` pixels, not a drag) picks: an element is
highlighted and its record shown (from the workspace offline, from the server when
connected), a live entity or alert shows its details (an alert with its evidence crop).
Imported only by `twin view` without ``--screenshot``: `twin serve` never loads Qt.
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

os.environ.setdefault("QT_API", "pyside6")

from pyvistaqt import QtInteractor
from qtpy import QtCore, QtGui, QtWidgets

from twin.errors import TwinError
from twin.viewer import colours as col
from twin.viewer.client import TwinClient
from twin.viewer.district import District
from twin.viewer.fonts import cjk_font
from twin.viewer.live import LiveFeed, LiveState
from twin.viewer.measure import Distance, Height, distance, height
from twin.viewer.offscreen import decode_image, parse_size
from twin.viewer.panel import alert_html, entity_html, record_html
from twin.viewer.records import Records, WorkspaceRecords
from twin.viewer.scene import CameraView, SceneView

CLICK_PX = 4
LOD_MS = 60
LIVE_MS = 250
FLY_STEPS = 12
FRAME_REFRESH_S = 2.0
Mode = Literal["pick", "distance", "height"]


class ViewerWindow(QtWidgets.QMainWindow):
    """The viewer of `district`; with `client` and `feed` it shows the server's records and
    live layer."""

    def __init__(
        self,
        district: District,
        *,
        client: TwinClient | None = None,
        feed: LiveFeed | None = None,
        colour_by: col.ColourBy = "height",
        point_colours: col.PointColours = "rgb",
    ) -> None:
        super().__init__()
        self.district = district
        self.client = client
        self.feed = feed
        self.records: Records = client if client is not None else WorkspaceRecords(district)
        self.state = LiveState(district.to_enu)
        self.mode: Mode = "pick"
        self.picks: list[Any] = []
        self.measurement: Distance | Height | None = None
        self.record: dict[str, Any] | None = None
        self.results: list[dict[str, Any]] = []
        self._press: tuple[int, int] | None = None
        self._last_view: tuple[float, ...] = ()
        self._pending = 1
        self._fly: list[CameraView] = []
        self._frame_at = 0.0
        self.setWindowTitle(f"twin view — {district.manifest.name}")
        self.plotter = QtInteractor(self, multi_samples=0, auto_update=False)
        self.setCentralWidget(self.plotter.interactor)
        self.scene = SceneView(self.plotter, district, colour_by, point_colours, adaptive=True)
        self.scene.detail = 0.1
        if client is not None:
            self._server_cameras(client)
        self._layers_dock()
        self._search_dock()
        self._record_dock()
        self._toolbar()
        self._status = QtWidgets.QLabel()
        self._drawn = QtWidgets.QLabel()
        self.statusBar().addWidget(self._status, 1)
        self.statusBar().addPermanentWidget(self._drawn)
        self._show_status()
        self.plotter.iren.add_observer("LeftButtonPressEvent", self._on_press)
        self.plotter.iren.add_observer("LeftButtonReleaseEvent", self._on_release)
        self._timers = [self._every(LOD_MS, self._tick_lod)]
        if feed is not None:
            self._timers.append(self._every(LIVE_MS, self._tick_live))

    # ------------------------------------------------------------------ building the window
    def _every(self, ms: int, slot: Any) -> QtCore.QTimer:
        timer = QtCore.QTimer(self)
        timer.timeout.connect(slot)
        timer.start(ms)
        return timer

    def _layers_dock(self) -> None:
        tree = QtWidgets.QTreeWidget()
        tree.setHeaderLabels(["Layer", "Opacity"])
        tree.setRootIsDecorated(False)
        self.layer_items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for name in self.scene.layer_names:
            layer = self.scene.layer(name)
            item = QtWidgets.QTreeWidgetItem([name])
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, _check(layer.visible))
            tree.addTopLevelItem(item)
            slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(round(layer.opacity * 100))
            slider.valueChanged.connect(lambda v, n=name: self.set_opacity(n, v / 100))
            tree.setItemWidget(item, 1, slider)
            self.layer_items[name] = item
        tree.itemChanged.connect(self._layer_toggled)
        tree.resizeColumnToContents(0)
        self.colour_box = QtWidgets.QComboBox()
        self.colour_box.addItems(list(col.COLOUR_BY))
        self.colour_box.setCurrentText(self.scene.colour_by)
        self.colour_box.currentTextChanged.connect(self.set_colour_by)
        self.points_box = QtWidgets.QComboBox()
        self.points_box.addItems(list(col.POINT_COLOURS))
        self.points_box.setCurrentText(self.scene.point_colours)
        self.points_box.currentTextChanged.connect(self.set_point_colours)
        form = QtWidgets.QFormLayout()
        form.addRow("Buildings by", self.colour_box)
        form.addRow("Points by", self.points_box)
        box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(box)
        column.addWidget(tree)
        column.addLayout(form)
        self.layer_tree = tree
        self._dock("Layers", box, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

    def _search_dock(self) -> None:
        self.search_box = QtWidgets.QLineEdit()
        self.search_box.setPlaceholderText("Search buildings, roads, sites, cameras… (name or id)")
        self.search_box.returnPressed.connect(lambda: self.search(self.search_box.text()))
        self.result_list = QtWidgets.QListWidget()
        self.result_list.itemActivated.connect(lambda item: self.choose(self.result_list.row(item)))
        box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(box)
        column.addWidget(self.search_box)
        column.addWidget(self.result_list)
        self._dock("Search", box, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)

    def _record_dock(self) -> None:
        self.record_view = QtWidgets.QTextBrowser()
        self.crop_view = QtWidgets.QLabel()
        self.crop_view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(box)
        column.addWidget(self.record_view, 1)
        column.addWidget(self.crop_view)
        self._dock("Record", box, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)

    def _dock(self, title: str, widget: QtWidgets.QWidget, area: Any) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)

    def _toolbar(self) -> None:
        bar = self.addToolBar("Tools")
        bar.addAction("Home", self.home)
        self.mode_actions: dict[Mode, QtGui.QAction] = {}
        modes: tuple[tuple[Mode, str], ...] = (("distance", "Measure distance"),
                                               ("height", "Measure height"))  # fmt: skip
        for mode, label in modes:
            action = bar.addAction(label)
            action.triggered.connect(self._mode_setter(mode))
            action.setCheckable(True)
            self.mode_actions[mode] = action
        bar.addAction("Clear", self.clear_measurement)
        bar.addAction("Screenshot…", self._screenshot_dialog)
        bar.addSeparator()
        self.camera_box = QtWidgets.QComboBox()
        self._fill_cameras()
        bar.addWidget(self.camera_box)
        bar.addAction("Look through", lambda: self.look_through(self.camera_box.currentData()))
        bar.addAction("Back to 3D", self.home)

    def _mode_setter(self, mode: Mode) -> Any:
        return lambda: self.set_mode(mode)

    def _fill_cameras(self) -> None:
        names = {el.id: el.name or el.id for el in self.district.catalog.all("camera")}
        current = self.camera_box.currentData()
        self.camera_box.clear()
        for camera in [*self.scene.cameras, *self.state.drones.values()]:
            if self.camera_box.findData(camera.id) < 0:
                self.camera_box.addItem(names.get(camera.id, camera.id), camera.id)
        if current is not None and self.camera_box.findData(current) >= 0:
            self.camera_box.setCurrentIndex(self.camera_box.findData(current))

    # ------------------------------------------------------------------ layers and styles
    def _layer_toggled(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        if column == 0:
            visible = item.checkState(0) == QtCore.Qt.CheckState.Checked
            self.set_visible(item.text(0), visible)

    def show_only(self, names: Any) -> None:
        """Tick the named layers, untick the others."""
        for name, item in self.layer_items.items():
            item.setCheckState(0, _check(name in names))

    def set_visible(self, name: str, visible: bool) -> None:
        self.scene.set_layer_visible(name, visible)
        self._pending = 1
        self.scene.render()

    def set_opacity(self, name: str, opacity: float) -> None:
        self.scene.set_layer_opacity(name, opacity)
        self.scene.render()

    def set_colour_by(self, mode: str) -> None:
        self.scene.set_colour_by(mode)  # type: ignore[arg-type]
        self.scene.render()

    def set_point_colours(self, mode: str) -> None:
        self.scene.set_point_colours(mode)  # type: ignore[arg-type]
        self.scene.render()

    # ------------------------------------------------------------------ level of detail and live
    def _view_key(self) -> tuple[float, ...]:
        camera = self.plotter.renderer.GetActiveCamera()
        size = tuple(float(v) for v in self.plotter.renderer.GetSize())
        return (*camera.GetPosition(), *camera.GetFocalPoint(), camera.GetViewAngle(), *size)

    def _tick_lod(self) -> None:
        if self._fly:
            self.scene.set_view(self._fly.pop(0))
        key = self._view_key()
        if key == self._last_view and not self._pending:
            return
        self._last_view = key
        self._pending = self.scene.update_lod(max_loads=2)
        self.scene.render()
        drawn = ", ".join(f"{n} {v:,}" for n, v in self.scene.drawn().items() if v)
        self._drawn.setText(f"{drawn} · {1 / max(self.scene.frame_s, 1e-3):.0f} fps")

    def _tick_live(self) -> None:
        if self.feed is None:
            return
        self.feed.drain(self.state)
        self.state.prune()
        if self.scene.update_live(self.state):
            through = self.scene.through
            if through is not None and through in self.state.drones:
                self.scene.look_through(self.state.drones[through], self._frame(through))
            if self.camera_box.count() < len(self.scene.cameras) + len(self.state.drones):
                self._fill_cameras()
            self.scene.render()
        elif self.scene.through is not None and self._frame_due():
            self.look_through(self.scene.through)
        self._show_status()

    def _show_status(self) -> None:
        if self.feed is None:
            text = "Offline: no --server, no live layer. Records come from the workspace."
        else:
            text = (f"Live ({self.feed.status}) at {self.client.server if self.client else ''}: "
                    f"{len(self.state.tracks)} entities, {len(self.state.alerts)} open alerts, "
                    f"{len(self.state.drones)} drones")  # fmt: skip
        self._status.setText(text)

    # ------------------------------------------------------------------ camera moves
    def fly_to(self, target: CameraView) -> None:
        """Move the view to `target` over a few frames (the LOD timer plays them)."""
        start = self.scene.current_view()
        self._fly = [
            CameraView(
                start.position + (target.position - start.position) * t,
                start.focal_point + (target.focal_point - start.focal_point) * t,
                target.up, target.view_angle,
            )
            for t in ((k + 1) / FLY_STEPS for k in range(FLY_STEPS))
        ]  # fmt: skip

    def home(self) -> None:
        self.scene.leave_camera()
        self.fly_to(self.scene.home_view())

    def look_through(self, camera_id: str | None) -> None:
        """Take the pose of camera (or drone) `camera_id`, with its newest frame behind the
        model when the server has one."""
        wanted = (camera_id, f"camera:{camera_id}")
        camera = next((c for c in self.scene.cameras if c.id in wanted), None)
        camera = self.state.drones.get(camera_id or "", camera)
        if camera is None:
            return
        self._fly = []
        self.scene.look_through(camera, self._frame(camera.id))
        self._pending = 1
        self.scene.render()

    def _frame(self, camera_id: str) -> Any:
        self._frame_at = time.monotonic()
        if self.client is None:
            return None
        try:
            return decode_image(self.client.frame(camera_id))
        except TwinError:
            return None

    def _frame_due(self) -> bool:
        return self.client is not None and time.monotonic() - self._frame_at > FRAME_REFRESH_S

    def _server_cameras(self, client: TwinClient) -> None:
        try:
            self.scene.set_cameras(client.cameras())
        except TwinError as err:
            self.show_message(err.one_line())

    # ------------------------------------------------------------------ clicks
    def _on_press(self, *_: object) -> None:
        x, y = self.plotter.iren.get_event_position()
        self._press = (int(x), int(y))

    def _on_release(self, *_: object) -> None:
        if self._press is None:
            return
        x, y = self.plotter.iren.get_event_position()
        px, py = self._press
        self._press = None
        if abs(x - px) <= CLICK_PX and abs(y - py) <= CLICK_PX:
            self.click(x, y)

    def click(self, x: float, y: float) -> None:
        """What a click at display position (x, y) (VTK pixels, origin bottom-left) does in
        the current mode: pick, or take a measuring point."""
        if self.mode != "pick":
            self._measure_at(x, y)
            return
        picked = self.scene.pick(x, y)
        self.crop_view.clear()
        if picked is None:
            self.select(None)
            self.show_message("Nothing here.")
        elif picked.kind == "element" and picked.id is not None:
            self.select(picked.id)
        elif picked.kind == "entity" and picked.id in self.state.tracks:
            self.show_html(entity_html(self.state.tracks[picked.id].payload))
        elif picked.kind == "alert" and picked.id in self.state.alerts:
            self.show_alert(self.state.alerts[picked.id])
        elif picked.point is not None:
            lon, lat, _ = self.district.to_geodetic(picked.point)
            record = self._ask(lambda: self.records.pick(lon, lat))
            self.select(record["id"] if record else None, record)
            if record is None:
                self.show_message(f"Nothing here ({lon:.6f}, {lat:.6f}).")
        self.scene.render()

    def select(self, element_id: str | None, record: dict[str, Any] | None = None) -> None:
        """Highlight an element and show its record (asked for when not given)."""
        self.scene.select(element_id)
        if element_id is not None and record is None:
            record = self._ask(lambda: self.records.record(element_id))
        self.record = record
        if record is not None:
            self.show_html(record_html(record, offline=self.client is None))

    def show_alert(self, alert: dict[str, Any]) -> None:
        """An alert's details, with its evidence crop from the server."""
        self.record = alert
        self.show_html(alert_html(alert))
        crop = (alert.get("evidence") or {}).get("crop")
        if crop and self.client is not None:
            data = self._ask(lambda: self.client.image(crop) if self.client else None)
            image = QtGui.QImage.fromData(data) if data else QtGui.QImage()
            if not image.isNull():
                self.crop_view.setPixmap(QtGui.QPixmap.fromImage(image).scaledToWidth(320))

    def _ask(self, call: Any) -> Any:
        try:
            return call()
        except TwinError as err:
            self.show_message(err.one_line())
            return None

    def show_html(self, html: str) -> None:
        self.record_view.setHtml(html)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    # ------------------------------------------------------------------ search
    def search(self, text: str) -> list[dict[str, Any]]:
        """Find elements by name or id (as ``GET /api/elements?q=``) and list them."""
        self.results = self._ask(lambda: self.records.search(text)) or []
        self.result_list.clear()
        for item in self.results:
            label = f"{item.get('name') or item['id']} — {item['kind']} ({item['id']})"
            self.result_list.addItem(label)
        if not self.results:
            self.show_message(f"No element matches '{text}'.")
        return self.results

    def choose(self, row: int) -> None:
        """Select search result `row` and fly to it."""
        if not 0 <= row < len(self.results):
            return
        element_id = str(self.results[row]["id"])
        self.select(element_id)
        view = self.scene.element_view(element_id)
        if view is not None:
            self.fly_to(view)

    # ------------------------------------------------------------------ measuring
    def set_mode(self, mode: Mode) -> None:
        """Pick (default), or measure a distance (two clicks) or a height (one click)."""
        self.mode = "pick" if self.mode == mode else mode
        for key, action in self.mode_actions.items():
            action.setChecked(key == self.mode)
        self.picks = []
        hint = {
            "pick": "Click to pick.",
            "distance": "Click two points to measure between.",
            "height": "Click a roof (or any point) to measure its height above ground.",
        }
        self.show_message(hint[self.mode])  # fmt: skip

    def _measure_at(self, x: float, y: float) -> None:
        hit = self.scene.pick_surface(x, y)
        if hit is None:
            self.show_message("No surface there to measure on.")
            return
        point = hit[2]
        if self.mode == "height":
            self.measurement = height(point, self.district.ground)
            self.scene.show_measurement([self.measurement.ground, point], self.measurement.text())
        else:
            self.picks = [*self.picks[-1:], point] if len(self.picks) < 2 else [point]
            if len(self.picks) == 2:
                self.measurement = distance(*self.picks)
                self.scene.show_measurement(self.picks, self.measurement.text())
            else:
                self.scene.show_measurement(self.picks, "")
        if self.measurement is not None:
            self.show_message(self.measurement.text())
        self.scene.render()

    def clear_measurement(self) -> None:
        self.picks, self.measurement = [], None
        self.scene.clear_measurement()
        self.scene.render()

    # ------------------------------------------------------------------ screenshots
    def _screenshot_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Screenshot", "view.png",
                                                        "PNG images (*.png)")  # fmt: skip
        if not path:
            return
        width, height_px = self.plotter.window_size
        text, ok = QtWidgets.QInputDialog.getText(self, "Screenshot size", "Width x height (px)",
                                                  text=f"{width}x{height_px}")  # fmt: skip
        if not ok:
            return
        try:
            self.scene.save_png(path, parse_size(text))
        except TwinError as err:
            self.show_message(err.one_line())
            return
        self.show_message(f"Saved {path}")

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        for timer in self._timers:
            timer.stop()
        if self.feed is not None:
            self.feed.stop()
        self.plotter.close()
        self.district.tiles.close()
        super().closeEvent(event)


def _check(on: bool) -> QtCore.Qt.CheckState:
    return QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked


def use_cjk_font(app: QtWidgets.QApplication) -> None:
    """Let the application's text fall back on the CJK font when its own lacks a glyph."""
    path = cjk_font()
    if path is None:
        return
    font_id = QtGui.QFontDatabase.addApplicationFont(str(path))
    families = QtGui.QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if families:
        font = app.font()
        font.setFamilies([font.family(), *families])
        app.setFont(font)


def run(window_factory: Any) -> None:
    """Run the Qt application around the window `window_factory()` makes, until it closes."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    use_cjk_font(app)  # type: ignore[arg-type]
    window = window_factory()
    window.resize(1600, 1000)
    window.show()
    app.exec()
