"""Reading Chinese licence plates from a vehicle crop with OCR.

What a valid plate is, and how plate text is normalised, is in `twin.plates` (shared with the
rule engine). Reading uses PP-OCR models bundled with ``rapidocr-onnxruntime`` (nothing is
downloaded at run time).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.errors import TwinError
from twin.plates import parse_plate, plate_kind


@dataclass(frozen=True)
class PlateReading:
    """A plate read from an image: normalised text, its kind, and the OCR confidence (0–1, the
    least confidence of the text pieces it was assembled from)."""

    plate: str
    kind: str
    confidence: float


def _lines(pieces: list[tuple[list[list[float]], str, float]]) -> list[tuple[str, float]]:
    """OCR pieces grouped into text lines (vertical overlap), each read left to right, with the
    least confidence of its pieces; plus every piece on its own."""
    boxes = []
    for quad, text, score in pieces:
        xs = [p[0] for p in quad]
        ys = [p[1] for p in quad]
        boxes.append((min(xs), min(ys), max(ys), str(text), float(score)))
    boxes.sort(key=lambda b: b[0])
    lines: list[list[tuple[float, float, float, str, float]]] = []
    for box in boxes:
        for line in lines:
            top = min(b[1] for b in line)
            bottom = max(b[2] for b in line)
            overlap = min(bottom, box[2]) - max(top, box[1])
            if overlap > 0.5 * min(bottom - top, box[2] - box[1]):
                line.append(box)
                break
        else:
            lines.append([box])
    joined = [("".join(b[3] for b in line), min(b[4] for b in line)) for line in lines]
    return joined + [(b[3], b[4]) for b in boxes]


class PlateReader:
    """Reads licence plates from BGR images (a vehicle crop or a plate) with PP-OCR.

    The OCR engine is loaded on first use and shared; `read` is thread-safe (one at a time).
    Text detection runs on the image scaled down to at most `max_side_px` pixels (never up:
    up-scaling small crops costs more than it gains), so give it the vehicle box, not a frame.

    Examples
    --------
    >>> PlateReader().read(cv2.imread("car.jpg"))  # doctest: +SKIP
    PlateReading(plate='沪A12345', kind='ordinary', confidence=0.99)
    """

    def __init__(self, *, min_confidence: float = 0.6, max_side_px: int = 640) -> None:
        self.min_confidence = min_confidence
        self.max_side_px = max_side_px
        self._engine: Any = None
        self._lock = threading.Lock()

    def _ocr(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:  # pragma: no cover - a dependency of the project
                raise TwinError("plate reading needs rapidocr-onnxruntime") from exc
            self._engine = RapidOCR(det_limit_side_len=self.max_side_px, det_limit_type="max")
        return self._engine

    def read(self, image: NDArray[np.uint8]) -> PlateReading | None:
        """The most confident valid plate in a BGR image (H, W, 3), or None when no text read
        there is a valid plate at `min_confidence` or more."""
        if image.ndim != 3 or min(image.shape[:2]) < 8:
            return None
        with self._lock:
            result, _ = self._ocr()(np.ascontiguousarray(image), use_cls=False)
        best: PlateReading | None = None
        for text, score in _lines(result or []):
            plate = parse_plate(text)
            if plate is None or score < self.min_confidence:
                continue
            if best is None or score > best.confidence:
                kind = plate_kind(plate) or "ordinary"
                best = PlateReading(plate, kind, round(score, 4))
        return best
