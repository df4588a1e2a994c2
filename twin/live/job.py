"""`DetectionJob`: what one detection worker runs (`twin detect`, one feed of a feeds config,
the demo's replay). Plain values, so a job crosses a process boundary as it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DetectionJob:
    """One camera feed to detect on and where to send what is seen.

    ``source``: video file, image folder, image file or stream URL. ``camera``: the camera's
    element id or its layer's own id (read from ``server``). ``model``: ultralytics model file.
    ``server``, ``token``: twin server URL and ingest bearer token. ``workspace``: the
    workspace whose terrain and building meshes the rays land on (None: flat ground).
    ``loop``: plays of the source (0 = forever). ``fps``: frame rate of image sources.
    """

    source: str
    camera: str
    model: Path
    server: str
    token: str | None
    workspace: Path | None
    loop: int
    fps: float
