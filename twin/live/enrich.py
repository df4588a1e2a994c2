"""Per-track attributes from vehicle crops: licence plates (OCR) and classifier plugins.

OCR and classifiers cost far more than detection, so each runs on a track at most every
`every_n_frames` frames, only on boxes at least `min_box_px` wide, and at most
`max_crops_per_frame` crops per frame (the ones waited on longest go first). What a track
learned is kept (bounded, least recently seen tracks forgotten) and put on every later
observation of it: the most confident plate read so far (``plate``, ``plate_confidence``) and
the latest classifier attributes. Untracked detections are never read (no cadence to keep).
The server replaces ``plate`` with its keyed hash and masked form on ingest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.live.classifiers import VehicleClassifier, load_classifiers
from twin.live.detector import Detection
from twin.live.plates import PlateReader

MAX_TRACKS = 2000


@dataclass
class _Track:
    last_frame: int | None = None
    plate: str | None = None
    plate_confidence: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)


def crop_box(image: NDArray[np.uint8], bbox: Sequence[float]) -> NDArray[np.uint8]:
    """The part of a BGR image inside bbox x1, y1, x2, y2 (px), clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(c) for c in bbox)
    return image[max(y1, 0) : min(y2, h), max(x1, 0) : min(x2, w)]


class CropEnricher:
    """Reads plates and runs vehicle classifiers on tracked vehicle boxes, on a cadence."""

    def __init__(
        self,
        *,
        plates: PlateReader | None,
        classifiers: Sequence[VehicleClassifier] = (),
        every_n_frames: int = 10,
        min_box_px: int = 80,
        max_crops_per_frame: int = 2,
    ) -> None:
        self.plates = plates
        self.classifiers = list(classifiers)
        self.every_n_frames = every_n_frames
        self.min_box_px = min_box_px
        self.max_crops_per_frame = max_crops_per_frame
        self._tracks: OrderedDict[int, _Track] = OrderedDict()
        self.crops_read = 0

    @classmethod
    def standard(cls) -> CropEnricher:
        """Plates (PP-OCR) and every registered classifier (the truck-cover one ships), read
        once a second per track at 25 fps, at most one crop a frame."""
        return cls(
            plates=PlateReader(), classifiers=load_classifiers(), every_n_frames=25,
            max_crops_per_frame=1,
        )  # fmt: skip

    def _track(self, track_id: int) -> _Track:
        track = self._tracks.pop(track_id, None) or _Track()
        self._tracks[track_id] = track
        while len(self._tracks) > MAX_TRACKS:
            self._tracks.popitem(last=False)
        return track

    def _due(self, det: Detection, track: _Track, frame_index: int) -> bool:
        if det.kind != "vehicle" or det.bbox[2] - det.bbox[0] < self.min_box_px:
            return False
        return track.last_frame is None or frame_index - track.last_frame >= self.every_n_frames

    def _read(self, image: NDArray[np.uint8], det: Detection, track: _Track) -> None:
        crop = crop_box(image, det.bbox)
        if crop.size == 0:
            return
        if self.plates is not None:
            reading = self.plates.read(crop)
            if reading is not None and reading.confidence >= track.plate_confidence:
                track.plate, track.plate_confidence = reading.plate, reading.confidence
        for classifier in self.classifiers:
            if det.cls in classifier.classes:
                track.attributes.update(classifier.classify(crop))

    def attributes(
        self, image: NDArray[np.uint8], detections: Sequence[Detection], frame_index: int
    ) -> list[dict[str, Any]]:
        """Extra attributes for each detection of frame `frame_index` (BGR `image`), in order."""
        tracks = [None if d.track_id is None else self._track(d.track_id) for d in detections]
        due: list[tuple[int, int, _Track]] = []
        for i, (det, track) in enumerate(zip(detections, tracks, strict=True)):
            if track is not None and self._due(det, track, frame_index):
                waited_since = -1 if track.last_frame is None else track.last_frame
                due.append((waited_since, i, track))
        for _, i, track in sorted(due, key=lambda item: item[:2])[: self.max_crops_per_frame]:
            track.last_frame = frame_index
            self._read(image, detections[i], track)
            self.crops_read += 1
        extra: list[dict[str, Any]] = []
        for track in tracks:
            found: dict[str, Any] = {}
            if track is not None:
                found.update(track.attributes)
                if track.plate is not None:
                    found.update(plate=track.plate, plate_confidence=track.plate_confidence)
            extra.append(found)
        return extra
