"""All the cameras of a workspace, as the server and other long-lived users see them: catalog
cameras with their overrides (`twin.cameras.store`), live PTZ poses and live drone cameras,
plus the meshes their rays land on (loaded once, on first use). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from shapely.geometry import mapping

from twin.cameras import labels as label_mod
from twin.cameras.camera import Camera
from twin.cameras.drone import DroneTelemetry
from twin.cameras.pairs import PointPair
from twin.cameras.ptz import PtzModel, PtzStatus
from twin.cameras.store import CameraStore, apply_override
from twin.cameras.world import RayResult, World
from twin.catalog import Catalog, Element, resolve_id
from twin.errors import InputError, NotFoundError, TwinError
from twin.workspace import Manifest, WorkspacePaths

if TYPE_CHECKING:
    from twin.cameras.calibrate import Calibration

PTZ_KINDS = frozenset({"ptz", "eagle-eye"})
HOST_MARGIN_M = 2.0
DRONE_TTL_S = 300.0
MAX_DRONES = 100


@dataclass
class _Drone:
    camera: Camera
    time: datetime
    received: float  # time.monotonic() of its latest telemetry


@dataclass
class CameraRig:
    """Cameras of workspace `ws` described by `catalog`. A live drone is forgotten
    `drone_ttl_s` seconds after its latest telemetry; past `max_drones` live drones, the one
    heard from longest ago goes first."""

    ws: Path
    catalog: Catalog
    drone_ttl_s: float = DRONE_TTL_S
    max_drones: int = MAX_DRONES
    store: CameraStore = field(init=False)
    ground_height: float = field(init=False)
    _world: World | None = field(default=None, init=False)
    _ptz: dict[str, PtzStatus] = field(default_factory=dict, init=False)
    _drones: dict[str, _Drone] = field(default_factory=dict, init=False)
    _label_elements: list[Element] | None = field(default=None, init=False)
    _hosts: dict[tuple[str, float, float, float], frozenset[str]] = field(
        default_factory=dict, init=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.store = CameraStore(self.ws)
        self.ground_height = Manifest.read(WorkspacePaths(self.ws).manifest).frame.height

    # ----------------------------------------------------------------- lookup
    @property
    def world(self) -> World:
        """The workspace meshes as a ray-cast target (loaded on first use)."""
        with self._lock:
            if self._world is None:
                self._world = World.from_workspace(self.ws)
            return self._world

    def _element(self, camera_id: str) -> Element | None:
        el = self.catalog.get(camera_id)
        return el if el is not None and el.kind == "camera" else None

    def resolve(self, camera_id: str) -> str:
        """The id `camera_id` means: a live drone or catalog camera id as is, else the catalog
        camera whose layer id it is (``cam-1`` for ``camera:cam-1``); unknown ids unchanged."""

        def known(ident: str) -> bool:
            with self._lock:
                if ident in self._live_drones():
                    return True
            return self._element(ident) is not None

        return resolve_id(camera_id, known, ("camera",))

    def ids(self) -> list[str]:
        """Catalog camera ids, then live drone ids."""
        with self._lock:
            drones = sorted(self._live_drones())
        return [el.id for el in self.catalog.all("camera")] + drones

    def _live_drones(self) -> dict[str, _Drone]:
        """The drones heard from within `drone_ttl_s` (older ones forgotten now); the caller
        holds ``_lock``."""
        oldest = time.monotonic() - self.drone_ttl_s
        for drone_id in [k for k, drone in self._drones.items() if drone.received < oldest]:
            del self._drones[drone_id]
        return self._drones

    def camera(self, camera_id: str) -> Camera:
        """The camera model now: catalog < WS/cameras.json < live PTZ pose; or a live drone."""
        with self._lock:
            drone = self._live_drones().get(camera_id)
            status = self._ptz.get(camera_id)
        if drone is not None:
            return drone.camera
        camera, entry = self._catalog_camera(camera_id)
        if status is not None:
            camera = PtzModel.for_camera(camera, entry.get("ptz")).apply(camera, status)
        return camera

    def _catalog_camera(self, camera_id: str) -> tuple[Camera, dict[str, Any]]:
        """A catalog camera with its WS/cameras.json override, and that override ({} if none)."""
        el = self._element(camera_id)
        if el is None:
            raise NotFoundError(f"no camera '{camera_id}'")
        entry = self.store.get(camera_id) or {}
        return Camera.from_record(apply_override(el.to_dict(with_geometry=False), entry)), entry

    def ptz_model(self, camera_id: str) -> PtzModel:
        """The zoom lens and pan zero of PTZ camera `camera_id` (from its ``ptz`` override)."""
        camera, entry = self._catalog_camera(camera_id)
        return PtzModel.for_camera(camera, entry.get("ptz"))

    def host(self, camera: Camera) -> frozenset[str]:
        """The buildings `camera` is mounted in or on, whose walls its rays pass through: those
        within `HOST_MARGIN_M` of its optical centre, horizontally and vertically (a tower
        modelled as several building parts gives several)."""
        top = camera.ground_height + camera.mount_height
        key = (camera.id, camera.lon, camera.lat, top)
        with self._lock:
            if key in self._hosts:
                return self._hosts[key]
        found = frozenset(
            el.id
            for el, _ in self.catalog.near(camera.lon, camera.lat, HOST_MARGIN_M, ["building"])
            if el.base_height - HOST_MARGIN_M <= top <= el.base_height + el.height + HOST_MARGIN_M
        )
        with self._lock:
            self._hosts[key] = found
        return found

    def describe(self, camera_id: str) -> dict[str, Any]:
        """Pose, intrinsics, kind, PTZ state, calibration report and the ground footprint
        (GeoJSON polygon, flat ground at the camera's ground height) of a camera."""
        camera = self.camera(camera_id)
        el = self._element(camera_id)
        with self._lock:
            status = self._ptz.get(camera_id)
            drone = self._live_drones().get(camera_id)
        entry = self.store.get(camera_id) or {}
        attrs = el.attributes if el is not None else {}
        footprint = camera.view_footprint()
        record: dict[str, Any] = {
            **camera.to_record(),
            "name": el.name if el is not None else camera_id,
            "camera_kind": attrs.get("camera_kind", "drone"),
            "stream": attrs.get("stream"),
            "live": drone is not None or status is not None,
            "ptz": status.to_dict() if status is not None else None,
            "calibration": entry.get("calibration"),
            "time": drone.time.isoformat() if drone is not None else None,
            "footprint": None if footprint.is_empty else mapping(footprint),
        }
        return record

    # ----------------------------------------------------------------- live poses
    def set_ptz(self, camera_id: str, status: PtzStatus) -> dict[str, Any]:
        """Turn PTZ camera `camera_id` to `status`; returns its description."""
        el = self._element(camera_id)
        if el is None:
            raise NotFoundError(f"no camera '{camera_id}'")
        kind = el.attributes.get("camera_kind")
        if kind not in PTZ_KINDS:
            raise InputError(f"camera '{camera_id}' is {kind}, not a PTZ camera")
        with self._lock:
            self._ptz[camera_id] = status
        return self.describe(camera_id)

    def update_drone(self, drone_id: str, telemetry: DroneTelemetry) -> dict[str, Any]:
        """Record drone `drone_id`'s camera from telemetry; returns its description."""
        el = self.catalog.get(drone_id)
        if el is not None and el.attributes.get("camera_kind", "drone") != "drone":
            raise InputError(f"'{drone_id}' is a {el.kind} of the catalog, not a drone")
        camera = telemetry.camera(drone_id, self.ground_height)
        with self._lock:
            drones = self._live_drones()
            drones.pop(drone_id, None)
            while len(drones) >= self.max_drones:
                del drones[next(iter(drones))]  # the one heard from longest ago
            drones[drone_id] = _Drone(camera, telemetry.time, time.monotonic())
        return self.describe(drone_id)

    # ----------------------------------------------------------------- calibration
    def calibrate(
        self, camera_id: str, pairs: Sequence[PointPair], *, fit_focal: bool = False
    ) -> Calibration:
        """Solve and save (WS/cameras.json) a catalog camera's pose (`camera_id`: its element
        id or its layer's id) from point pairs. A PTZ camera's live pose is dropped: the
        calibrated pose is its pose now."""
        from twin.cameras.calibrate import calibrate  # OpenCV: loaded by the first calibration

        camera_id = self.resolve(camera_id)
        if self._element(camera_id) is None:
            raise NotFoundError(f"no catalog camera '{camera_id}'")
        result = calibrate(self.camera(camera_id), pairs, fit_focal=fit_focal)
        self.store.update(camera_id, result.override())
        with self._lock:
            self._ptz.pop(camera_id, None)
        return result

    # ----------------------------------------------------------------- pixel ↔ world
    def ray(self, camera_id: str, u: float, v: float) -> RayResult | None:
        """Where pixel (u, v) of the calibrated image of `camera_id` lands (None: sky);
        InputError naming ``u`` or ``v`` when the pixel lies outside the image."""
        camera = self.camera(camera_id)
        for name, value, size in (("u", u, camera.image_width), ("v", v, camera.image_height)):
            if not 0 <= value <= size:
                raise InputError(f"pixel {name}={value} is outside the image (0 to {size} px)",
                                 field=name)  # fmt: skip
        return self.world.ray(camera, u, v, skip=self.host(camera))

    def labels(self, camera_id: str, limit: int = label_mod.DEFAULT_LIMIT) -> list[dict[str, Any]]:
        """AR labels of the elements `camera_id` sees now (see `twin.cameras.labels`)."""
        camera = self.camera(camera_id)
        with self._lock:
            if self._label_elements is None:
                self._label_elements = [
                    el for kind in label_mod.LABEL_KINDS for el in self.catalog.all(kind)
                ]
            elements = self._label_elements
        return label_mod.labels(camera, self.world, elements, limit=limit, host=self.host(camera))

    def cameras_seeing(self, el: Element) -> list[dict[str, Any]]:
        """Cameras whose image holds `el` — ``{id, name, u, v, visible}``, visible ones first.

        Anchors tried in turn: a building's roof centre then its centre at mid-height; any
        other element's point at ``base_height + height``. The first anchor in view gives
        the pixel, and it is visible unless something other than `el` hides it."""
        if el.kind == "building":
            anchors = [
                (el.lon, el.lat, el.base_height + el.height),
                (el.lon, el.lat, el.base_height + el.height / 2.0),
            ]
        else:
            anchors = [(el.lon, el.lat, el.base_height + el.height)]
        lon, lat, height = np.array(anchors, float).T
        seen: list[dict[str, Any]] = []
        for camera_id in self.ids():
            if camera_id == el.id:
                continue
            try:
                camera = self.camera(camera_id)
            except TwinError:
                continue
            if el.id in self.host(camera):
                continue
            proj = self.world.project(
                camera, lon, lat, height, [el.id] * len(anchors), skip=self.host(camera)
            )
            in_view = np.flatnonzero(proj.in_view)
            if not len(in_view):
                continue
            visible = np.flatnonzero(proj.visible)
            k = int(visible[0]) if len(visible) else int(in_view[0])
            cam_el = self._element(camera_id)
            seen.append(
                {
                    "id": camera_id, "name": cam_el.name if cam_el else camera_id,
                    "u": round(float(proj.u[k]), 2), "v": round(float(proj.v[k]), 2),
                    "visible": bool(proj.visible[k]),
                }
            )  # fmt: skip
        seen.sort(key=lambda item: not item["visible"])
        return seen
