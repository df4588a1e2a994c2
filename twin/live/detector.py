"""Object detection and tracking on video frames: ultralytics YOLO + ByteTrack, loaded once.

Which detector classes we keep and the observation kind each becomes live here, in `twin`
(upstream of `scenes`, which validates observations but must not be imported from `twin`).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.errors import TwinError

# COCO class → observation kind ("person" | "vehicle" | "object"), the vocabulary of
# `scenes.models.ObservationKind`. Classes not listed become "object" when confident enough.
KIND_OF_CLASS: dict[str, str] = {
    "person": "person",
    "bicycle": "vehicle",
    "car": "vehicle",
    "motorcycle": "vehicle",
    "bus": "vehicle",
    "truck": "vehicle",
    "train": "vehicle",
    "boat": "vehicle",
}
MIN_CONFIDENCE = 0.25
"""Least confidence for people and vehicles."""
OBJECT_MIN_CONFIDENCE = 0.6
"""Least confidence for any other class (reported with kind "object")."""
LITERT_THREADS = 2
"""LiteRT interpreter threads (ultralytics picks cpu_count - 1, i.e. 1 on a 2-core machine)."""


def kind_of(cls: str, confidence: float) -> str | None:
    """Observation kind for a detector class and confidence, or None to discard it."""
    kind = KIND_OF_CLASS.get(cls)
    if kind is not None:
        return kind if confidence >= MIN_CONFIDENCE else None
    return "object" if confidence >= OBJECT_MIN_CONFIDENCE else None


def _tune_litert() -> None:
    """Give the LiteRT (tflite) backend `LITERT_THREADS` threads, when this ultralytics has it."""
    try:
        litert = importlib.import_module("ultralytics.nn.backends.litert")
    except ImportError:
        return
    if hasattr(litert, "NUM_THREADS"):
        setattr(litert, "NUM_THREADS", LITERT_THREADS)  # noqa: B010 - a module constant


@dataclass(frozen=True)
class Detection:
    """One detected (and possibly tracked) box. ``bbox`` is x1, y1, x2, y2 in frame pixels."""

    cls: str
    kind: str
    confidence: float
    bbox: tuple[float, float, float, float]
    track_id: int | None = None

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom-centre of the box (px): where a person or vehicle touches the ground."""
        x1, _, x2, y2 = self.bbox
        return (x1 + x2) / 2.0, y2


class Detector:
    """A YOLO model loaded once; `detect` runs it (with ByteTrack when `track`) on BGR frames.

    Examples
    --------
    >>> det = Detector(Path("models/yolov8n_int8.tflite"))  # doctest: +SKIP
    >>> [d.cls for d in det.detect(cv2.imread("bus.jpg"))]  # doctest: +SKIP
    ['person', 'person', 'person', 'bus', 'person']
    """

    def __init__(self, model: Path, *, track: bool = True, imgsz: int | None = None) -> None:
        if not Path(model).is_file():
            raise TwinError(f"detector model {model} does not exist")
        os.environ.setdefault("YOLO_VERBOSE", "False")
        _tune_litert()
        from ultralytics import YOLO

        try:
            self._model: Any = YOLO(str(model), task="detect")
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise TwinError(f"cannot load detector model {model}: {exc}") from exc
        self.track = track
        self.imgsz = imgsz

    def warm_up(self) -> None:
        """Run the model once on a blank frame, so the first real frame is not late."""
        self._model.predict(np.zeros((640, 640, 3), np.uint8), verbose=False)

    def detect(self, frame: NDArray[Any]) -> list[Detection]:
        """Detections on one BGR frame (H, W, 3) that `kind_of` keeps, in model order."""
        kwargs: dict[str, Any] = {"verbose": False}
        if self.imgsz:
            kwargs["imgsz"] = self.imgsz
        if self.track:
            results = self._model.track(frame, persist=True, tracker="bytetrack.yaml", **kwargs)
        else:
            results = self._model.predict(frame, **kwargs)
        result = results[0]
        names = result.names
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        xyxy = boxes.xyxy.cpu().numpy()
        classes = boxes.cls.cpu().numpy().astype(int)
        confs = boxes.conf.cpu().numpy()
        ids = boxes.id.cpu().numpy().astype(int) if boxes.id is not None else [None] * len(xyxy)
        found = []
        for box, cls_index, conf, track_id in zip(xyxy, classes, confs, ids, strict=True):
            cls = str(names[int(cls_index)])
            kind = kind_of(cls, float(conf))
            if kind is None:
                continue
            x1, y1, x2, y2 = (float(c) for c in box)
            found.append(
                Detection(
                    cls=cls,
                    kind=kind,
                    confidence=float(conf),
                    bbox=(x1, y1, x2, y2),
                    track_id=None if track_id is None else int(track_id),
                )
            )
        return found
