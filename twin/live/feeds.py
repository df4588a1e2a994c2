"""Several cameras from one config: ``twin detect --config feeds.yaml`` runs one detection
worker process per feed (multiprocessing, spawn) under a supervisor that restarts a crashed
worker with exponential backoff and stops them all cleanly on Ctrl+C.

The config is a YAML list of feeds, strict (an unknown key is an error that names it)::

    - {source: videos/gate.mp4, camera: "camera:cam-gate"}
    - {source: "rtsp://10.0.0.7/stream1", camera: "camera:cam-ptz", model: models/y.pt, fps: 5}

``source`` is a video file, image folder, image or stream URL (relative paths are taken from
the config file's folder); ``camera`` the camera's element id, its layer's own id or its
20-digit GB/T 28181 code (the cameras layer's ``gb_code`` column); ``model``, ``fps`` and
``loop`` default to the command's options; ``ptz`` says where a PTZ head reports its pose, for
``twin ptz follow`` (`twin.live.ptz_follow`).

Signals: workers ignore SIGINT (a terminal's Ctrl+C reaches the whole process group) and treat
SIGTERM as an interrupt, so only the supervisor decides: on Ctrl+C it sends SIGTERM to each
worker, which stops reading frames, sends what it still holds and exits; a worker still alive
after `STOP_TIMEOUT_S` is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from twin.errors import ConfigError, TwinError
from twin.live.job import DetectionJob
from twin.live.ptz_follow import PtzConfig

RESTART_BACKOFF_S = 1.0
RESTART_BACKOFF_MAX_S = 60.0
STABLE_S = 60.0
"""A worker that ran this long before crashing restarts after the shortest backoff again."""
STOP_TIMEOUT_S = 25.0
POLL_S = 0.2
ORPHAN_POLL_S = 1.0


class FeedConfig(BaseModel):
    """One camera feed of a feeds config."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, title="Video file, image folder, image or stream URL")
    camera: str = Field(
        min_length=1, title="Camera element id (camera:cam-gate), layer id or GB/T 28181 code"
    )
    model: Path | None = Field(default=None, title="Detector model (default: the command's)")
    fps: float | None = Field(default=None, gt=0, le=240, title="Frames/s of image sources")
    loop: int | None = Field(default=None, ge=0, title="Plays of the source (0 = forever)")
    ptz: PtzConfig | None = Field(
        default=None, title="Where the PTZ head reports its pose (twin ptz follow)"
    )


def read_feeds(path: Path) -> list[FeedConfig]:
    """The feeds of config file `path`, relative sources and models resolved against its
    folder. Raises `ConfigError` naming the file, the feed (row) and the key at fault."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read feeds config ({exc.strerror})", file=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({exc})", file=str(path)) from exc
    if not isinstance(data, list) or not data:
        raise ConfigError(
            "expected a non-empty list of feeds", file=str(path),
            hint="each item: {source: ..., camera: ..., model?: ..., fps?: ..., loop?: ...}",
        )  # fmt: skip
    base = Path(path).resolve().parent
    feeds = []
    for row, item in enumerate(data, start=1):
        try:
            feed = FeedConfig.model_validate(item)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(p) for p in error["loc"]) or None
            raise ConfigError(error["msg"], file=str(path), row=row, field=key) from exc
        if "://" not in feed.source and not Path(feed.source).is_absolute():
            feed.source = str(base / feed.source)
        if feed.model is not None and not feed.model.is_absolute():
            feed.model = base / feed.model
        feeds.append(feed)
    return feeds


def _stop_when_orphaned(supervisor: int) -> None:
    """Stop the worker as its supervisor would (SIGTERM) once the supervisor is gone (killed
    outright, it could not): no worker runs on unsupervised."""
    while os.getppid() == supervisor:
        time.sleep(ORPHAN_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def run_worker(job: DetectionJob) -> None:
    """Entry point of a worker process: run the detection on one feed; exit code 0 when the
    feed ended or was stopped (by the supervisor, or because it is gone), 2 on an error
    (printed in one line)."""
    from twin.live.detect import run_detection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    watch = threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True)
    watch.start()
    console = Console(stderr=True)
    try:
        stats = run_detection(job, console=console)
    except KeyboardInterrupt:
        sys.exit(0)
    except TwinError as err:
        console.print(f"[red]{job.camera}: error:[/] {err.one_line()}", soft_wrap=True)
        sys.exit(2)
    console.print(f"{job.camera}: done: {stats.summary()}", highlight=False, soft_wrap=True)


@dataclass
class _Slot:
    job: DetectionJob
    process: BaseProcess | None = None
    started: float = 0.0
    next_start: float = 0.0
    backoff: float = 0.0
    restarts: int = 0
    done: bool = False


class Supervisor:
    """Runs one worker process per job and keeps them running until each feed ends."""

    def __init__(self, jobs: list[DetectionJob], console: Console) -> None:
        self._ctx: Any = multiprocessing.get_context("spawn")
        self.slots = [_Slot(job) for job in jobs]
        self.console = console

    def run(self) -> int:
        """Supervise until every feed has ended or Ctrl+C; returns the restarts made."""
        try:
            while not all(slot.done for slot in self.slots):
                now = time.monotonic()
                for number, slot in enumerate(self.slots, start=1):
                    self._tend(number, slot, now)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self.console.print("[yellow]interrupted[/]; stopping the workers")
        finally:
            self.stop()
        return sum(slot.restarts for slot in self.slots)

    def _tend(self, number: int, slot: _Slot, now: float) -> None:
        name = f"feed {number} ({slot.job.camera})"
        if slot.done:
            return
        if slot.process is None:
            if now >= slot.next_start:
                slot.process = self._ctx.Process(
                    target=run_worker, args=(slot.job,), name=f"twin-detect-{number}"
                )
                assert slot.process is not None
                slot.process.start()
                slot.started = now
                self.console.print(f"{name}: worker started (pid {slot.process.pid})")
            return
        code = slot.process.exitcode
        if code is None:
            return
        slot.process = None
        if code == 0:
            slot.done = True
            self.console.print(f"{name}: worker finished")
            return
        if now - slot.started >= STABLE_S:
            slot.backoff = 0.0
        slot.backoff = min(RESTART_BACKOFF_MAX_S, max(RESTART_BACKOFF_S, slot.backoff * 2))
        slot.next_start = now + slot.backoff
        slot.restarts += 1
        self.console.print(
            f"[yellow]{name}: worker exited with code {code}; restarting in {slot.backoff:.0f} s[/]"
        )

    def stop(self) -> None:
        """SIGTERM every live worker, wait for them to send what they hold, kill stragglers."""
        alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def run_feeds(
    config: Path,
    *,
    model: Path,
    fps: float,
    loop: int,
    server: str,
    token: str | None,
    workspace: Path | None,
    console: Console,
) -> int:
    """Run every feed of `config` in its own supervised worker process until each ends (or
    Ctrl+C); `model`, `fps`, `loop` are the defaults for feeds that do not set them. Returns
    the number of worker restarts."""
    jobs = []
    for feed in read_feeds(config):
        job = DetectionJob(
            source=feed.source, camera=feed.camera, model=feed.model or model,
            fps=feed.fps or fps, loop=loop if feed.loop is None else feed.loop,
            server=server, token=token, workspace=workspace,
        )  # fmt: skip
        jobs.append(job)
    return Supervisor(jobs, console).run()
