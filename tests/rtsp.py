"""The test RTSP camera: the demo's street (ultralytics' bus.jpg beside its mirror image, the
camera panning across them, as `twin demo` plays it) made into an H.264 clip by ffmpeg and
served by GStreamer's RTSP server (`tests/rtsp_server.py`) in its own process that a test can
stop and start again on the same port, as a camera or media gateway restarts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ultralytics

from bench.common import free_port

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi and the GStreamer RTSP server
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
FPS = 10
BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"  # 810 × 1080 px
PAN = "[0]split[a][b];[b]hflip[m];[a][m]hstack,crop=810:1080:x='405*(1-cos(t/2))':y=0"


def make_clip(folder: Path, seconds: int = 40) -> Path:
    """An H.264 MP4 of the panning street at `FPS`, 240 × 320 px, a key frame a second."""
    clip = folder / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-framerate", str(FPS),
         "-t", str(seconds), "-i", str(BUS_JPG), "-filter_complex", f"{PAN},scale=240:320",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p",
         "-g", str(FPS), "-bf", "0", str(clip)], check=True, timeout=120,
    )  # fmt: skip
    return clip


class RtspCamera:
    """The clip at ``rtsp://127.0.0.1:PORT/clip`` while `start`ed."""

    def __init__(self, clip: Path) -> None:
        self.clip, self.port = clip, free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/clip"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        log = self.clip.parent / f"rtsp-{self.port}.log"
        with log.open("a") as errors:
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), str(self.port), str(self.clip)],
                stdout=subprocess.PIPE, stderr=errors, text=True,
            )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "ready", log.read_text()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
