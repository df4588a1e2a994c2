"""Licence-plate text (twin.plates), plate reading (twin.live.plates) and the detection worker's
crop enrichment (twin.live.enrich). The images are rendered, not photographed: plates drawn with
the Noto Sans CJK font (white on blue for ordinary plates, black on a green gradient for
new-energy ones) and pasted onto the bus of ultralytics' bus.jpg or a plain grey background
(tests/plate_images.py).
"""

from __future__ import annotations

import numpy as np
import plate_images as pi
import pytest

from scenes.identifiers import KeyedHasher
from twin.cameras.camera import Camera
from twin.live.classifiers import CargoCoverClassifier
from twin.live.detector import Detection
from twin.live.enrich import CropEnricher
from twin.live.observations import detections_to_observations
from twin.live.plates import PlateReader
from twin.plates import normalise_plate, parse_plate, plate_kind

PLATE_SET = 30
MIN_ACCURACY = 0.75  # measured 25/30 = 83 % (misses are the smallest, blurriest plates)
CAMERA = Camera(
    "camera:test-road", lon=121.4903, lat=31.2400, ground_height=8.0, mount_height=6.0,
    heading=0.0, pitch=-12.0, roll=0.0, hfov=60.0, image_width=810, image_height=1080,
)  # fmt: skip


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.mark.parametrize(
    ("text", "plate", "kind"),
    [
        ("沪A·12345", "沪A12345", "ordinary"),
        ("京n 8p8f8", "京N8P8F8", "ordinary"),
        ("粤B·D12345", "粤BD12345", "new-energy"),
        ("苏A·12345F", "苏A12345F", "new-energy"),
        ("浙C·1234学", "浙C1234学", "ordinary"),
        ("ＡＢ沪A·1O3I5", "沪A10315", "ordinary"),  # full width, leading junk, O/I read as 0/1
        ("沪A·1234", None, None),  # too short
        ("XA·12345", None, None),  # no province
        ("沪1·12345", None, None),  # authority must be a letter
        ("粤B·D1234X", None, None),  # new-energy serial ends in digits
        ("", None, None),
    ],
)
def test_parse_plate_validates_chinese_plates(text: str, plate: str | None, kind: str) -> None:
    assert parse_plate(text) == plate
    if plate is not None:
        assert plate_kind(plate) == kind


def test_scenes_hash_plates_with_the_same_normalisation() -> None:
    hasher = KeyedHasher(b"0123456789abcdef")
    assert normalise_plate("沪a·123-45") == "沪A12345"
    assert hasher.digest("plate", "沪a·123 45") == hasher.digest("plate", "沪A12345")


@pytest.mark.slow
def test_rendered_plate_accuracy(reader: PlateReader) -> None:
    """Exact-match rate over PLATE_SET rendered plates (16–44 px tall, ±5°, blurred, noisy; a
    third new-energy); a wrong plate is worse than none, so at most one may be misread."""
    pairs = pi.plate_set(PLATE_SET)
    readings = [reader.read(image) for _, image in pairs]
    right = sum(r is not None and r.plate == p for (p, _), r in zip(pairs, readings, strict=True))
    wrong = [(p, r.plate) for (p, _), r in zip(pairs, readings, strict=True)
             if r is not None and r.plate != p]  # fmt: skip
    print(f"plate OCR exact match: {right}/{PLATE_SET} = {right / PLATE_SET:.0%}, wrong: {wrong}")
    assert right / PLATE_SET >= MIN_ACCURACY
    assert len(wrong) <= 1
    assert all(0.0 < r.confidence <= 1.0 for r in readings if r is not None)
    new_energy = [r for (p, _), r in zip(pairs, readings, strict=True) if len(p) == 8 and r]
    assert new_energy and all(r.kind == "new-energy" for r in new_energy)


@pytest.mark.slow
def test_no_plate_no_reading(reader: PlateReader) -> None:
    assert reader.read(pi.bus_background()) is None  # the bus's own lettering is not a plate
    assert reader.read(np.full((200, 300, 3), 128, np.uint8)) is None
    assert reader.read(np.zeros((4, 4, 3), np.uint8)) is None


@pytest.mark.slow
def test_worker_puts_plates_on_tracked_vehicles_every_n_frames(reader: PlateReader) -> None:
    """A car (track 7) carrying a rendered plate, a small far car (track 8) and a person: only
    the car big enough is read, once every 5 frames, and its plate rides on every later
    observation of the track."""
    frame = np.full((1080, 810, 3), 90, np.uint8)
    plate = "沪A6M29K"
    car = pi.on_background(pi.render_plate(plate, False, 40), pi.bus_background(),
                           np.random.default_rng(3))  # fmt: skip
    frame[600 : 600 + car.shape[0], 10 : 10 + car.shape[1]] = car
    dets = [
        Detection("car", "vehicle", 0.9, (10, 600, 10 + car.shape[1], 600 + car.shape[0]), 7),
        Detection("car", "vehicle", 0.8, (700, 500, 740, 530), 8),
        Detection("person", "person", 0.9, (600, 700, 650, 900), 9),
    ]
    enricher = CropEnricher(plates=reader, every_n_frames=5)
    seen = [enricher.attributes(frame, dets, index) for index in range(11)]
    assert enricher.crops_read == 3  # frames 0, 5, 10
    assert seen[0][0] == {"plate": plate, "plate_confidence": seen[0][0]["plate_confidence"]}
    assert all(extra[0]["plate"] == plate for extra in seen)
    assert all(extra[1] == {} and extra[2] == {} for extra in seen)

    observations = detections_to_observations(dets, CAMERA, 10, extra=seen[10])
    by_track = {o["track_id"]: o["attributes"] for o in observations}
    assert by_track["7"]["plate"] == plate and by_track["7"]["plate_confidence"] > 0.6
    assert "plate" not in by_track.get("9", {})


def test_worker_runs_the_cover_classifier_on_trucks_only() -> None:
    """Synthetic crops: a truck whose cargo area is granular noise (uncovered muck) and a car
    with the same texture (not a truck: not judged)."""
    rng = np.random.default_rng(0)
    frame = np.full((600, 800, 3), 120, np.uint8)
    frame[100:300, 100:420] = rng.integers(40, 200, (200, 320, 3), dtype=np.uint8)
    frame[300:500, 450:770] = rng.integers(40, 200, (200, 320, 3), dtype=np.uint8)
    dets = [Detection("truck", "vehicle", 0.9, (100, 100, 420, 300), 1),
            Detection("car", "vehicle", 0.9, (450, 300, 770, 500), 2)]  # fmt: skip
    enricher = CropEnricher(plates=None, classifiers=[CargoCoverClassifier()])
    truck, car = enricher.attributes(frame, dets, 0)
    assert truck["covered"] is False and car == {}
