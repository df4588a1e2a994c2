"""Detection benchmark: frames/s of the bare YOLO tracker against the full pipeline (tracker +
pixel→world projection + observation records) on real frames, and the pipeline's overhead."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import REPO, percentiles, show

MODEL = REPO / "models" / "yolov8n_int8.tflite"
FRAMES = 40


def _frames() -> list[np.ndarray]:
    import cv2
    import ultralytics

    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    canvas = np.concatenate([image, image[:, ::-1]], axis=1)
    width = image.shape[1]
    return [canvas[:, s : s + width].copy() for s in np.linspace(0, width // 2, FRAMES).astype(int)]


def _time_loop(step: object, frames: list[np.ndarray]) -> tuple[float, dict[str, float]]:
    latencies = []
    start = time.perf_counter()
    for frame in frames:
        t0 = time.perf_counter()
        step(frame)  # type: ignore[operator]
        latencies.append((time.perf_counter() - t0) * 1000)
    return len(frames) / (time.perf_counter() - start), percentiles(latencies)


def main() -> None:
    from ultralytics import YOLO

    from twin.cameras.camera import Camera
    from twin.live.detect import Detector, detections_to_observations

    frames = _frames()
    bare = YOLO(str(MODEL), task="detect")
    bare.track(frames[0], persist=True, verbose=False)  # warm-up
    bare_fps, bare_lat = _time_loop(lambda f: bare.track(f, persist=True, verbose=False), frames)

    camera = Camera(
        id="camera:bench", lon=121.4859, lat=31.2384, ground_height=4.0, mount_height=6.0,
        heading=0.0, pitch=-12.0, roll=0.0, hfov=60.0, image_width=810, image_height=1080,
    )  # fmt: skip
    detector = Detector(MODEL)
    detector.detect(frames[0])
    count = [0]

    def pipeline(frame: np.ndarray) -> None:
        detections = detector.detect(frame)
        count[0] += len(detections_to_observations(detections, camera, 0, datetime.now(UTC)))

    pipe_fps, pipe_lat = _time_loop(pipeline, frames)
    overhead = (bare_fps / pipe_fps - 1) * 100
    show(
        f"Detection on {FRAMES} real 810×1080 frames (bus.jpg panned), 2 CPU cores",
        ["path", "fps", "p50 ms", "p99 ms"],
        [
            ("bare YOLO track", bare_fps, bare_lat["p50"], bare_lat["p99"]),
            ("pipeline (track+project+records)", pipe_fps, pipe_lat["p50"], pipe_lat["p99"]),
        ],
    )
    print(f"pipeline overhead over the bare model: {overhead:.1f} %; observations: {count[0]}")


if __name__ == "__main__":
    main()
