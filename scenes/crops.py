"""Evidence crops: the part of a camera frame that holds an observation's box, as a small JPEG
kept with the alert. Pure image work and the choice of observation (no HTTP, no storage); who
has frames supplies them through a `CropSource`, who has observations through a mapping and a
lookup of earlier ones.

Which observation: an alert lists the observations behind it (a count or dwell rule lists
earlier ones, from earlier batches, beside the one that fired it). Those with a box are tried
newest first (then the most confident), the ones of the alert's own batch before those read
back from the store; the first whose camera has a frame near its time gives the crop.

Pixels: a box is x1, y1, x2, y2 in the pixels of the frame the detector saw, which may be larger
than the stored frame (a worker downscales what it publishes); the box is scaled to the stored one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from scenes.models import Observation

MARGIN = 0.2
"""Margin added on each side of the box, as a fraction of the box's width / height."""
MAX_SIDE = 640
"""Longest side of a crop (px); larger crops are scaled down."""
JPEG_QUALITY = 85
log = logging.getLogger("twin.scenes")


class CropSource(Protocol):
    """Gives the evidence crop (JPEG bytes) of an observation and the URL an alert serves it at."""

    def crop(self, obs: Observation) -> bytes | None:
        """The crop of `obs`'s box in its source camera's recent frame, or None."""
        ...

    def url(self, alert_id: str) -> str:
        """Where the crop of alert `alert_id` is served."""
        ...


def observation_box(obs: Observation) -> tuple[float, float, float, float] | None:
    """``attributes.bbox`` as four finite numbers with x2 > x1 and y2 > y1 (px), else None."""
    box = obs.attributes.get("bbox")
    if not isinstance(box, Sequence) or isinstance(box, str) or len(box) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(c) for c in box)
    except (TypeError, ValueError):
        return None
    if not all(np.isfinite((x1, y1, x2, y2))) or x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def observation_frame_size(obs: Observation) -> tuple[int, int] | None:
    """``attributes.frame_size`` (width, height px) when the observation carries a valid one."""
    size = obs.attributes.get("frame_size")
    if not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2:
        return None
    try:
        width, height = int(size[0]), int(size[1])
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def boxed_newest_first(
    observation_ids: Sequence[str], found: Mapping[str, Observation]
) -> list[Observation]:
    """The observations `observation_ids` names that `found` holds and that carry a box,
    newest first, the most confident first among equally new ones."""
    boxed = [found[i] for i in dict.fromkeys(observation_ids) if i in found]
    boxed = [obs for obs in boxed if observation_box(obs) is not None]
    return sorted(boxed, key=lambda obs: (obs.time, obs.confidence), reverse=True)


def evidence_crop(
    observation_ids: Sequence[str],
    batch: Mapping[str, Observation],
    earlier: Callable[[list[str]], Mapping[str, Observation]],
    crops: CropSource,
) -> bytes | None:
    """The crop of the best observation behind an alert (see the module docstring): the ones of
    `observation_ids` in `batch` (id → observation) first, then those `earlier` reads back by
    id (called only when the batch gives none)."""
    image = _first_crop(boxed_newest_first(observation_ids, batch), crops)
    rest = [i for i in observation_ids if i not in batch]
    if image is None and rest:
        image = _first_crop(boxed_newest_first(rest, earlier(rest)), crops)
    return image


def _first_crop(observations: Sequence[Observation], crops: CropSource) -> bytes | None:
    """The crop of the first of `observations` that has one. A crop that fails is logged and
    skipped: it never costs the alert."""
    for obs in observations:
        try:
            image = crops.crop(obs)
        except Exception:  # a crop is a nicety: never lose the alert over it
            log.exception("evidence crop of observation %s failed", obs.id)
            continue
        if image is not None:
            return image
    return None


def crop_jpeg(
    image: bytes,
    box: tuple[float, float, float, float],
    detector_size: tuple[int, int] | None = None,
    *,
    margin: float = MARGIN,
    max_side: int = MAX_SIDE,
) -> bytes | None:
    """JPEG of `box` (x1, y1, x2, y2 px of a `detector_size` (width, height) frame; default the
    image's own size) in encoded `image` (JPEG/PNG), grown by `margin` of the box on each side,
    clipped to the image and scaled so its longest side is at most `max_side` px. None when the
    image cannot be decoded or the box misses it."""
    import cv2  # only when an alert has a frame to crop: keeps importing scenes light

    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        return None
    height, width = decoded.shape[:2]
    sx, sy = 1.0, 1.0
    if detector_size is not None:
        sx, sy = width / detector_size[0], height / detector_size[1]
    x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    right, bottom = min(width, int(np.ceil(x2 + mx))), min(height, int(np.ceil(y2 + my)))
    if right - left < 1 or bottom - top < 1:
        return None
    crop = decoded[top:bottom, left:right]
    scale = max_side / max(crop.shape[:2])
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return jpeg.tobytes() if ok else None
