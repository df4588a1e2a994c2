"""The app's camera rig (`twin.cameras.rig.CameraRig`): one per opened workspace, made once
and shared by the camera routes and the element record. Kept beside `TwinState`, keyed by its
catalog, so that the state's fields stay as they are."""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

from server.state import TwinState
from twin.cameras.rig import CameraRig
from twin.catalog import Catalog

_RIGS: WeakKeyDictionary[Catalog, CameraRig] = WeakKeyDictionary()
_LOCK = threading.Lock()


def camera_rig(state: TwinState) -> CameraRig:
    """The rig of `state`'s workspace (made on first call; meshes load on first ray)."""
    with _LOCK:
        rig = _RIGS.get(state.catalog)
        if rig is None:
            rig = CameraRig(state.paths.root, state.catalog)
            _RIGS[state.catalog] = rig
        return rig
