"""Files that ship inside the repository and the commands that use them: the sample district
and the bundled detector model (paths on this machine)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or installed tree) holding `data/` and `models/`."""
SAMPLE_SOURCE = REPO_ROOT / "data" / "sample"
"""The demo district's source folder (`twin.yaml`, OSM layers, synthetic drone products)."""
BUNDLED_MODEL = REPO_ROOT / "models" / "yolov8n_int8.tflite"
"""COCO YOLOv8n, int8 TFLite, the detector used when none is named."""
