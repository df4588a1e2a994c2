"""`twin view WS --screenshot FILE`: render the district offscreen (EGL, no display) to a PNG
of any size and return, for tests and report figures: optionally with an element selected
(and framed), through a camera, with only some layers, and with the live layer and camera
frames of a running server."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from twin.errors import NotFoundError, TwinError
from twin.viewer.colours import ColourBy, PointColours

DEFAULT_SIZE = (1600, 1000)
SNAPSHOT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Shot:
    """What to render: window size (px), element to select, camera to look through, layers to
    show (None: all), colour modes, and the server (URL, token) for live data."""

    size: tuple[int, int] | None = None
    select: str | None = None
    camera: str | None = None
    layers: Sequence[str] | None = None
    colour_by: ColourBy = "height"
    point_colours: PointColours = "rgb"
    server: str | None = None
    token: str | None = None


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (px, e.g. ``1600x1000``) → (width, height); `TwinError` when malformed."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise TwinError(f"--size must be WIDTHxHEIGHT in pixels (e.g. 1600x1000), not {text!r}")
    size = int(width), int(height)
    if not (16 <= size[0] <= 16384 and 16 <= size[1] <= 16384):
        raise TwinError(f"--size {text}: each side must be 16 to 16384 px")
    return size


def decode_image(data: bytes | None) -> NDArray[np.uint8] | None:
    """RGB pixels (rows from the top) of JPEG/PNG bytes, None when there are none or they do
    not decode."""
    if not data:
        return None
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[:, :, ::-1])


def render(ws: Path, out: Path, shot: Shot) -> Path:
    """Render workspace `ws` as `shot` says into the PNG `out`."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    from twin.viewer.client import TwinClient
    from twin.viewer.district import District
    from twin.viewer.live import LiveState, snapshot
    from twin.viewer.scene import SceneView

    district = District.open(ws)
    client = TwinClient(shot.server, shot.token) if shot.server else None
    cameras = client.cameras() if client is not None else district.cameras()
    camera = None
    if shot.camera is not None:
        camera = next((c for c in cameras if c.id in (shot.camera, f"camera:{shot.camera}")),
                      None)  # fmt: skip
        if camera is None:
            raise NotFoundError(f"no camera '{shot.camera}' in {ws}",
                                hint="camera ids are listed by GET /api/cameras")  # fmt: skip
    size = shot.size or DEFAULT_SIZE
    if camera is not None and shot.size is None:
        size = (DEFAULT_SIZE[0], round(DEFAULT_SIZE[0] * camera.image_height / camera.image_width))
    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    try:
        scene = SceneView(plotter, district, shot.colour_by, shot.point_colours,
                          text_scale=max(1.0, size[1] / DEFAULT_SIZE[1]))  # fmt: skip
        scene.set_cameras(cameras)
        if client is not None:
            state = LiveState(district.to_enu)
            snapshot(client.live_url, state, SNAPSHOT_TIMEOUT_S)
            scene.update_live(state)
        if shot.layers is not None:
            scene.show_only(shot.layers)
        if shot.select is not None:
            if not scene.select(shot.select):
                raise NotFoundError(f"no element '{shot.select}' in {ws}")
            view = scene.element_view(shot.select)
            if view is not None and camera is None:
                scene.set_view(view)
        if camera is not None:
            frame = decode_image(client.frame(camera.id)) if client is not None else None
            scene.look_through(camera, frame)
        scene.settle()
        out.parent.mkdir(parents=True, exist_ok=True)
        scene.render()
        plotter.screenshot(str(out))
    except (RuntimeError, OSError) as exc:
        raise TwinError(f"cannot render {out}: {exc}") from exc
    finally:
        plotter.close()
        district.tiles.close()
        if client is not None:
            client.close()
    return out
