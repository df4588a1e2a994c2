"""The detection worker (`twin detect`): frames → YOLO + ByteTrack → rays from the camera onto the
ground (terrain and buildings) → tracks smoothed in world coordinates → observations POSTed to
the twin server.

One worker serves one camera; run one process per feed to scale out (`docs/deploy.md`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from twin.errors import WorkspaceError
from twin.live.client import FramePublisher, ObservationSender, PoseFollower, fetch_camera
from twin.live.detector import Detection, Detector
from twin.live.enrich import CropEnricher
from twin.live.ground import Ground
from twin.live.observations import detections_to_observations
from twin.live.sources import open_source
from twin.live.tracking import WorldTracker

__all__ = ["Detection", "DetectionStats", "Detector", "detections_to_observations", "run_detection"]

FLUSH_TIMEOUT_S = 15.0


@dataclass
class DetectionStats:
    """What a run did: frames processed, observations delivered, detection throughput (frames
    per second of processing time, pacing waits excluded), frames skipped to keep up with real
    time, observations not delivered, reconnections to the source and the longest time it gave
    no frames (s)."""

    frames: int = 0
    observations: int = 0
    fps: float = 0.0
    dropped: int = 0
    unsent: int = 0
    reconnects: int = 0
    longest_gap_s: float = 0.0

    def summary(self) -> str:
        """One line: frames, observations sent, throughput, drops, reconnects and gap."""
        line = (
            f"{self.frames} frames, {self.observations} observations sent, {self.fps:.1f} fps, "
            f"{self.dropped} frames dropped, {self.reconnects} reconnects"
        )
        return line + (f" (longest gap {self.longest_gap_s:.1f} s)" if self.reconnects else "")


def _ground(workspace: Path | None, console: Console) -> Ground:
    if workspace is None:
        return Ground.flat()
    try:
        return Ground.from_workspace(workspace)
    except WorkspaceError as err:
        console.print(f"[yellow]warning:[/] {err.one_line()}; using flat ground")
        return Ground.flat()


def run_detection(
    source: str,
    camera_id: str,
    *,
    model: Path,
    server: str,
    token: str | None,
    workspace: Path | None,
    loop: int,
    fps: float,
    console: Console,
    enricher: CropEnricher | None = None,
) -> DetectionStats:
    """Detect and track people and vehicles in `source` and send them as observations.

    Parameters
    ----------
    source : video file, image folder, image file or stream URL.
    camera_id : catalog id of the camera that produced the source (read from `server`).
    model : ultralytics model file. server, token : twin server URL and ingest bearer token.
    workspace : workspace whose terrain/building meshes the rays land on (else flat ground).
    loop : play the source this many times (0 = forever). fps : frame rate of image sources.
    enricher : reads plates and runs vehicle classifiers on vehicle crops (default: none;
        `twin.live.enrich.CropEnricher.standard()` reads plates and judges truck covers).
    """
    camera = fetch_camera(server, camera_id, token)
    frames = open_source(source, fps=fps, loop=loop)
    ground = _ground(workspace, console)
    tracker = WorldTracker()
    detector = Detector(model)
    detector.warm_up()
    sender = ObservationSender(server, token)
    publisher = FramePublisher(server, camera.id, token)
    follower = PoseFollower(server, camera, token)
    stats = DetectionStats()
    busy = 0.0
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"{camera.id}: starting", total=None)
            try:
                for frame in frames.frames():
                    tick = time.monotonic()
                    detections = detector.detect(frame.image)
                    extra = None
                    if enricher is not None:
                        extra = enricher.attributes(frame.image, detections, frame.index)
                    observations = detections_to_observations(
                        detections, follower.current(), frame.index, frame.time,
                        frame_size=frame.size, ground=ground, extra=extra,
                    )  # fmt: skip
                    sender.send(tracker.update(observations))
                    publisher.maybe_send(frame.image, frame.time)
                    busy += time.monotonic() - tick
                    stats.frames += 1
                    stats.dropped, stats.reconnects = frames.dropped, frames.reconnects
                    stats.longest_gap_s = max(frames.gaps, default=0.0)
                    stats.fps = stats.frames / busy if busy > 0 else 0.0
                    progress.update(
                        task,
                        description=f"{camera.id}: {stats.frames} frames, {stats.fps:.1f} fps, "
                        f"{sender.sent} observations sent, {sender.pending} waiting, "
                        f"{stats.dropped} dropped",
                    )
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/]; sending what is left")
            if sender.pending and not sender.flush(FLUSH_TIMEOUT_S):
                console.print(
                    f"[yellow]warning:[/] {sender.pending} observations could not be sent to "
                    f"{server}"
                )
    finally:
        sender.close()
        publisher.close()
    stats.observations = sender.sent
    stats.unsent = sender.pending + sender.lost
    return stats
