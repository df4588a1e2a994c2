"""Per-workspace camera overrides, ``WS/cameras.json``: calibrated poses and intrinsics, PTZ
lens and head settings.

Precedence, from weakest to strongest, when a camera's model is made:
1. the catalog element (``twin build`` from the source's camera layer);
2. its entry in ``WS/cameras.json``: each top-level field present (``lon``, ``lat``,
   ``base_height``, ``height``) replaces the catalog's, and each key of ``attributes``
   (``heading``, ``pitch``, ``roll``, ``hfov``, ``fx``, ``fy``, ``cx``, ``cy``, ``distortion``,
   ``image_width``, ``image_height``, ``angle_sigma``, ``position_sigma``, ``pixel_sigma``)
   replaces the catalog attribute of that name; other catalog fields stay;
3. the live pose of a PTZ camera (`twin.cameras.ptz`), which replaces heading, pitch, roll and
   focal length while the server runs.

Rebuilding the workspace keeps ``cameras.json`` only if the build leaves it in place; a
calibration is tied to the camera's element id.

```json
{"version": 1,
 "cameras": {"camera:cam-pearl-eagle": {
     "lon": 121.49526, "lat": 31.24195, "base_height": 4.0, "height": 260.0,
     "attributes": {"heading": 247.1, "pitch": -19.8, "roll": 0.1},
     "ptz": {"hfov_wide": 60, "hfov_tele": 3, "pan_zero_heading": 0},
     "calibration": {"rms_px": 0.6, "pairs": 12, "...": "..."}}}}
```
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from copy import deepcopy
from pathlib import Path
from typing import Any

from twin.errors import WorkspaceError

FILE_NAME = "cameras.json"
VERSION = 1
TOP_LEVEL = ("lon", "lat", "base_height", "height")
ENTRY_KEYS = frozenset({*TOP_LEVEL, "attributes", "ptz", "calibration"})


def apply_override(record: dict[str, Any], entry: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of element `record` (``Element.to_dict()``) with `entry`'s fields applied."""
    merged = deepcopy(record)
    if not entry:
        return merged
    for key in TOP_LEVEL:
        if key in entry:
            merged[key] = entry[key]
    merged["attributes"] = {**(merged.get("attributes") or {}), **entry.get("attributes", {})}
    return merged


class CameraStore:
    """Reads and atomically rewrites ``WS/cameras.json``; safe to share between threads."""

    def __init__(self, ws: Path) -> None:
        self.path = Path(ws) / FILE_NAME
        self._lock = threading.Lock()
        self._entries = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{self.path}: cannot read camera overrides ({exc})") from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise WorkspaceError(f"{self.path}: expected a version {VERSION} camera file")
        cameras = data.get("cameras", {})
        for cam_id, entry in cameras.items():
            unknown = set(entry) - ENTRY_KEYS
            if unknown:
                raise WorkspaceError(
                    f"{self.path}: camera {cam_id} has unknown key(s) {sorted(unknown)}"
                )
        return dict(cameras)

    def get(self, camera_id: str) -> dict[str, Any] | None:
        """The override entry of a camera (a copy), or None."""
        with self._lock:
            entry = self._entries.get(camera_id)
            return deepcopy(entry) if entry is not None else None

    def update(self, camera_id: str, entry: dict[str, Any]) -> None:
        """Merge `entry` into the camera's override (attributes key by key) and save."""
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise WorkspaceError(f"camera override has unknown key(s) {sorted(unknown)}")
        with self._lock:
            current = deepcopy(self._entries.get(camera_id, {}))
            attributes = {**current.get("attributes", {}), **entry.get("attributes", {})}
            current.update(deepcopy(entry))
            if attributes:
                current["attributes"] = attributes
            self._entries[camera_id] = current
            self._save()

    def _save(self) -> None:
        payload = {"version": VERSION, "cameras": self._entries}
        fd, tmp = tempfile.mkstemp(prefix=".cameras-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=2, ensure_ascii=False)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
