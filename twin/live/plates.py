"""Chinese licence plates: normalisation, validation and reading from a vehicle crop.

Plate text is normalised here (``twin`` is upstream of ``scenes``, which hashes plates with the
same normalisation). A valid plate is a province character, the issuing-authority letter and
five characters (ordinary plates, blue or yellow) or six (new-energy plates, green):

- ordinary: ``沪A12345``, ``京N8P8F8``; the last character may be 学/警/挂/港/澳/领;
- new-energy small cars: ``粤BD12345`` (D…K then a letter or digit then four digits);
- new-energy large vehicles: ``苏A12345D`` (five digits then D or F).

Letters I and O are never used on plates, so a read ``O``/``I`` among the serial characters is
taken as ``0``/``1``. Reading uses PP-OCR models bundled with ``rapidocr-onnxruntime`` (nothing
is downloaded at run time).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.errors import TwinError

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "A-HJ-NP-Z"  # no I, no O
_SERIAL = f"[{_LETTER}0-9]"
_ORDINARY = re.compile(f"^[{PROVINCES}][{_LETTER}]{_SERIAL}{{4}}(?:{_SERIAL}|[学警挂港澳领])$")
_NEW_ENERGY = re.compile(f"^[{PROVINCES}][{_LETTER}](?:[A-HJK]{_SERIAL}[0-9]{{4}}|[0-9]{{5}}[DF])$")
_JUNK = re.compile(r"[\s.\-·•_:：]+")
_SERIAL_FIX = str.maketrans({"O": "0", "I": "1"})


def normalise_plate(text: str) -> str:
    """Upper case, full-width folded, spaces/dots/hyphens/middle dots removed; the Chinese
    province character is kept (``"沪a·123-45"`` → ``"沪A12345"``)."""
    return _JUNK.sub("", unicodedata.normalize("NFKC", text)).upper()


def plate_kind(plate: str) -> str | None:
    """``"ordinary"`` or ``"new-energy"`` for a valid normalised plate, else None."""
    if _NEW_ENERGY.match(plate):
        return "new-energy"
    if _ORDINARY.match(plate):
        return "ordinary"
    return None


def parse_plate(text: str) -> str | None:
    """The valid normalised plate in OCR `text`, or None.

    The text is normalised, I/O among the serial characters become 1/0, and the first run that
    starts at a province character, validates (new-energy length tried first) and is not
    followed by another letter or digit is returned."""
    clean = normalise_plate(text)
    for start, char in enumerate(clean):
        if char not in PROVINCES:
            continue
        for length in (8, 7):
            candidate = clean[start : start + length]
            after = clean[start + length : start + length + 1]
            if len(candidate) < length or (after.isascii() and after.isalnum()):
                continue  # too short, or only the start of a longer run: not a whole plate
            candidate = candidate[:2] + candidate[2:].translate(_SERIAL_FIX)
            if plate_kind(candidate) is not None:
                return candidate
    return None


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
