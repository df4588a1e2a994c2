"""The app's camera rig (`twin.cameras.rig.CameraRig`): one per opened workspace, made once
(`TwinState.shared`) and shared by the camera routes and the element record."""

from __future__ import annotations

from server.state import TwinState
from twin.cameras.rig import CameraRig


def camera_rig(state: TwinState) -> CameraRig:
    """The rig of `state`'s workspace (made on first call; meshes load on first ray)."""
    settings = state.settings

    def make() -> CameraRig:
        return CameraRig(state.paths.root, state.catalog, drone_ttl_s=settings.drone_ttl_s,
                         max_drones=settings.max_drones)  # fmt: skip

    return state.shared("camera_rig", make)
