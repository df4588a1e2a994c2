"""Which drone products a build uses and where: the survey area the rasters are windowed to,
and the DSM read for building heights (`twin.builder.ndsm`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twin.builder.ndsm import SurfaceHeights, surface_heights
from twin.builder.rasters import LonLatBounds, read_height_grid
from twin.builder.sources import LayerData
from twin.builder.terrain import Dtm
from twin.config import SourceConfig
from twin.errors import InputError

# Largest DSM side (pixels) read for building heights; larger DSMs are read resampled.
DSM_MAX_SIDE = 8192


def survey_area(layers: dict[str, LayerData]) -> LonLatBounds | None:
    """Lon/lat bounds (degrees) of every feature of every layer; None without features."""
    bounds = [lay.frame.total_bounds for lay in layers.values() if len(lay.frame)]
    if not bounds:
        return None
    b = np.array(bounds)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
            float(b[:, 3].max()))  # fmt: skip


def drone_surface(
    src: Path,
    config: SourceConfig,
    footprints: list[Any],
    dtm: Dtm | None,
    area: LonLatBounds | None,
) -> SurfaceHeights | None:
    """nDSM heights of the footprints when twin.yaml gives a DSM (which needs a DTM)."""
    if not config.drone.dsm:
        return None
    path = src / config.drone.dsm
    if dtm is None:
        raise InputError(
            "a DSM needs a DTM for building heights (nDSM = DSM - DTM)",
            file=str(path), layer="drone", field="dsm", hint="add drone.dtm to twin.yaml",
        )  # fmt: skip
    dsm = read_height_grid(path, "dsm", default_crs=config.crs, area=area, max_side=DSM_MAX_SIDE)
    return surface_heights(footprints, dsm, dtm)
