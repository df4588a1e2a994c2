"""Detection benchmark: frames/s of the bare YOLO tracker against the pipeline (tracker +
pixel→world projection + observation records), on flat ground and on the sample district's
meshes with world tracking (the path `twin detect --workspace` runs), on real frames, and the
pipeline's overhead over the bare model (goal < 15 %)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, SAMPLE, TWIN, percentiles, show

MODEL = REPO / "models" / "yolov8n_int8.tflite"
FRAMES = 40


def _frames() -> list[np.ndarray]:
    import cv2
    import ultralytics

    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    if image is None:
        raise SystemExit("cannot read ultralytics/assets/bus.jpg")
    canvas = np.concatenate([image, image[:, ::-1]], axis=1)
    width = image.shape[1]
    return [canvas[:, s : s + width].copy() for s in np.linspace(0, width // 2, FRAMES).astype(int)]


def _time_interleaved(
    steps: Sequence[Callable[[np.ndarray], object]], frames: list[np.ndarray]
) -> list[tuple[float, dict[str, float]]]:
    """fps and latency percentiles (ms) of each step, run in turn on every frame so that load
    from elsewhere on the machine falls on all of them alike."""
    latencies: list[list[float]] = [[] for _ in steps]
    for frame in frames:
        for step, times in zip(steps, latencies, strict=True):
            t0 = time.perf_counter()
            step(frame)
            times.append((time.perf_counter() - t0) * 1000)
    return [(1000 * len(t) / sum(t), percentiles(t)) for t in latencies]


def _step(
    detector: Any, camera: Any, ground: Any, tracker: Any, tally: dict[str, float]
) -> Callable[[np.ndarray], None]:
    """One pipeline frame: detect, project onto `ground`, smooth with `tracker` (or not);
    `tally` sums the observations and the ms spent in the model and after it."""
    from twin.live.detect import detections_to_observations

    def step(frame: np.ndarray) -> None:
        t0 = time.perf_counter()
        detections = detector.detect(frame)
        t1 = time.perf_counter()
        found = detections_to_observations(detections, camera, 0, datetime.now(UTC), ground=ground)
        count = len(tracker.update(found) if tracker else found)
        t2 = time.perf_counter()
        tally["observations"] += count
        tally["model_ms"] += (t1 - t0) * 1000
        tally["after_ms"] += (t2 - t1) * 1000

    return step


def main() -> None:
    from ultralytics import YOLO

    from twin.cameras.camera import Camera
    from twin.live.detect import Detector
    from twin.live.ground import Ground
    from twin.live.tracking import WorldTracker

    frames = _frames()
    detector = Detector(MODEL)  # first: it gives LiteRT its threads, for both models
    bare = YOLO(str(MODEL), task="detect")
    camera = Camera(
        id="camera:bench", lon=121.4859, lat=31.2384, ground_height=4.0, mount_height=6.0,
        heading=354.0, pitch=-12.0, roll=0.0, hfov=60.0, image_width=810, image_height=1080,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True,
                       capture_output=True)  # fmt: skip
        district = Ground.from_workspace(ws)
        flat, full = (dict.fromkeys(("observations", "model_ms", "after_ms"), 0.0) for _ in "ab")
        steps = [
            lambda f: bare.track(f, persist=True, tracker="bytetrack.yaml", verbose=False),
            _step(detector, camera, Ground.flat(), None, flat),
            _step(detector, camera, district, WorldTracker(), full),
        ]
        for step in steps:
            step(frames[0])  # warm-up
        for tally in (flat, full):
            tally.update(dict.fromkeys(tally, 0.0))
        timed = _time_interleaved(steps, frames)
    bare_fps = timed[0][0]
    names = ["bare YOLO track", "pipeline, flat ground", "pipeline, district + tracking"]
    rows: list[tuple[object, ...]] = [("bare YOLO track (ByteTrack)", *timed[0][:1],
        timed[0][1]["p50"], timed[0][1]["p99"], "", "", "")]  # fmt: skip
    for name, (fps, lat), tally in zip(names[1:], timed[1:], (flat, full), strict=True):
        rows.append((
            name, fps, lat["p50"], lat["p99"], f"{(bare_fps / fps - 1) * 100:.1f}",
            f"{tally['after_ms'] / tally['model_ms'] * 100:.1f}", int(tally["observations"]),
        ))  # fmt: skip
    show(
        f"Detection on {FRAMES} real 810×1080 frames (bus.jpg panned), 2 CPU cores",
        ["path", "fps", "p50 ms", "p99 ms", "vs bare %", "after model %", "observations"],
        rows,
    )


if __name__ == "__main__":
    main()
