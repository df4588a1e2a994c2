"""Cameras and drones: models, pixel ↔ world, AR labels, PTZ moves, calibration and drone
telemetry. Live pose changes go out on the bus: topic ``camera`` (PTZ, calibration) and
``drone`` (telemetry), each with the camera's description as payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from scenes.models import IsoTime
from server.auth import Principal, require
from server.deps import get_state
from server.errors import invalid
from server.frames import media_type, still_frame
from server.jsonbody import StrictJSONRoute
from server.publish import publish_camera, publish_drone
from server.schemas import errors
from server.state import TwinState
from twin.cameras.drone import DroneTelemetry, Gimbal
from twin.cameras.labels import DEFAULT_LIMIT
from twin.cameras.pairs import PointPair
from twin.cameras.ptz import PtzStatus
from twin.cameras.rig import CameraRig
from twin.errors import InputError

router = APIRouter(
    prefix="/api", tags=["cameras"], route_class=StrictJSONRoute, responses=errors(401, 403, 404)
)
Reader = Annotated[Principal, Depends(require("read"))]
PTZ_ROLES = frozenset({"operator", "admin"})


def get_rig(state: TwinState = Depends(get_state)) -> CameraRig:
    return state.cameras


Rig = Annotated[CameraRig, Depends(get_rig)]


def camera_key(camera_id: Annotated[str, Path(max_length=200)], rig: Rig) -> str:
    """The camera a path names: its element id, a live drone id, or its layer's own id."""
    return rig.resolve(camera_id)


def drone_key(drone_id: Annotated[str, Path(max_length=200)], rig: Rig) -> str:
    """The drone a path names: its id, or a catalog drone camera's layer id."""
    return rig.resolve(drone_id)


CameraId = Annotated[str, Depends(camera_key)]
DroneId = Annotated[str, Depends(drone_key)]


async def ptz_operator(who: Reader) -> Principal:
    """Admits roles that may steer cameras: operator and admin."""
    if who.role not in PTZ_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{who.role}' may not move PTZ")
    return who


class PtzBody(BaseModel):
    """A PTZ head's position (twin.cameras.ptz): pan, tilt in degrees, zoom 0 (wide)–1 (tele)."""

    model_config = ConfigDict(extra="forbid")

    pan: float = Field(title="Pan, deg clockwise from the head's zero", ge=-720, le=720)
    tilt: float = Field(title="Tilt, deg above the horizon (negative looks down)", ge=-90, le=90)
    zoom: float = Field(default=0.0, title="Zoom, 0 widest to 1 longest", ge=0, le=1)


class PairBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    u: float = Field(title="Pixel column, px")
    v: float = Field(title="Pixel row, px")
    lon: float = Field(ge=-180, le=180, title="Longitude, deg")
    lat: float = Field(ge=-90, le=90, title="Latitude, deg")
    height: float = Field(title="Ellipsoidal height, m")


class CalibrateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairs: list[PairBody] = Field(min_length=4, max_length=1000, title="Point pairs")
    fit_focal: bool = Field(default=False, title="Also fit the focal length (6+ pairs)")


class GimbalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaw: float = Field(default=0.0, ge=-720, le=720, title="Yaw relative to the airframe, deg")
    pitch: float = Field(default=-90.0, ge=-90, le=90, title="Pitch to the horizon, deg")
    roll: float = Field(default=0.0, ge=-90, le=90, title="Roll to the horizon, deg")


class TelemetryBody(BaseModel):
    """One drone telemetry sample (twin.cameras.drone)."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, title="Longitude, deg")
    lat: float = Field(ge=-90, le=90, title="Latitude, deg")
    altitude: float = Field(ge=-500, le=20000, title="WGS84 ellipsoidal height, m")
    yaw: float = Field(ge=-720, le=720, title="Heading, deg clockwise from north")
    pitch: float = Field(default=0.0, ge=-90, le=90, title="Airframe pitch, deg")
    roll: float = Field(default=0.0, ge=-90, le=90, title="Airframe roll, deg")
    gimbal: GimbalBody | None = Field(default=None, title="Gimbal angles")
    hfov: float = Field(default=70.0, ge=1, le=170, title="Horizontal field of view, deg")
    image_width: int = Field(default=1920, gt=0, le=16384, title="Image width, px")
    image_height: int = Field(default=1080, gt=0, le=16384, title="Image height, px")
    time: IsoTime | None = Field(default=None, title="Sample time (default: now)")

    def telemetry(self) -> DroneTelemetry:
        when = self.time or datetime.now(UTC)
        gimbal = Gimbal(**self.gimbal.model_dump()) if self.gimbal is not None else None
        fields = self.model_dump(exclude={"gimbal", "time"})
        return DroneTelemetry(**fields, gimbal=gimbal, time=when)


@router.get("/cameras")
async def list_cameras(_: Reader, rig: Rig) -> dict[str, Any]:
    """Every catalog camera and live drone: ``{"items": [...], "total": N}``."""

    def describe_all() -> list[dict[str, Any]]:
        return [rig.describe(camera_id) for camera_id in rig.ids()]

    items = await run_in_threadpool(describe_all)
    return {"items": items, "total": len(items)}


@router.get("/cameras/{camera_id}")
async def get_camera(camera_id: CameraId, _: Reader, rig: Rig) -> dict[str, Any]:
    """Pose, intrinsics and the ground footprint (GeoJSON polygon) of a camera or drone."""
    return await run_in_threadpool(rig.describe, camera_id)


@router.get("/cameras/{camera_id}/ray")
async def camera_ray(
    camera_id: CameraId,
    _: Reader,
    rig: Rig,
    u: Annotated[float, Query(description="Pixel column of the calibrated image, px")],
    v: Annotated[float, Query(description="Pixel row of the calibrated image, px")],
) -> dict[str, Any]:
    """Where the ray through pixel (u, v) lands: ``{hit, lon, lat, height, element_id,
    distance_m, uncertainty_m}``; ``hit`` is false (other fields null) for the sky; a 422
    naming ``u`` or ``v`` for a pixel outside the image."""
    try:
        result = await run_in_threadpool(rig.ray, camera_id, u, v)
    except InputError as exc:
        raise invalid(str(exc.field), exc.one_line(), u if exc.field == "u" else v) from None
    if result is None:
        keys = ("lon", "lat", "height", "element_id", "distance_m", "uncertainty_m")
        return {"hit": False, **dict.fromkeys(keys)}
    return {"hit": True, **result.to_dict()}


@router.get("/cameras/{camera_id}/labels")
async def camera_labels(
    camera_id: CameraId,
    _: Reader,
    rig: Rig,
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Elements in view at the current pose: ``{"items": [{element_id, name, kind, u, v,
    visible, distance_m}], "camera": pose}``; visible first, nearest first."""

    def compute() -> dict[str, Any]:
        return {"items": rig.labels(camera_id, limit), "camera": rig.camera(camera_id).to_record()}

    return await run_in_threadpool(compute)


@router.put("/cameras/{camera_id}/ptz", responses=errors(413))
async def move_ptz(
    camera_id: CameraId,
    body: PtzBody,
    _: Annotated[Principal, Depends(ptz_operator)],
    rig: Rig,
    state: TwinState = Depends(get_state),
) -> dict[str, Any]:
    """Set a PTZ camera's pan/tilt/zoom (operator or admin); publishes ``camera``."""
    ptz = PtzStatus(body.pan, body.tilt, body.zoom)
    record = await run_in_threadpool(rig.set_ptz, camera_id, ptz)
    publish_camera(state.bus, record)
    return record


@router.post("/cameras/{camera_id}/calibrate", responses=errors(413))
async def calibrate_camera(
    camera_id: CameraId,
    body: CalibrateBody,
    _: Annotated[Principal, Depends(require("admin"))],
    rig: Rig,
    state: TwinState = Depends(get_state),
) -> dict[str, Any]:
    """Solve the camera's pose from point pairs, save it in WS/cameras.json (admin); returns
    ``{calibration, camera}`` with the reprojection error in pixels; publishes ``camera``."""
    pairs = [PointPair(p.u, p.v, p.lon, p.lat, p.height) for p in body.pairs]

    def run() -> dict[str, Any]:
        result = rig.calibrate(camera_id, pairs, fit_focal=body.fit_focal)
        return {"calibration": result.report(), "camera": rig.describe(camera_id)}

    answer = await run_in_threadpool(run)
    publish_camera(state.bus, answer["camera"])
    return answer


@router.post("/drones/{drone_id}/telemetry", responses=errors(413))
async def drone_telemetry(
    drone_id: DroneId,
    body: TelemetryBody,
    _: Annotated[Principal, Depends(require("ingest"))],
    rig: Rig,
    state: TwinState = Depends(get_state),
) -> dict[str, Any]:
    """Update a drone's live camera from telemetry (ingest); publishes ``drone`` with its pose
    and footprint. The drone is then a camera of `GET /api/cameras`."""
    record = await run_in_threadpool(rig.update_drone, drone_id, body.telemetry())
    publish_drone(state.bus, record)
    return record


@router.put(
    "/cameras/{camera_id}/frame",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 413, 415),
    openapi_extra={"requestBody": {"required": True, "content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    }}},
)  # fmt: skip
async def put_frame(
    camera_id: CameraId,
    request: Request,
    _: Annotated[Principal, Depends(require("ingest"))],
    rig: Rig,
    state: TwinState = Depends(get_state),
) -> Response:
    """Keep a JPEG or PNG (the raw request body) as the newest frame of a camera or drone
    (ingest); the page's AR view and video projection show it. An ``X-Frame-Time`` header
    (ISO 8601 with a time zone) gives its capture time, so alert crops match observations by
    the detector's clock; without it the arrival time is used. A frame keeps the camera's feed
    fresh (`/readyz`) even when nothing is seen in it. Bodies over
    ``TWIN_MAX_FRAME_MIB`` are refused (413) before they are read."""
    await run_in_threadpool(rig.camera, camera_id)  # 404 for an unknown camera
    data = await request.body()
    kind = media_type(data)
    if kind is None:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send a JPEG or PNG frame")
    captured = _capture_time(request.headers.get("x-frame-time"))
    state.frames.put(camera_id, data, kind, captured)
    state.feeds.seen([camera_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _capture_time(header: str | None) -> datetime | None:
    """The ``X-Frame-Time`` header as a UTC time; 400 when it is not ISO 8601 with a zone."""
    if header is None:
        return None
    try:
        when = datetime.fromisoformat(header)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "X-Frame-Time must be ISO 8601 with a time zone"
        )
    return when.astimezone(UTC)


@router.get(
    "/cameras/{camera_id}/frame",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The frame"},
        204: {"description": "No frame yet"},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def get_frame(
    camera_id: CameraId,
    request: Request,
    _: Reader,
    rig: Rig,
    state: TwinState = Depends(get_state),
) -> Response:
    """The newest frame of a camera or drone (JPEG/PNG), else the still image its ``stream``
    names; 204 (no body) when there is neither yet, 404 for an unknown camera. Answers 304 to
    a matching ``If-None-Match``."""
    frame = state.frames.get(camera_id)
    if frame is None:
        record = await run_in_threadpool(rig.describe, camera_id)
        frame = await run_in_threadpool(still_frame, state.paths.root, record.get("stream"))
    if frame is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    headers = {
        "ETag": frame.etag,
        "Cache-Control": "no-cache",
        "X-Frame-Time": frame.time.isoformat(),
    }
    if request.headers.get("if-none-match") == frame.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(frame.data, media_type=frame.media_type, headers=headers)
