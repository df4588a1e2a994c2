"""`twin view WS`: the desktop viewer in a Qt window, or with a screenshot path one offscreen
render to a PNG (no display needed). With a server URL, records come from the server and the
live layer from its ``/ws/live``; without one the viewer is offline and says so."""

from __future__ import annotations

from pathlib import Path

from twin.viewer.offscreen import Shot, render


def view(ws: Path, shot: Shot, screenshot: Path | None = None) -> None:
    """Open workspace `ws` in the window, or render `screenshot` as `shot` says and return.
    `shot` also carries the colour modes and server (URL, token) for the window."""
    if screenshot is not None:
        render(Path(ws), screenshot, shot)
        return
    from twin.viewer.client import TwinClient
    from twin.viewer.district import District
    from twin.viewer.live import LiveFeed
    from twin.viewer.window import ViewerWindow, run

    district = District.open(Path(ws))
    client = TwinClient(shot.server, shot.token) if shot.server else None
    feed = LiveFeed(client.live_url).start() if client is not None else None

    def make() -> ViewerWindow:
        window = ViewerWindow(district, client=client, feed=feed, colour_by=shot.colour_by,
                              point_colours=shot.point_colours)  # fmt: skip
        if shot.layers is not None:
            window.show_only(shot.layers)
        if shot.select is not None:
            window.select(shot.select)
            target = window.scene.element_view(shot.select)
            if target is not None:
                window.scene.set_view(target)
        if shot.camera is not None:
            window.look_through(shot.camera)
        return window

    run(make)
