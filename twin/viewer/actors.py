"""VTK actors for the viewer's meshes: one colour, per-face or per-point RGB bytes, or a
texture; faces shaded by a fixed sun baked into their colours (cheap on a software renderer);
groups of actors shown, hidden and faded together; camera frames fitted behind a view.
Positions are workspace ENU metres."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from twin.viewer import colours as col

F64 = NDArray[np.float64]
SUN = np.array([0.35, -0.55, 0.76]) / np.linalg.norm([0.35, -0.55, 0.76])
"""Unit direction (ENU) towards the light that shades buildings: high in the south-east."""
SHADE_AMBIENT = 0.5


def above(points: Any, metres: float) -> F64:
    """ENU points (m) raised by `metres`."""
    return np.asarray(points, float) + np.array([0.0, 0.0, metres])


def sunlit(mesh: pv.PolyData, base: NDArray[np.float64], ambient: float) -> NDArray[np.uint8]:
    """Per-face colours of flat-faced `mesh`: `base` (faces, 3) RGB lit by `SUN` with
    `ambient` (0–1) of the light everywhere."""
    normals = np.asarray(mesh.cell_normals, float)
    shade = ambient + (1 - ambient) * np.clip(normals @ SUN, 0.0, 1.0)
    return np.clip(np.asarray(base, float) * shade[:, None], 0, 255).astype(np.uint8)


def make_actor(
    mesh: pv.PolyData,
    *,
    colour: tuple[int, int, int] = (255, 255, 255),
    rgb: str | None = None,
    texture: NDArray[np.uint8] | None = None,
    opacity: float = 1.0,
    line_width: float = 0.0,
    point_size: float = 0.0,
    lighting: bool = True,
) -> vtkActor:
    """An actor for `mesh`: one colour, or the RGB bytes of its (cell or point) array `rgb`,
    or a texture image (rows from the top); lines `line_width` px wide, points `point_size`
    px (drawn as round dots)."""
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(mesh)
    mapper.ScalarVisibilityOff()
    if rgb is not None:
        mapper.ScalarVisibilityOn()
        mapper.SetColorModeToDirectScalars()
        if rgb in mesh.cell_data:
            mapper.SetScalarModeToUseCellFieldData()
        else:
            mapper.SetScalarModeToUsePointFieldData()
        mapper.SelectColorArray(rgb)
    actor = vtkActor()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetColor(*(c / 255 for c in colour))
    prop.SetOpacity(opacity)
    prop.SetLighting(lighting)
    if line_width:
        prop.SetLineWidth(line_width)
    if point_size:
        prop.SetPointSize(point_size)
        prop.SetRenderPointsAsSpheres(True)
    if texture is not None:
        actor.SetTexture(pv.Texture(np.ascontiguousarray(texture)))
    return actor


def letterbox(frame: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """`frame` (RGB, rows from the top) scaled to the window height of `size` (width, height
    px) and padded (background colour) or cropped at the sides to its width: with the view's
    vertical field of view set to the camera's, the picture then lies where the model does."""
    width, height = size
    scale = height / frame.shape[0]
    scaled_width = max(1, round(frame.shape[1] * scale))
    rows = np.clip((np.arange(height) / scale).astype(int), 0, frame.shape[0] - 1)
    cols = np.clip((np.arange(scaled_width) / scale).astype(int), 0, frame.shape[1] - 1)
    scaled = frame[rows][:, cols]
    out = np.empty((height, width, 3), np.uint8)
    out[:] = col.BACKGROUND
    offset = (width - scaled_width) // 2
    src = slice(max(0, -offset), max(0, -offset) + min(width, scaled_width))
    dst = slice(max(0, offset), max(0, offset) + min(width, scaled_width))
    out[:, dst] = scaled[:, src]
    return out


class ActorLayer:
    """A layer of plain actors that can be replaced as a whole (catalog and live layers)."""

    def __init__(self, name: str, plotter: Any) -> None:
        self.name = name
        self.plotter = plotter
        self.actors: list[Any] = []
        self.visible = True
        self.opacity = 1.0
        self._base: dict[int, float] = {}

    def set(self, actors: Iterable[Any]) -> None:
        """Replace the layer's actors."""
        for actor in self.actors:
            self.plotter.renderer.RemoveActor(actor)
        self.actors = list(actors)
        self._base = {id(a): a.GetProperty().GetOpacity() for a in self.actors}
        for actor in self.actors:
            self.plotter.renderer.AddActor(actor)
        self.set_visible(self.visible)
        self.set_opacity(self.opacity)

    def set_visible(self, visible: bool) -> None:
        self.visible = visible
        for actor in self.actors:
            actor.SetVisibility(visible)

    def set_opacity(self, opacity: float) -> None:
        """Scale every actor's own opacity by `opacity` (0–1)."""
        self.opacity = opacity
        for actor in self.actors:
            actor.GetProperty().SetOpacity(self._base.get(id(actor), 1.0) * opacity)
