"""Vehicle attribute classifiers: plugins the detection worker runs on vehicle crops.

A classifier takes a BGR crop of one detected vehicle and returns attributes to put on its
observation (e.g. ``{"covered": False, "covered_score": 0.81}``). Register one with
`register_classifier`; the worker runs every registered classifier whose `classes` holds the
detection's class. Attribute names become rule inputs (``attributes: {covered: false}`` in a
rule pack), so keep them stable.

Example
-------
>>> @register_classifier("colour")
... class Colour:
...     classes = frozenset({"car"})
...     def classify(self, crop):
...         return {"colour": "red"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from twin.errors import TwinError


@runtime_checkable
class VehicleClassifier(Protocol):
    """Crop → attributes. `classes` are the detector classes it applies to."""

    classes: frozenset[str]

    def classify(self, crop: NDArray[np.uint8]) -> dict[str, Any]:
        """Attributes for one BGR vehicle crop (H, W, 3); {} when it cannot tell."""
        ...


CLASSIFIERS: dict[str, Callable[[], VehicleClassifier]] = {}


def register_classifier(
    name: str,
) -> Callable[[Callable[[], VehicleClassifier]], Callable[[], VehicleClassifier]]:
    """Class decorator: make a classifier (built with no arguments) available as `name`."""

    def add(factory: Callable[[], VehicleClassifier]) -> Callable[[], VehicleClassifier]:
        if name in CLASSIFIERS:
            raise TwinError(f"vehicle classifier '{name}' is already registered")
        CLASSIFIERS[name] = factory
        return factory

    return add


def load_classifiers(names: list[str] | None = None) -> list[VehicleClassifier]:
    """Instances of the registered classifiers `names` (default: all of them)."""
    chosen = list(CLASSIFIERS) if names is None else names
    unknown = [n for n in chosen if n not in CLASSIFIERS]
    if unknown:
        raise TwinError(f"unknown vehicle classifier(s) {unknown}; known: {sorted(CLASSIFIERS)}")
    return [CLASSIFIERS[n]() for n in chosen]


@register_classifier("covered")
class CargoCoverClassifier:
    """Is a truck's cargo covered? A texture heuristic, not a trained model.

    Looks at the cargo area: the top `cargo_fraction` of the box (a muck truck's load shows
    above the side boards, seen by a pole camera from above and behind). Loose muck, earth and
    rubble is granular: many small edges and a high local intensity variance. A tarp or a
    closed lid is a few large even patches. The cargo area is scaled to 160 px and its fine
    detail kept (the image minus a σ = 2 px Gaussian blur); the score is the fraction of pixels
    whose local RMS detail (`window_px` square) exceeds `granular_level` grey levels. Above
    `threshold` the cargo is reported uncovered.

    Limits (be honest with operators): it sees texture, not material. A patterned or dirty,
    wrinkled tarp, netting, strong shadows, rain or motion blur, and a low or side-on camera
    that does not see into the cargo bed all mislead it; a truck too small in the frame
    (< `min_size_px`) is not judged at all. Tune `threshold` per camera on a few labelled crops,
    and treat an alert as a hint for a person to check the frame, not as evidence.

    Attributes returned: ``covered`` (bool) and ``covered_score`` (0–1, higher = more
    granular); {} when the crop is too small.
    """

    classes = frozenset({"truck"})

    def __init__(
        self,
        *,
        cargo_fraction: float = 0.45,
        threshold: float = 0.35,
        min_size_px: int = 48,
        window_px: int = 7,
        granular_level: float = 6.0,
    ) -> None:
        self.cargo_fraction = cargo_fraction
        self.threshold = threshold
        self.min_size_px = min_size_px
        self.window_px = window_px
        self.granular_level = granular_level

    def score(self, crop: NDArray[np.uint8]) -> float | None:
        """Granularity of the cargo area (0–1), or None when the crop is too small."""
        h, w = crop.shape[:2]
        if min(h, w) < self.min_size_px:
            return None
        cargo = crop[: max(int(h * self.cargo_fraction), 8)]
        scale = 160.0 / max(cargo.shape[:2])  # judge texture at a fixed scale
        if scale < 1.0:
            cargo = np.asarray(
                cv2.resize(cargo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            )
        grey = np.asarray(cv2.cvtColor(cargo, cv2.COLOR_BGR2GRAY), np.float32)
        detail = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)  # fine texture only
        k = (self.window_px, self.window_px)
        energy = np.sqrt(cv2.blur(detail * detail, k))
        return float(np.mean(energy > self.granular_level))

    def classify(self, crop: NDArray[np.uint8]) -> dict[str, Any]:
        score = self.score(crop)
        if score is None:
            return {}
        return {"covered": score < self.threshold, "covered_score": round(score, 3)}
