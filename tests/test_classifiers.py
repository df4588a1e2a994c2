"""Vehicle classifier plugins (twin.live.classifiers) on synthetic truck crops (drawn here, not
photographed): a truck body with a cargo area of granular brown "muck" (smoothed noise) or a
tarp (one colour, a vertical shading gradient, a few folds and mild sensor noise)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from twin.errors import TwinError
from twin.live.classifiers import (
    CLASSIFIERS,
    CargoCoverClassifier,
    VehicleClassifier,
    load_classifiers,
    register_classifier,
)

H, W, CARGO_H = 200, 320, 90


def truck(cargo: NDArray[np.uint8]) -> NDArray[np.uint8]:
    img = np.full((H, W, 3), (40, 90, 160), np.uint8)  # orange body (BGR)
    img[:CARGO_H] = cargo
    img[150:190, 30:90] = img[150:190, 230:290] = 20  # wheels
    return img


def muck(rng: np.random.Generator, grain_px: float) -> NDArray[np.uint8]:
    g = cv2.GaussianBlur(rng.normal(0, 1, (CARGO_H, W)), (0, 0), grain_px)
    g = (g - g.min()) / (g.max() - g.min())
    brown = np.stack([60 + 70 * g, 90 + 70 * g, 120 + 80 * g], -1)
    return np.clip(brown + rng.normal(0, 6, brown.shape), 0, 255).astype(np.uint8)


def tarp(rng: np.random.Generator, bgr: tuple[int, int, int]) -> NDArray[np.uint8]:
    shade = 0.85 + 0.3 * np.linspace(0, 1, CARGO_H)[:, None, None]
    out = np.array(bgr, float)[None, None, :] * shade * np.ones((CARGO_H, W, 3))
    for x in rng.integers(20, W - 20, 3):
        out[:, x : x + 3] *= 0.8  # folds
    return np.clip(out + rng.normal(0, 4, out.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("grain_px", [0.8, 1.2, 1.6])
def test_uncovered_muck_is_reported(grain_px: float) -> None:
    rng = np.random.default_rng(1)
    found = [CargoCoverClassifier().classify(truck(muck(rng, grain_px))) for _ in range(5)]
    assert all(f["covered"] is False for f in found), found


@pytest.mark.parametrize("bgr", [(60, 140, 60), (160, 90, 40), (200, 200, 200)])
def test_tarp_is_covered(bgr: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(2)
    found = [CargoCoverClassifier().classify(truck(tarp(rng, bgr))) for _ in range(5)]
    assert all(f["covered"] is True and f["covered_score"] < 0.35 for f in found), found


def test_large_crops_are_judged_at_the_same_scale() -> None:
    rng = np.random.default_rng(3)
    crop = truck(muck(rng, 1.2))
    big = np.asarray(cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), np.uint8)
    small, large = CargoCoverClassifier().score(crop), CargoCoverClassifier().score(big)
    assert small is not None and large is not None and large > 0.35


def test_too_small_a_truck_is_not_judged() -> None:
    assert CargoCoverClassifier().classify(np.zeros((30, 60, 3), np.uint8)) == {}


def test_registry() -> None:
    assert "covered" in CLASSIFIERS
    loaded = load_classifiers(["covered"])
    assert isinstance(loaded[0], VehicleClassifier) and loaded[0].classes == {"truck"}
    with pytest.raises(TwinError, match="unknown vehicle classifier"):
        load_classifiers(["nope"])
    with pytest.raises(TwinError, match="already registered"):
        register_classifier("covered")(CargoCoverClassifier)

    @register_classifier("test-colour")
    class Colour:
        classes = frozenset({"car"})

        def classify(self, crop: NDArray[np.uint8]) -> dict[str, Any]:
            return {"colour": "grey" if crop.std() < 5 else "mixed"}

    try:
        (colour,) = load_classifiers(["test-colour"])
        assert colour.classify(np.full((10, 10, 3), 9, np.uint8)) == {"colour": "grey"}
    finally:
        del CLASSIFIERS["test-colour"]
