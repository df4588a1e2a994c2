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
from twin.live.frames import Frame
from twin.live.ground import Ground
from twin.live.job import DetectionJob
from twin.live.observations import detections_to_observations
from twin.live.sources import open_source
from twin.live.tracking import WorldTracker

__all__ = [
    "Detection",
    "DetectionJob",
    "DetectionStats",
    "Detector",
    "detections_to_observations",
    "run_detection",
]

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


class _FrameLoop:
    """The per-frame work of one run: detect, enrich, project, track, send, and the stats."""

    def __init__(self, job: DetectionJob, console: Console, enricher: CropEnricher | None):
        self.camera = fetch_camera(job.server, job.camera, job.token)
        self.frames = open_source(job.source, fps=job.fps, loop=job.loop)
        self.ground = _ground(job.workspace, console)
        self.tracker = WorldTracker()
        self.detector = Detector(job.model)
        self.detector.warm_up()
        self.enricher = enricher
        self.sender = ObservationSender(job.server, job.token)
        self.publisher = FramePublisher(job.server, self.camera.id, job.token)
        self.follower = PoseFollower(job.server, self.camera, job.token)
        self.stats = DetectionStats()
        self.busy_s = 0.0

    def process(self, frame: Frame) -> None:
        """Detect on one frame and send its observations (queued; sent in the background)."""
        tick = time.monotonic()
        detections = self.detector.detect(frame.image)
        extra = None
        if self.enricher is not None:
            extra = self.enricher.attributes(frame.image, detections, frame.index)
        observations = detections_to_observations(
            detections, self.follower.current(), frame.index, frame.time,
            frame_size=frame.size, ground=self.ground, extra=extra,
        )  # fmt: skip
        self.sender.send(self.tracker.update(observations))
        self.publisher.maybe_send(frame.image, frame.time)
        self.busy_s += time.monotonic() - tick
        stats, frames = self.stats, self.frames
        stats.frames += 1
        stats.dropped, stats.reconnects = frames.dropped, frames.reconnects
        stats.longest_gap_s = max(frames.gaps, default=0.0)
        stats.fps = stats.frames / self.busy_s if self.busy_s > 0 else 0.0

    def describe(self) -> str:
        """The progress line: frames, throughput, observations sent and waiting, drops."""
        return (
            f"{self.camera.id}: {self.stats.frames} frames, {self.stats.fps:.1f} fps, "
            f"{self.sender.sent} observations sent, {self.sender.pending} waiting, "
            f"{self.stats.dropped} dropped"
        )

    def finish(self) -> DetectionStats:
        """Close the senders; the run's stats with what was delivered and what was not."""
        self.sender.close()
        self.publisher.close()
        self.stats.observations = self.sender.sent
        self.stats.unsent = self.sender.pending + self.sender.lost
        return self.stats


def run_detection(
    job: DetectionJob, *, console: Console, enricher: CropEnricher | None = None
) -> DetectionStats:
    """Detect and track people and vehicles in the job's source and send them to its server
    as observations, until the source ends or Ctrl+C; then send what is left (at most
    `FLUSH_TIMEOUT_S`).

    `enricher` reads plates and runs vehicle classifiers on vehicle crops (default: none;
    `twin.live.enrich.CropEnricher.standard()` reads plates and judges truck covers).
    """
    loop = _FrameLoop(job, console, enricher)
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"{loop.camera.id}: starting", total=None)
            try:
                for frame in loop.frames.frames():
                    loop.process(frame)
                    progress.update(task, description=loop.describe())
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/]; sending what is left")
            sender = loop.sender
            if sender.pending and not sender.flush(FLUSH_TIMEOUT_S):
                console.print(
                    f"[yellow]warning:[/] {sender.pending} observations could not be sent to "
                    f"{job.server}"
                )
    finally:
        stats = loop.finish()
    return stats
