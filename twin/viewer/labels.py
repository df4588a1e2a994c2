"""Text labels anchored at 3D points (workspace ENU m), drawn on top of the scene in the CJK
font (`twin.viewer.fonts`) so Chinese names read as well as English ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import ArrayLike
from vtkmodules.vtkCommonCore import VTK_FONT_FILE, vtkStringArray
from vtkmodules.vtkRenderingCore import vtkActor2D
from vtkmodules.vtkRenderingLabel import vtkLabelPlacementMapper, vtkPointSetToLabelHierarchy

from twin.viewer.fonts import cjk_font

LABELS = "labels"


def label_actor(
    points: ArrayLike,
    texts: Sequence[str],
    *,
    colour: tuple[int, int, int] = (255, 255, 255),
    size: int = 14,
    background: float = 0.45,
) -> Any:
    """A 2D actor drawing `texts` at (n, 3) `points`: every label placed, none culled, white
    on a translucent dark box by default."""
    cloud = pv.PolyData(np.asarray(points, float).reshape(-1, 3))
    names = vtkStringArray()
    names.SetName(LABELS)
    for text in texts:
        names.InsertNextValue(text)
    cloud.GetPointData().AddArray(names)
    hierarchy = vtkPointSetToLabelHierarchy()
    hierarchy.SetInputData(cloud)
    hierarchy.SetLabelArrayName(LABELS)
    style = hierarchy.GetTextProperty()
    font = cjk_font()
    if font is not None:
        style.SetFontFamily(VTK_FONT_FILE)
        style.SetFontFile(str(font))
    style.SetFontSize(size)
    style.SetColor(*(c / 255 for c in colour))
    style.SetBackgroundColor(0.04, 0.07, 0.12)
    style.SetBackgroundOpacity(background)
    style.SetJustificationToCentered()
    style.SetVerticalJustificationToBottom()
    mapper = vtkLabelPlacementMapper()
    mapper.SetInputConnection(hierarchy.GetOutputPort())
    mapper.SetPlaceAllLabels(True)
    actor = vtkActor2D()
    actor.SetMapper(mapper)
    return actor
